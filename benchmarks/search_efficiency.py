"""Search efficiency: TPE + ASHA against random search with full-length trials, same number of trials.

Both arms go through tune/search.py's build_tuner with the space
`benchmarks/spaces/efficiency.yaml` on small synthetic data; the random arm
swaps TPE for Optuna's RandomSampler and makes ASHA inert. For each searcher
seed we record the epochs all trials consumed and the best dev weighted F1
any trial reached (per trial: its best epoch, what selection uses); the
summary is the median over seeds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.searches import DATASET, SPACES, SearchRun, run_search, start_ray

EFFICIENCY_SPACE = SPACES / "efficiency.yaml"


def _arm(run: SearchRun) -> dict[str, Any]:
    return {"epochs": run.epochs, "best_dev_weighted_f1": run.best_dev_f1, "wall_seconds": run.wall_seconds,
            "trials": [{"epochs": t["epochs"], "best_dev_weighted_f1": t["best_dev_weighted_f1"]} for t in run.trials]}


def measure_search_efficiency(data_path: str, storage: Path, *, seeds: list[int], num_samples: int | None = None,
                              max_epochs: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    from tune.space import load_space

    budget = load_space(EFFICIENCY_SPACE, DATASET).budget
    n = num_samples or budget.num_samples
    epochs = max_epochs or budget.max_epochs
    grace = min(budget.grace_period, epochs)
    concurrency = budget.max_concurrent or 2
    start_ray(concurrency)
    per_seed = []
    for seed in seeds:
        common = dict(num_samples=n, max_epochs=epochs, reduction_factor=budget.reduction_factor,
                      concurrency=concurrency, seed=seed)
        log(f"  search efficiency, seed {seed}: TPE + ASHA, {n} trials ...")
        tpe = run_search(data_path, EFFICIENCY_SPACE, storage, f"efficiency-tpe-asha-{seed}", grace_period=grace,
                         **common)
        log(f"  search efficiency, seed {seed}: random search, {n} full-length trials ...")
        rnd = run_search(data_path, EFFICIENCY_SPACE, storage, f"efficiency-random-{seed}", grace_period=epochs,
                         sampler="random", **common)
        per_seed.append({"seed": seed, "tpe_asha": _arm(tpe), "random": _arm(rnd)})

    def median(arm: str, key: str) -> float:
        return statistics.median(s[arm][key] for s in per_seed)

    tpe_f1, random_f1 = median("tpe_asha", "best_dev_weighted_f1"), median("random", "best_dev_weighted_f1")
    tpe_epochs, random_epochs = median("tpe_asha", "epochs"), median("random", "epochs")
    return {
        "trials": n, "max_epochs": epochs, "grace_period": grace, "reduction_factor": budget.reduction_factor,
        "concurrency": concurrency, "seeds": seeds, "per_seed": per_seed,
        "tpe_asha_best_dev_f1_median": tpe_f1, "random_best_dev_f1_median": random_f1,
        "tpe_asha_epochs_median": tpe_epochs, "random_epochs_median": random_epochs,
        # Positive: random search found the better configuration.
        "f1_gap_points": 100 * (random_f1 - tpe_f1),
        "epoch_ratio": tpe_epochs / random_epochs,
    }
