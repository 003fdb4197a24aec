"""What every section of the report reads (`Context`), and the small rules the sections share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joyful.io import portable_path, recorded_path
from tune.common import fmt_value
from tune.records import BestConfig, StudyRecord, TrialRecord
from tune.space import SearchSpace

if TYPE_CHECKING:
    import optuna

__all__ = [
    "CONTOUR_PARAMS",
    "MIN_SURFACE_TRIALS",
    "TOP_CURVES",
    "Context",
    "param_names",
    "relative",
    "trial_params",
    "trial_row",
]

# Importances and contours are fitted surfaces: from a handful of finished trials they draw noise as
# structure (a contour of 3 trials over a colour scale of a hundredth of a point says nothing).
# Below this many COMPLETE trials the report says so in a sentence instead.
MIN_SURFACE_TRIALS = 6
TOP_CURVES = 5
CONTOUR_PARAMS = 3  # the most important ones; a contour grid of every pair is unreadable


@dataclass
class Context:
    """What every section reads: the study record, its Optuna study, the best config, the ranked
    trials."""

    dataset: str
    study: StudyRecord
    optuna_study: optuna.Study | None
    optuna_note: str  # why there is no Optuna study, when there is none
    best: BestConfig | None
    figures_dir: Path
    space: SearchSpace | None
    space_note: str
    trials: list[TrialRecord]  # in start order
    ranked: list[TrialRecord]  # finished or ASHA-stopped with a score, best first
    # What the best-config file publishes now (maybe an earlier search's), what became of this
    # search's own result (the history's outcome and reason), and the file's path as the report
    # shows it.
    published: BestConfig | None = None
    decision: tuple[str, str] | None = None
    best_path: str = ""
    figures: list[str] = field(default_factory=list)  # PNG files written

    @property
    def best_trial(self) -> TrialRecord | None:
        return self.ranked[0] if self.ranked else None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The trials as the plots take them (parameters as columns), in start order."""
        return [trial_row(t) for t in self.trials]

    @property
    def trivial(self) -> tuple[str, float] | None:
        majority = self.study.majority
        return (f"always {majority.majority_class}", majority.dev_weighted_f1) if majority else None

    def figure(self, file: str, caption: str) -> str:
        """Record a written PNG and return its Markdown image link (relative to the report)."""
        self.figures.append(file)
        return f"![{caption}]({self.figures_dir.name}/{file})"


def param_names(c: Context) -> list[str]:
    if c.space is not None:
        return c.space.param_names()
    names: list[str] = []
    for trial in c.trials:
        names += [n for n in trial.params if n not in names]
    return names


def trial_params(trial: TrialRecord, names: list[str]) -> str:
    return ", ".join(f"{n}={fmt_value(trial.params[n])}" for n in names if n in trial.params)


def trial_row(trial: TrialRecord) -> dict[str, Any]:
    """A trial as the plots take it: the trials-table columns (parameters among them), its curve and
    number."""
    return {**trial.csv_row(), "curve": trial.curve, "optuna_number": trial.optuna_number}


def relative(path: str) -> str:
    """A recorded path as the report shows it: relative to the repository root where it can be."""
    return portable_path(recorded_path(path)) or path
