"""The part of a search that talks to Ray: the Tuner (Optuna TPE searcher in the study's storage, ASHA),
its progress line, resuming, and turning Ray's results into `TrialRecord`s.

The best epoch of a trial comes from its per-epoch history (Ray's `Result.metrics` holds only the
*last* report, so reading the best from it would be wrong).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from joyful.errors import UserError
from tune.common import finite
from tune.plan import DatasetPlan
from tune.records import TrialRecord, classify, stop_reason
from tune.runner.cluster import GracefulStop
from tune.runner.lost_workers import treat_lost_workers_as_trial_failures
from tune.study.storage import create_study, load_study, open_storage
from tune.study.story import creation_attrs, creation_details, set_details, trial_times
from tune.tracking import Tracking, tracking_callbacks

# What the scheduler compares, TPE learns from and the ranking uses (tune/runner/trainable.py reports it).
SEARCH_SCORE = "search_score"

__all__ = ["SEARCH_SCORE", "fidelity", "ProgressLine", "SearchRun", "build_tuner", "clock", "experiment_path", "experiments_to_resume",
           "record_from_result", "run_search", "sampler_seed"]


def experiment_path(storage: str, name: str, dataset: str) -> str:
    return f"{storage.rstrip('/')}/{name}/{dataset}"


def experiments_to_resume(datasets: list[str], storage: str, name: str) -> dict[str, bool]:
    """With --resume: which data sets continue their experiment (True) and which start now (False).

    A search runs its data sets in order and an interruption stops it, so the experiments that
    exist are the first data sets' ones; the later ones had not started and start now. Anything
    else (none exists, or a gap) means a wrong --name, --storage-path or --dataset list.
    """
    exists = [tune.Tuner.can_restore(experiment_path(storage, name, d)) for d in datasets]
    if not any(exists):
        raise UserError(f"--resume: no experiment to resume at {experiment_path(storage, name, datasets[0])}; "
                        "check --name and --storage-path")
    started = exists.index(False) if False in exists else len(exists)
    if any(exists[started:]):
        later = datasets[started + exists[started:].index(True)]
        raise UserError(f"--resume: {later}'s experiment exists but {datasets[started]}'s, earlier in the --dataset "
                        "order, does not; list the data sets in the order of the interrupted search")
    return dict(zip(datasets, exists, strict=True))


# --- progress ------------------------------------------------------------------------------------


HEARTBEAT_SECONDS = 60.0


class ProgressLine(tune.Callback):
    """One line per finished trial, also under --quiet: done / running / stopped, the best dev score so far,
    elapsed and estimated remaining time; and, when no line came for `heartbeat_seconds` (a cross-validated trial
    on real data runs for minutes), one saying where each running trial is."""

    def __init__(self, dataset: str, num_samples: int, max_budget: int, time_attr: str = "epoch",
                 out: Any = None, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.dataset, self.num_samples, self.max_budget, self.time_attr = dataset, num_samples, max_budget, time_attr
        self.out, self.heartbeat_seconds = out, heartbeat_seconds
        self.started = self.last_line = time.monotonic()

    def __setstate__(self, state: dict) -> None:
        # Tune pickles its callbacks with the experiment and a resume unpickles them into this process, where the
        # monotonic clock of the interrupted one means nothing (and an older version may lack a field): times restart
        # with this invocation.
        self.__dict__.update(state)
        self.heartbeat_seconds = state.get("heartbeat_seconds", HEARTBEAT_SECONDS)
        self.started = self.last_line = time.monotonic()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now - self.last_line < self.heartbeat_seconds:
            return
        self.last_line = now
        finished = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        unit = "folds" if self.time_attr == "fold" else "epochs"
        where = ", ".join(f"{t.trial_id} {int((t.last_result or {}).get(self.time_attr, 0))}/{self.max_budget} {unit}"
                          for t in trials if t.status == "RUNNING")
        print(f"[{self.dataset}] {finished}/{self.num_samples} trials done; running: {where or 'none'}; "
              f"{self._best([t for t in trials if t.status == 'TERMINATED'], 'no trial finished yet')}; "
              f"{clock(now - self.started)} elapsed", file=self.out or sys.stdout, flush=True)

    def _best(self, finished: list, none: str) -> str:
        """The best score among `finished` trials, read from the trials themselves so that it survives a resume."""
        scored = [(float(s), t.trial_id) for t in finished
                  if isinstance(s := (t.last_result or {}).get(SEARCH_SCORE), (int, float)) and math.isfinite(s)]
        if not scored:
            return none
        score, trial_id = max(scored)
        return f"best {'mean over folds' if self.time_attr == 'fold' else 'dev wF1'} {score:.4f} ({trial_id})"

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._line(trials, trial, errored=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        done = (trial.last_result or {}).get(self.time_attr, 0)
        print(f"[{self.dataset}] trial {trial.trial_id} failed after {self.time_attr} {done}; retrying it from its last "
              "checkpoint", file=self.out or sys.stdout, flush=True)

    def _line(self, trials: list, trial: Any, errored: bool) -> None:
        # Tune calls back before it sets the trial's own status, so `trial` counts as finished here.
        others = [t for t in trials if t is not trial]
        finished = [(t, t.status == "ERROR") for t in others if t.status in ("TERMINATED", "ERROR")]
        finished.append((trial, errored))
        running = sum(t.status == "RUNNING" for t in others)
        failed = sum(error or bool((t.last_result or {}).get("non_finite")) for t, error in finished)
        stopped = sum(not error and not (t.last_result or {}).get("non_finite")
                      and int((t.last_result or {}).get(self.time_attr, 0)) < self.max_budget for t, error in finished)
        elapsed = time.monotonic() - self.started
        remaining = self.num_samples - len(finished)
        # Finished trials so far set the pace; ASHA stops more trials early than late, so it is a rough guide.
        eta = elapsed / len(finished) * remaining if finished and remaining > 0 else 0.0
        best = self._best([t for t, error in finished if not error], "no score yet")
        print(f"[{self.dataset}] {len(finished)}/{self.num_samples} trials done ({stopped} stopped early, "
              f"{failed} failed), {running} running; {best}; {clock(elapsed)} elapsed, "
              f"~{clock(eta)} left", file=self.out or sys.stdout, flush=True)
        self.last_line = time.monotonic()


def clock(seconds: float) -> str:
    """`seconds` as a progress line shows it: 4m05s, 1h12m."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


