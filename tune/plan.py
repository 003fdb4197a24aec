"""Everything a search checks before Ray starts: data, space, budget, where its records go, and its warm start.

No Ray here: a refused search costs seconds and leaves nothing behind (`CreatedFolders`).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.datasets import check_dataset_name, resolve_dataset
from joyful.errors import UserError
from joyful.io import check_data_file, portable_path
from tune.records import MajorityLevel, WarmStartSummary
from tune.records import Resampling as ResamplingRecord
from tune.records.store import ResultStore
from tune.space import Budget, Resampling, SearchSpace, resolve_space
from tune.stats.noise import SplitNoise, split_noise
from tune.stats.references import ReferenceModels, majority_level, reference_models
from tune.study.storage import (
    check_same_search,
    is_url,
    load_study,
    open_storage,
    space_fingerprint,
    study_exists,
    warm_start_trials,
)
from tune.study.story import finished, stored_budget, stored_resampling

__all__ = ["CreatedFolders", "DatasetPlan", "WarmStart", "check_dataset", "plan_dataset", "resolve_budget", "resumed_budget"]


@dataclass
class WarmStart:
    """Where a warm-started search learns from: earlier trials (not re-run) and earlier winners (run first)."""

    storage: Path
    studies: list[str]
    trials: list[Any]  # optuna FrozenTrials, COMPLETE or PRUNED, marked `warm_start_from`
    proposed: list[dict[str, Any]]  # earlier winners of the data set, as points of this space

    def summary(self) -> WarmStartSummary:
        """What the study record keeps of it (the trials themselves live in the Optuna storage)."""
        return WarmStartSummary(storage=portable_path(self.storage), studies=list(self.studies),
                                trials=len(self.trials), proposed=list(self.proposed))


@dataclass
class DatasetPlan:
    """One data set's search, checked: its space, budget, base config, data and Optuna storage."""

    dataset: str
    space: SearchSpace
    budget: Budget
    base_config: JoyfulConfig
    data: DialogueData
    space_fingerprint: str
    optuna_storage: Path | str  # the journal file, or a database URL (--optuna-storage)
    majority: MajorityLevel
    warm_start: WarmStart | None = None
    finished_at: str | None = None  # with --resume: when the search already finished (nothing left to do)
    references: ReferenceModels | None = None  # always-majority and the logistic regression, fitted once
    noise: SplitNoise | None = None  # the standard error of the search's score (tune/stats/noise.py)
    resampling: Resampling = field(default_factory=lambda: Resampling("holdout"))  # resolved: holdout or cv
    resampling_reason: str = ""

    def resampling_record(self) -> ResamplingRecord:
        """How the search scores its trials, as its records keep it."""
        return ResamplingRecord(kind=self.resampling.kind, folds=self.resampling.folds if self.resampling.cv else None,
                                reason=self.resampling_reason, dev_noise=self.noise.dev_se if self.noise else None)

    @property
    def fingerprints(self) -> dict[str, str]:
        """The Optuna study's user attributes: what a warm start must match."""
        return {"dataset": self.dataset, "data_sha256": self.data.sha256, "space_fingerprint": self.space_fingerprint,
                "space_file": portable_path(self.space.path) or ""}

    def points_to_evaluate(self) -> list[dict[str, Any]]:
        """The baseline first (unless a warm start holds a trial of it already: one with the baseline's values,
        whatever the settings it leaves open), then earlier winners, then one partial point per remaining trial
        that spreads the search evenly over the scientific values (`SearchSpace.stratified_points`)."""
        learned = [t.params for t in self.warm_start.trials] if self.warm_start else []
        baseline = self.space.baseline_point()
        ran = any(all(params.get(k) == v for k, v in baseline.items()) for params in learned)
        first = ([] if ran else [baseline]) + (self.warm_start.proposed if self.warm_start else [])
        return first + self.space.stratified_points(self.budget.num_samples - len(first), first)


