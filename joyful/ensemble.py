"""Ensembles of trained models: the members a best config lists, their class probabilities on a data
file, the ensemble's prediction (the mean of the members' probabilities), and the re-training of
missing members.

The implementation behind `python -m joyful.predict` (joyful/predict.py, which parses its arguments
before importing this module and torch).
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from joyful.config import JoyfulConfig
from joyful.data.batching import DialogueLoader
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import atomic_write
from joyful.metrics import accuracy, weighted_f1
from joyful.model_file import ModelFile

__all__ = [
    "Member",
    "check_compatible",
    "ensemble_members",
    "member_probabilities",
    "predict",
    "rebuild",
    "write_predictions",
]


@dataclass(frozen=True)
class Member:
    """One published model: its file and what the best-config file recorded about it."""

    path: Path
    seed: int
    config: dict[str, Any]
    dev_weighted_f1: float | None  # None for a refit (trained on all of train + dev)
    test_weighted_f1: float | None = None

    @property
    def name(self) -> str:
        if self.config.get("cv_folds") and not self.config.get("cv_fold"):
            return f"seed {self.seed}, refit"
        fold = self.config.get("cv_fold") if self.config.get("cv_folds") else None
        return f"seed {self.seed}" + (f", fold {fold}" if fold else "")


def ensemble_members(config_path: str | Path, document: dict[str, Any]) -> list[Member]:
    """The members a best-config document lists; paths are relative to the document's folder."""
    ensemble = document.get("ensemble")
    if not isinstance(ensemble, dict) or not ensemble.get("members"):
        raise UserError(
            f"--config {config_path}: no ensemble recorded (only a confirmed search publishes one; "
            "run tune/confirm.py, or pass --model with a train.py --save-model file)"
        )
    folder = Path(config_path).parent
    return [
        Member(
            folder / m["path"],
            int(m["seed"]),
            dict(m["config"]),
            m.get("dev_weighted_f1"),
            m.get("test_weighted_f1"),
        )
        for m in ensemble["members"]
    ]


def check_compatible(model: ModelFile, data: DialogueData, where: str) -> None:
    """Refuse a data file the model cannot read: another data set's widths or modalities."""
    widths = data.check_modalities(model.config.modalities)
    if widths != model.modality_dims:
        have = ", ".join(f"{k}={v}" for k, v in widths.items())
        want = ", ".join(f"{k}={v}" for k, v in model.modality_dims.items())
        raise UserError(
            f"{data.source} has features {have}, but {where} was trained on {want} "
            f"(data set {model.config.dataset}): a file of another data set?"
        )


@torch.no_grad()
def member_probabilities(
    model: ModelFile, data: DialogueData, split: str, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (utterances, classes), labels) of one model on one split, in file order."""
    network = model.build(device)
    loader = DialogueLoader(
        data.splits[split],
        model.config.modalities,
        model.n_speakers,
        batch_size=model.config.batch_size,
        wp=model.config.wp,
        wf=model.config.wf,
        shuffle=False,
        device=device,
        scaler=model.scaler,
    )
    probabilities, labels = [], []
    for batch in loader:
        # float32 whatever the model trained at: what the run recorded (Coach.evaluate, exact)
        log_probs = network(batch, contrast=False, reconstruct=False).log_probs.float()
        probabilities.append(log_probs.exp().cpu())
        labels.append(batch.labels.cpu())
    return torch.cat(probabilities).numpy(), torch.cat(labels).numpy()


def predict(
    models: list[tuple[str, ModelFile]], data: DialogueData, splits: list[str], device: torch.device
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Mean class probabilities of `models` per split, and the scores (ensemble and each member)."""
    probabilities: dict[str, np.ndarray] = {}
    scores: dict[str, Any] = {}
    for split in splits:
        per_member = []
        labels = None
        for _, model in models:
            probs, labels = member_probabilities(model, data, split, device)
            per_member.append(probs)
        mean = np.mean(per_member, axis=0)
        probabilities[split] = mean
        predicted = mean.argmax(axis=1)
        scores[split] = {
            "utterances": int(len(labels)),
            "weighted_f1": weighted_f1(labels, predicted),
            "accuracy": accuracy(labels, predicted),
            "members": [
                {"name": name, "weighted_f1": weighted_f1(labels, p.argmax(axis=1))}
                for (name, _), p in zip(models, per_member, strict=True)
            ],
        }
    return probabilities, scores


def write_predictions(
    path: str | Path,
    data: DialogueData,
    probabilities: dict[str, np.ndarray],
    label_names: tuple[str, ...],
) -> Path:
    """One CSV row per utterance: split, dialogue, position, label, predicted and class
    probabilities."""

    def write(out: Any) -> None:
        writer = csv.writer(out)
        writer.writerow(
            [
                "split",
                "dialogue",
                "position",
                "label",
                "predicted",
                *(f"p_{n}" for n in label_names),
            ]
        )
        for split, probs in probabilities.items():
            row = 0
            for dialogue in data.splits[split]:
                for position, label in enumerate(dialogue.labels):
                    p = probs[row]
                    writer.writerow(
                        [
                            split,
                            dialogue.vid,
                            position,
                            label_names[int(label)],
                            label_names[int(p.argmax())],
                            *(f"{x:.6f}" for x in p),
                        ]
                    )
                    row += 1

    return atomic_write(path, write)


def rebuild(
    members: list[Member],
    dataset_spec: str | None,
    device: str,
    data: dict[str, Any] | None = None,
    precision: str | None = None,
) -> int:
    """Re-train every member whose file is missing, each on the data the best config records
    (`data`: its `DataRef` facts; another file is refused) at its recorded precision (refused where
    it is not native, unless `precision` overrides it: a non-exact rebuild); returns how many were
    rebuilt."""
    from joyful.run import RunOptions, train

    missing = [m for m in members if not m.path.exists()]
    for index, member in enumerate(missing, start=1):
        config = JoyfulConfig.from_dict(member.config, source=f"ensemble member {member.name}")
        if precision:
            config = config.replace(precision=precision)
        print(
            f"[{index}/{len(missing)}] re-training member {member.name} -> "
            f"{os.path.normpath(member.path)} ({config.epochs} epochs)",
            flush=True,
        )
        started = time.perf_counter()
        options = RunOptions(
            device=device,
            dataset_spec=dataset_spec,
            save_model=str(member.path),
            expected_data=data,
            same_data=True,
            exact_rerun=precision is None,
            config_file=f"ensemble member {member.path.name}",
        )
        metrics = train(
            config,
            options,
            log=lambda message: (
                print(f"  {message}", flush=True) if message.startswith("epoch") else None
            ),
        )
        # A refit has no dev split: its test score (evaluated once, in float32) is the check.
        split, score, recorded = (
            ("test", metrics["test"]["weighted_f1"], member.test_weighted_f1)
            if member.dev_weighted_f1 is None
            else ("dev", metrics["best_dev_weighted_f1"], member.dev_weighted_f1)
        )
        same = recorded is None or score == recorded
        print(
            f"  {split} wF1 {score:.4f} (recorded {recorded}: "
            f"{'reproduced exactly' if same else 'DIFFERS'}), {time.perf_counter() - started:.0f} "
            "s",
            flush=True,
        )
    if not missing:
        print("every member's model file is present; nothing to rebuild")
    return len(missing)
