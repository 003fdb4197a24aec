"""Does the synthetic data set reward what JOYFUL is for? Measures, on one generated data set:

* a context-free per-utterance classifier (logistic regression on the utterance's own
  features, C tuned on dev) for each single modality and for atv;
* the full JOYFUL model (train.py's code path) for a, t, v and atv.

    python scripts/synthetic_check.py --scale 0.5 --epochs 15 --json docs/synthetic_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joyful.config import JoyfulConfig  # noqa: E402
from joyful.data.synthetic import generate  # noqa: E402
from joyful.io import atomic_write  # noqa: E402
from joyful.metrics import weighted_f1  # noqa: E402
from joyful.run import RunOptions, train  # noqa: E402


def utterance_matrix(records: list, modalities: str) -> tuple[np.ndarray, np.ndarray]:
    names = {"a": "audio", "t": "sbert_sentence_embeddings", "v": "visual"}
    blocks = [
        np.concatenate([np.asarray(getattr(r, names[m]), dtype=np.float32) for r in records])
        for m in modalities
    ]
    labels = np.concatenate([np.asarray(r.label) for r in records])
    return np.concatenate(blocks, axis=1), labels


def context_free(data: dict, modalities: str) -> dict[str, float]:
    """Logistic regression per utterance; its best dev score over C (dev only, as every check here)."""
    x_train, y_train = utterance_matrix(data["train"], modalities)
    x_dev, y_dev = utterance_matrix(data["dev"], modalities)
    best = max(
        (
            weighted_f1(
                y_dev, LogisticRegression(C=c, max_iter=2000).fit(x_train, y_train).predict(x_dev)
            ),
            c,
        )
        for c in (0.001, 0.01, 0.1, 1.0)
    )
    return {"dev_weighted_f1": best[0], "C": best[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    data = generate(args.seed, args.scale)
    rows = {}
    for modalities in ("a", "t", "v", "atv"):
        rows[f"logreg_{modalities}"] = context_free(data, modalities)
        print(
            f"context-free logistic regression [{modalities}]: {rows[f'logreg_{modalities}']}",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic.pkl"
        import pickle

        atomic_write(path, lambda out: pickle.dump(data, out), binary=True)
        for modalities in ("a", "t", "v", "atv"):
            started = time.perf_counter()
            config = JoyfulConfig(
                dataset="synthetic",
                data=str(path),
                modalities=modalities,
                epochs=args.epochs,
                learning_rate=args.learning_rate,
            )
            metrics = train(config, RunOptions(device="cpu"), log=lambda message: None)
            rows[f"joyful_{modalities}"] = {
                "dev_weighted_f1": metrics["best_dev_weighted_f1"],
                "best_epoch": metrics["best_epoch"],
                "seconds": round(time.perf_counter() - started, 1),
            }
            print(f"JOYFUL [{modalities}]: {rows[f'joyful_{modalities}']}", flush=True)
    print(f"\n{'model':<28}{'dev wF1':>10}")
    for name, row in rows.items():
        print(f"{name:<28}{row['dev_weighted_f1']:>10.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
