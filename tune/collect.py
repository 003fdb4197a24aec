"""Turn a finished Ray Tune experiment into trial records and pick the winner.

The best epoch of a trial comes from its per-epoch history (Ray's
`Result.metrics` holds only the *last* report, so reading the best from it
would be wrong).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from tune.optuna_searcher import COMPLETE, EARLY_STOPPED, ERRORED, NON_FINITE, classify

STATUS_LABELS = {COMPLETE: "TERMINATED", EARLY_STOPPED: "EARLY_STOPPED", NON_FINITE: "NON_FINITE", ERRORED: "ERROR"}


@dataclass
class TrialRecord:
    trial_id: str
    params: dict[str, Any]
    outcome: str  # one of optuna_searcher's outcomes
    epochs_run: int
    best_dev_weighted_f1: float | None
    best_epoch: int | None
    stop_reason: str = ""
    error: str = ""
    checkpoint: str | None = None
    curve: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, dev_weighted_f1, dev_loss, train_loss

    @property
    def eligible(self) -> bool:
        """May this trial win? Finished or early-stopped with a finite score."""
        return self.outcome in (COMPLETE, EARLY_STOPPED) and self.best_dev_weighted_f1 is not None

    def csv_row(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "status": STATUS_LABELS[self.outcome], "epochs_run": self.epochs_run,
                "best_dev_weighted_f1": self.best_dev_weighted_f1, "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason, "error": self.error, **self.params}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def record_from_result(result: Any, max_epochs: int) -> TrialRecord:
    """Build a TrialRecord from one `ray.tune.Result`."""
    last = dict(result.metrics or {})
    trial_id = str(last.get("trial_id") or Path(result.path).name)
    frame = result.metrics_dataframe
    curve: list[dict[str, float]] = []
    if frame is not None and len(frame) and "epoch" in frame:
        for row in frame.to_dict("records"):
            if row.get("non_finite") is True or not _finite(row.get("dev_weighted_f1")):
                continue
            curve.append({"epoch": int(row["epoch"]), "dev_weighted_f1": float(row["dev_weighted_f1"]),
                          "dev_loss": float(row.get("dev_loss", math.nan)),
                          "train_loss": float(row.get("train_loss/total", math.nan))})
    # A retried trial re-reports epochs after its checkpoint: keep the latest value per epoch.
    curve = list({point["epoch"]: point for point in curve}.values())
    curve.sort(key=lambda point: point["epoch"])
    error = str(result.error).strip().splitlines()[-1][:300] if result.error else ""
    outcome = classify(last, bool(result.error), max_epochs)
    best_f1, best_epoch = None, None
    for point in curve:  # strictly greater, as the Coach selects: the earliest epoch wins ties
        if best_f1 is None or point["dev_weighted_f1"] > best_f1:
            best_f1, best_epoch = point["dev_weighted_f1"], point["epoch"]
    reason = str(last.get("stop_reason") or "")
    if not reason:
        reason = {COMPLETE: f"ran all {max_epochs} epochs",
                  EARLY_STOPPED: f"stopped by ASHA after epoch {last.get('epoch')}",
                  ERRORED: "error", NON_FINITE: "non-finite loss"}[outcome]
    return TrialRecord(
        trial_id=trial_id, params=dict(result.config or {}), outcome=outcome,
        epochs_run=max((p["epoch"] for p in curve), default=int(last.get("epoch", 0) or 0)),
        best_dev_weighted_f1=best_f1, best_epoch=best_epoch, stop_reason=reason, error=error,
        checkpoint=result.checkpoint.path if result.checkpoint else None, curve=curve)


def choose_winner(records: list[TrialRecord]) -> TrialRecord | None:
    """Highest best dev F1; ties go to the earlier best epoch (cheaper), then the earlier trial."""
    eligible = [r for r in records if r.eligible]
    if not eligible:
        return None
    return min(eligible, key=lambda r: (-r.best_dev_weighted_f1, r.best_epoch, r.trial_id))


def outcome_counts(records: list[TrialRecord]) -> dict[str, int]:
    return {"completed": sum(r.outcome == COMPLETE for r in records),
            "early_stopped": sum(r.outcome == EARLY_STOPPED for r in records),
            "errored": sum(r.outcome == ERRORED for r in records),
            "non_finite": sum(r.outcome == NON_FINITE for r in records)}


def export_study(study: optuna.Study | None) -> list[dict[str, Any]]:
    """Optuna trials as JSON (params, distributions, state, value, intermediate values, user attrs)."""
    if study is None:
        return []
    exported = []
    for trial in study.get_trials(deepcopy=False):
        exported.append({
            "number": trial.number, "state": trial.state.name,
            "value": trial.value if trial.value is None or math.isfinite(trial.value) else None,
            "params": trial.params,
            "distributions": {k: optuna.distributions.distribution_to_json(d) for k, d in trial.distributions.items()},
            "intermediate_values": {str(k): v for k, v in trial.intermediate_values.items() if math.isfinite(v)},
            "user_attrs": trial.user_attrs,
        })
    return exported


def rebuild_study(exported: list[dict[str, Any]], direction: str = "maximize") -> optuna.Study:
    """An in-memory Optuna study from `export_study`'s output (for plots and importances)."""
    study = optuna.create_study(direction=direction)
    for item in exported:
        state = optuna.trial.TrialState[item["state"]]
        if state == optuna.trial.TrialState.RUNNING or state == optuna.trial.TrialState.WAITING:
            continue
        study.add_trial(optuna.trial.create_trial(
            state=state, value=item["value"] if state == optuna.trial.TrialState.COMPLETE else None,
            params=item["params"],
            distributions={k: optuna.distributions.json_to_distribution(v) for k, v in item["distributions"].items()},
            intermediate_values={int(k): v for k, v in item["intermediate_values"].items()},
            user_attrs=item["user_attrs"]))
    return study
