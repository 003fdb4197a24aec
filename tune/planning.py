"""Planning one data set's search before Ray starts: the checks that need no torch
(`check_dataset`), then the plan itself (`plan_dataset`: data, references, noise, resampling, the
budget and strategy a resumed search keeps, the warm start), and the folders a refused search must
not leave behind (`CreatedFolders`). A refused search costs seconds and leaves nothing behind."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig
from joyful.datasets import check_dataset_name, resolve_dataset
from joyful.errors import UserError
from joyful.io import check_data_file, portable_path
from tune.options import SearchOptions
from tune.plan import SearchPlan
from tune.records.store import ResultStore
from tune.space import Budget, SearchSpace, Strategy, resolve_space

__all__ = [
    "CreatedFolders",
    "check_dataset",
    "plan_dataset",
    "resolve_settings",
    "resumed_settings",
]


def resolve_settings(space: SearchSpace, options: SearchOptions) -> tuple[Budget, Strategy]:
    """The space file's budget and strategy with the command line's flags, checked (errors name the
    flag)."""
    budget, strategy = space.budget, space.strategy
    if given := options.section_overrides("budget"):
        budget = dataclasses.replace(budget, **given).check(flags=True)
    if given := options.section_overrides("strategy"):
        strategy = dataclasses.replace(strategy, **given).check(flags=True)
    return budget, strategy


def check_dataset(
    dataset: str,
    data_path: str | None,
    space_path: str | None,
    options: SearchOptions,
    *,
    announce: bool = True,
) -> tuple[SearchSpace, Budget, Strategy]:
    """What can be checked of one data set's search without torch: its name, spec, space file,
    budget, strategy and data path (a mistake there is one line within a second). `announce` prints
    which space file is used when it is not the data set's own."""
    check_dataset_name(dataset)
    resolve_dataset(dataset, options.dataset_spec)
    space, note = resolve_space(dataset, space_path)
    if note and announce:
        print(f"{dataset}: {note}")
    budget, strategy = resolve_settings(space, options)
    if data_path:
        check_data_file(Path(data_path))
    return space, budget, strategy


def plan_dataset(
    dataset: str,
    data_path: str | None,
    space_path: str | None,
    options: SearchOptions,
    *,
    name: str,
    storage: str,
    store: ResultStore,
    resume: bool = False,
    checked: bool = False,
) -> SearchPlan:
    """One data set's search, checked: `name` is the search's (its Optuna study's) name, `storage`
    its checked experiment storage; `resume` continues the study `name` with its stored budget and
    strategy; `checked`: `check_dataset` ran already and said which space file it uses."""
    from joyful.run import load_data  # torch: only once the arguments are fine
    from tune.stats.noise import split_noise
    from tune.stats.references import majority_level, reference_models
    from tune.study.storage import load_study, space_fingerprint, study_exists
    from tune.study.story import finished, stored_resampling
    from tune.study.warm_start import plan_warm_start

    space, budget, strategy = check_dataset(
        dataset, data_path, space_path, options, announce=not checked
    )
    values = {**JoyfulConfig(dataset=dataset).to_dict(), **space.fixed, "dataset": dataset}
    if data_path:
        values["data"] = portable_path(
            data_path
        )  # as result files record it; errors name the path as given
    base = JoyfulConfig.from_dict(values, source=f"search space {space.path}")
    where = base.replace(data=str(Path(data_path).resolve())) if data_path else base
    data = load_data(where, options.dataset_spec, check_modalities="modalities" in space.fixed)
    if "modalities" not in space.fixed:  # the space leaves them open: every modality the file has
        base = base.replace(modalities="".join(m for m in "atv" if m in data.modality_dims))
    if not base.data:
        base = base.replace(data=portable_path(data.source))
    fingerprint = space_fingerprint(space)
    optuna_storage = options.optuna_storage or store.optuna_storage_path(
        dataset, data.sha256, fingerprint
    )
    stored = (
        load_study(optuna_storage, name) if resume and study_exists(optuna_storage, name) else None
    )
    finished_at = None
    if stored is not None:
        budget, strategy = resumed_settings(stored, name, options, budget, strategy)
        finished_at = finished(stored)
    base = base.replace(epochs=budget.max_epochs, num_threads=max(1, int(budget.cpus_per_trial)))
    references = reference_models(data, base.modalities)
    dev_noise = split_noise(data, references.dev["logistic regression"])
    resampling, reason = space.resampling.resolve(dev_noise.dev_se)
    if stored is not None and (kept := stored_resampling(stored)):
        # The search goes on as it started; its record keeps the reason given then.
        resampling, reason = (
            kept[0],
            kept[1] or f"resampling: {kept[0].kind} (as the search started)",
        )
    print(f"{dataset}: {reason}")
    plan = SearchPlan(
        options=options,
        name=name,
        storage=storage,
        store=store,
        dataset=dataset,
        space=space,
        budget=budget,
        strategy=strategy,
        base_config=base,
        data=data,
        space_fingerprint=fingerprint,
        optuna_storage=optuna_storage,
        majority=majority_level(data, pooled=resampling.cv),
        references=references,
        noise=dataclasses.replace(dev_noise, folds=resampling.folds if resampling.cv else 0),
        resampling=resampling,
        resampling_reason=reason,
        resume=resume,
        finished_at=finished_at,
        confirmation_name=f"{dataset}-confirm",
    )
    if options.warm_start:
        plan.warm_start = plan_warm_start(
            options.warm_start,
            dataset=dataset,
            space=space,
            fingerprints=plan.fingerprints,
            optuna_storage=optuna_storage,
            store=store,
            exclude=name,
        )
    return plan


def resumed_settings(
    study: Any, name: str, options: SearchOptions, budget: Budget, strategy: Strategy
) -> tuple[Budget, Strategy]:
    """The budget and strategy the resumed search `name` continues with: those it started with
    (stored in its Optuna study), never the space file's or new flags' - a flag that differs from
    them is refused."""
    from tune.study.story import stored_budget, stored_strategy

    kept_budget, kept_strategy = stored_budget(study) or budget, stored_strategy(study) or strategy
    conflicts = [
        f"--{flag.replace('_', '-')} {value} (it ran with {getattr(kept, flag)})"
        for kept, section in ((kept_budget, "budget"), (kept_strategy, "strategy"))
        for flag, value in options.section_overrides(section).items()
        if value != getattr(kept, flag)
    ]
    if conflicts:
        raise UserError(
            f"--resume continues search {name!r} with the budget and strategy it started with; "
            "drop " + ", ".join(conflicts)
        )
    return kept_budget, kept_strategy


class CreatedFolders:
    """The storage and results folders a search is about to create: removed again, when they hold no
    file, if the search is refused before any trial ran (a refused search leaves nothing behind)."""

    def __init__(self, *paths: str) -> None:
        self.new = [
            self._topmost_missing(Path(p).resolve())
            for p in paths
            if "://" not in p and not Path(p).exists()
        ]

    @staticmethod
    def _topmost_missing(path: Path) -> Path:
        """The highest folder of `path` that does not exist yet (mkdir(parents=True) creates it
        too)."""
        while not path.parent.exists():
            path = path.parent
        return path

    def remove_empty(self) -> None:
        for root in self.new:
            if root.is_dir() and not any(path.is_file() for path in root.rglob("*")):
                shutil.rmtree(root, ignore_errors=True)
