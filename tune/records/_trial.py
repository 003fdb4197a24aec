"""One Ray trial of a search: its parameters, how it ended, its score and per-epoch curve."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tune.common import finite
from tune.records._base import Finite, Record
from tune.records._outcome import Outcome

__all__ = ["TrialRecord"]


class TrialRecord(Record):
    """One Ray trial of a search, with its curve: one point per epoch (`epoch`, `dev_weighted_f1` -
    with cross-validation the mean over the folds run so far -, `dev_loss`, `train_loss`, ...)."""

    DOCUMENT = "trial record"

    trial_id: str
    params: dict[str, Any]
    outcome: Outcome = Field(strict=False)  # a stored string becomes its member
    epochs_run: int
    best_dev_weighted_f1: Finite | None
    best_epoch: int | None
    stop_reason: str = ""
    error: str = ""
    checkpoint: str | None = None
    curve: list[dict[str, Any]] = Field(default_factory=list)
    optuna_number: int | None = None  # the Optuna trial it was sampled as (start order)
    folds_run: int | None = None  # with cross-validation: how many folds it trained
    fold_scores: list[Finite] = Field(
        default_factory=list
    )  # ... and each fold's dev wF1 at `best_epoch`
    precision: str | None = None  # what it trained at (fp32 or bf16; `auto` resolved)
    peak_resident_mb: Finite | None = None  # its worker's largest resident size after an epoch
    started_at: str | None = (
        None  # when the searcher sampled it, and when it ended (Optuna's times, UTC)
    )
    ended_at: str | None = None
    proposed_by: str | None = None  # queued (baseline, earlier winner), start-up (random) or model

    @property
    def status(self) -> str:
        return self.outcome.label

    @property
    def eligible(self) -> bool:
        """May this trial win? It ran all its budget or was stopped early, with a finite score."""
        return self.outcome.can_win and finite(self.best_dev_weighted_f1)

    def peaked_last(self, epochs: int) -> bool:
        """Whether its score was best at the last epoch of `epochs` it could train (on each fold
        with cross-validation): its curve had not peaked, so the epoch budget may have cut it short.
        """
        return (
            self.eligible
            and self.best_epoch == epochs
            and (self.folds_run is not None or self.epochs_run == epochs)
        )

    def rank_key(self) -> tuple:
        """The one ranking of trials (eligible ones): with cross-validation more folds first (a mean
        over fewer folds is a noisier estimate, and the scheduler stopped those trials for
        trailing), then the best score, then the earlier best epoch, then the trial id."""
        return (
            -(self.folds_run or 0),
            -self.best_dev_weighted_f1,
            self.best_epoch or 0,
            self.trial_id,
        )

    def csv_row(self) -> dict[str, Any]:
        """The trials-table row: fixed columns, then the parameters the trial used."""
        folds = {} if self.folds_run is None else {"folds_run": self.folds_run}
        return {
            "trial_id": self.trial_id,
            "status": self.status,
            "epochs_run": self.epochs_run,
            **folds,
            "best_dev_weighted_f1": self.best_dev_weighted_f1,
            "best_epoch": self.best_epoch,
            "stop_reason": self.stop_reason,
            "error": self.error,
            **self.params,
        }