# --- the Tuner -----------------------------------------------------------------------------------


def build_tuner(plan: DatasetPlan, storage: str, name: str, resume: bool, *, seed: int, max_failures: int,
                quiet: bool, tracking: Tracking | None = None) -> Any:
    """The Tuner of one data set's search `name` (restored with `resume`): TPE seeded with `seed` in the plan's
    Optuna storage, ASHA; a failing trial is retried `max_failures` times (-1: forever); `quiet` leaves out Ray's
    progress tables; `tracking` names the trackers to log to (None: none)."""
    import optuna
    from ray.tune.search import ConcurrencyLimiter

    # Optuna and torch (through the trainable): only when a Tuner is built
    from tune.runner.optuna_searcher import TruthfulOptunaSearch
    from tune.runner.scheduler import PatientHalving

    budget = plan.budget
    trainable = tune.with_resources(_trainable(plan), {"cpu": budget.cpus_per_trial, "gpu": budget.gpus_per_trial})
    experiment = experiment_path(storage, name, plan.dataset)
    if resume:
        # The searcher comes back from the experiment with its study, whose trials are in the journal.
        return tune.Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=True)
    concurrency = budget.max_concurrent or max(1, int(_cluster_cpus() // budget.cpus_per_trial))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_storage = open_storage(plan.optuna_storage)
    tpe_seed = sampler_seed(seed, len(plan.warm_start.trials) if plan.warm_start else 0)
    study = create_study(study_storage, name, plan.space.mode, creation_attrs(plan.fingerprints, tpe_seed))
    set_details(study, creation_details(budget, plan.resampling, plan.resampling_reason))
    if plan.warm_start:  # learned from, never re-run; TPE's start-up phase counts them too
        study.add_trials(plan.warm_start.trials)
    # TPE's random start-up phase is sized to the concurrency (ray#52535): with more trials in
    # flight than start-up trials, TPE would otherwise model from almost nothing.
    sampler = optuna.samplers.TPESampler(seed=tpe_seed, n_startup_trials=max(10, concurrency))
    # With a define-by-run space Ray never forwards TuneConfig's metric/mode to the searcher
    # (OptunaSearch.set_search_properties returns early), so it gets them here as well.
    time_attr, max_t, grace = fidelity(plan)
    searcher = TruthfulOptunaSearch(space=plan.space.define_by_run(), metric=SEARCH_SCORE, mode=plan.space.mode,
                                    points_to_evaluate=plan.points_to_evaluate() or None, sampler=sampler,
                                    storage=study_storage, study_name=name, max_budget=max_t, time_attr=time_attr)
    if budget.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=budget.max_concurrent)
    scheduler = PatientHalving(time_attr=time_attr, max_t=max_t, grace_period=grace,
                               reduction_factor=budget.reduction_factor, floor=plan.majority.dev_weighted_f1,
                               noise=plan.noise)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=SEARCH_SCORE, mode=plan.space.mode, search_alg=searcher,
                                    scheduler=scheduler, num_samples=budget.num_samples,
                                    # Reused actors let a stopped trial's thread unwind before the next starts;
                                    # killing the actor mid-unwind aborted the process (noisy, harmless)
                                    # and actor start-up was most of the per-trial overhead.
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=plan.dataset, storage_path=f"{storage.rstrip('/')}/{name}",
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[ProgressLine(plan.dataset, budget.num_samples, max_t, time_attr),
                       *(tracking_callbacks(tracking, plan, name) if tracking else [])],
            verbose=0 if quiet else 1),
    )


