"""A search's trials as records: one `TrialRecord` per Ray result, with what the Optuna study knows
of it.

The best epoch of a trial comes from its per-epoch history (Ray's `Result.metrics` holds only the
*last* report, so reading the best from it would be wrong); a cross-validated trial's from its last
report, which carries the mean curve over the folds it finished.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tune.common import finite
from tune.records import TrialRecord, classify, stop_reason

__all__ = ["optuna_facts", "record_from_result"]


def optuna_facts(study: Any) -> dict[str, dict[str, Any]]:
    """Ray trial id -> its Optuna trial number (the order the searcher sampled them), times and how
    it was proposed, from the search's open study."""
    from tune.study.story import trial_times

    times = trial_times(study)
    return {
        t.user_attrs["ray_trial_id"]: {
            "optuna_number": t.number,
            "started_at": times[t.user_attrs["ray_trial_id"]][0],
            "ended_at": times[t.user_attrs["ray_trial_id"]][1],
            "proposed_by": t.user_attrs.get("proposed_by"),
            **(
                {"stop_reason": t.user_attrs["stop_reason"]}
                if t.user_attrs.get("stop_reason")
                else {}
            ),
        }
        for t in study.get_trials(deepcopy=False)
        if "ray_trial_id" in t.user_attrs
    }


def record_from_result(
    result: Any,
    max_budget: int,
    optuna_facts: dict[str, dict[str, Any]] | None = None,
    *,
    time_attr: str = "epoch",
    epochs: int | None = None,
) -> TrialRecord:
    """A TrialRecord from one `ray.tune.Result` (with what the Optuna study knows of it: number and
    times). `max_budget` counts `time_attr` (epochs, or folds with cross-validation, whose folds ran
    `epochs` each)."""
    last = dict(result.metrics or {})
    trial_id = str(last.get("trial_id") or Path(result.path).name)
    frame = result.metrics_dataframe
    error = str(result.error).strip().splitlines()[-1][:300] if result.error else ""
    outcome = classify(last, bool(result.error), max_budget, time_attr)
    reason = stop_reason(
        outcome, last.get(time_attr), max_budget, str(last.get("stop_reason") or ""), unit=time_attr
    )
    resident = (
        [float(v) for v in frame["resident_mb"] if finite(v)]
        if frame is not None and "resident_mb" in frame
        else []
    )
    common = {
        **dict(
            trial_id=trial_id,
            params=dict(result.config or {}),
            outcome=outcome,
            stop_reason=reason,
            error=error,
            precision=last.get("precision"),
            peak_resident_mb=max(resident) if resident else None,
        ),
        **(optuna_facts or {}).get(trial_id, {}),
    }
    if time_attr == "fold":
        return _cv_record(last, epochs or 0, common)
    curve: list[dict[str, float]] = []
    if frame is not None and len(frame) and "epoch" in frame:
        for row in frame.to_dict("records"):
            if row.get("non_finite") is True or not finite(row.get("dev_weighted_f1")):
                continue
            point = {
                "epoch": int(row["epoch"]),
                "dev_weighted_f1": float(row["dev_weighted_f1"]),
                "dev_loss": float(row.get("dev_loss", math.nan)),
                "train_loss": float(row.get("train_loss/total", math.nan)),
            }
            if finite(
                row.get("raw_dev_weighted_f1")
            ):  # with weight averaging: the trained weights' own score
                point["raw_dev_weighted_f1"] = float(row["raw_dev_weighted_f1"])
            curve.append(point)
    # A retried trial re-reports epochs after its checkpoint: keep the latest value per epoch.
    curve = sorted(
        {point["epoch"]: point for point in curve}.values(), key=lambda point: point["epoch"]
    )
    best_f1, best_epoch = None, None
    for point in curve:  # strictly greater, as the Coach selects: the earliest epoch wins ties
        if best_f1 is None or point["dev_weighted_f1"] > best_f1:
            best_f1, best_epoch = point["dev_weighted_f1"], point["epoch"]
    return TrialRecord(
        **common,
        epochs_run=max((p["epoch"] for p in curve), default=int(last.get("epoch", 0) or 0)),
        best_dev_weighted_f1=best_f1,
        best_epoch=best_epoch,
        curve=curve,
    )


def _cv_record(last: dict[str, Any], epochs: int, common: dict[str, Any]) -> TrialRecord:
    """A cross-validated trial: its curve is the mean over the folds it ran, its score that curve's
    best epoch."""
    mean = last.get("curve") or []
    folds = int(last.get("fold") or 0) if mean else 0
    score = last.get("search_score")
    return TrialRecord(
        **common,
        epochs_run=epochs if mean else 0,
        folds_run=folds,
        best_dev_weighted_f1=float(score) if mean and finite(score) else None,
        best_epoch=int(last["best_epoch"]) if mean else None,
        curve=[{"epoch": e, "dev_weighted_f1": float(v)} for e, v in enumerate(mean, start=1)],
        fold_scores=[float(v) for v in last.get("fold_scores") or []],
    )
