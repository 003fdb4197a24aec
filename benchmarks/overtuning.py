"""Overtuning: does a search publish settings that do worse on unseen data than a user gets untuned?

Overtuning (Schneider, Bisch & Feurer, AutoML 2025) is a tuned configuration that scores better on the data it
was selected on and worse on new data than the default; it concentrates on small data and single holdout splits.
This benchmark makes IEMOCAP-sized draws of MELD - `train` + `dev` dialogues sampled (seeded) from MELD's own
train and dev splits, with MELD's official test split - and on each draw runs the product's whole search twice
with the same budget and space: once scoring trials on the draw's small dev split (`holdout`), once by
cross-validation over its train + dev (`cv`). Each search confirms its winner and measures its two references
(the defaults as `train.py` runs them, and the strong untuned setting; trained once per draw, reused by the
second arm) and publishes. Per draw and arm the benchmark reads back the published configuration's test
weighted F1 (the mean over its confirmation runs), the published model's (its ensemble), the references' and
the paired comparisons of the published model with each.

Goals: cv's published configuration at least as good as the strong untuned setting on test on at least 4 of
5 draws, and a higher mean test than holdout's.

    python -m benchmarks --sections overtuning                   # 5 draws (about an hour on 2 cores)
    python -m benchmarks --sections overtuning --quick           # 2 draws, a smaller budget
    python -m benchmarks --sections overtuning --overtuning-arms cv   # the first goal only
"""

from __future__ import annotations

import json
import pickle
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks.common import REPO

SPACE = Path(__file__).resolve().parent / "spaces" / "overtuning.yaml"
ARMS = ("holdout", "cv")


def write_draw(source: Path, destination: Path, seed: int, train: int, dev: int) -> Path:
    """A draw of `source` (a processed-layout pickle): `train` and `dev` dialogues sampled without replacement from
    its train and dev splits (the split's first dialogues when it holds fewer), its test split whole."""
    from joyful.data.unpickle import restricted_load

    splits = restricted_load(source.read_bytes(), source=str(source))
    rng = np.random.default_rng(seed)

    def sample(items: list, count: int) -> list:
        chosen = sorted(rng.choice(len(items), size=min(count, len(items)), replace=False))
        return [items[i] for i in chosen]

    drawn = {
        "train": sample(splits["train"], train),
        "dev": sample(splits["dev"], dev),
        "test": splits["test"],
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_bytes(pickle.dumps(drawn, protocol=4))
    return destination


def arm_space(folder: Path, arm: str, folds: int, overrides: dict[str, Any], dataset: str) -> Path:
    """The benchmark's space with the arm's resampling (and the budget/fixed overrides of a smaller run)."""
    document = yaml.safe_load(SPACE.read_text())
    document["dataset"] = dataset
    document["resampling"] = {"kind": "cv", "folds": folds} if arm == "cv" else "holdout"
    for key in ("budget", "fixed"):
        document[key] = {**document[key], **overrides.get(key, {})}
    path = folder / f"{arm}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def run_arm(
    data: Path, space: Path, root: Path, dataset: str, seed: int, timeout: float
) -> dict[str, Any]:
    """One search (with its confirmation) through the CLI, as a user runs it; what it published."""
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        dataset,
        "--data",
        str(data),
        "--space",
        str(space),
        "--results-dir",
        str(root / "results"),
        "--storage-path",
        str(root / "ray"),
        "--name",
        root.name,
        "--quiet",
        "--no-rerun",
        "--confirm-top",
        "1",
        "--seed",
        str(seed),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise RuntimeError(f"the {root.name} search failed with status {done.returncode}:\n{tail}")
    best = json.loads((root / "results" / "best_configs" / f"{dataset}.json").read_text())
    confirmation = best["confirmation"]
    winner = next(c for c in confirmation["configurations"] if c["label"] == confirmation["winner"])
    references = {r["label"]: r for r in best["references"]["runs"]}
    untuned = next((r for label, r in references.items() if label.startswith("strong")), None)
    defaults = next((r for label, r in references.items() if label.startswith("defaults")), None)

    def against(label: dict[str, Any] | None) -> dict[str, Any] | None:
        """The published model's paired test comparison with a reference."""
        if label is None:
            return None
        return next(
            (
                c
                for c in best["comparisons"]
                if c["name"] == f"published model vs {label['label']}" and c["split"] == "test"
            ),
            None,
        )

    return {
        "seconds": seconds,
        "published": confirmation["winner"],
        "tie": confirmation["tie"],
        "searched": best["searched"],
        "published_dev": winner["dev_weighted_f1"]["mean"],
        "published_test": winner["test_weighted_f1"]["mean"],
        "ensemble_test": best["ensemble"]["test_weighted_f1"] if best.get("ensemble") else None,
        "untuned_test": untuned["test_weighted_f1"]["mean"] if untuned else None,
        "defaults_test": defaults["test_weighted_f1"]["mean"] if defaults else None,
        "published_vs_untuned_test": against(untuned),
        "published_vs_defaults_test": against(defaults),
        "reference_seconds": sum(r.get("wall_seconds") or 0.0 for r in references.values()),
        "references_reused": all(r.get("reused") for r in references.values()),
    }


