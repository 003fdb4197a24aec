"""How a trial ended, which outcomes may win, and why a trial stopped (in words)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["Outcome", "classify", "stop_reason"]


class Outcome(StrEnum):
    """How a trial ended; the member's value is what files store."""

    COMPLETE = "completed"
    EARLY_STOPPED = "early_stopped"
    NON_FINITE = "non_finite"
    ERRORED = "errored"

    @property
    def label(self) -> str:
        """The word of the trials table (Ray's own status names where they exist)."""
        return {
            "completed": "TERMINATED",
            "early_stopped": "EARLY_STOPPED",
            "non_finite": "NON_FINITE",
            "errored": "ERROR",
        }[self.value]

    @property
    def can_win(self) -> bool:
        """Whether a trial that ended so may win (with a finite score): it ran all its budget or was
        stopped early."""
        return self in (Outcome.COMPLETE, Outcome.EARLY_STOPPED)

    @property
    def optuna_state(self) -> str:
        """The name of the Optuna `TrialState` a trial that ended so is stored with (stopped early:
        PRUNED)."""
        return {Outcome.COMPLETE: "COMPLETE", Outcome.EARLY_STOPPED: "PRUNED"}.get(self, "FAIL")


def classify(
    result: dict[str, Any] | None, error: bool, max_budget: int, time_attr: str = "epoch"
) -> Outcome:
    """How a trial ended, from its last reported result (`time_attr` counts its budget: epochs or
    folds)."""
    if error or not result:
        return Outcome.ERRORED
    if result.get("non_finite"):
        return Outcome.NON_FINITE
    if int(result.get(time_attr, 0)) < max_budget:
        return Outcome.EARLY_STOPPED
    return Outcome.COMPLETE


def stop_reason(
    outcome: str, last: Any, max_budget: int, reported: str = "", unit: str = "epoch"
) -> str:
    """Why a trial ended, in words: what the trial reported itself (a non-finite loss), else its
    outcome's rule."""
    if reported:
        return reported
    return {
        Outcome.COMPLETE: f"ran all {max_budget} {unit}s",
        Outcome.EARLY_STOPPED: f"stopped early after {unit} {last}",
        Outcome.ERRORED: "error",
        Outcome.NON_FINITE: "non-finite loss",
    }[Outcome(outcome)]
