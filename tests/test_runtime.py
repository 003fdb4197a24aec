"""Process-level setup (joyful/runtime.py): bounded kernel caches, memory given back, resident size.

The precision `auto` picks is tested in tests/test_averaging.py beside the averaged weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

from joyful import runtime

# A bf16 linear layer fed a new number of rows at every step, as dialogue batches are: oneDNN and ideep build
# one kernel per shape and cache it. Run in a fresh interpreter, so no earlier kernel sits in the caches.
SHAPES_PROBE = """
import json, sys, torch
from joyful.runtime import bound_kernel_caches, release_free_memory, resident_megabytes
if sys.argv[1] == "bounded":
    bound_kernel_caches()
torch.set_num_threads(1)
layer = torch.nn.Linear(1024, 1024)
after = []
for round in range(3):
    for rows in range(100 + 160 * round, 260 + 160 * round):  # 160 shapes not seen before
        with torch.autocast("cpu", dtype=torch.bfloat16):
            layer(torch.randn(rows, 1024, requires_grad=True)).float().sum().backward()
    release_free_memory()
    after.append(resident_megabytes())
print(json.dumps(after))
"""


def _resident_after_each_round(mode: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k not in runtime.KERNEL_CACHE_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", SHAPES_PROBE, mode],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_bounded_kernel_caches_keep_memory_flat_over_new_batch_shapes() -> None:
    first, _, last = _resident_after_each_round("bounded")
    # 160 new shapes a round: with the caches bounded, the later rounds add nothing. Unbounded, each round adds
    # about 270 MB on a CPU with native bf16 (1.7 MB a shape; `test_unbounded_caches_grow`).
    assert last - first < 30, (first, last)


def test_unbounded_caches_grow() -> None:
    """What the bound prevents, where it shows: on a CPU with native bf16 (elsewhere bf16 takes other kernels)."""
    if not runtime.cpu_bf16_features():
        import pytest

        pytest.skip(
            "this CPU lacks native bf16; the per-shape bf16 kernels cached there are not built here"
        )
    first, _, last = _resident_after_each_round("unbounded")
    assert last - first > 150, (first, last)


def test_a_cache_size_the_user_set_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")
    monkeypatch.delenv("LRU_CACHE_CAPACITY", raising=False)
    assert runtime.bound_kernel_caches() == {
        "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "7",
        "LRU_CACHE_CAPACITY": str(runtime.KERNEL_CACHE_CAPACITY),
    }


def test_resident_size_is_read_and_memory_can_be_released() -> None:
    before = runtime.resident_megabytes()
    block = bytearray(64 * 2**20)  # touched: bytearray zero-fills every page
    assert runtime.resident_megabytes() - before > 50
    del block
    runtime.release_free_memory()
    assert runtime.resident_megabytes() - before < 20
