"""The part of a confirmation that talks to Ray: every (configuration, seed) as a parallel Ray
trial.

Each run trains for its config's `epochs`, selects on dev and evaluates test once at its best dev
epoch; it reports its scores and, as its Ray checkpoint, its model file (joyful/model_file.py) and
the dev and test class probabilities of the selected model (`PROBABILITIES_FILE`), from which
`tune/stats/confirmation.py` scores ensembles. `tune/stats/confirmation.py` turns the runs into
statistics and the confirmed winner; `tune/publish.py` keeps the winner's model files as the
published ensemble.
"""

from __future__ import annotations

import gc
import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import portable_path
from tune.records import StudyRecord
from tune.records.disk import check_confirmation_runs, write_confirmation_runs
from tune.runner.lost_workers import treat_lost_workers_as_trial_failures
from tune.runner.progress import ConfirmationProgress
from tune.space import SearchSpace
from tune.stats.candidates import (
    candidates_from_study,
    confirmation_seeds,
    same_setup,
    tuned_baseline,
    untuned_defaults,
)
from tune.stats.confirmation import (
    BASELINE_LABEL,
    DEFAULTS_LABEL,
    ConfigRuns,
    ConfirmationResult,
    SeedRun,
    choose_confirmed_winner,
)

__all__ = ["MODEL_FILE", "PROBABILITIES_FILE", "confirm", "confirm_search", "confirm_trial"]

MODEL_FILE = "model.pt"
PROBABILITIES_FILE = "probabilities.npz"  # dev, test (utterances x classes) and their labels

