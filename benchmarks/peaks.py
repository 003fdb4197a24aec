"""Have the learning curves peaked? The learning-curve table's best configurations trained for longer.

The table (benchmarks/curves.py) stops at its `epochs`; a configuration whose fold-mean held-out curve is
best at that last epoch may still be rising, and an epoch budget sized on the table would then cut the best
configurations short. This trains the table's top configurations (ranked as a search ranks them: the best
epoch of the mean over folds) again, on the same draw and folds, for `--epochs` epochs, and reports per
configuration where its mean curve peaks now, what that peak scores against the table's, and how many of the
top configurations peak beyond the table's last epoch. The first epochs of a longer run repeat the table's run
(same seed, one thread), which the report checks too.

    python -m benchmarks.peaks --top 20 --late-from 22 --epochs 40 --json benchmarks/curves/meld_draw0.peaks.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.curves import MELD, companion, start_worker, train_run
from benchmarks.overtuning import write_draw
from benchmarks.replay import TABLE, CurveTable


def top_configurations(table: CurveTable, count: int, late_from: int = 1) -> list[str]:
    """The table's `count` best configurations by the score a cross-validated search ranks on,
    those of them whose mean curve peaks at epoch `late_from` or later."""
    ranked = sorted(table.params, key=lambda c: table.real_best(c)[0], reverse=True)[:count]
    return [c for c in ranked if table.real_best(c)[1] >= late_from]


def measure_peaks(
    table_path: Path,
    *,
    top: int,
    epochs: int,
    workers: int,
    late_from: int = 1,
    source: Path = MELD,
) -> dict[str, Any]:
    """Train the top configurations (those peaking at `late_from` or later) for `epochs` epochs on
    every fold; where their mean curves peak."""
    from tune.runner.trainable import cv_score

    table = CurveTable.load(table_path)
    if epochs <= table.epochs:
        raise SystemExit(f"--epochs {epochs}: the table already has {table.epochs}")
    header = table.header
    data = write_draw(
        source,
        table_path.parent / f".{table_path.stem}-data.pkl",
        seed=header["draw"],
        train=header["train"],
        dev=header["dev"],
    )
    chosen = top_configurations(table, top, late_from)
    jobs = [
        {
            "id": config_id,
            "point": -1,
            "params": table.params[config_id],
            "fold": fold,
            "folds": table.folds,
            "epochs": epochs,
        }
        for config_id in chosen
        for fold in range(1, table.folds + 1)
    ]
    print(
        f"peaks: {len(chosen)} of the table's top {top} configurations (best epoch >= {late_from}) "
        f"x {table.folds} folds, {epochs} epochs each "
        f"(the table has {table.epochs}), {workers} worker(s)",
        flush=True,
    )
    started = time.perf_counter()
    runs: dict[str, dict[int, dict[str, Any]]] = {}
    context = multiprocessing.get_context("spawn")
    with context.Pool(
        workers,
        initializer=start_worker,
        initargs=(str(data), "meld_text", str(companion(table_path, "space"))),
    ) as pool:
        for finished, row in enumerate(pool.imap_unordered(train_run, jobs), start=1):
            runs.setdefault(row["id"], {})[row["fold"]] = row
            elapsed = time.perf_counter() - started
            print(
                f"peaks: {finished}/{len(jobs)} runs ({row['id']} fold {row['fold']}); "
                f"{elapsed / 60:.1f} min elapsed, ~{elapsed / finished * (len(jobs) - finished) / 60:.0f} "
                "min left",
                flush=True,
            )
    rows = []
    for config_id in chosen:
        folds = [runs[config_id][f] for f in sorted(runs[config_id])]
        if any(r["failed"] or len(r["dev"]) < epochs for r in folds):
            rows.append({"id": config_id, "failed": True})
            continue
        long_score, long_epoch, _ = cv_score([r["dev"] for r in folds])
        short_score, short_epoch = table.real_best(config_id)
        repeat = np.array([r["dev"][: table.epochs] for r in folds])
        test_mean = np.mean([r["test"] for r in folds], axis=0)
        rows.append(
            {
                "id": config_id,
                "params": table.params[config_id],
                "table_score": short_score,
                "table_best_epoch": short_epoch,
                "score": long_score,
                "best_epoch": long_epoch,
                "gain": long_score - short_score,
                "test_at_table_best": float(test_mean[short_epoch - 1]),
                "test_at_best": float(test_mean[long_epoch - 1]),
                # The first epochs repeat the table's run: how far they differ from it.
                "repeat_max_difference": float(np.abs(repeat - table.dev[config_id]).max()),
            }
        )
    done = [r for r in rows if not r.get("failed")]
    return {
        "table": str(table_path.name),
        "table_epochs": table.epochs,
        "epochs": epochs,
        "top": top,
        "late_from": late_from,
        "trained": len(chosen),
        "seconds": round(time.perf_counter() - started, 1),
        "configurations": rows,
        "peaked_at_table_end": sum(r["table_best_epoch"] == table.epochs for r in done),
        "peak_beyond_table": sum(r["best_epoch"] > table.epochs for r in done),
        "mean_gain": statistics.fmean(r["gain"] for r in done) if done else None,
        "best_epochs": sorted(r["best_epoch"] for r in done),
    }


def render(result: dict[str, Any]) -> str:
    end, longer = result["table_epochs"], result["epochs"]
    lines = [
        f"{'configuration':<22}{f'best epoch of {end}':>17}{f'of {longer}':>8}"
        f"{'score then':>12}{'now':>8}{'gain':>9}{'test then':>11}{'now':>8}{'repeat diff':>13}"
    ]
    for r in result["configurations"]:
        if r.get("failed"):
            lines.append(f"{r['id']:<22} failed")
            continue
        lines.append(
            f"{r['id']:<22}{r['table_best_epoch']:>17}{r['best_epoch']:>8}{r['table_score']:>12.4f}"
            f"{r['score']:>8.4f}{r['gain']:>+9.4f}{r['test_at_table_best']:>11.4f}"
            f"{r['test_at_best']:>8.4f}{r['repeat_max_difference']:>13.5f}"
        )
    lines.append(
        f"{result['trained']} of the top {result['top']} (best epoch >= {result['late_from']}); "
        f"{result['peaked_at_table_end']} of them peaked at the table's last epoch ({end}); "
        f"trained to {result['epochs']}, {result['peak_beyond_table']} peak after it; best epochs "
        f"{result['best_epochs']}; mean gain in the search's score {result['mean_gain']:+.4f}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peaks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--top", type=int, default=10, help="how many of the best configurations")
    parser.add_argument("--epochs", type=int, default=40, help="epochs of every run")
    parser.add_argument(
        "--late-from",
        type=int,
        default=1,
        help="only those of the top whose table curve peaks at this epoch or later",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes, one torch thread each")
    parser.add_argument(
        "--source", type=Path, default=MELD, help="the data set of the table's draw"
    )
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"python -m benchmarks.peaks: error: no data at {args.source}", file=sys.stderr)
        return 2
    result = measure_peaks(
        args.table.resolve(),
        top=args.top,
        epochs=args.epochs,
        workers=args.workers,
        late_from=args.late_from,
        source=args.source,
    )
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