def resolve_budget(space: SearchSpace, overrides: dict[str, Any]) -> Budget:
    """The space file's budget with the command line's overrides (by Budget field), checked (errors name the flag)."""
    if not overrides:
        return space.budget
    return dataclasses.replace(space.budget, **overrides).check(flags=True)


def check_dataset(dataset: str, data_path: str | None, space_path: str | None, *, dataset_spec: str | None = None,
                  budget_overrides: dict[str, Any] | None = None, announce: bool = True) -> tuple[SearchSpace, Budget]:
    """What can be checked of one data set's search without torch: its name, spec, space file, budget and data
    path (so a mistake there is one line within a second). Returns its space and budget; `announce` prints which
    space file is used when it is not the data set's own."""
    check_dataset_name(dataset)
    resolve_dataset(dataset, dataset_spec)
    space, note = resolve_space(dataset, space_path)
    if note and announce:
        print(f"{dataset}: {note}")
    budget = resolve_budget(space, budget_overrides or {})
    if data_path:
        check_data_file(Path(data_path))
    return space, budget


def plan_dataset(dataset: str, data_path: str | None, space_path: str | None, store: ResultStore, *, name: str,
                 dataset_spec: str | None = None, optuna_storage: str | None = None,
                 budget_overrides: dict[str, Any] | None = None, resume: bool = False,
                 warm_start: str | None = None, checked: bool = False) -> DatasetPlan:
    """One data set's search, checked. `name` is the search's (its Optuna study's) name; `optuna_storage` a
    database URL (None: the journal beside the results); `budget_overrides` the budget flags given (by Budget
    field); `resume` continues the study `name` with its stored budget; `warm_start` is "auto" or an Optuna
    journal file or URL to learn from (None: no warm start); `checked`: `check_dataset` ran already and said
    which space file it uses."""
    from joyful.run import load_data  # torch: only once the arguments are fine

    space, budget = check_dataset(dataset, data_path, space_path, dataset_spec=dataset_spec,
                                  budget_overrides=budget_overrides, announce=not checked)
    values = {**JoyfulConfig(dataset=dataset).to_dict(), **space.fixed, "dataset": dataset}
    if data_path:
        values["data"] = portable_path(data_path)  # as result files record it; errors name the path as given
    base = JoyfulConfig.from_dict(values, source=f"search space {space.path}")
    where = base.replace(data=str(Path(data_path).resolve())) if data_path else base
    data = load_data(where, dataset_spec, check_modalities="modalities" in space.fixed)
    if "modalities" not in space.fixed:  # the space leaves them open: every modality the file has
        base = base.replace(modalities="".join(m for m in "atv" if m in data.modality_dims))
    if not base.data:
        base = base.replace(data=portable_path(data.source))
    fingerprint = space_fingerprint(space)
    storage = optuna_storage or store.optuna_storage_path(dataset, data.sha256, fingerprint)
    overrides = budget_overrides or {}
    finished_at = None
    if resume and study_exists(storage, name):
        budget, finished_at = resumed_budget(load_study(storage, name), name, overrides, budget)
    base = base.replace(epochs=budget.max_epochs, num_threads=max(1, int(budget.cpus_per_trial)))
    references = reference_models(data, base.modalities)
    dev_noise = split_noise(data, references.dev["logistic regression"])
    resampling, reason = space.resampling.resolve(dev_noise.dev_se)
    if resume and study_exists(storage, name) and (stored := stored_resampling(load_study(storage, name))):
        # The search goes on as it started; its record keeps the reason given then.
        resampling, reason = stored[0], stored[1] or f"resampling: {stored[0].kind} (as the search started)"
    print(f"{dataset}: {reason}")
    plan = DatasetPlan(dataset, space, budget, base, data, fingerprint, storage,
                       majority_level(data, pooled=resampling.cv), finished_at=finished_at, references=references,
                       noise=dataclasses.replace(dev_noise, folds=resampling.folds if resampling.cv else 0),
                       resampling=resampling, resampling_reason=reason)
    if warm_start:
        plan.warm_start = plan_warm_start(plan, warm_start, store, exclude=name)
    return plan