def measure_overtuning(
    source: Path,
    workdir: Path,
    *,
    draws: int,
    train: int = 120,
    dev: int = 12,
    folds: int = 5,
    dataset: str = "meld_text",
    overrides: dict[str, Any] | None = None,
    timeout: float = 3600.0,
    arms: tuple[str, ...] = ARMS,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every draw, each of `arms` (both by default; `("cv",)` answers the first goal alone, for about
    two thirds of the time); the per-draw table and the goals' figures."""
    unknown = set(arms) - set(ARMS)
    if unknown or not arms:
        raise ValueError(f"overtuning arms {arms!r}: choose from {', '.join(ARMS)}")
    arms = tuple(a for a in ARMS if a in arms)  # holdout first: it trains the references
    rows = []
    for draw in range(draws):
        data = write_draw(
            source, workdir / f"draw{draw}" / "data.pkl", seed=draw, train=train, dev=dev
        )
        row: dict[str, Any] = {"draw": draw}
        for arm in arms:
            log(f"  overtuning: draw {draw + 1}/{draws}, {arm} ...")
            space = arm_space(data.parent, arm, folds, overrides or {}, dataset)
            # The references do not depend on the search: the second arm takes the first's runs,
            # as a user's second search of the same data would.
            first = data.parent / f"{arms[0]}-draw{draw}" / "results" / "references"
            if arm != arms[0] and first.is_dir():
                shutil.copytree(first, data.parent / f"{arm}-draw{draw}" / "results" / "references")
            row[arm] = result = run_arm(
                data, space, data.parent / f"{arm}-draw{draw}", dataset, seed=draw, timeout=timeout
            )
            untuned = result["untuned_test"]
            log(
                f"  overtuning: draw {draw + 1}/{draws}, {arm}: published {result['published']!r}, test wF1 "
                f"{result['published_test']:.4f} against the strong untuned setting's "
                f"{'(none)' if untuned is None else f'{untuned:.4f}'} ({result['seconds'] / 60:.1f} min)"
            )
        rows.append(row)

    def at_least(arm: str, reference: str) -> int:
        return sum(
            r[arm][reference] is not None and r[arm]["published_test"] >= r[arm][reference]
            for r in rows
        )

    def mean(arm: str, key: str) -> float | None:
        values = [r[arm][key] for r in rows if r[arm][key] is not None]
        return statistics.fmean(values) if values else None

    return {
        "draws": rows,
        "arms": list(arms),
        "train": train,
        "dev": dev,
        "folds": folds,
        "source": str(source),
        "at_least_untuned": {arm: at_least(arm, "untuned_test") for arm in arms},
        "at_least_defaults": {arm: at_least(arm, "defaults_test") for arm in arms},
        "mean_published_test": {arm: mean(arm, "published_test") for arm in arms},
        "mean_ensemble_test": {arm: mean(arm, "ensemble_test") for arm in arms},
        "mean_untuned_test": {arm: mean(arm, "untuned_test") for arm in arms},
        "mean_defaults_test": {arm: mean(arm, "defaults_test") for arm in arms},
        "seconds": {arm: sum(r[arm]["seconds"] for r in rows) for arm in arms},
    }