def fidelity(plan: DatasetPlan) -> tuple[str, int, int]:
    """What a trial's budget counts, its maximum and the first rung: epochs on the dev split (grace period from the
    budget), or folds with cross-validation (the first rung after one fold)."""
    if plan.resampling.cv:
        return "fold", plan.resampling.folds, 1
    return "epoch", plan.budget.max_epochs, plan.budget.grace_period


def _trainable(plan: DatasetPlan) -> Any:
    from tune.runner.trainable import train_cv_trial, train_trial  # torch: only in a search

    if plan.resampling.cv:
        return tune.with_parameters(train_cv_trial, base_config=plan.base_config.to_dict(), data=plan.data,
                                    folds=plan.resampling.folds)
    return tune.with_parameters(train_trial, base_config=plan.base_config.to_dict(), data=plan.data,
                                checkpoint_every=plan.budget.checkpoint_every)


def sampler_seed(seed: int, warm_start_trials: int) -> int:
    """The TPE sampler's seed: `--seed`, or for a search warm-started from `warm_start_trials` earlier trials a
    seed derived from both. With the `--seed` alone, a warm-started search would replay the earlier search's
    random start-up draws and re-run its configurations (issue 20). A search without a warm start keeps its
    seed, so a seed gives the same search; a warm start from the same trials and seed does too.
    """
    return seed + 1_000_003 * warm_start_trials


def _cluster_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


@dataclass
class SearchRun:
    """What `Tuner.fit` left: the trials, and whether the user stopped it before the end."""

    trials: list[TrialRecord]
    interrupted: bool
    experiment: str
    seconds: float
    invocation: int | None = None  # what `on_start` returned (the study's record of this invocation)


def run_search(plan: DatasetPlan, storage: str, name: str, resume: bool, *, seed: int, max_failures: int,
               quiet: bool, tracking: Tracking | None = None, on_start: Callable[[], Any] | None = None) -> SearchRun:
    """Run (or resume) one data set's search to its end or until the user stops it; `build_tuner` says what the
    arguments mean. `on_start` is called once the Optuna study exists, before the first trial."""
    treat_lost_workers_as_trial_failures()
    tuner = build_tuner(plan, storage, name, resume, seed=seed, max_failures=max_failures, quiet=quiet,
                        tracking=tracking)
    invocation = on_start() if on_start is not None else None
    started = time.perf_counter()
    experiment = experiment_path(storage, name, plan.dataset)
    with GracefulStop() as stop:  # Ctrl-C: Tune saves the state and fit() returns; stop says it was stopped
        grid = tuner.fit()
    facts = _optuna_facts(plan, name)
    time_attr, max_t, _ = fidelity(plan)
    trials = [record_from_result(result, max_t, facts, time_attr=time_attr, epochs=plan.budget.max_epochs)
              for result in grid]
    finished = grid.num_terminated + grid.num_errors
    return SearchRun(trials, stop.requested or finished < len(grid), experiment, time.perf_counter() - started,
                     invocation)