def resumed_budget(study: Any, name: str, overrides: dict[str, Any], default: Budget) -> tuple[Budget, str | None]:
    """The budget the resumed search `name` continues with: the one it started with (stored in its Optuna study),
    never the space file's or new flags' - a flag (`overrides`, by Budget field) that differs from it is refused.
    Also when the search finished."""
    stored = stored_budget(study)
    if stored is None:  # a study written before the budget was stored: the flags, as before
        return default, finished(study)
    conflicts = [f"--{flag.replace('_', '-')} {value} (it ran with {getattr(stored, flag)})"
                 for flag, value in overrides.items() if value != getattr(stored, flag)]
    if conflicts:
        raise UserError(f"--resume continues search {name!r} with the budget it started with; drop "
                        + ", ".join(conflicts))
    return stored, finished(study)


def plan_warm_start(plan: DatasetPlan, source: str, store: ResultStore, exclude: str | None) -> WarmStart:
    """The earlier trials and winners a warm start uses, or UserError saying why there are none to use.

    `source` is "auto" (the stored searches of this data and space: the journal beside the results, or the
    --optuna-storage database) or an Optuna journal file or database URL.
    """
    storage: Path | str = plan.optuna_storage if source == "auto" else source
    if not is_url(storage):
        storage = Path(storage)
        if not storage.is_file():
            raise UserError(_no_earlier_search(plan, store) if source == "auto"
                            else f"--warm-start {source}: no such Optuna journal file")
    check_same_search(storage, plan.fingerprints)
    trials, studies = warm_start_trials(open_storage(storage), exclude=exclude or "",
                                        match=plan.fingerprints if is_url(storage) else None)
    if not trials:
        raise UserError(f"--warm-start: {storage} holds no completed or ASHA-stopped trial to start from")
    learned = [t.params for t in trials]
    proposed: list[dict[str, Any]] = []
    for config in _earlier_winners(plan.dataset, store):
        point = plan.space.point_from(config)
        if point is not None and point not in learned and point not in proposed \
                and point != plan.space.baseline_point():
            proposed.append(point)
    return WarmStart(storage, studies, trials, proposed)


def _earlier_winners(dataset: str, store: ResultStore) -> list[dict[str, Any]]:
    """Configs of the data set's published and confirmed winners, the latest first (any data, any space)."""
    configs = [record["config"] for record in reversed(store.history(dataset))
               if record.get("outcome") in ("published", "confirmed") and isinstance(record.get("config"), dict)]
    return configs


def _no_earlier_search(plan: DatasetPlan, store: ResultStore) -> str:
    others = store.optuna_storages(plan.dataset)
    if not others:
        return (f"--warm-start: no earlier search of {plan.dataset} in {store.studies_dir()} to start from; "
                "run one without --warm-start first")
    data_tag, space_tag = f"data-{plan.data.sha256[:12]}", f"space-{plan.space_fingerprint[:12]}"
    reasons = []
    for path in others:
        differs = [what for tag, what in ((data_tag, "other data"), (space_tag, "another search space"))
                   if tag not in path.name]
        reasons.append(f"{' and '.join(differs)} ({path.name})")
    return (f"--warm-start: no earlier search of {plan.dataset} on this data and space ({data_tag}, {space_tag}); "
            f"the stored ones were searched on {'; '.join(reasons)}, and their trials would mislead TPE")


class CreatedFolders:
    """The storage and results folders a search is about to create: removed again, when they hold no file,
    if the search is refused before any trial ran (a refused search leaves nothing behind)."""

    def __init__(self, *paths: str) -> None:
        self.new = [self._topmost_missing(Path(p).resolve()) for p in paths if "://" not in p and not Path(p).exists()]

    @staticmethod
    def _topmost_missing(path: Path) -> Path:
        """The highest folder of `path` that does not exist yet (mkdir(parents=True) creates it too)."""
        while not path.parent.exists():
            path = path.parent
        return path

    def remove_empty(self) -> None:
        for root in self.new:
            if root.is_dir() and not any(path.is_file() for path in root.rglob("*")):
                shutil.rmtree(root, ignore_errors=True)
