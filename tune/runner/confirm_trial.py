"""The trainable of a confirmation run (and of a reference run): one configuration, one seed, one
fold (or its own split), trained to its epoch count, tested once; reported with its model file and
the class probabilities of its selected model on its dev split and on test, computed in float32 as
`python -m joyful.predict` computes them."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData

__all__ = ["MODEL_FILE", "PROBABILITIES_FILE", "confirm_trial"]

MODEL_FILE = "model.pt"
PROBABILITIES_FILE = "probabilities.npz"  # dev, test (utterances x classes) and their labels


def confirm_trial(
    params: dict[str, Any], *, configs: list[dict[str, Any]], data: DialogueData
) -> None:
    """Ray Tune entry point: train configuration `config_index` with `seed` (on `fold` with
    cross-validation); report each epoch (progress), then the whole run with its model file and
    probabilities."""
    # torch: loaded in the Ray worker that trains, not by the driver that imports this module
    from joyful.run import build_coach
    from joyful.runtime import release_free_memory
    from tune.runner import faults
    from tune.runner.trainable import trial_device

    values = {**configs[params["config_index"]], "seed": params["seed"]}
    if params.get("fold"):
        values["cv_fold"] = params["fold"]
    config = JoyfulConfig.from_dict(values, source="confirmation config")

    def progress(
        record: dict[str, Any], coach: Any
    ) -> None:  # one report an epoch: the progress lines
        tune.report(
            {
                "epoch": record["epoch"],
                "dev_weighted_f1": record["dev_weighted_f1"],
                "resident_mb": record["resident_mb"],
            }
        )
        faults.after_epoch(record["epoch"], {**params, "confirmation": True}, coach)

    coach = build_coach(config, data, trial_device(), callbacks=[progress], keep_best_state=True)
    try:
        _train_and_report(coach, config, data)
    finally:  # Ray reuses this actor for the next run: give this run's memory back first
        del coach
        gc.collect()
        release_free_memory()


def _train_and_report(coach: Any, config: JoyfulConfig, data: DialogueData) -> None:
    """Train one confirmation run and report it with its model file and probabilities (its
    checkpoint)."""
    from joyful.coach import NonFiniteLossError
    from joyful.model_file import save_model_file

    try:
        summary = coach.fit(evaluate_test=True)
    except (
        NonFiniteLossError
    ) as exc:  # a failed run, reported as such; retrying would fail the same way
        tune.report({"failed": str(exc)})
        return
    history, test = summary["history"], summary["test"]
    # The selected model, restored at its best epoch: its class probabilities, computed as test was.
    dev = coach.evaluate("dev", exact=True)
    metrics = {
        "best_dev_weighted_f1": summary["best_dev_weighted_f1"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "test_weighted_f1": test["weighted_f1"],
        "test_accuracy": test["accuracy"],
        "precision": coach.precision,
        "refit": bool(config.cv_folds) and config.cv_fold == 0,
        "peak_resident_mb": max(r["resident_mb"] for r in history),
        "raw": test.get("raw") or {},
        "curve": {
            "dev_weighted_f1": [r["dev_weighted_f1"] for r in history],
            "train_loss": [r["train_loss"]["total"] for r in history],
            "train_nll": [r["train_loss"]["nll"] for r in history],
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        save_model_file(
            Path(folder) / MODEL_FILE,
            config.replace(precision=coach.precision),
            coach.selected_model.state_dict(),
            coach.scaler,
            data,
            {
                "best_epoch": summary["best_epoch"],
                "dev_weighted_f1": summary["best_dev_weighted_f1"],
                "test_weighted_f1": test["weighted_f1"],
            },
        )
        np.savez_compressed(
            Path(folder) / PROBABILITIES_FILE,
            dev=dev.probabilities,
            dev_labels=dev.labels,
            dev_lengths=[len(d) for d in coach.data.splits["dev"]],
            test=coach.last_test.probabilities,
            test_labels=coach.last_test.labels,
            test_lengths=[len(d) for d in coach.data.splits["test"]],
        )
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
