"""The best-config file's rules: how the current file is read (valid, absent, unreadable, or written
by a newer joyful-tune) and whether a new result replaces it; what a publishing attempt did."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tune.records import BEST_CONFIG_SCHEMA_VERSION, BestConfig

__all__ = ["PublishOutcome", "decide", "read_current"]


@dataclass
class PublishOutcome:
    """What `ResultStore.publish_best` did, and why (the reason is shown to the user)."""

    written: bool  # True when the new document is now the best-config file
    reason: str
    path: Path
    previous: BestConfig | None  # the best config found before, when it was readable


class _Newer(str):
    """The problem of a best-config file written by a newer joyful-tune: never replaced without
    --overwrite."""


def read_current(path: Path) -> tuple[BestConfig | None, str | None]:
    """(best config, None) when valid, (None, None) when absent, (None, problem) otherwise; the
    problem of a file of a newer joyful-tune is a `_Newer`."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read it ({exc})"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno})"
    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(version, int) and version > BEST_CONFIG_SCHEMA_VERSION:
        return None, _Newer(
            f"written by a newer joyful-tune (schema_version {version}); upgrade joyful-tune"
        )
    try:
        return BestConfig.from_dict(document), None
    except ValueError as exc:
        return None, f"not a valid best-config file ({exc})"


def decide(
    current: BestConfig | None, problem: str | None, new: BestConfig, overwrite: bool
) -> tuple[bool, str]:
    """Whether `new` replaces the current best-config file: the file's own problems here, the rule
    between two valid results in `BestConfig.replaces`."""
    if problem is None:
        return (
            new.replaces(current, overwrite) if current is not None else (True, "no earlier result")
        )
    if not isinstance(problem, _Newer):
        return True, f"earlier file was {problem}"
    # A document from a newer joyful-tune: never replaced silently.
    if overwrite:
        return True, f"overwrite requested; earlier file was {problem}"
    return False, (
        f"kept earlier result: it was {problem}; pass --overwrite to replace it (this result is "
        "kept in history)"
    )
