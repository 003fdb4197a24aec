"""Which space a data set gets (its own file, else the default space) and writing the default one
out to edit."""

from __future__ import annotations

from pathlib import Path

from joyful.errors import UserError
from joyful.io import display_path
from tune.space._reader import load_space
from tune.space._shipped import DEFAULT_SPACE_NAME, DEFAULT_SPACE_PATH, default_space_path
from tune.space._space import SearchSpace

__all__ = ["resolve_space", "write_default_space"]


def resolve_space(dataset: str, path: str | Path | None = None) -> tuple[SearchSpace, str | None]:
    """The space of `dataset`: `path`, else search_spaces/<dataset>.yaml, else the default space.

    Returns the space and, when the default space was used, the one line that says so.
    """
    if path is not None:
        return load_space(path, dataset), None
    own = default_space_path(dataset)
    if own.exists():
        return load_space(own, dataset), None
    note = (
        f"no {display_path(own)}: using the default space {display_path(DEFAULT_SPACE_PATH)} (the "
        "fusion extension's parameters + "
        f"learning rate, dropout, weight decay, class weighting, feature scaling); to edit it: "
        f"tune/search.py --dataset {dataset} --write-space {display_path(own)}"
    )
    return load_space(DEFAULT_SPACE_PATH, dataset, template=True), note


def write_default_space(dataset: str, out: str | Path) -> Path:
    """Write the default space for `dataset` to `out` (never over an existing file), comments
    kept."""
    out = Path(out)
    if out.exists():
        raise UserError(f"--write-space {out}: the file exists; remove it or pick another path")
    text = DEFAULT_SPACE_PATH.read_text()
    marker = f"\ndataset: {DEFAULT_SPACE_NAME}\n"
    if marker not in text:
        raise UserError(
            f"{display_path(DEFAULT_SPACE_PATH)} has no 'dataset: {DEFAULT_SPACE_NAME}' line"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "x") as handle:  # exclusive: a file created meanwhile is not overwritten
            handle.write(text.replace(marker, f"\ndataset: {dataset}\n", 1))
    except OSError as exc:
        raise UserError(f"--write-space {out}: cannot write it ({exc.strerror})") from None
    load_space(out, dataset)  # what was written is a valid space for this data set
    return out
