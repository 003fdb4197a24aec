"""One Ray trial of a search: its parameters, how it ended, its score and per-epoch curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tune.common import finite, present
from tune.records._outcome import STATUS_LABELS, Outcome

__all__ = ["TrialRecord"]


@dataclass(frozen=True)
class TrialRecord:
    """One Ray trial of a search, with its per-epoch curve (epoch, dev_weighted_f1, dev_loss, train_loss)."""

    trial_id: str
    params: dict[str, Any]
    outcome: Outcome
    epochs_run: int
    best_dev_weighted_f1: float | None
    best_epoch: int | None
    stop_reason: str = ""
    error: str = ""
    checkpoint: str | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    optuna_number: int | None = None  # the Optuna trial it was sampled as (start order)

    def __post_init__(self) -> None:
        if self.outcome not in STATUS_LABELS:
            raise ValueError(f"trial {self.trial_id}: outcome {self.outcome!r} is not one of "
                             f"{[o.value for o in Outcome]}")
        object.__setattr__(self, "outcome", Outcome(self.outcome))  # a plain string becomes its member

    @property
    def status(self) -> str:
        return self.outcome.label

    @property
    def eligible(self) -> bool:
        """May this trial win? It ran all epochs or ASHA stopped it, with a finite score."""
        return self.outcome.can_win and finite(self.best_dev_weighted_f1)

    def rank_key(self) -> tuple:
        """The one ranking of trials (eligible ones): best score, then earlier best epoch, then trial id."""
        return -self.best_dev_weighted_f1, self.best_epoch or 0, self.trial_id

    def csv_row(self) -> dict[str, Any]:
        """The trials-table row: fixed columns, then the parameters the trial used."""
        return {"trial_id": self.trial_id, "status": self.status, "epochs_run": self.epochs_run,
                "best_dev_weighted_f1": self.best_dev_weighted_f1, "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason, "error": self.error, **self.params}

    def to_dict(self) -> dict[str, Any]:
        return {**self.csv_row(), "curve": self.curve, "checkpoint": self.checkpoint,
                "optuna_number": self.optuna_number}

    @classmethod
    def from_dict(cls, row: dict[str, Any], param_names: list[str] | None = None) -> TrialRecord:
        """From `to_dict`'s form (or a study file of schema 1, where parameters sit beside the fixed keys)."""
        fixed = {"trial_id", "status", "epochs_run", "best_dev_weighted_f1", "best_epoch", "stop_reason", "error",
                 "curve", "checkpoint", "optuna_number"}
        try:
            params = {k: v for k, v in row.items() if k not in fixed and (param_names is None or k in param_names)
                      and present(v)}
            best = row.get("best_dev_weighted_f1")
            return cls(trial_id=str(row["trial_id"]), params=params, outcome=Outcome.from_label(row["status"]),
                       epochs_run=int(row.get("epochs_run") or 0),
                       best_dev_weighted_f1=float(best) if finite(best) else None,
                       best_epoch=int(row["best_epoch"]) if finite(row.get("best_epoch")) else None,
                       stop_reason=str(row.get("stop_reason") or ""), error=str(row.get("error") or ""),
                       checkpoint=row.get("checkpoint"), curve=list(row.get("curve") or []),
                       optuna_number=row.get("optuna_number"))
        except KeyError as exc:
            raise ValueError(f"trial record {row.get('trial_id', '?')}: missing or unknown {exc}") from None
