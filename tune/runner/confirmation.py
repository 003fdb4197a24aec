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

import logging
import math
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
from tune.runner.confirm_trial import MODEL_FILE, PROBABILITIES_FILE, confirm_trial
from tune.runner.lost_workers import treat_lost_workers_as_trial_failures
from tune.runner.progress import ConfirmationProgress
from tune.space import SearchSpace
from tune.stats.candidates import (
    candidates_from_study,
    confirmation_seeds,
    same_setup,
    tuned_baseline,
)
from tune.stats.confirmation import (
    BASELINE_LABEL,
    ConfigRuns,
    ConfirmationResult,
    SeedRun,
    choose_confirmed_winner,
)

__all__ = [
    "MODEL_FILE",
    "PROBABILITIES_FILE",
    "confirm",
    "confirm_search",
    "confirm_trial",
    "train_grid",
    "train_plan_runs",
]


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
    folds: int = 0,
    on_tie: str = BASELINE_LABEL,
) -> ConfirmationResult:
    """Train the baseline and every candidate with every seed (on each of `folds` folds with
    cross-validation) as parallel Ray trials; summarise them, and choose what is published
    (`on_tie`: see `ConfirmationResult.decide_ties`).

    Each run trains for its config's `epochs` and evaluates test once with the model it keeps. A
    candidate identical to an earlier entry (seed aside) is dropped. The Ray experiment is
    `<storage_path>/<name>`; an interrupted one of the same runs is resumed (its finished runs are
    kept).
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"confirmation seeds {seeds} must be a non-empty list without repeats")
    entries = [ConfigRuns(BASELINE_LABEL, baseline, [])]
    for label, config in candidates:
        if label in {e.label for e in entries}:
            raise UserError(f"confirmation label {label!r} is used twice")
        twin = next((e for e in entries if same_setup(config, e.config)), None)
        if twin is not None:
            print(
                f"confirmation: {label} has the settings of {twin.label}; trained once, as "
                f"{twin.label}",
                flush=True,
            )
            continue
        entries.append(ConfigRuns(label, config, []))
    started = time.perf_counter()
    train_grid(
        entries,
        seeds,
        list(range(1, folds + 1)) if folds else [0],
        data=data,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        storage_path=storage_path,
        name=name,
        max_failures=max_failures,
        verbose=verbose,
    )
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
    )
    result.decide_ties(on_tie)
    return result


def train_grid(
    entries: list[ConfigRuns],
    seeds: list[int],
    fold_list: list[int],
    *,
    data: DialogueData,
    cpus_per_trial: float,
    gpus_per_trial: float,
    storage_path: str,
    name: str,
    max_failures: int = 1,
    verbose: int = 0,
    stage: str = "confirmation",
) -> None:
    """Train every entry's config with every seed on every fold of `fold_list` (0: the config's own
    split) as parallel Ray trials in experiment `<storage_path>/<name>`, and add the runs to the
    entries; `stage` names them in the progress lines. An interrupted experiment of the same runs is
    resumed (its finished runs are kept)."""
    configs = [e.config.to_dict() for e in entries]
    trainable = tune.with_resources(
        tune.with_parameters(confirm_trial, configs=configs, data=data),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial},
    )
    runs = len(entries) * len(seeds) * len(fold_list)
    epochs = sum(e.config.epochs for e in entries) * len(seeds) * len(fold_list)
    progress = ConfirmationProgress(runs, epochs, [e.label for e in entries], stage=stage)
    experiment = f"{storage_path.rstrip('/')}/{name}"
    treat_lost_workers_as_trial_failures()
    # A refit has no dev split, so its dev scores are NaN on purpose; Ray's TensorBoard logger would
    # warn about each one on the terminal.
    logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)
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


def train_plan_runs(plan: Any, entries: list[ConfigRuns], seeds: list[int], stage: str) -> None:
    """Train `entries` with `seeds` on their own split (no folds) for the search of `plan` (a
    SearchPlan), on its data and trial resources, as experiment `<experiment root>/<data
    set>-<stage>` (`stage`: refit, references)."""
    train_grid(
        entries,
        seeds,
        [0],
        data=plan.data,
        cpus_per_trial=plan.budget.cpus_per_trial,
        gpus_per_trial=plan.budget.gpus_per_trial,
        storage_path=plan.experiment_root,
        name=f"{plan.dataset}-{stage}",
        verbose=0 if plan.options.quiet else 1,
        stage=stage,
    )


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
    settings, see `tune/stats/candidates.py`) and the proposal, with `seeds` fresh seeds each,
    scored as the search scored its trials (on the dev split, or on each fold of a fresh
    assignment)."""
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
    refit = bool(metrics.get("refit"))
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
        refit=refit,
        # A refit has no dev split: its dev curve is empty, not a row of NaN.
        dev_weighted_f1=[] if refit else [float(v) for v in curve["dev_weighted_f1"]],
        train_loss=[float(v) for v in curve["train_loss"]],
        train_nll=[float(v) for v in curve["train_nll"]],
        # The raw weights are kept at their own best dev epoch: a refit has none.
        raw_test_weighted_f1=None if refit else raw.get("weighted_f1"),
        raw_best_dev_weighted_f1=None if refit else raw.get("best_dev_weighted_f1"),
        wall_seconds=float(metrics["time_total_s"]) if metrics.get("time_total_s") else None,
        model_checkpoint=result.checkpoint.path if result.checkpoint is not None else None,
        probabilities=probabilities,
    )
