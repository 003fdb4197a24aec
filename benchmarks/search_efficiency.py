"""Search efficiency: TPE + ASHA against random search with full-length trials, same number of trials.

Both arms go through the search's build_tuner (tune/runner/tuner.py) with the space
`benchmarks/spaces/efficiency.yaml` on small synthetic data; the random arm
swaps TPE for Optuna's RandomSampler and makes ASHA inert. For each searcher
seed we record the epochs all trials consumed and the best dev weighted F1
any trial reached (per trial: its best epoch, what selection uses); the
summary is the median over seeds.

Two readings of "TPE + ASHA uses at most 1/3 of random search's epochs": the
whole search's epochs, and the epochs TPE + ASHA had spent when it first came
within 0.5 F1 points of random search's best (the epochs of its trials in
creation order, up to and including the first that got there: what a search
stopped after that trial would have cost, the searcher's proposals being the
same; ASHA's cutoffs could differ slightly, as later trials that overtook it
at a rung would be missing).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.searches import DATASET, SPACES, SearchRun, run_search, start_ray

EFFICIENCY_SPACE = SPACES / "efficiency.yaml"
# "Within 0.5 F1 points" of random search's best, as a fraction.
F1_TOLERANCE = 0.005


def epochs_to_reach(trials: list[dict[str, Any]], target: float) -> int | None:
    """Epochs of the trials in creation order up to and including the first whose best dev F1 reaches
    `target`; None if none does."""
    spent = 0
    for trial in sorted(trials, key=lambda t: t["number"]):
        spent += trial["epochs"]
        if trial["best_dev_weighted_f1"] >= target:
            return spent
    return None


def _median_or_none(values: Iterable[float | None]) -> float | None:
    """Median where None (target never reached) counts as infinite; None if the median is."""
    middle = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(middle) else middle


def _arm(run: SearchRun) -> dict[str, Any]:
    return {"epochs": run.epochs, "best_dev_weighted_f1": run.best_dev_f1, "wall_seconds": run.wall_seconds,
            "trials": [{"number": t["number"], "epochs": t["epochs"], "best_dev_weighted_f1": t["best_dev_weighted_f1"]}
                       for t in run.trials]}


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
    for repeat, seed in enumerate(seeds):
        common = dict(num_samples=n, max_epochs=epochs, reduction_factor=budget.reduction_factor,
                      concurrency=concurrency, seed=seed)
        log(f"  search efficiency, seed {seed}: TPE + ASHA, {n} trials ...")
        tpe = run_search(data_path, EFFICIENCY_SPACE, storage, f"efficiency-tpe-asha-{repeat}-s{seed}", grace_period=grace,
                         **common)
        log(f"  search efficiency, seed {seed}: random search, {n} full-length trials ...")
        rnd = run_search(data_path, EFFICIENCY_SPACE, storage, f"efficiency-random-{repeat}-s{seed}", grace_period=epochs,
                         sampler="random", **common)
        target = rnd.best_dev_f1 - F1_TOLERANCE
        tpe_to_target = epochs_to_reach(tpe.trials, target)
        per_seed.append({"seed": seed, "tpe_asha": _arm(tpe), "random": _arm(rnd), "target_dev_weighted_f1": target,
                         "tpe_asha_epochs_to_target": tpe_to_target,
                         "random_epochs_to_target": epochs_to_reach(rnd.trials, target),
                         "epochs_to_target_ratio": tpe_to_target / rnd.epochs if tpe_to_target else None})

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
        "tpe_asha_epochs_to_target_median": _median_or_none(s["tpe_asha_epochs_to_target"] for s in per_seed),
        "random_epochs_to_target_median": _median_or_none(s["random_epochs_to_target"] for s in per_seed),
        "epochs_to_target_ratio": _median_or_none(s["epochs_to_target_ratio"] for s in per_seed),
    }
