"""The Ray Tune function trainable: one Coach run, reported and checkpointed epoch by epoch.

It never touches the test set. Each epoch reports `dev_weighted_f1` (the
search metric), the dev loss, the loss components and gate means; every
`checkpoint_every` epochs (and at the last one) it saves the Coach state
(weights, optimizer, scheduler, epoch, RNG, history) so a retried or resumed
trial continues exactly where it stopped.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

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
        log.warning("trial was given %s GPU but CUDA is not available in this worker; training on CPU", gpu_ids)
    return torch.device("cpu")


def epoch_metrics(record: dict[str, Any], coach: Coach) -> dict[str, Any]:
    """Flat, finite-where-possible metrics for Tune (nested dicts become `train_loss/nll` etc.)."""
    return {
        "epoch": record["epoch"],
        "dev_weighted_f1": record["dev_weighted_f1"],
        "dev_accuracy": record["dev_accuracy"],
        "dev_loss": record["dev_loss"],
        **({"raw_dev_weighted_f1": record["raw_dev_weighted_f1"]} if "raw_dev_weighted_f1" in record else {}),
        "best_dev_weighted_f1": coach.best_dev_f1,
        "best_epoch": coach.best_epoch,
        "lr": record["lr"],
        "train_seconds": record["train_seconds"],
        "train_loss": dict(record["train_loss"]),
        "gates": dict(record["gates"]),
        "non_finite": False,
        "resident_mb": record["resident_mb"],  # this worker's memory after the epoch (sizes --max-concurrent)
        "precision": coach.precision,  # what `auto` resolved to on this worker
        # Ray records node_ip by itself, but nodes of one machine share it; the id tells them apart.
        "node_id": ray.get_runtime_context().get_node_id(),
    }


def train_trial(params: dict[str, Any], *, base_config: dict[str, Any], data: DialogueData,
                checkpoint_every: int = 1) -> None:
    """Ray Tune entry point. `params` are the sampled values; `base_config` holds everything else."""
    # Ray logs a line per saved checkpoint (every epoch here); the progress table says enough.
    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)
    config = JoyfulConfig.from_dict({**base_config, **params}, source="trial config")
    device = trial_device()

    def report(record: dict[str, Any], coach: Coach) -> None:
        metrics = epoch_metrics(record, coach)
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
        tune.report({"epoch": coach.epoch, "dev_weighted_f1": -math.inf, "best_dev_weighted_f1": coach.best_dev_f1,
                     "best_epoch": coach.best_epoch, "non_finite": True, "stop_reason": str(exc),
                     "pid": os.getpid()})
    finally:
        # Ray reuses this actor for the next trial: give this trial's memory back before it starts.
        del coach
        gc.collect()
        release_free_memory()
