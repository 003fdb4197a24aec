"""bf16 against fp32 on this machine: the rate of one linear layer, and what `--precision auto` picks.

bfloat16 autocast is fast only where the hardware computes it (CUDA with bf16, CPUs with AVX-512-BF16
or AMX); elsewhere it is emulated and several times slower than fp32. This section measures the ratio
on the machine it runs on, beside the choice of `joyful.runtime.resolve_precision("auto")`, so a
figure from one machine is never taken for another's.
"""

from __future__ import annotations

import time
from typing import Any

ROWS, WIDTH = (
    2048,
    1024,
)  # a (2048, 1024) batch through Linear(1024, 1024): the sequence model's layer size


def precision_worker(params: dict[str, Any]) -> dict[str, Any]:
    import torch

    from joyful.runtime import resolve_device, resolve_precision, set_threads

    set_threads(params.get("threads", 1))
    device = resolve_device(params.get("device", "cpu"))
    generator = torch.Generator(device=device).manual_seed(0)
    layer = torch.nn.Linear(WIDTH, WIDTH, device=device)
    x = torch.randn(ROWS, WIDTH, device=device, generator=generator)
    rates = {}
    for name, enabled in (("fp32", False), ("bf16", True)):
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
            layer(x)  # warm
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            repeats, started = 0, time.perf_counter()
            while repeats < 3 or time.perf_counter() - started < 1.0:
                layer(x)
                repeats += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            rates[name] = 2 * ROWS * WIDTH * WIDTH * repeats / (time.perf_counter() - started)
    chosen, reason = resolve_precision("auto", device)
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "linear_flops_per_s": rates,
        "bf16_over_fp32": rates["bf16"] / rates["fp32"],
        "auto": chosen,
        "auto_reason": reason,
    }
