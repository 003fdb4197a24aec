"""Run a real search through the search's machinery (tune/plan.py plan_dataset + tune/runner/tuner.py build_tuner)
and read it back.

The benchmarks never re-implement the search: they plan the data set and build the same Tuner (the arm
searcher, the scheduler, the `train_trial` trainable) through the search's own functions and only choose
budgets and the strategy (`--sampler`, `--scheduler`, as a user would).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import REPO
from tune.runner.trial_names import trial_number

DATASET = "synthetic"
SHIPPED_SPACE = REPO / "search_spaces" / "synthetic.yaml"
SPACES = Path(__file__).resolve().parent / "spaces"


@dataclass
class SearchRun:
    """One finished search: its wall time and per-trial figures."""

    wall_seconds: float
    concurrency: int
    trials: list[dict[str, Any]] = field(
        default_factory=list
    )  # per trial: epochs, seconds, best F1
    peak_trial_rss_mib: float | None = None

    @property
    def epochs(self) -> int:
        return sum(t["epochs"] for t in self.trials)

    @property
    def best_dev_f1(self) -> float | None:
        scores = [
            t["best_dev_weighted_f1"] for t in self.trials if t["best_dev_weighted_f1"] is not None
        ]
        return max(scores) if scores else None


def start_ray(num_cpus: int) -> None:
    """A private local Ray instance with `num_cpus` logical CPUs (more than the cores oversubscribes them)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
        configure_logging=True,
    )


class TrialMemory:
    """Samples the RSS of the Ray trial processes (descendants of this one) every `interval` s."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak_mib = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TrialMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(self.interval):
            for proc in me.children(recursive=True):
                try:
                    # Ray names a function trainable's worker process "ray::ImplicitFunc.train".
                    if "ImplicitFunc" in " ".join(proc.cmdline()):
                        self.peak_mib = max(self.peak_mib, proc.memory_info().rss / 2**20)
                except psutil.Error:
                    continue


def plan_search(
    data_path: str,
    space_path: Path,
    storage: Path,
    name: str,
    *,
    num_samples: int,
    max_epochs: int,
    grace_period: int,
    reduction_factor: int,
    concurrency: int,
    cpus_per_trial: int = 1,
    checkpoint_every: int = 1,
    gpus_per_trial: float = 0.0,
    sampler: str = "tpe",
    scheduler: str = "patient",
    seed: int = 0,
) -> Any:
    """The search's plan (space, budget, strategy, base config, data), as tune/search.py plans it with these
    flags."""
    from tune.options import SearchOptions
    from tune.planning import plan_dataset
    from tune.records.store import ResultStore

    settings = {
        "num_samples": num_samples,
        "max_epochs": max_epochs,
        "grace_period": grace_period,
        "reduction_factor": reduction_factor,
        "cpus_per_trial": float(cpus_per_trial),
        "gpus_per_trial": float(gpus_per_trial),
        "max_concurrent": concurrency,
        "checkpoint_every": checkpoint_every,
        "sampler": sampler,
        "scheduler": scheduler,
    }
    space = str(on_the_dev_split(space_path, storage))
    options = SearchOptions(
        dataset=(DATASET,),
        data=(data_path,),
        space=(space,),
        name=name,
        seed=seed,
        storage_path=str(storage),
        results_dir=str(storage / "results"),
        quiet=True,
        max_failures=0,
        overrides=tuple(settings.items()),
    )
    return plan_dataset(
        DATASET,
        data_path,
        space,
        options,
        name=name,
        storage=str(storage),
        store=ResultStore(storage / "results"),
    )


def on_the_dev_split(space_path: Path, folder: Path) -> Path:
    """A copy of a space file that scores trials on the dev split: these benchmarks count epochs, so every trial
    must be one run (the shipped quick-start space cross-validates)."""
    import yaml

    document = yaml.safe_load(Path(space_path).read_text())
    document["resampling"] = "holdout"
    copy = folder / f"holdout-{Path(space_path).name}"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return copy


def run_search(
    data_path: str,
    space_path: Path,
    storage: Path,
    name: str,
    *,
    num_samples: int,
    max_epochs: int,
    grace_period: int,
    reduction_factor: int,
    concurrency: int,
    seed: int,
    sampler: str = "tpe",
    cpus_per_trial: int = 1,
    checkpoint_every: int = 1,
) -> SearchRun:
    """One search of `num_samples` trials; Ray must be running (`start_ray`)."""
    from tune.runner.tuner import build_tuner
    from tune.study.opening import open_study

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    plan = plan_search(
        data_path,
        space_path,
        storage,
        name,
        num_samples=num_samples,
        max_epochs=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        concurrency=concurrency,
        cpus_per_trial=cpus_per_trial,
        checkpoint_every=checkpoint_every,
        sampler=sampler,
        seed=seed,
    )
    open_study(plan)
    tuner, _ = build_tuner(plan, concurrency)
    with TrialMemory() as memory:
        started = time.perf_counter()
        grid = tuner.fit()
        wall = time.perf_counter() - started
    run = SearchRun(wall, concurrency, peak_trial_rss_mib=memory.peak_mib or None)
    for result in grid:
        frame = result.metrics_dataframe
        if result.error or frame is None or not len(frame):
            raise RuntimeError(f"benchmark search {name}: a trial failed: {result.error}")
        run.trials.append(
            {
                "number": trial_number(
                    Path(result.path).name, str(result.metrics["trial_id"])
                ),  # creation order
                "epochs": int(frame["epoch"].max()),
                "train_seconds": float(frame["train_seconds"].sum()),
                "trial_seconds": float(
                    frame["time_total_s"].max()
                ),  # inside the trainable, as Ray measured it
                "best_dev_weighted_f1": float(frame["dev_weighted_f1"].max()),
                "params": dict(result.config or {}),
                "pid": int(
                    frame["pid"].iloc[-1]
                ),  # the Ray worker; a reused actor keeps it across trials
                "resident_mb": [
                    float(v) for v in frame["resident_mb"]
                ],  # the worker's memory after each epoch
            }
        )
    return run


def baseline_trial_config(
    data_path: str, space_path: Path, storage: Path, max_epochs: int, cpus_per_trial: int = 1
) -> dict[str, Any]:
    """The resolved config of the search's first (baseline) trial, for the same run outside Ray."""
    plan = plan_search(
        data_path,
        space_path,
        storage,
        "baseline",
        num_samples=1,
        max_epochs=max_epochs,
        grace_period=max_epochs,
        reduction_factor=2,
        concurrency=1,
        cpus_per_trial=cpus_per_trial,
    )
    return plan.space.trial_config(plan.base_config, plan.space.baseline_point()).to_dict()
