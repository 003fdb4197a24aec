"""Process-level setup: seeds, device choice, thread count, bounded kernel caches, free memory back
to the OS."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
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
        raise UserError(
            f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {name}: CUDA is not available on this machine; use --device cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    elif device.type != "cpu":
        raise UserError(f"--device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


def set_threads(num_threads: int) -> None:
    if num_threads > 0:
        torch.set_num_threads(num_threads)


# oneDNN and ideep (PyTorch's C++ wrapper of it) each keep one compiled kernel per input shape, up
# to 1,024 by default. Batches of whole dialogues take a new shape almost every step, and under bf16
# a cached kernel holds megabytes (packed weights, scratch space): resident memory grew by 100-200
# MB an epoch until the caches filled, and a reused Ray actor carried it into its next trial. With a
# small bound memory stays flat and an epoch is no slower (docs/PERFORMANCE.md, "Memory"). Both
# variables are read when the first such kernel is built, so setting them in the process before
# training is enough; a user's own value is kept.
KERNEL_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
KERNEL_CACHE_CAPACITY = 64


def bound_kernel_caches(capacity: int = KERNEL_CACHE_CAPACITY) -> dict[str, str]:
    """Bound the per-shape kernel caches of oneDNN and ideep (unless the environment sets them);
    returns the values in force."""
    for name in KERNEL_CACHE_VARIABLES:
        os.environ.setdefault(name, str(capacity))
    return {name: os.environ[name] for name in KERNEL_CACHE_VARIABLES}


def _libc_trim() -> ctypes._CFuncPtr | None:
    """glibc's `malloc_trim`, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc; a no-op elsewhere).

    Training allocates and frees tensors of a new size at every step; glibc keeps the freed pages,
    so the resident size of a long run (and of a Ray actor reused for the next trial) overstates
    what it holds by hundreds of MB. Called once an epoch and after a trial: it takes milliseconds.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def resident_megabytes() -> float:
    """This process's resident set size now, MiB (Linux: /proc; elsewhere the peak from
    getrusage)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform != "darwin" else peak / 2**20


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
        return (
            native,
            f"CUDA device {torch.cuda.get_device_name(device)} {'has' if native else 'lacks'} "
            "native bf16",
        )
    features = cpu_bf16_features()
    if features:
        return True, "CPU with " + " and ".join(features)
    return False, "CPU without AVX-512-BF16 or AMX (bf16 would be emulated)"


def check_recorded_precision(precision: str, device: torch.device, where: str) -> None:
    """Refuse to re-run a result recorded in bf16 (`where`) on a device that only emulates bf16: the
    re-run would be several times slower and, with other kernels, not the recorded one. An explicit
    --precision overrides."""
    if precision != "bf16":
        return
    native, reason = native_bf16(device)
    if not native:
        raise UserError(
            f"{where} was trained with --precision bf16, but here: {reason}; an exact re-run needs "
            "a device with native bf16. Pass --precision fp32 for a non-exact re-run (scores will "
            "differ slightly), or --precision bf16 to emulate it (several times slower)"
        )


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """The precision a run uses (fp32 or bf16) and why: `auto` takes bf16 only where it is
    native."""
    if requested != "auto":
        return requested, f"--precision {requested}"
    native, reason = native_bf16(device)
    return ("bf16" if native else "fp32"), f"auto: {reason}"
