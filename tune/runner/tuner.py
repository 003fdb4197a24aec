"""The part of a search that talks to Ray: the Tuner of one data set's plan, run or resumed to its
end.

`run_search(plan)` opens the plan's Optuna study, builds the scheduler, the searcher
(tune/runner/searcher.py) and the progress line from it, runs `Tuner.fit` and reads the trials back
as `TrialRecord`s (tune/runner/trial_records.py). A search ends in one of three ways: every trial
ran, the time budget let no further trial start (both go on to publishing), or the user stopped it
(`interrupted`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ray import tune

from joyful.errors import UserError
from tune.forecast import Pace
from tune.plan import SearchPlan
from tune.records import Ending, Sampling, TrialRecord
from tune.runner.cluster import GracefulStop
from tune.runner.lost_workers import treat_lost_workers_as_trial_failures
from tune.runner.progress import ProgressLine
from tune.runner.trial_records import optuna_facts, record_from_result

# What the scheduler compares, the sampler learns from and the ranking uses
# (tune/runner/trainable.py reports it).
SEARCH_SCORE = "search_score"

__all__ = ["SEARCH_SCORE", "SearchRun", "build_tuner", "experiments_to_resume", "run_search"]


def experiments_to_resume(datasets: list[str], storage: str, name: str) -> dict[str, bool]:
    """With --resume: which data sets continue their experiment (True) and which start now (False).

    A search runs its data sets in order and an interruption stops it, so the experiments that exist
    are the first data sets' ones; the later ones had not started and start now. Anything else (none
    exists, or a gap) means a wrong --name, --storage-path or --dataset list.
    """
    root = f"{storage.rstrip('/')}/{name}"
    exists = [tune.Tuner.can_restore(f"{root}/{d}") for d in datasets]
    if not any(exists):
        raise UserError(
            f"--resume: no experiment to resume at {root}/{datasets[0]}; check --name and "
            "--storage-path"
        )
    started = exists.index(False) if False in exists else len(exists)
    if any(exists[started:]):
        later = datasets[started + exists[started:].index(True)]
        raise UserError(
            f"--resume: {later}'s experiment exists but {datasets[started]}'s, earlier in the "
            "--dataset order, does not; list the data sets in the order of the interrupted search"
        )
    return dict(zip(datasets, exists, strict=True))


@dataclass
class SearchRun:
    """What the trial phase left: the trials, how they were proposed, how the phase ended, and
    whether the user stopped it before the end."""

    trials: list[TrialRecord]
    interrupted: bool = False
    seconds: float = 0.0
    invocation: int | None = None  # the study's record of this invocation (tune/study/story.py)
    sampling: Sampling | None = None
    ending: Ending = field(default_factory=lambda: Ending(kind="all trials"))


def build_tuner(plan: SearchPlan, concurrency: int, reason: str = "") -> tuple[Any, Any]:
    """The Tuner of `plan` (restored when the plan resumes its experiment) and its searcher."""
    from tune.runner.searcher import ArmSearcher

    budget = plan.budget
    trainable = tune.with_resources(
        _trainable(plan), {"cpu": budget.cpus_per_trial, "gpu": budget.gpus_per_trial}
    )
    if plan.resume:
        # The searcher, scheduler and progress line come back from the experiment; the searcher
        # reopens the study.
        tuner = tune.Tuner.restore(
            plan.experiment, trainable, resume_unfinished=True, resume_errored=True
        )
        # Ray keeps no public handle on a restored Tuner's searcher; its TuneConfig holds ours as
        # given.
        return tuner, tuner._local_tuner._tune_config.search_alg
    time_attr, max_t, _ = plan.fidelity()
    scheduler, pace, shape = plan.build_scheduler(), Pace(), plan.shape(concurrency)
    # The scheduler that stops trials early and says why (none with fifo): the searcher and the
    # progress line read its reasons, and a resumed searcher rebuilds its rungs.
    halving = scheduler if plan.strategy.scheduler != "fifo" else None
    searcher = ArmSearcher(
        storage=str(plan.optuna_storage),
        study_name=plan.name,
        space=plan.space,
        strategy=plan.strategy,
        seed=int(plan.study.user_attrs.get("sampler_seed", plan.options.seed)),
        trials=budget.num_samples,
        queued=plan.queued(),
        time_attr=time_attr,
        max_budget=max_t,
        metric=SEARCH_SCORE,
        mode=plan.space.mode,
        max_concurrent=concurrency,
        scheduler=halving,
        pace=pace,
        shape=shape,
        time_budget=plan.time_budget,
        study=plan.study,
    )
    from tune.tracking import tracking_callbacks

    print(
        f"{plan.dataset}: {searcher.sampler.describe()}; {plan.strategy.scheduler} scheduler; "
        f"{concurrency} trial(s) at once ({reason or 'the free trial slots'})",
        flush=True,
    )
    callbacks = [
        ProgressLine(
            plan.dataset,
            shape,
            pace,
            time_attr=time_attr,
            max_budget=max_t,
            scheduler=halving,
            time_budget=plan.time_budget,
        ),
        *tracking_callbacks(plan),
    ]
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=SEARCH_SCORE,
            mode=plan.space.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=budget.num_samples,
            # Reused actors let a stopped trial's thread unwind before the next starts;
            # killing the actor mid-unwind aborted the process (noisy, harmless), and
            # actor start-up was most of the per-trial overhead.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=plan.dataset,
            storage_path=plan.experiment_root,
            failure_config=tune.FailureConfig(max_failures=plan.options.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=callbacks,
            verbose=0 if plan.options.quiet else 1,
        ),
    )
    return tuner, searcher


def _trainable(plan: SearchPlan) -> Any:
    from tune.runner.trainable import train_cv_trial, train_trial  # torch: only in a search

    if plan.folds:
        return tune.with_parameters(
            train_cv_trial, base_config=plan.base_config.to_dict(), data=plan.data, folds=plan.folds
        )
    return tune.with_parameters(
        train_trial,
        base_config=plan.base_config.to_dict(),
        data=plan.data,
        checkpoint_every=plan.budget.checkpoint_every,
    )


def cluster_slots(plan: SearchPlan) -> int:
    """How many trials the cluster's resources hold at once."""
    import ray

    resources = ray.cluster_resources()
    slots = resources.get("CPU", 1.0) // plan.budget.cpus_per_trial
    if plan.budget.gpus_per_trial > 0:
        slots = min(slots, resources.get("GPU", 0.0) // plan.budget.gpus_per_trial)
    return max(1, int(slots))


def run_search(plan: SearchPlan) -> SearchRun:
    """Run (or resume) the trials of `plan` to their end, the end of its time budget, or until the
    user stops it; the plan's study is open afterwards (`plan.study`)."""
    from tune.study.opening import open_study
    from tune.study.story import end_invocation, set_details, start_invocation

    treat_lost_workers_as_trial_failures()
    study = open_study(plan)
    concurrency, reason = plan.concurrency(cluster_slots(plan))
    tuner, searcher = build_tuner(plan, concurrency, reason)
    invocation = start_invocation(study, resumed=plan.resume)
    started = time.perf_counter()
    with (
        GracefulStop() as stop
    ):  # Ctrl-C: Tune saves the state and fit() returns; stop says it was stopped
        grid = tuner.fit()
    seconds = time.perf_counter() - started
    end_invocation(study, invocation, seconds)
    facts = optuna_facts(study)
    time_attr, max_t, _ = plan.fidelity()
    trials = [
        record_from_result(result, max_t, facts, time_attr=time_attr, epochs=plan.budget.max_epochs)
        for result in grid
    ]
    finished = grid.num_terminated + grid.num_errors
    sampling = Sampling.from_dict(
        {**searcher.sampler.counts(), "concurrency": concurrency, "concurrency_reason": reason}
    )
    on_time = searcher.ended_on_time and finished == len(grid)
    ending = Ending(
        kind="time budget" if on_time else "all trials",
        time_budget_s=plan.budget.time_budget or None,
        trials_started=len(grid),
        trials_not_started=plan.budget.num_samples - len(grid) if on_time else 0,
        epoch_seconds=searcher.pace.epoch_seconds(),
    )
    set_details(study, {"sampling": sampling.to_dict(), "ending": ending.to_dict()})
    return SearchRun(
        trials,
        interrupted=stop.requested or finished < len(grid),
        seconds=seconds,
        invocation=invocation,
        sampling=sampling,
        ending=ending,
    )