log = logging.getLogger("joyful.tune")


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
    dev = coach.evaluate(
        "dev"
    )  # the selected model, restored at its best epoch: its class probabilities
    metrics = {
        "best_dev_weighted_f1": summary["best_dev_weighted_f1"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "test_weighted_f1": test["weighted_f1"],
        "test_accuracy": test["accuracy"],
        "precision": coach.precision,
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


def confirm(
    candidates: list[tuple[str, JoyfulConfig]],
    baseline: JoyfulConfig,
    seeds: list[int],
    *,
    data: DialogueData,
    cpus_per_trial: float,
    gpus_per_trial: float,
    storage_path: str,
    name: str,
    max_failures: int = 1,
    verbose: int = 0,
    proposal: dict[str, Any] | None = None,
    defaults: JoyfulConfig | None = None,
    folds: int = 0,
    on_tie: str = BASELINE_LABEL,
) -> ConfirmationResult:
    """Train the baseline, the untuned `defaults` and every candidate with every seed (on each of
    `folds` folds with cross-validation) as parallel Ray trials; summarise them, and choose what is
    published (`on_tie`: see `ConfirmationResult.decide_ties`).

    Each run trains for its config's `epochs` and evaluates test once with the model it keeps. A
    candidate identical to an earlier entry (seed aside) is dropped. The Ray experiment is
    `<storage_path>/<name>`; an interrupted one of the same runs is resumed (its finished runs are
    kept).
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"confirmation seeds {seeds} must be a non-empty list without repeats")
    entries = [ConfigRuns(BASELINE_LABEL, baseline, [])]
    offered = ([(DEFAULTS_LABEL, defaults)] if defaults is not None else []) + list(candidates)
    defaults_label = None
    for label, config in offered:
        if label in {e.label for e in entries}:
            raise UserError(f"confirmation label {label!r} is used twice")
        twin = next((e for e in entries if same_setup(config, e.config)), None)
        if label == DEFAULTS_LABEL:
            defaults_label = twin.label if twin is not None else DEFAULTS_LABEL
        if twin is not None:
            print(
                f"confirmation: {label} has the settings of {twin.label}; trained once, as "
                f"{twin.label}",
                flush=True,
            )
            continue
        entries.append(ConfigRuns(label, config, []))
    started = time.perf_counter()
    configs = [e.config.to_dict() for e in entries]
    trainable = tune.with_resources(
        tune.with_parameters(confirm_trial, configs=configs, data=data),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    fold_list = list(range(1, folds + 1)) if folds else [0]
    runs = len(entries) * len(seeds) * len(fold_list)
    epochs = sum(e.config.epochs for e in entries) * len(seeds) * len(fold_list)
    progress = ConfirmationProgress(runs, epochs, [e.label for e in entries])
    experiment = f"{storage_path.rstrip('/')}/{name}"
    treat_lost_workers_as_trial_failures()
    if tune.Tuner.can_restore(experiment):
        # An interrupted confirmation of the same runs: the finished ones are kept, the rest
        # continue.
        check_confirmation_runs(experiment, configs, seeds)
        print(f"confirmation: resuming {experiment} (finished runs are kept)", flush=True)
        tuner = tune.Tuner.restore(
            experiment, trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        tuner = tune.Tuner(
            trainable,
            param_space={
                "config_index": tune.grid_search(list(range(len(entries)))),
                "seed": tune.grid_search(seeds),
                "fold": tune.grid_search(fold_list),
            },
            # Reusing a worker between runs saves its start-up (seconds each); every run seeds
            # itself afresh.
            tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage_path,
                verbose=verbose,
                failure_config=tune.FailureConfig(max_failures=max_failures),
                callbacks=[progress],
            ),
        )
        write_confirmation_runs(experiment, configs, seeds)
    grid = tuner.fit()
    for result in grid:
        entry = entries[result.config["config_index"]]
        entry.runs.append(_seed_run(result))
    for entry in entries:
        entry.runs.sort(key=lambda r: r.key)
    result = ConfirmationResult(
        seeds=list(seeds),
        entries=entries,
        winner_label=choose_confirmed_winner(entries),
        wall_seconds=time.perf_counter() - started,
        experiment=portable_path(f"{storage_path.rstrip('/')}/{name}"),
        proposal=dict(proposal or {}),
        folds=folds,
        n_classes=data.spec.n_classes,
        defaults_label=defaults_label,
    )
    result.decide_ties(on_tie)
    return result


def confirm_search(
    study: StudyRecord,
    space: SearchSpace,
    data: DialogueData,
    *,
    top: int,
    seeds: int,
    cpus_per_trial: float,
    gpus_per_trial: float,
    storage_path: str,
    name: str,
    verbose: int = 0,
) -> ConfirmationResult:
    """Confirm a finished search: its `top` best configurations, the space's baseline (both at tuned
    settings, see `tune/stats/candidates.py`) and the untuned defaults, with `seeds` fresh seeds
    each, scored as the search scored its trials (on the dev split, or on each fold)."""
    base = study.base()
    folds = study.resampling.folds if study.resampling.kind == "cv" else 0
    return confirm(
        candidates_from_study(study.trials, space, base, top, folds),
        tuned_baseline(study.trials, space, base, folds),
        confirmation_seeds(base.seed, seeds, folds),
        data=data,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        storage_path=storage_path,
        name=name,
        verbose=verbose,
        proposal=space.proposal,
        defaults=untuned_defaults(base, folds),
        folds=folds,
        on_tie=space.on_tie,
    )


def _seed_run(result: Any) -> SeedRun:
    seed, fold = int(result.config["seed"]), int(result.config.get("fold") or 0) or None
    metrics = result.metrics or {}
    if result.error or "best_dev_weighted_f1" not in metrics:
        error = (
            str(result.error).strip().splitlines()[-1][:300]
            if result.error
            else metrics.get("failed", "no result reported")
        )
        return SeedRun(seed=seed, fold=fold, best_dev_weighted_f1=None, error=error)
    curve, raw = metrics["curve"], metrics.get("raw") or {}
    best = float(metrics["best_dev_weighted_f1"])
    probabilities = None
    if result.checkpoint is not None:
        with result.checkpoint.as_directory() as folder:
            with np.load(Path(folder) / PROBABILITIES_FILE) as stored:
                probabilities = {k: stored[k] for k in stored.files}
    return SeedRun(
        seed=seed,
        fold=fold,
        best_dev_weighted_f1=best if math.isfinite(best) else None,
        best_epoch=int(metrics["best_epoch"]),
        epochs_run=int(metrics["epochs_run"]),
        test_weighted_f1=float(metrics["test_weighted_f1"]),
        test_accuracy=float(metrics["test_accuracy"]),
        precision=metrics.get("precision"),
        dev_weighted_f1=[float(v) for v in curve["dev_weighted_f1"]],
        train_loss=[float(v) for v in curve["train_loss"]],
        train_nll=[float(v) for v in curve["train_nll"]],
        raw_test_weighted_f1=raw.get("weighted_f1"),
        raw_best_dev_weighted_f1=raw.get("best_dev_weighted_f1"),
        model_checkpoint=result.checkpoint.path if result.checkpoint is not None else None,
        probabilities=probabilities,
    )
