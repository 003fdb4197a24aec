"""Resident memory of training: a run per data set and precision, and one reused Ray actor over several trials.

A run is trained in a fresh process (`python -m benchmarks.worker memory`); its resident size is read after
every epoch (the history's `resident_mb`, taken once the epoch's freed memory has been handed back to the OS),
with its peak (`ru_maxrss`). The figure that matters is the last epoch against epoch 2 (the goal:
within 10%): epoch 1 still allocates what every later epoch reuses. `kernel_cache` runs the same with oneDNN's
and ideep's per-shape kernel caches at their default bound (1,024 entries), which is what a run did before
`joyful.runtime.bound_kernel_caches`.

The reused actor is a real Ray Tune run of the search's trainable, one trial at a time with `reuse_actors` as
searches run: every trial reports its worker's pid and resident size, so the figure shows whether one worker
carries memory from trial to trial.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mib, run_worker
from benchmarks.searches import SHIPPED_SPACE, run_search, start_ray

ONEDNN_DEFAULT_CAPACITY = 1024  # oneDNN's and ideep's own default bound


def memory_worker(params: dict[str, Any]) -> dict[str, Any]:
    """One training run (`epochs`, `precision`, optional `kernel_cache` bound) and its memory after every epoch."""
    if params.get("kernel_cache"):
        from joyful.runtime import KERNEL_CACHE_VARIABLES

        for name in (
            KERNEL_CACHE_VARIABLES
        ):  # before torch builds its first kernel; bound_kernel_caches keeps it
            os.environ[name] = str(params["kernel_cache"])
    import torch

    from joyful.config import JoyfulConfig
    from joyful.run import build_coach, load_data
    from joyful.runtime import resident_megabytes

    config = JoyfulConfig(
        dataset=params["dataset"],
        data=params["data"],
        modalities=params["modalities"],
        epochs=params["epochs"],
        precision=params["precision"],
        num_threads=params["threads"],
        **params.get("overrides", {}),
    )
    data = load_data(config)
    before = resident_megabytes()
    coach = build_coach(config, data, torch.device("cpu"), keep_best_state=False)
    started = time.perf_counter()
    coach.fit(evaluate_test=False)
    resident = [r["resident_mb"] for r in coach.history]
    return {
        "precision": coach.precision,
        "precision_reason": coach.precision_reason,
        "kernel_cache": {
            name: os.environ.get(name)
            for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
        },
        "resident_mb": resident,
        "loaded_mb": before,
        "peak_rss_mb": peak_rss_mib(),
        "end_mb": resident[-1],
        "last_over_epoch2": resident[-1] / resident[1] if len(resident) > 1 else None,
        "epoch_seconds": (time.perf_counter() - started) / len(resident),
        "train_utterances": sum(len(d) for d in data.splits["train"]),
    }


def measure_memory(
    runs: list[dict[str, Any]],
    reused: dict[str, Any] | None,
    storage: Path,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Each of `runs` (memory_worker params, plus a `name`) in a fresh process; then, with `reused`
    ({data, trials, epochs}), one reused Ray actor over `trials` trials of the synthetic space."""
    result: dict[str, Any] = {"runs": {}}
    for params in runs:
        log(f"  memory: {params['name']} ({params['epochs']} epochs) ...")
        result["runs"][params["name"]] = run_worker("memory", params)
    if reused:
        log(f"  memory: one reused Ray actor over {reused['trials']} trials ...")
        start_ray(1)
        run = run_search(
            reused["data"],
            SHIPPED_SPACE,
            storage,
            "memory-reused",
            num_samples=reused["trials"],
            max_epochs=reused["epochs"],
            grace_period=reused["epochs"],
            reduction_factor=2,
            concurrency=1,
            seed=0,
        )
        trials = sorted(run.trials, key=lambda t: t["number"] or 0)
        first, last = trials[0]["resident_mb"], trials[-1]["resident_mb"]
        result["reused_actor"] = {
            "trials": len(trials),
            "epochs": reused["epochs"],
            "workers": len({t["pid"] for t in trials}),
            "resident_mb": [t["resident_mb"] for t in trials],
            "peak_trial_rss_mb": run.peak_trial_rss_mib,
            # the last trial's last epoch against the first trial's epoch 2: memory carried between trials
            "last_over_first_epoch2": last[-1] / first[min(1, len(first) - 1)],
        }
    return result
