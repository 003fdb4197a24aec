"""Start-up time of every command: `--help`, `--version` and an argument error, each a fresh interpreter.

A user meets these first; they must answer in well under a second (the target: < 1 s on a
2-core CPU), so every command parses its arguments before it imports torch, Ray, Optuna or matplotlib
(tests/test_startup.py checks the imports; this measures the time).
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from benchmarks.common import REPO

# (how a user starts it, its argv after the interpreter, a bad argument)
COMMANDS = [
    ("train.py", ["train.py"], ["--epochs", "x"]),
    ("tune/search.py", ["tune/search.py"], ["--dataset", "x", "--num-samples", "y"]),
    ("tune/confirm.py", ["tune/confirm.py"], ["--dataset", "x", "--confirm-seeds", "y"]),
    ("tune/report.py", ["tune/report.py"], ["--bogus"]),
    ("python -m joyful.predict", ["-m", "joyful.predict"], ["--config", "a", "--model", "b"]),
]
REPEATS = 3


def measure_startup() -> dict[str, Any]:
    """Best-of-3 wall seconds per command and case, and the slowest of them all."""
    results: dict[str, Any] = {}
    for name, argv, bad in COMMANDS:
        cases = {}
        for case, extra in (
            ("help", ["--help"]),
            ("version", ["--version"]),
            ("argument_error", bad),
        ):
            times = []
            for _ in range(REPEATS):
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, *argv, *extra], cwd=REPO, capture_output=True, timeout=120
                )
                times.append(time.perf_counter() - started)
            cases[case] = min(times)
        results[name] = cases
    slowest = max(seconds for cases in results.values() for seconds in cases.values())
    return {"commands": results, "slowest_seconds": slowest, "repeats": REPEATS}
