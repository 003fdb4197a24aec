"""The reference runs a search is measured against besides the logistic regression: the project's
defaults as `train.py` runs them, and a strong untuned setting; a space file's `references` section
(every key optional) names the second and how many seeds each runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joyful.config import coerce_value, field_names
from joyful.errors import UserError

__all__ = ["ReferenceRuns", "parse_references"]

# Measured on MELD (docs/AVERAGING.md): the untuned setting a user would reach for first, which
# learns where the original's learning rate (3e-5) does not leave always-neutral in a short budget.
STRONG_UNTUNED = {"learning_rate": 1.0e-4, "batch_size": 16}
# What a reference may not set: the search decides the data, the folds and the epochs it trains.
NOT_SET_HERE = ("dataset", "data", "cv_folds", "cv_fold", "cv_fold_seed", "seed", "epochs")


@dataclass(frozen=True)
class ReferenceRuns:
    """`seeds` runs of each reference; `untuned`: the settings of the strong untuned one (on top of
    the project's defaults and the space's fixed values)."""

    seeds: int = 3
    untuned: dict[str, Any] = field(default_factory=lambda: dict(STRONG_UNTUNED))


def parse_references(raw: dict[str, Any], where: str) -> ReferenceRuns:
    """The `references` section of a space file, checked (errors name the key)."""
    unknown = sorted(set(raw) - {"seeds", "untuned"})
    if unknown:
        raise UserError(
            f"{where}: references: unknown key(s) {', '.join(unknown)}; use seeds, untuned"
        )
    seeds = raw.get("seeds", ReferenceRuns.seeds)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 2:
        raise UserError(
            f"{where}: references.seeds is {seeds!r}, but must be an integer >= 2 (the seeds' "
            "spread "
            "belongs in the interval)"
        )
    untuned = raw.get("untuned", STRONG_UNTUNED)
    if not isinstance(untuned, dict) or not untuned:
        raise UserError(f"{where}: references.untuned must be a mapping of train.py settings")
    checked = {}
    for name, value in untuned.items():
        if name not in field_names() or name in NOT_SET_HERE:
            raise UserError(
                f"{where}: references.untuned.{name}: not a setting a reference may change "
                f"({'the search sets it' if name in NOT_SET_HERE else 'no such train.py setting'})"
            )
        checked[name] = coerce_value(name, value, source=f"{where}: references.untuned")
    return ReferenceRuns(seeds=seeds, untuned=checked)
