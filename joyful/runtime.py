"""Process-level setup: seeds, device choice, thread count."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from joyful.errors import UserError

log = logging.getLogger("joyful")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); call before building the model."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """`auto` takes the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type != "cpu":
        raise UserError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def set_threads(num_threads: int) -> None:
    if num_threads > 0:
        torch.set_num_threads(num_threads)


def cpu_bf16_features() -> list[str]:
    """The bfloat16 instructions this CPU has: AVX-512-BF16 and/or AMX (the capability probe).

    Reads torch's own CPU feature detection (private functions of torch >= 2.3); where they are
    absent the answer is none, so `auto` falls back to fp32.
    """
    cpu = getattr(torch, "cpu", None)
    probes = (("AVX-512-BF16", "_is_avx512_bf16_supported"), ("AMX", "_is_amx_tile_supported"))
    return [name for name, probe in probes if bool(getattr(cpu, probe, lambda: False)())]


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether `device` computes bfloat16 matrix products natively, and what says so.

    CUDA: the device reports bf16 support without emulation (Ampere and newer). CPU: AVX-512-BF16 or
    AMX instructions; without them bf16 autocast is emulated and several times slower than fp32
    (docs/PERFORMANCE.md, the precision line of `python -m benchmarks`).
    """
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return native, f"CUDA device {torch.cuda.get_device_name(device)} {'has' if native else 'lacks'} native bf16"
    features = cpu_bf16_features()
    if features:
        return True, "CPU with " + " and ".join(features)
    return False, "CPU without AVX-512-BF16 or AMX (bf16 would be emulated)"


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """The precision a run uses (fp32 or bf16) and why: `auto` takes bf16 only where it is native."""
    if requested != "auto":
        return requested, f"--precision {requested}"
    native, reason = native_bf16(device)
    return ("bf16" if native else "fp32"), f"auto: {reason}"
