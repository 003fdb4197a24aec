"""The Ray Tune function trainables: a trial on the data's dev split (`train_trial`) or over K folds
of train + dev (`train_cv_trial`). Neither touches the test set.

`search_score` is what the scheduler compares, the sampler learns from and the ranking uses: on the
dev split, the best epoch's dev weighted F1 so far (of the averaged weights); with cross-validation,
the best epoch of the mean over the folds run so far. `train_trial` reports every epoch (`epoch` is
its budget) and saves the Coach state (weights, optimizer, scheduler, epoch, RNG, history) every
`checkpoint_every` epochs and at its last, so a retried or resumed trial continues exactly where it
stopped. `train_cv_trial` reports every epoch too, for the progress line and the time forecast, each
report carrying the folds finished so far (`fold` is its budget: a trial clearly worse after fold 1
need not run the others; NaN before the first fold ends); the folds' curves are its checkpoint, so a
retry repeats at most the fold it was in. Every report says how long its epoch took
(`epoch_seconds`, training and evaluation).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from ray import tune

from joyful.checkpoint import load_checkpoint, save_checkpoint
from joyful.coach import Coach, NonFiniteLossError
from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.run import build_coach
from joyful.runtime import release_free_memory
from tune.runner import faults

log = logging.getLogger("joyful.tune")
CHECKPOINT_FILE = "coach.pt"


def trial_device() -> torch.device:
    """The GPU Ray assigned to this trial (fractional shares pack trials), else the CPU."""
    gpu_ids = ray.get_gpu_ids()
    if gpu_ids:
        if torch.cuda.is_available():
            # Ray sets CUDA_VISIBLE_DEVICES to the assigned device, so it is always cuda:0 here.
            return torch.device("cuda:0")
        log.warning(
            "trial was given %s GPU but CUDA is not available in this worker; training on CPU",
            gpu_ids,
        )
    return torch.device("cpu")


class EpochClock:
    """Seconds between a trial's epoch reports: the wall time of an epoch as the search sees it."""

    def __init__(self) -> None:
        self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return round(seconds, 3)


def epoch_metrics(record: dict[str, Any], coach: Coach) -> dict[str, Any]:
    """Flat, finite-where-possible metrics for Tune (nested dicts become `train_loss/nll` etc.)."""
    return {
        "epoch": record["epoch"],
        "dev_weighted_f1": record["dev_weighted_f1"],
        "dev_accuracy": record["dev_accuracy"],
        "dev_loss": record["dev_loss"],
        **(
            {"raw_dev_weighted_f1": record["raw_dev_weighted_f1"]}
            if "raw_dev_weighted_f1" in record
            else {}
        ),
        "best_dev_weighted_f1": coach.best_dev_f1,
        "search_score": coach.best_dev_f1,
        "best_epoch": coach.best_epoch,
        "lr": record["lr"],
        "train_seconds": record["train_seconds"],
        "train_loss": dict(record["train_loss"]),
        "gates": dict(record["gates"]),
        "non_finite": False,
        "resident_mb": record[
            "resident_mb"
        ],  # this worker's memory after the epoch (sizes --max-concurrent)
        "precision": coach.precision,  # what `auto` resolved to on this worker
        # Ray records node_ip by itself, but nodes of one machine share it; the id tells them apart.
        "node_id": ray.get_runtime_context().get_node_id(),
    }


def train_trial(
    params: dict[str, Any],
    *,
    base_config: dict[str, Any],
    data: DialogueData,
    checkpoint_every: int = 1,
) -> None:
    """Ray Tune entry point. `params` are the sampled values; `base_config` holds everything
    else."""
    # Ray logs a line per saved checkpoint (every epoch here); the progress table says enough.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    config = JoyfulConfig.from_dict({**base_config, **params}, source="trial config")
    device = trial_device()

    clock = EpochClock()

    def report(record: dict[str, Any], coach: Coach) -> None:
        metrics = {**epoch_metrics(record, coach), "epoch_seconds": clock.lap()}
        last = coach.epoch >= config.epochs
        if coach.epoch % checkpoint_every == 0 or last:
            with tempfile.TemporaryDirectory() as folder:
                save_checkpoint(Path(folder) / CHECKPOINT_FILE, config, coach.state_dict())
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)
        faults.after_epoch(coach.epoch, params, coach)

    coach = build_coach(config, data, device, callbacks=[report], keep_best_state=False)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            payload = load_checkpoint(Path(folder) / CHECKPOINT_FILE, map_location=device)
        coach.load_state_dict(payload["coach"])
        log.info("trial resumed after epoch %d", coach.epoch)
    faults.after_epoch(coach.epoch, params, coach)
    try:
        coach.fit(evaluate_test=False)
    except NonFiniteLossError as exc:
        # End the trial cleanly with the reason: the searcher tells Optuna it FAILED, and
        # -inf can never be the best dev score (the metric itself must stay a number).
        tune.report(
            {
                "epoch": coach.epoch,
                "dev_weighted_f1": -math.inf,
                "best_dev_weighted_f1": coach.best_dev_f1,
                "search_score": -math.inf,
                "best_epoch": coach.best_epoch,
                "non_finite": True,
                "stop_reason": str(exc),
                "pid": os.getpid(),
            }
        )
    finally:
        # Ray reuses this actor for the next trial: give this trial's memory back before it starts.
        del coach
        gc.collect()
        release_free_memory()


