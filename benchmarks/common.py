"""Shared pieces of the benchmarks: synthetic data files, measurement subprocesses, peak memory.

Every throughput/memory measurement runs in a fresh Python process
(`python -m benchmarks.worker KIND JSON`), so that one measurement's peak RSS
(`ru_maxrss`, which only ever grows) and allocator state never leak into the next.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCHMARK-RESULT "
IEMOCAP_DIMS = {"a": 100, "t": 768, "v": 512}
# Small synthetic data for the search benchmarks: a trial epoch takes about a second.
SMALL_DIMS = {"a": 16, "t": 64, "v": 32}


class WorkerError(RuntimeError):
    """A measurement subprocess failed; the message carries the end of its output."""


@dataclass(frozen=True)
class DataSpec:
    """A seeded synthetic data set: `generate(seed, scale, dims)`."""

    scale: float = 1.0
    dims: tuple[tuple[str, int], ...] = tuple(IEMOCAP_DIMS.items())
    seed: int = 0

    def path(self, folder: Path) -> Path:
        dims = "_".join(f"{m}{d}" for m, d in self.dims)
        return folder / f"synthetic_s{self.scale:g}_{dims}_seed{self.seed}.pkl"

    def ensure(self, folder: Path) -> Path:
        """Write the pickle once into `folder` and return its path."""
        from joyful.data.synthetic import generate

        path = self.path(folder)
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            data = generate(self.seed, self.scale, dict(self.dims))
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(data, protocol=4))
            tmp.replace(path)
        return path


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20


def run_worker(kind: str, params: dict[str, Any], timeout: float = 3600.0) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its result dict."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-m", "benchmarks.worker", kind, json.dumps(params)]
    started = time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise WorkerError(
            f"benchmark worker {kind} {params} failed with status {proc.returncode}:\n{tail}"
        )
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    result["process_seconds"] = time.perf_counter() - started
    return result


def emit(result: dict[str, Any]) -> None:
    """The worker side of `run_worker`: one tagged JSON line on stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def relative_difference(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)
