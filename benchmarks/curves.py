"""A table of real JOYFUL learning curves: what the search-strategy replays (benchmarks/replay.py) run on.

A space-filling (Sobol) sample of a search space's nuisance settings, each trained with every value of the
scientific parameter (the fusion), on every cross-validation fold of an IEMOCAP-sized draw of MELD (the
overtuning benchmark's draws: `train` + `dev` dialogues sampled from MELD's own, MELD's test split whole).
Each (configuration, fold) run trains for `epochs` epochs and records per epoch the held-out fold's weighted F1
of the selected (averaged) weights - the score a cross-validated search ranks on -, the raw weights' score, the
test weighted F1 of the selected weights (read here for the replays' "what would be published"; never used to
choose anything), and the seconds the epoch took as a search trial runs it (training and the held-out
evaluations; the test evaluation is not counted).

    python -m benchmarks.curves --out benchmarks/curves/meld_draw0.jsonl           # the committed table
    python -m benchmarks.curves --out /tmp/curves.jsonl --points 4 --epochs 3      # a small one

One JSON line per (configuration, fold); an interrupted build continues where it stopped (finished lines are
kept, the rest is trained). Runs go to `--workers` processes of one thread each. Beside the table go the space
it sampled (`<table>.space.yaml`, so the replays search exactly that space whatever the shipped file becomes)
and the draw's facts a search plans with (`<table>.facts.json`: the always-majority level over train + dev and
the noise of a held-out score, as `tune/plan.py` measures them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO

MELD = REPO.parent / "shared" / "data" / "meld_text" / "data_meld.pkl"
SPACE = REPO / "search_spaces" / "meld_text.yaml"
TABLE_VERSION = 1


def sobol_points(space: Any, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` configurations of `space` per scientific value: a scrambled Sobol sample of the other
    parameters, each point trained under every scientific value (so the arms are compared on the same
    nuisance settings), with the parameters a value makes inactive left out."""
    from scipy.stats import qmc

    scientific = [p for p in space.parameters if p.role == "scientific"]
    others = [p for p in space.parameters if p.role != "scientific"]
    sample = qmc.Sobol(d=len(others), scramble=True, seed=seed).random(count)
    strata = space.strata() or [{}]
    points = []
    for index, row in enumerate(sample):
        values = {p.name: p.from_unit(u) for p, u in zip(others, row, strict=True)}
        for stratum in strata:
            point = space.active_point({**values, **stratum})
            points.append(
                {
                    "id": f"p{index:03d}-{'-'.join(str(v) for v in stratum.values())}",
                    "point": index,
                    "params": point,
                }
            )
    if scientific and not space.strata():
        raise ValueError(
            "the space's scientific parameter must be an unconditional categorical one"
        )
    return points


# --- one run, in a worker process -------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def start_worker(data_path: str, dataset: str, space_path: str) -> None:
    """A pool process's start (one torch thread): the space, the base config and the data, loaded
    once for every run it trains (`train_run`); also used by benchmarks/peaks.py."""
    import torch

    from joyful.config import JoyfulConfig
    from joyful.run import load_data
    from tune.space import load_space

    torch.set_num_threads(1)
    space = load_space(space_path, dataset)
    base = JoyfulConfig.from_dict(
        {
            **JoyfulConfig(dataset=dataset).to_dict(),
            **space.fixed,
            "dataset": dataset,
            "data": data_path,
            "num_threads": 1,
        }
    )
    _WORKER.update(space=space, base=base, data=load_data(base, check_modalities=True))


def train_run(job: dict[str, Any]) -> dict[str, Any]:
    """One configuration on one fold: its per-epoch curves."""
    import torch

    from joyful.coach import NonFiniteLossError
    from joyful.run import build_coach

    space, base, data = _WORKER["space"], _WORKER["base"], _WORKER["data"]
    config = space.trial_config(base, job["params"]).replace(
        cv_folds=job["folds"], cv_fold=job["fold"], epochs=job["epochs"]
    )
    rows: list[dict[str, float]] = []
    clock = {"last": time.perf_counter()}

    def record(epoch: dict[str, Any], coach: Any) -> None:
        seconds = (
            time.perf_counter() - clock["last"]
        )  # training + the held-out evaluations, as in a trial
        test = coach.evaluate("test")
        rows.append(
            {
                "dev": round(epoch["dev_weighted_f1"], 5),
                "raw_dev": round(epoch.get("raw_dev_weighted_f1", epoch["dev_weighted_f1"]), 5),
                "test": round(test.weighted_f1, 5),
                "seconds": round(seconds, 3),
            }
        )
        clock["last"] = time.perf_counter()

    started = time.perf_counter()
    coach = build_coach(
        config, data, torch.device("cpu"), callbacks=[record], keep_best_state=False
    )
    failed = ""
    try:
        coach.fit(evaluate_test=False)
    except NonFiniteLossError as exc:
        failed = str(exc)
    return {
        "id": job["id"],
        "point": job["point"],
        "fold": job["fold"],
        "params": job["params"],
        "precision": coach.precision,
        "failed": failed,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "dev": [r["dev"] for r in rows],
        "raw_dev": [r["raw_dev"] for r in rows],
        "test": [r["test"] for r in rows],
        "seconds": [r["seconds"] for r in rows],
    }


# --- the build ---------------------------------------------------------------------------------------


def companion(table: Path, kind: str) -> Path:
    """The file beside `table` holding its `kind`: "space" (the sampled space) or "facts"."""
    return table.with_name(f"{table.stem}.{'space.yaml' if kind == 'space' else 'facts.json'}")