CV_STATE_FILE = "folds.json"


def cv_score(curves: list[list[float]]) -> tuple[float, int, list[float]]:
    """(score, epoch, mean curve) of folds' dev curves: the mean over folds at each epoch, and its
    best epoch (the earliest on a tie). One epoch count for every fold, so a lucky epoch of one fold
    cannot carry the score."""
    mean = [float(v) for v in np.mean(np.asarray(curves, dtype=np.float64), axis=0)]
    best = int(np.argmax(mean))
    return mean[best], best + 1, mean


def train_cv_trial(
    params: dict[str, Any], *, base_config: dict[str, Any], data: DialogueData, folds: int
) -> None:
    """Ray Tune entry point of a cross-validated search: the sampled values trained on each of
    `folds` folds in turn, each for the full epoch budget; one report per fold (see the module
    docstring)."""
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    config = JoyfulConfig.from_dict(
        {**base_config, **params, "cv_folds": folds}, source="trial config"
    )
    device = trial_device()
    curves: list[list[float]] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            curves = json.loads((Path(folder) / CV_STATE_FILE).read_text())["curves"]
        log.info("trial resumed after fold %d", len(curves))
    peak, summary = 0.0, _cv_summary(curves)
    clock = EpochClock()
    for fold in range(len(curves) + 1, folds + 1):
        # Each epoch of fold `fold` reports the folds finished before it (`done`).
        def after_epoch(
            record: dict[str, Any], coach: Coach, fold: int = fold, done: dict = summary
        ) -> None:
            tune.report(
                {
                    **done,
                    "fold_epoch": record["epoch"],
                    "fold_dev_weighted_f1": record["dev_weighted_f1"],
                    "epoch_seconds": clock.lap(),
                    "progress": True,
                    "resident_mb": record["resident_mb"],
                }
            )
            faults.after_epoch(record["epoch"], {**params, "fold": fold}, coach)

        coach = build_coach(
            config.replace(cv_fold=fold),
            data,
            device,
            callbacks=[after_epoch],
            keep_best_state=False,
        )
        try:
            coach.fit(evaluate_test=False)
        except NonFiniteLossError as exc:
            tune.report(
                {
                    "fold": fold,
                    "dev_weighted_f1": -math.inf,
                    "search_score": -math.inf,
                    "non_finite": True,
                    "stop_reason": f"fold {fold}: {exc}",
                    "pid": os.getpid(),
                }
            )
            return
        curves.append([r["dev_weighted_f1"] for r in coach.history])
        peak = max(peak, max(r["resident_mb"] for r in coach.history))
        summary = {
            **_cv_summary(curves),
            "precision": coach.precision,
            "resident_mb": peak,
            "node_id": ray.get_runtime_context().get_node_id(),
        }
        del coach
        gc.collect()
        release_free_memory()
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / CV_STATE_FILE).write_text(json.dumps({"curves": curves}))
            tune.report(
                {**summary, "progress": False}, checkpoint=tune.Checkpoint.from_directory(folder)
            )


def _cv_summary(curves: list[list[float]]) -> dict[str, Any]:
    """What every report of a cross-validated trial carries about the folds it finished (`fold` of
    them): the search score, the epoch it was taken at, the mean curve and each fold's score at that
    epoch."""
    if not curves:
        return {"fold": 0, "search_score": math.nan, "non_finite": False}
    score, epoch, mean = cv_score(curves)
    return {
        "fold": len(curves),
        "search_score": score,
        "dev_weighted_f1": score,
        "best_dev_weighted_f1": score,
        "best_epoch": epoch,
        "curve": mean,
        "fold_scores": [c[epoch - 1] for c in curves],
        "non_finite": False,
    }
