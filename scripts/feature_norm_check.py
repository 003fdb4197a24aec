"""Measure `--feature_norm` on real data: every scaling choice x modality set, same settings otherwise.

    python scripts/feature_norm_check.py --data ../shared/data/meld_text/data_meld.pkl \
        --json docs/feature_norm_meld.json

Each run goes through the training CLI (`train.py`, one torch thread) with the same seed,
learning rate and epochs; `--jobs` runs that many at once. Prints one table row per run
(best dev wF1 and its epoch, the epoch dev wF1 first left the always-majority level, final train loss) and
writes all metrics to `--json`. Dev only: this script helps choose a setting, and choices are made on dev (the
training runs evaluate test, as every train.py run does; it is neither printed nor kept).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from joyful.config import FEATURE_NORMS  # noqa: E402


def run_one(args: argparse.Namespace, modalities: str, norm: str, folder: Path) -> dict:
    out = folder / f"{modalities}_{norm}.json"
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "--dataset",
        args.dataset,
        "--data",
        args.data,
        "--modalities",
        modalities,
        "--feature_norm",
        norm,
        "--epochs",
        str(args.epochs),
        "--learning_rate",
        str(args.learning_rate),
        "--seed",
        str(args.seed),
        "--num_threads",
        "1",
        "--precision",
        args.precision,
        "--seqcontext_nlayer",
        str(args.seqcontext_nlayer),
        "--metrics-out",
        str(out),
        "--quiet",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads(out.read_text())
    dev = [r["dev_weighted_f1"] for r in metrics["history"]]
    floor = dev[0] if dev else 0.0
    left_floor = next(
        (r["epoch"] for r in metrics["history"] if r["dev_weighted_f1"] > floor + 0.01), None
    )
    row = {
        "modalities": modalities,
        "feature_norm": norm,
        "best_dev_weighted_f1": metrics["best_dev_weighted_f1"],
        "best_epoch": metrics["best_epoch"],
        "dev_weighted_f1": dev,
        "first_epoch_above_epoch_1": left_floor,
        "final_train_loss": metrics["history"][-1]["train_loss"]["total"],
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"{modalities:<4}{norm:<13}{row['best_dev_weighted_f1']:>9.4f} ({row['best_epoch']:>2})"
        f"{row['final_train_loss']:>12.3f}   dev wF1 by epoch: {' '.join(f'{v:.3f}' for v in dev)}",
        flush=True,
    )
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", required=True, help="data pickle (e.g. ../shared/data/meld_text/data_meld.pkl)"
    )
    p.add_argument("--dataset", default="meld")
    p.add_argument("--modalities", default="t,at", help="comma-separated modality sets")
    p.add_argument(
        "--norms", default=",".join(FEATURE_NORMS), help="comma-separated --feature_norm choices"
    )
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=24)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--seqcontext_nlayer", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json", help="write every run's figures here")
    args = p.parse_args()
    combos = list(itertools.product(args.modalities.split(","), args.norms.split(",")))
    print(
        f"{len(combos)} runs, {args.jobs} at a time, {args.epochs} epochs each, lr {args.learning_rate}, "
        f"seed {args.seed}, {args.precision}, seqcontext_nlayer {args.seqcontext_nlayer}",
        flush=True,
    )
    print(f"{'mod':<4}{'norm':<13}{'best dev':>9} (ep){'train loss':>12}", flush=True)
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda c: run_one(args, c[0], c[1], Path(folder)), combos))
    if args.json:
        settings = {
            k: getattr(args, k)
            for k in (
                "dataset",
                "epochs",
                "learning_rate",
                "seed",
                "precision",
                "seqcontext_nlayer",
            )
        }
        Path(args.json).write_text(
            json.dumps({"settings": settings, "runs": rows}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
