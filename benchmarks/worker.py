"""Entry point of a measurement subprocess: `python -m benchmarks.worker KIND JSON`.

Prints one `BENCHMARK-RESULT {...}` line (see `benchmarks.common.emit`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any


def _kinds() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    from benchmarks.memory import memory_worker
    from benchmarks.precision import precision_worker
    from benchmarks.profile_epoch import profile_worker
    from benchmarks.search_throughput import standalone_trial_worker
    from benchmarks.training import training_worker

    return {
        "training": training_worker,
        "standalone_trial": standalone_trial_worker,
        "profile": profile_worker,
        "precision": precision_worker,
        "memory": memory_worker,
    }


def main(argv: list[str]) -> int:
    from benchmarks.common import emit

    kinds = _kinds()
    if len(argv) != 2 or argv[0] not in kinds:
        print(f"usage: python -m benchmarks.worker {{{','.join(kinds)}}} JSON", file=sys.stderr)
        return 2
    emit(kinds[argv[0]](json.loads(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
