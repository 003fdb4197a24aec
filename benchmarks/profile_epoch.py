"""Profile one training epoch (vectorised path) with torch.profiler: top operators and where time goes.

Forward time per stage comes from record_function ranges opened by module
hooks (fusion, sequence context, GNN, classifier); the self-pooling autograd
function shows up under its own name in forward and backward. Times are the
profiler's CPU time of the calling thread (intra-op threads work inside it).
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import peak_rss_mib

STAGES = ("fusion", "seq_context", "gnn", "classifier")
SELF_POOL_FORWARD, SELF_POOL_BACKWARD = "_SelfPool", "_SelfPoolBackward"
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "


def _stage_ranges(model: Any) -> list[Any]:
    """Open a profiler range named `stage:<module>` around each stage's forward; returns the hook handles."""
    import torch

    handles, open_ranges = [], {}
    for name in STAGES:
        module = getattr(model, name)

        def enter(_module: Any, _inputs: Any, name: str = name) -> None:
            open_ranges[name] = torch.profiler.record_function(f"stage:{name}")
            open_ranges[name].__enter__()

        def leave(_module: Any, _inputs: Any, _output: Any, name: str = name) -> None:
            open_ranges.pop(name).__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    return handles


def profile_worker(params: dict[str, Any]) -> dict[str, Any]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from benchmarks.training import FirstBatches, build_benchmark_coach

    coach = build_benchmark_coach(params)
    if params.get("batches"):
        coach.loaders["train"] = FirstBatches(coach.loaders["train"], params["batches"])
    handles = _stage_ranges(coach.model)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        record = coach.train_epoch()
    for handle in handles:
        handle.remove()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6  # seconds
    by_name = {e.key: e for e in events}

    def inclusive(name: str) -> float:
        return by_name[name].cpu_time_total / 1e6 if name in by_name else 0.0

    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: params.get("top", 15)]
    backward = sum(e.cpu_time_total for e in events if e.key.startswith(BACKWARD_PREFIX)) / 1e6
    backward_top = sorted(
        (e for e in events if e.key.startswith(BACKWARD_PREFIX)),
        key=lambda e: e.cpu_time_total,
        reverse=True,
    )[:8]
    return {
        "fusion": coach.config.fusion,
        "threads": torch.get_num_threads(),
        "utterances": coach.loaders["train"].num_utterances,
        "epoch_seconds_profiled": record["train_seconds"],
        "profiled_cpu_seconds": total,
        "forward_stage_seconds": {name: inclusive(f"stage:{name}") for name in STAGES},
        "self_pool_seconds": {
            "forward": inclusive(SELF_POOL_FORWARD),
            "backward": inclusive(BACKWARD_PREFIX + SELF_POOL_BACKWARD),
        },
        "backward_seconds": backward,
        "backward_top": [
            {"name": e.key[len(BACKWARD_PREFIX) :], "seconds": e.cpu_time_total / 1e6}
            for e in backward_top
        ],
        "top_ops": [
            {
                "name": e.key,
                "self_seconds": e.self_cpu_time_total / 1e6,
                "share": e.self_cpu_time_total / 1e6 / total,
                "calls": e.count,
            }
            for e in top
        ],
        "peak_rss_mib": peak_rss_mib(),
    }
