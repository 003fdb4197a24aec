"""Building a best config from a finished search: its winner trial's config as a re-run reproduces
it, the record of how the search ran, and the confirmed winner once confirmation has run."""

from __future__ import annotations

import platform
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joyful.config import JoyfulConfig
from joyful.io import REPO, display_path, portable_path
from tune.common import utc_now
from tune.records import (
    BEST_CONFIG_SCHEMA_VERSION,
    BestConfig,
    DataRef,
    Metric,
    Rerun,
    Resources,
    Scheduler,
    Searcher,
    SingleTrialBest,
    StudyInfo,
    StudyRecord,
    TestScores,
    TrialCounts,
    TrialRecord,
    Versions,
    outcome_counts,
)
from tune.space import SearchSpace

if TYPE_CHECKING:
    from tune.stats.confirmation import ConfirmationResult

__all__ = ["best_from_search", "confirmed", "rerun_command", "versions", "winner_config"]


def best_from_search(
    study: StudyRecord,
    space: SearchSpace,
    winner: TrialRecord,
    *,
    seed: int,
    experiment_root: str,
    best_path: Path,
    rerun: Rerun,
    test: TestScores | None = None,
    data_facts: dict[str, Any] | None = None,
) -> BestConfig:
    """The best config of a finished search: its winner trial, at the precision it trained with,
    re-run or not (`rerun` says which, and why not). `data_facts` (`DialogueData.facts`) let
    `train.py --config` check that a re-run reads the same data."""
    config = winner_config(study, space, winner)
    used = rerun.precision or winner.precision
    # `auto` resolved as it was where the winner trained: a re-run elsewhere must match or say so
    if used:
        config = config.replace(precision=used)
    budget = study.budget
    return BestConfig(
        schema_version=BEST_CONFIG_SCHEMA_VERSION,
        dataset=study.dataset,
        modalities=config.modalities,
        data=DataRef.of(study.data_path, study.data_sha256, data_facts),
        config=config.to_dict(),
        searched=dict(winner.params),
        metric=Metric(
            name=study.metric,
            mode=study.mode,
            value=winner.best_dev_weighted_f1,
            best_epoch=winner.best_epoch,
            scored_on=(
                f"trial {winner.trial_id}: mean of its {study.resampling.folds} folds' held-out "
                f"wF1, seed {seed}"
                if study.resampling.kind == "cv"
                else f"trial {winner.trial_id}: the dev split, seed {seed}"
            ),
        ),
        test=test,
        rerun=rerun,
        single_trial_best=SingleTrialBest(
            trial_id=winner.trial_id,
            config=config.to_dict(),
            searched=dict(winner.params),
            value=winner.best_dev_weighted_f1,
            best_epoch=winner.best_epoch,
        ),
        confirmation=None,
        study=StudyInfo(
            name=study.name,
            experiment=portable_path(f"{experiment_root.rstrip('/')}/{study.dataset}"),
            space_file=study.space_file,
            space_sha256=study.space_sha256,
            space_fingerprint=study.space_fingerprint,
            optuna_storage=study.optuna_storage,
            optuna_study=study.optuna_study,
            num_samples=budget.num_samples,
            searcher=Searcher(
                kind=f"optuna-{study.strategy.sampler}",
                seed=seed,
                baseline_first=space.baseline_point(),
                warm_start=study.warm_start,
                sampling=study.sampling,
            ),
            scheduler=_scheduler(study),
            resources=Resources(
                cpus_per_trial=budget.cpus_per_trial,
                gpus_per_trial=budget.gpus_per_trial,
                max_concurrent=budget.max_concurrent,
            ),
            trials=TrialCounts(**outcome_counts(study.trials)),
            started_at=study.started_at,
            ended_at=study.ended_at,
            search_seconds=study.search_seconds,
            storage_path=portable_path(experiment_root.rstrip("/").rsplit("/", 1)[0]),
        ),
        versions=versions(),
        rerun_command=rerun_command(best_path),
        checkpoint=None,
        written_at=utc_now(),
        resampling=study.resampling,
    )


def _scheduler(study: StudyRecord) -> Scheduler:
    """The scheduler record: patient or plain successive halving, or none (fifo), over epochs, or
    over folds with cross-validation."""
    budget, kind = (
        study.budget,
        {"patient": "patient-asha"}.get(study.strategy.scheduler, study.strategy.scheduler),
    )
    if study.resampling.kind == "cv":
        return Scheduler(
            kind=kind,
            time_attr="fold",
            max_t=study.resampling.folds,
            grace_period=1,
            reduction_factor=budget.reduction_factor,
        )
    return Scheduler(
        kind=kind,
        time_attr="epoch",
        max_t=budget.max_epochs,
        grace_period=budget.grace_period,
        reduction_factor=budget.reduction_factor,
    )


def rerun_command(best_path: Path) -> str:
    """The command that re-runs a best config, as typed in the folder the search ran in."""
    return (
        f"python {shlex.quote(display_path(REPO / 'train.py'))} --config "
        f"{shlex.quote(display_path(best_path))}"
    )


def winner_config(study: StudyRecord, space: SearchSpace, winner: TrialRecord) -> JoyfulConfig:
    """The winner trial's full config, as a re-run reproduces it: for exactly the epochs it trained;
    with cross-validation its first fold, for the epoch count it chose on its folds, keeping that
    epoch."""
    config = space.trial_config(study.base(), winner.params)
    if study.resampling.kind == "cv":
        return config.replace(
            cv_folds=study.resampling.folds,
            cv_fold=1,
            epochs=winner.best_epoch,
            select_epoch="last",
        )
    return config.replace(epochs=winner.epochs_run)


def confirmed(
    best: BestConfig, result: ConfirmationResult, space: SearchSpace, command: str | None = None
) -> BestConfig:
    """`best` with its confirmation recorded: `config` becomes the confirmed winner at its
    median-seed run (with that run's `metric`, `test` and precision)."""
    run, config = (
        result.winner_run,
        result.winner_config,
    )  # its seed, and fold with cross-validation
    if run.precision:
        config = config.replace(precision=run.precision)
    values = config.to_dict()
    return best.replace(
        config=values,
        searched=space.active_point(values),
        metric=best.metric.replace(
            value=run.best_dev_weighted_f1,
            best_epoch=run.best_epoch,
            scored_on=(
                f"confirmation run, seed {run.seed}: held-out fold {run.fold} of "
                f"{config.cv_folds} (fold seed {config.cv_fold_seed}), the median of the winner's "
                "runs"
                if run.fold
                else f"confirmation run, seed {run.seed}: the dev split, the median of the "
                "winner's seeds"
            ),
        ),
        test=TestScores(weighted_f1=run.test_weighted_f1, accuracy=run.test_accuracy),
        checkpoint=None,
        confirmation=result.to_record().replace(command=command),
        written_at=utc_now(),
    )


def versions() -> Versions:
    import optuna
    import ray
    import torch

    import joyful

    return Versions(
        python=platform.python_version(),
        torch=torch.__version__,
        ray=ray.__version__,
        optuna=optuna.__version__,
        joyful_tune=joyful.__version__,
    )