def draw_facts(data_path: Path, folds: int, dataset: str = "meld_text") -> dict[str, Any]:
    """What a search of the draw plans with: the always-majority level over train + dev (the floor of the
    scheduler) and the noise of a held-out fold's score (`tune.stats.noise.SplitNoise`)."""
    import dataclasses

    from joyful.config import JoyfulConfig
    from joyful.run import load_data
    from tune.stats.noise import split_noise
    from tune.stats.references import majority_level, reference_models

    data = load_data(JoyfulConfig(dataset=dataset, data=str(data_path), modalities="at"))
    references = reference_models(data, "at")
    noise = split_noise(data, references.dev["logistic regression"], folds=folds)
    majority = majority_level(data, pooled=True)
    return {
        "majority_class": majority.majority_class,
        "majority_weighted_f1": majority.dev_weighted_f1,
        "noise": dataclasses.asdict(noise),
    }


def build_table(
    out: Path,
    *,
    source: Path,
    draw: int,
    train: int,
    dev: int,
    folds: int,
    points: int,
    epochs: int,
    workers: int,
    seed: int,
    space_path: Path,
    dataset: str = "meld_text",
) -> Path:
    """Train every missing (configuration, fold) run and append it to `out` (see the module docstring)."""
    from benchmarks.overtuning import write_draw
    from tune.space import load_space

    space = load_space(space_path, dataset)
    data = write_draw(source, out.parent / f".{out.stem}-data.pkl", seed=draw, train=train, dev=dev)
    if not companion(out, "space").exists():
        shutil.copyfile(space_path, companion(out, "space"))
    if not companion(out, "facts").exists():
        companion(out, "facts").write_text(json.dumps(draw_facts(data, folds), indent=1) + "\n")
    header = {
        "table_version": TABLE_VERSION,
        "space": str(space_path.relative_to(REPO)),
        "space_sha256": space.sha256,
        "source": source.name,
        "draw": draw,
        "train": train,
        "dev": dev,
        "folds": folds,
        "epochs": epochs,
        "sobol_seed": seed,
        "points": points,
    }
    done: set[tuple[str, int]] = set()
    if out.exists():
        lines = out.read_text().splitlines()
        stored = json.loads(lines[0])
        if {k: v for k, v in stored.items() if k != "points"} != {
            k: v for k, v in header.items() if k != "points"
        }:
            raise SystemExit(
                f"{out} holds a table of other settings ({stored}); pass another --out"
            )
        done = {(row["id"], row["fold"]) for row in map(json.loads, lines[1:])}
        lines[0] = json.dumps(header)  # more points extend the same Sobol sequence
        out.write_text("\n".join(lines) + "\n")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(header) + "\n")
    jobs = [
        {**config, "fold": fold, "folds": folds, "epochs": epochs}
        for config in sobol_points(space, points, seed)
        for fold in range(1, folds + 1)
        if (config["id"], fold) not in done
    ]
    total = len(jobs) + len(done)
    print(
        f"curves: {len(done)} of {total} runs in {out}; training {len(jobs)} ({epochs} epochs each, "
        f"{workers} worker(s))",
        flush=True,
    )
    if not jobs:
        return out
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    best: tuple[float, str] = (-1.0, "")
    with (
        context.Pool(
            workers, initializer=start_worker, initargs=(str(data), dataset, str(space_path))
        ) as pool,
        out.open("a") as handle,
    ):
        for finished, row in enumerate(pool.imap(train_run, jobs), start=1):
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            if row["dev"] and max(row["dev"]) > best[0]:
                best = (max(row["dev"]), row["id"])
            elapsed = time.perf_counter() - started
            left = elapsed / finished * (len(jobs) - finished)
            print(
                f"curves: {len(done) + finished}/{total} runs ({row['id']} fold {row['fold']}: best held-out "
                f"{max(row['dev'], default=float('nan')):.4f}{' FAILED' if row['failed'] else ''}); best so far "
                f"{best[0]:.4f} ({best[1]}); {elapsed / 60:.1f} min elapsed, ~{left / 60:.0f} min left",
                flush=True,
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.curves", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="the table (JSON lines); extended if it exists"
    )
    parser.add_argument(
        "--source", type=Path, default=MELD, help="the full data set the draw comes from"
    )
    parser.add_argument("--space", type=Path, default=SPACE, help="the search space sampled")
    parser.add_argument(
        "--draw", type=int, default=0, help="seed of the draw (the overtuning benchmark's)"
    )
    parser.add_argument("--train", type=int, default=120, help="train dialogues of the draw")
    parser.add_argument("--dev", type=int, default=12, help="dev dialogues of the draw")
    parser.add_argument(
        "--folds", type=int, default=3, help="cross-validation folds over train + dev"
    )
    parser.add_argument(
        "--points", type=int, default=100, help="Sobol points (each runs every fusion)"
    )
    parser.add_argument("--epochs", type=int, default=24, help="epochs of every run")
    parser.add_argument("--workers", type=int, default=2, help="processes, one torch thread each")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scrambled Sobol sequence")
    args = parser.parse_args(argv)
    if not args.source.exists():
        print(f"python -m benchmarks.curves: error: no data at {args.source}", file=sys.stderr)
        return 2
    build_table(
        args.out.resolve(),
        source=args.source,
        draw=args.draw,
        train=args.train,
        dev=args.dev,
        folds=args.folds,
        points=args.points,
        epochs=args.epochs,
        workers=args.workers,
        seed=args.seed,
        space_path=args.space.resolve(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
