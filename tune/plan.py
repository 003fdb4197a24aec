"""One data set's search, planned and checked before Ray starts, and passed whole to what runs it
(`SearchPlan`).

The plan holds the invocation's options (`SearchOptions`, whole), the data, the space with its
budget and strategy as the command line and a resumed study leave them, the resampling, the
references, the warm start, and - once the search has opened it - the Optuna study itself. It builds
the search's sampler, scheduler and their records, and the study record;
`tune.runner.tuner.run_search(plan)` and `tune.publish.publish(plan, run)` take it. No Ray here: a
refused search costs seconds and leaves nothing behind (`CreatedFolders`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig, field_default
from joyful.data.dialogues import DialogueData
from joyful.io import portable_path
from tune.forecast import SearchShape, TimeBudget
from tune.options import SearchOptions
from tune.records import BestConfig, MajorityLevel, StudyRecord
from tune.records import Resampling as ResamplingRecord
from tune.records.store import ResultStore
from tune.space import Budget, Resampling, SearchSpace, Strategy
from tune.stats.candidates import confirm_seed_count
from tune.stats.noise import SplitNoise
from tune.stats.references import ReferenceModels
from tune.study.warm_start import WarmStart

__all__ = ["SearchPlan", "learning_concurrency"]


@dataclass
class SearchPlan:
    """One data set's search, checked (see the module docstring). `existing` is the published best
    config a later confirmation (tune/confirm.py) adds to; `command` that confirmation's command
    line."""

    options: SearchOptions
    name: str  # the search's name: its Ray experiment and its Optuna study
    storage: str  # the checked experiment storage (a folder or a URI)
    store: ResultStore
    dataset: str
    space: SearchSpace
    budget: Budget
    strategy: Strategy
    base_config: JoyfulConfig
    data: DialogueData
    space_fingerprint: str
    optuna_storage: Path | str  # the journal file, or a database URL (--optuna-storage)
    majority: MajorityLevel
    references: ReferenceModels
    noise: SplitNoise
    resampling: Resampling  # resolved: holdout or cv
    resampling_reason: str
    resume: bool = False  # continues an experiment (else it starts now)
    warm_start: WarmStart | None = None
    finished_at: str | None = (
        None  # with --resume: when the search already finished (nothing left to do)
    )
    existing: BestConfig | None = None
    command: str | None = None
    confirmation_name: str = ""
    study: Any = (
        None  # the open Optuna study, once `tune.study.opening.open_study` made or loaded it
    )

    # --- what the search is
    # --------------------------------------------------------------------------------
    @property
    def experiment_root(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    @property
    def experiment(self) -> str:
        return f"{self.experiment_root}/{self.dataset}"

    @property
    def folds(self) -> int:
        """The cross-validation folds every trial runs (0: the dev split)."""
        return self.resampling.folds if self.resampling.cv else 0

    def fidelity(self) -> tuple[str, int, int]:
        """What a trial's budget counts, its maximum and the first rung: epochs on the dev split
        (grace period from the budget), or folds with cross-validation (the first rung after one
        fold)."""
        if self.folds:
            return "fold", self.folds, 1
        return "epoch", self.budget.max_epochs, self.budget.grace_period

    @property
    def confirm_seeds(self) -> int:
        return confirm_seed_count(self.options.confirm_seeds, self.folds, self.options.confirm_top)

    def check_confirmation(self) -> None:
        """Refuse, before any trial runs, a --confirm-seeds the resampling cannot confirm with."""
        confirm_seed_count(self.options.confirm_seeds, self.folds, self.options.confirm_top)

    @property
    def fingerprints(self) -> dict[str, str]:
        """The Optuna study's user attributes: what a warm start must match."""
        return {
            "dataset": self.dataset,
            "data_sha256": self.data.sha256,
            "space_fingerprint": self.space_fingerprint,
            "space_file": portable_path(self.space.path) or "",
        }

    def queued(self) -> list[dict[str, Any]]:
        """The points run before any proposal: the baseline (unless a warm start holds a trial of it
        already: one with the baseline's values, whatever the settings it leaves open), then earlier
        winners."""
        learned = [t.params for t in self.warm_start.trials] if self.warm_start else []
        baseline = self.space.baseline_point()
        ran = any(all(params.get(k) == v for k, v in baseline.items()) for params in learned)
        return ([] if ran else [baseline]) + (self.warm_start.proposed if self.warm_start else [])

    @property
    def time_budget(self) -> TimeBudget | None:
        return TimeBudget(self.budget.time_budget) if self.budget.time_budget > 0 else None

    def confirmation_runs(self, top: int | None = None) -> int:
        """Runs of the confirmation: the baseline, `top` candidates and a proposal (at most), each
        seed and fold."""
        top = self.options.confirm_top if top is None else top
        if top <= 0:
            return 0
        entries = 1 + top + (1 if self.space.proposal else 0)
        # with cross-validation and `ensemble: refit`, one refit per fold after the confirmation
        refits = self.folds if self.folds and self.space.ensemble == "refit" else 0
        return entries * self.confirm_seeds * max(self.folds, 1) + refits

    def reference_runs_to_train(self) -> int:
        """The reference runs the confirmation will train: none when an earlier search of the same
        data and settings ran them (they are reused)."""
        from tune.runner.references import references_file

        if references_file(self).exists():
            return 0
        return 2 * self.space.references.seeds

    def concurrency(self, slots: int) -> tuple[int, str]:
        """Trials at once on `slots` free trial slots, and why: the budget's `max_concurrent`, else
        as many as the slots allow and as still let the sampler learn from finished trials
        (`learning_concurrency`)."""
        if self.budget.max_concurrent:
            return self.budget.max_concurrent, "budget.max_concurrent"
        arms = len(self.space.arms())
        cap = learning_concurrency(self.budget.num_samples, arms, self.startup())
        if self.strategy.sampler == "random" or slots <= cap:
            return max(1, slots), "the free trial slots"
        return cap, (
            f"at most {cap} of {slots} trial slots, so that the sampler's model proposes at least "
            "half of "
            f"the {self.budget.num_samples} trials; raise --num-samples or --time-budget to use "
            "more"
        )

    def startup(self) -> int:
        from tune.sampling import default_startup

        arms = len(self.space.arms())
        return self.strategy.startup_trials or default_startup(
            self.strategy.sampler, self.budget.num_samples / arms
        )

    def shape(self, concurrency: int) -> SearchShape:
        return SearchShape.of(
            trials=self.budget.num_samples,
            epochs=self.budget.max_epochs,
            folds=self.folds,
            concurrency=concurrency,
            grace_period=self.budget.grace_period,
            reduction_factor=self.budget.reduction_factor,
            stops_early=self.strategy.scheduler != "fifo",
            confirmation_runs=self.confirmation_runs(),
            rerun=not self.options.no_rerun,
            reference_runs=self.reference_runs_to_train(),
            reference_epochs=field_default("epochs"),
        )

    # --- what it builds
    # --------------------------------------------------------------------------------------
    def build_scheduler(self) -> Any:
        """The Ray scheduler the strategy names (patient successive halving, plain ASHA, or
        none)."""
        from ray.tune.schedulers import FIFOScheduler

        from tune.runner.scheduler import PatientHalving

        if self.strategy.scheduler == "fifo":
            return FIFOScheduler()
        time_attr, max_t, grace = self.fidelity()
        return PatientHalving(
            time_attr=time_attr,
            max_t=max_t,
            grace_period=grace,
            reduction_factor=self.budget.reduction_factor,
            floor=self.majority.dev_weighted_f1,
            noise=self.noise,
            patient=self.strategy.scheduler == "patient",
        )

    def resampling_record(self) -> ResamplingRecord:
        """How the search scores its trials, as its records keep it."""
        return ResamplingRecord(
            kind=self.resampling.kind,
            folds=self.folds or None,
            reason=self.resampling_reason,
            dev_noise=self.noise.dev_se,
        )

    def study_record(self, run: Any) -> StudyRecord:
        """The record of this search after `run` (a `tune.runner.tuner.SearchRun`)."""
        from tune.study.story import search_times

        return StudyRecord(
            dataset=self.dataset,
            name=self.name,
            metric=self.space.metric,
            mode=self.space.mode,
            space_file=portable_path(self.space.path) or "",
            space_sha256=self.space.sha256,
            space_fingerprint=self.space_fingerprint,
            data_path=portable_path(self.data.source) or "",
            data_sha256=self.data.sha256,
            base_config=self.base_config.to_dict(),
            budget=self.budget,
            strategy=dataclasses.asdict(self.strategy),
            optuna_storage=portable_path(self.optuna_storage) or "",
            optuna_study=self.name,
            trials=run.trials,
            majority=self.majority,
            resampling=self.resampling_record(),
            warm_start=self.warm_start.summary() if self.warm_start else None,
            sampling=run.sampling,
            ending=run.ending,
            **search_times(self.study),
        )


def learning_concurrency(trials: int, arms: int, startup: int) -> int:
    """The most trials at once that still leave at least half of `trials` to the sampler's model.

    Trial k (in the order asked, from 0) is asked when about k - c + 1 trials have finished, a share
    1/arms of them in its own arm; its model proposes once `startup` of them are done, so from k =
    arms x startup + c - 1 on. Half of the trials are model-proposed when c <= trials/2 - arms x
    startup + 1."""
    return max(1, math.floor(trials / 2 - arms * startup + 1))
