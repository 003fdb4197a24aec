"""How a trial ended: the outcomes, their labels in tables and files, and which of them may win."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["COMPLETE", "EARLY_STOPPED", "ELIGIBLE_OUTCOMES", "ERRORED", "NON_FINITE", "OUTCOMES", "STATUS_LABELS",
           "Outcome", "classify", "stop_reason"]


class Outcome(StrEnum):
    """How a trial ended. A `StrEnum`, so the stored strings and comparisons with them stay what they were."""

    COMPLETE = "completed"
    EARLY_STOPPED = "early_stopped"
    NON_FINITE = "non_finite"
    ERRORED = "errored"

    @property
    def label(self) -> str:
        """The word of the trials table and the study file (Ray's own status names where they exist)."""
        return _LABELS[self]

    @property
    def can_win(self) -> bool:
        """Whether a trial that ended so may win (with a finite score): it ran all epochs or ASHA stopped it."""
        return self in (Outcome.COMPLETE, Outcome.EARLY_STOPPED)

    @property
    def optuna_state(self) -> str:
        """The name of the Optuna `TrialState` a trial that ended so is stored with (ASHA-stopped: PRUNED)."""
        return {Outcome.COMPLETE: "COMPLETE", Outcome.EARLY_STOPPED: "PRUNED"}.get(self, "FAIL")

    @classmethod
    def from_label(cls, label: str) -> Outcome:
        """The outcome of a table or study-file label; KeyError for an unknown one."""
        return OUTCOMES[label]


_LABELS = {Outcome.COMPLETE: "TERMINATED", Outcome.EARLY_STOPPED: "EARLY_STOPPED", Outcome.NON_FINITE: "NON_FINITE",
           Outcome.ERRORED: "ERROR"}

# The names the rest of tune/ and the tests have always used: aliases of the members.
COMPLETE, EARLY_STOPPED = Outcome.COMPLETE, Outcome.EARLY_STOPPED
NON_FINITE, ERRORED = Outcome.NON_FINITE, Outcome.ERRORED
STATUS_LABELS = {outcome: outcome.label for outcome in Outcome}
OUTCOMES = {outcome.label: outcome for outcome in Outcome}
ELIGIBLE_OUTCOMES = tuple(outcome for outcome in Outcome if outcome.can_win)


def classify(result: dict[str, Any] | None, error: bool, max_epochs: int) -> Outcome:
    """How a trial ended, from its last reported result."""
    if error or not result:
        return Outcome.ERRORED
    if result.get("non_finite"):
        return Outcome.NON_FINITE
    if int(result.get("epoch", 0)) < max_epochs:
        return Outcome.EARLY_STOPPED
    return Outcome.COMPLETE


def stop_reason(outcome: str, last_epoch: Any, max_epochs: int, reported: str = "") -> str:
    """Why a trial ended, in words: what the trial reported itself (a non-finite loss), else its outcome's rule."""
    if reported:
        return reported
    return {Outcome.COMPLETE: f"ran all {max_epochs} epochs",
            Outcome.EARLY_STOPPED: f"stopped by ASHA after epoch {last_epoch}",
            Outcome.ERRORED: "error", Outcome.NON_FINITE: "non-finite loss"}[Outcome(outcome)]
