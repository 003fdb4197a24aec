"""Does averaging help on real data, and which kind? One training run, every averaging scored on the side.

Trains one configuration (by default the strong untuned MELD setting: lr 1e-4, batch 16, two sequence
layers, 10 epochs) at one seed, with `--weight_averaging none`, and keeps per epoch the dev class
probabilities of the raw weights and of several averaged copies of them (EMA at three decays, SWA from
epoch 1 and 3) updated alongside the same training trajectory: averaging never changes the trajectory,
so one run measures them all.

    python scripts/averaging_check.py --data ../shared/data/meld_text/data_meld.pkl --seed 1 --out runs/avg/seed1.npz
    python scripts/averaging_check.py --summarise runs/avg/seed*.npz --json docs/averaging_meld.json

The summary compares, per method, a single run's best dev epoch and its last epoch, how much dev moves
from epoch to epoch, class probabilities averaged over epochs, and ensembles over seeds: dev only. This script
helps choose a setting, so it never scores test (test is evaluated once per published model, in the
search's report; docs/MELD_EVIDENCE.md lists the test figures earlier versions of this script printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joyful.averaging import WeightAverage  # noqa: E402
from joyful.config import JoyfulConfig  # noqa: E402
from joyful.metrics import weighted_f1  # noqa: E402
from joyful.run import build_coach, load_data  # noqa: E402
from joyful.runtime import resolve_device  # noqa: E402

METHODS = {
    "ema_0.99": ("ema", 0.99, 1),
    "ema_0.995": ("ema", 0.995, 1),
    "ema_0.998": ("ema", 0.998, 1),
    "swa_1": ("swa", 0.999, 1),
    "swa_3": ("swa", 0.999, 3),
}
PROB_AVERAGE_FROM = 3  # the "probabilities averaged over epochs 3-10"


def train_one(args: argparse.Namespace) -> None:
    config = JoyfulConfig(
        dataset=args.dataset,
        data=args.data,
        modalities=args.modalities,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seqcontext_nlayer=args.seqcontext_nlayer,
        seed=args.seed,
        num_threads=args.threads,
        precision=args.precision,
        weight_averaging="none",
    ).validate()
    data = load_data(config)
    coach = build_coach(config, data, resolve_device("cpu"), keep_best_state=False)
    averages = {
        name: WeightAverage(coach.model, mode, ema_decay=decay, swa_start=start)
        for name, (mode, decay, start) in METHODS.items()
    }
    coach.optimizer.register_step_post_hook(
        lambda optimizer, a, k: [avg.after_step(coach.model) for avg in averages.values()]
    )
    store: dict[str, list[np.ndarray]] = {}
    labels: dict[str, np.ndarray] = {}

    def keep(record: dict, c) -> None:
        started = time.perf_counter()
        for avg in averages.values():
            avg.after_epoch(c.model, c.epoch)
        models = {"raw": c.model, **{name: avg.model for name, avg in averages.items()}}
        scores = []
        for name, model in models.items():
            result = c.evaluate("dev", model)
            store.setdefault(f"{name}/dev", []).append(result.probabilities)
            labels["dev"] = result.labels
            scores.append(f"{name} {result.weighted_f1:.4f}")
        print(
            f"seed {config.seed} epoch {c.epoch}: dev wF1 "
            + ", ".join(scores)
            + f" (train {record['train_seconds']:.0f} s, scoring {time.perf_counter() - started:.0f} s)",
            flush=True,
        )

    coach.callbacks.append(keep)
    coach.fit(evaluate_test=False)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        **{k: np.stack(v) for k, v in store.items()},
        **{f"labels/{k}": v for k, v in labels.items()},
        meta=json.dumps({"config": config.to_dict(), "precision": coach.precision}),
    )
    print(f"wrote {args.out}")


def summarise(paths: list[str], json_out: str | None) -> None:
    runs = [np.load(p) for p in paths]
    y = runs[0]["labels/dev"]
    methods = ["raw", *METHODS]

    def f1(probs: np.ndarray) -> float:
        return weighted_f1(y, probs.argmax(axis=1))

    rows = {}
    for method in methods:
        dev = [run[f"{method}/dev"] for run in runs]  # (epochs, utterances, classes) per seed
        dev_curves = [[f1(e) for e in d] for d in dev]
        best = [int(np.argmax(c)) for c in dev_curves]  # first maximum: the Coach's rule
        steps = [np.abs(np.diff(c[4:])).mean() for c in dev_curves]
        rows[method] = {
            "dev_best_mean": float(np.mean([max(c) for c in dev_curves])),
            "dev_last_mean": float(np.mean([c[-1] for c in dev_curves])),
            "best_epochs": [b + 1 for b in best],
            "dev_epoch_to_epoch_change_after_5": float(np.mean(steps)),
            "ensemble_over_seeds_dev": f1(
                np.mean([d[b] for d, b in zip(dev, best, strict=True)], axis=0)
            ),
            "ensemble_over_seeds_last_dev": f1(np.mean([d[-1] for d in dev], axis=0)),
        }
    start = PROB_AVERAGE_FROM - 1
    per_run = [f1(r["raw/dev"][start:].mean(axis=0)) for r in runs]
    rows["raw_probabilities_over_epochs"] = {
        "epochs": f"{PROB_AVERAGE_FROM}-{runs[0]['raw/dev'].shape[0]}",
        "per_run_dev": per_run,
        "dev_mean": float(np.mean(per_run)),
        "ensemble_over_seeds_dev": f1(
            np.mean([r["raw/dev"][start:].mean(axis=0) for r in runs], axis=0)
        ),
    }
    print(f"{len(runs)} seeds; dev weighted F1 (test is not scored here)")
    print(
        f"{'method':<12}{'best dev':>9}{'last dev':>9}{'dev jitter':>11}{'ens dev':>9}{'ens last':>9}"
    )
    for method in methods:
        r = rows[method]
        print(
            f"{method:<12}{r['dev_best_mean']:>9.4f}{r['dev_last_mean']:>9.4f}"
            f"{r['dev_epoch_to_epoch_change_after_5']:>11.4f}{r['ensemble_over_seeds_dev']:>9.4f}"
            f"{r['ensemble_over_seeds_last_dev']:>9.4f}"
        )
    r = rows["raw_probabilities_over_epochs"]
    print(
        f"raw probabilities averaged over epochs {r['epochs']}: per run dev {r['dev_mean']:.4f}; over seeds dev "
        f"{r['ensemble_over_seeds_dev']:.4f}"
    )
    if json_out:
        meta = [json.loads(str(run["meta"])) for run in runs]
        Path(json_out).write_text(
            json.dumps(
                {
                    "runs": [m["config"]["seed"] for m in meta],
                    "config": meta[0]["config"],
                    "precision": meta[0]["precision"],
                    "methods": rows,
                },
                indent=2,
            )
        )
        print(f"wrote {json_out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--summarise", nargs="+", metavar="NPZ")
    p.add_argument("--json")
    p.add_argument("--data", default="../shared/data/meld_text/data_meld.pkl")
    p.add_argument("--dataset", default="meld_text")
    p.add_argument("--modalities", default="at")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seqcontext-nlayer", type=int, default=2)
    p.add_argument("--precision", default="auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args()
    if args.summarise:
        summarise(args.summarise, args.json)
    else:
        train_one(args)


if __name__ == "__main__":
    main()
