"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | Path, write: Callable[[IO], None], *, binary: bool = False) -> Path:
    """Write through `write(handle)` into a temporary file beside `path`, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb" if binary else "w") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp creates 0600 files; results are meant to be shared like any other file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# The checkout. Result and config files record paths relative to it, so they mean the same file
# whatever folder a command runs in (a path typed on the command line is relative to the working
# folder, as usual).
REPO = Path(__file__).resolve().parents[1]


def portable_path(path: str | Path | None) -> str | None:
    """`path` as result files record it: relative to the repository root when it lies under it or
    beside it (e.g. ``../shared/data/x.pkl``), so committed files hold no machine-specific prefix
    and mean the same file from any working folder; absolute otherwise; URIs (``s3://``) and None
    unchanged."""
    if path is None or "://" in str(path):
        return None if path is None else str(path)
    absolute = Path(path).expanduser().resolve()
    relative = os.path.relpath(absolute, REPO)
    return str(absolute) if relative.startswith(os.path.join(os.pardir, os.pardir)) else relative


def recorded_path(path: str | Path) -> Path:
    """A path read from a config or result file: relative ones are relative to the repository
    root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() or "://" in str(path) else REPO / path


def display_path(path: str | Path) -> str:
    """`path` as a user at the working folder would type it: relative when it lies below, else
    absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def atomic_write_json(path: str | Path, document: Any) -> Path:
    return atomic_write(
        path, lambda out: json.dump(document, out, indent=2, sort_keys=False, default=_jsonable)
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def check_data_file(path: Path, source: str | None = None) -> None:
    """Refuse a data path that is missing or a folder: the CLIs call it before anything heavy loads,
    the loader again (naming the path as `source`)."""
    from joyful.errors import UserError

    source = source or str(path)
    if not path.exists():
        raise UserError(
            f"{source} does not exist (pass --data PATH, or create synthetic data with "
            "joyful-synth)"
        )
    if path.is_dir():
        raise UserError(f"{source} is a folder; pass the .pkl file itself with --data")