def _optuna_facts(plan: DatasetPlan, name: str) -> dict[str, dict[str, Any]]:
    """Ray trial id -> its Optuna trial number (the order the searcher sampled them) and times, from the study."""
    try:
        study = load_study(plan.optuna_storage, name)
    except UserError:
        return {}
    times = trial_times(study)
    return {t.user_attrs["ray_trial_id"]: {"optuna_number": t.number, "started_at": times[t.user_attrs["ray_trial_id"]][0],
                                           "ended_at": times[t.user_attrs["ray_trial_id"]][1]}
            for t in study.get_trials(deepcopy=False) if "ray_trial_id" in t.user_attrs}


def record_from_result(result: Any, max_budget: int, optuna_facts: dict[str, dict[str, Any]] | None = None, *,
                       time_attr: str = "epoch", epochs: int | None = None) -> TrialRecord:
    """A TrialRecord from one `ray.tune.Result` (with what the Optuna study knows of it: number and times).
    `max_budget` counts `time_attr` (epochs, or folds with cross-validation, whose folds ran `epochs` each)."""
    last = dict(result.metrics or {})
    trial_id = str(last.get("trial_id") or Path(result.path).name)
    frame = result.metrics_dataframe
    error = str(result.error).strip().splitlines()[-1][:300] if result.error else ""
    outcome = classify(last, bool(result.error), max_budget, time_attr)
    reason = stop_reason(outcome, last.get(time_attr), max_budget, str(last.get("stop_reason") or ""), unit=time_attr)
    resident = [float(v) for v in frame["resident_mb"] if finite(v)] if frame is not None and "resident_mb" in frame \
        else []
    common = dict(trial_id=trial_id, params=dict(result.config or {}), outcome=outcome, stop_reason=reason,
                  error=error, precision=last.get("precision"), peak_resident_mb=max(resident) if resident else None,
                  **(optuna_facts or {}).get(trial_id, {}))
    if time_attr == "fold":
        return _cv_record(last, epochs or 0, common)
    curve: list[dict[str, float]] = []
    if frame is not None and len(frame) and "epoch" in frame:
        for row in frame.to_dict("records"):
            if row.get("non_finite") is True or not finite(row.get("dev_weighted_f1")):
                continue
            point = {"epoch": int(row["epoch"]), "dev_weighted_f1": float(row["dev_weighted_f1"]),
                     "dev_loss": float(row.get("dev_loss", math.nan)),
                     "train_loss": float(row.get("train_loss/total", math.nan))}
            if finite(row.get("raw_dev_weighted_f1")):  # with weight averaging: the trained weights' own score
                point["raw_dev_weighted_f1"] = float(row["raw_dev_weighted_f1"])
            curve.append(point)
    # A retried trial re-reports epochs after its checkpoint: keep the latest value per epoch.
    curve = sorted({point["epoch"]: point for point in curve}.values(), key=lambda point: point["epoch"])
    best_f1, best_epoch = None, None
    for point in curve:  # strictly greater, as the Coach selects: the earliest epoch wins ties
        if best_f1 is None or point["dev_weighted_f1"] > best_f1:
            best_f1, best_epoch = point["dev_weighted_f1"], point["epoch"]
    return TrialRecord(**common, epochs_run=max((p["epoch"] for p in curve), default=int(last.get("epoch", 0) or 0)),
                       best_dev_weighted_f1=best_f1, best_epoch=best_epoch, curve=curve)


def _cv_record(last: dict[str, Any], epochs: int, common: dict[str, Any]) -> TrialRecord:
    """A cross-validated trial: its curve is the mean over the folds it ran, its score that curve's best epoch."""
    mean = last.get("curve") or []
    folds = int(last.get("fold") or 0) if mean else 0
    score = last.get("search_score")
    return TrialRecord(**common, epochs_run=epochs if mean else 0, folds_run=folds,
                       best_dev_weighted_f1=float(score) if mean and finite(score) else None,
                       best_epoch=int(last["best_epoch"]) if mean else None,
                       curve=[{"epoch": e, "dev_weighted_f1": float(v)} for e, v in enumerate(mean, start=1)],
                       fold_scores=[float(v) for v in last.get("fold_scores") or []])
