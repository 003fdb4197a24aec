"""The two references a search is measured against besides the logistic regression, run once per
data file and reused by every later search of it.

* **defaults, as train.py runs them**: the project's defaults with the space's fixed values, trained
  on the data's own train split for the config's own epoch count, its best dev epoch kept, tested
  once - what a user gets without the search;
* **strong untuned setting**: the same with the space's `references.untuned` values (a learning rate
  and batch size one would try first).

Each runs over `references.seeds` seeds as Ray trials (the confirmation's trainable). Neither
depends on the search, so the runs are kept under `results/references/<dataset>/<key>` - the key is
the data's sha256 and the configs - and a later search of the same data and fixed values takes them
instead of training again: they do not eat its budget.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from joyful.io import atomic_write, atomic_write_json, portable_path
from tune.records import ReferenceRun, RunRecord, Summary
from tune.stats.candidates import reference_configs
from tune.stats.effects import mean_ci95
from tune.stats.runs import ConfigRuns, SeedRun

__all__ = ["REFERENCE_SEED_OFFSET", "ReferenceResult", "reference_runs", "references_file"]

REFERENCE_SEED_OFFSET = (
    2000  # reference seeds: base seed + 2000 + i (never a trial's or a confirmation's)
)
KIND = "joyful-tune reference runs"
ARRAYS = ("dev", "dev_labels", "dev_lengths", "test", "test_labels", "test_lengths")


@dataclass
class ReferenceResult:
    """The reference entries (each with its runs and their probabilities), and whether they were
    trained now or taken from an earlier search."""

    entries: list[ConfigRuns]
    reused: bool
    seconds: float
    file: str

    def records(self) -> list[ReferenceRun]:
        """What a best config records of them."""
        return [
            ReferenceRun(
                label=e.label,
                config=e.config.to_dict(),
                seeds=[r.seed for r in e.runs],
                test_weighted_f1=Summary(**mean_ci95(list(e.values("test_weighted_f1").values()))),
                dev_weighted_f1=Summary(**mean_ci95(list(e.values().values()))),
                best_epochs=[r.best_epoch for r in e.runs if r.best_epoch is not None],
                wall_seconds=round(sum(r.wall_seconds or 0.0 for r in e.runs), 1),
                file=self.file,
                reused=self.reused,
            )
            for e in self.entries
        ]

    def one_run_seconds(self) -> float | None:
        """The median wall time of one run of the defaults: what a user pays without the search."""
        times = [r.wall_seconds for r in self.entries[0].runs if r.wall_seconds]
        return statistics.median(times) if times else None


def reference_runs(plan: Any) -> ReferenceResult:
    """The references of `plan` (a SearchPlan), from the store when an earlier search ran them on
    the same data and configs, else trained now (Ray running) and stored."""
    from joyful.config import JoyfulConfig

    seeds, configs, key = _identity(plan)
    path = plan.store.references_path(plan.dataset, key)
    if path.exists():
        document = json.loads(path.read_text())
        with np.load(path.with_suffix(".npz")) as stored:
            arrays = {k: stored[k] for k in stored.files}
        entries = [
            ConfigRuns(
                entry["label"],
                JoyfulConfig.from_dict(entry["config"], source=str(path)),
                [
                    SeedRun(
                        **RunRecord.from_dict(run).to_dict(),
                        probabilities={name: arrays[f"{i}_{j}_{name}"] for name in ARRAYS}
                        if f"{i}_{j}_test" in arrays
                        else None,
                    )
                    for j, run in enumerate(entry["runs"])
                ],
            )
            for i, entry in enumerate(document["entries"])
        ]
        print(
            f"{plan.dataset}: references taken from {portable_path(path)} (an earlier search's "
            "runs)"
        )
        return ReferenceResult(entries, True, 0.0, portable_path(path) or str(path))
    print(
        f"{plan.dataset}: training the references ({', '.join(label for label, _ in configs)}) "
        "over "
        f"{len(seeds)} seeds, once for this data: later searches reuse them"
    )
    from tune.runner.confirmation import train_plan_runs  # Ray: only when they are trained

    started = time.perf_counter()
    entries = [ConfigRuns(label, config, []) for label, config in configs]
    train_plan_runs(plan, entries, seeds, "references")
    for entry in entries:
        entry.runs.sort(key=lambda r: r.key)
    _store(path, key, plan.data.sha256, entries)
    return ReferenceResult(entries, False, time.perf_counter() - started, portable_path(path) or "")


def references_file(plan: Any) -> Path:
    """Where the references of `plan` are kept (it exists once a search of the data ran them)."""
    return plan.store.references_path(plan.dataset, _identity(plan)[2])


def _identity(plan: Any) -> tuple[list[int], list[tuple[str, Any]], str]:
    """The references' seeds, configs and key."""
    seeds = [
        plan.base_config.seed + REFERENCE_SEED_OFFSET + i
        for i in range(plan.space.references.seeds)
    ]
    configs = reference_configs(plan.base_config, plan.space)
    return seeds, configs, _key(plan.data.sha256, configs, seeds)


def _key(sha256: str, configs: list[tuple[str, Any]], seeds: list[int]) -> str:
    """What identifies reference runs: the data, each config (threads aside) and the seeds."""
    canonical = json.dumps(
        {
            "data": sha256,
            "seeds": seeds,
            "configs": [
                [label, config.replace(num_threads=0).to_dict()] for label, config in configs
            ],
        },
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _store(path: Any, key: str, sha256: str, entries: list[ConfigRuns]) -> None:
    """The runs' records (JSON) and probabilities (npz), the npz first: a JSON file is only ever
    beside complete probabilities."""
    arrays = {
        f"{i}_{j}_{name}": np.asarray(run.probabilities[name])
        for i, entry in enumerate(entries)
        for j, run in enumerate(entry.runs)
        if run.probabilities is not None
        for name in ARRAYS
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(
        path.with_suffix(".npz"), lambda out: np.savez_compressed(out, **arrays), binary=True
    )
    atomic_write_json(
        path,
        {
            "kind": KIND,
            "key": key,
            "data_sha256": sha256,
            "entries": [
                {
                    "label": e.label,
                    "config": e.config.to_dict(),
                    "runs": [r.to_record().to_dict() for r in e.runs],
                }
                for e in entries
            ],
        },
    )
