"""Is the default model larger than the data needs? Epoch time, memory and dev weighted F1 of model sizes.

Trains each size on the data's train split and scores dev after every epoch (never test: this script helps
choose a setting, and choices are made on dev). Sizes are named presets of the width settings that dominate
the cost: the fusion's projection (`fusion_pool_dim`), its encoder width (`fusion_hidden`) and latent (the
fused vector is twice `fusion_latent`, and the sequence transformer runs at that width), and the sequence
context's depth (`seqcontext_nlayer`).

    python scripts/model_size_check.py --data ../shared/data/meld_text/data_meld.pkl --dataset meld_text \\
        --modalities at --sizes default,small --seeds 1,2 --epochs 8 --json runs/sizes.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joyful.config import JoyfulConfig  # noqa: E402
from joyful.run import build_coach, load_data  # noqa: E402
from joyful.runtime import resolve_device  # noqa: E402

SIZES = {
    "default": {},  # JoyfulConfig's defaults: pool 460, hidden 1024, latent 512 (fused 1024)
    "medium": {"fusion_pool_dim": 256, "fusion_hidden": 512, "fusion_latent": 256},
    "small": {"fusion_pool_dim": 128, "fusion_hidden": 256, "fusion_latent": 128},
    "tiny": {"fusion_pool_dim": 64, "fusion_hidden": 128, "fusion_latent": 64},
}


def run(args: argparse.Namespace, size: str, seed: int) -> dict:
    config = JoyfulConfig(
        dataset=args.dataset,
        data=args.data,
        modalities=args.modalities,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seqcontext_nlayer=args.seqcontext_nlayer,
        seed=seed,
        num_threads=args.threads,
        **SIZES[size],
    ).validate()
    data = load_data(config)
    coach = build_coach(config, data, resolve_device("cpu"), keep_best_state=False)
    parameters = sum(p.numel() for p in coach.model.parameters())
    started = time.perf_counter()
    coach.fit(evaluate_test=False)
    history = coach.history
    return {
        "size": size,
        "seed": seed,
        "parameters": parameters,
        "precision": coach.precision,
        "dev_weighted_f1": [r["dev_weighted_f1"] for r in history],
        "best_dev": coach.best_dev_f1,
        "best_epoch": coach.best_epoch,
        "train_seconds": [r["train_seconds"] for r in history],
        "epoch_seconds": (time.perf_counter() - started) / len(history),
        "resident_mb": max(r["resident_mb"] for r in history),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--dataset", default="meld_text")
    p.add_argument("--modalities", default="at")
    p.add_argument("--sizes", default="default,small")
    p.add_argument("--seeds", default="1,2")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-4)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--seqcontext_nlayer", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    runs = []
    for size in args.sizes.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            runs.append(run(args, size, seed))
            r = runs[-1]
            print(
                f"{size:8s} seed {seed}: {r['parameters'] / 1e6:.2f}M parameters, {r['epoch_seconds']:.1f} s/epoch "
                f"({r['precision']}), {r['resident_mb'] / 1024:.2f} GB, best dev wF1 {r['best_dev']:.4f} at epoch "
                f"{r['best_epoch']}; dev by epoch "
                + " ".join(f"{v:.3f}" for v in r["dev_weighted_f1"]),
                flush=True,
            )
    print("\nsize      parameters  s/epoch  best dev wF1 (mean over seeds)")
    for size in args.sizes.split(","):
        mine = [r for r in runs if r["size"] == size]
        each = ", ".join(f"{r['best_dev']:.4f}" for r in mine)
        print(
            f"{size:8s}  {mine[0]['parameters'] / 1e6:8.2f}M  {statistics.fmean(r['epoch_seconds'] for r in mine):7.1f}"
            f"  {statistics.fmean(r['best_dev'] for r in mine):.4f} ({each})"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"command": " ".join(sys.argv), "runs": runs}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
