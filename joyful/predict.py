"""`python -m joyful.predict`: run a published ensemble (or one model) on a data file.

    python -m joyful.predict --config results/best_configs/meld_text.json --data FILE [--out FILE.csv]
    python -m joyful.predict --config results/best_configs/meld_text.json --data FILE --member 0
    python -m joyful.predict --model run/model.pt --data FILE             # a train.py --save-model file
    python -m joyful.predict --config results/best_configs/meld_text.json --rebuild

A best-config file written by a confirmed search lists its ensemble's members (`ensemble.members`:
one model file per confirmation seed, stored beside the results, see README "Predict"). Each member
reads the file's features, scales them with the statistics of its own training data, and gives
class probabilities; the ensemble's prediction is the mean of its members' probabilities. The
output (CSV) has one row per utterance: split, dialogue, position, label, predicted label and the
probability of every class. With labels in the file (the pickle layouts always carry them) every
split is scored (weighted F1, accuracy), for the ensemble and for each member.

A file of another data set is refused with one line and exit status 2: other feature widths, a
label or speaker index the model does not know, or a missing modality. `--rebuild` re-trains the
members whose files are missing, each an exact re-run of its recorded config and seed (what
`train.py --config FILE --seed S --save-model PATH` does), and checks each against its recorded
dev score.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from joyful.config import JoyfulConfig, load_config_file
from joyful.data.batching import DialogueLoader
from joyful.data.dialogues import SPLITS, DialogueData, load_dialogue_data
from joyful.errors import UserError
from joyful.io import atomic_write, atomic_write_json
from joyful.metrics import accuracy, weighted_f1
from joyful.model_file import ModelFile, load_model_file
from joyful.runtime import resolve_device, resolve_precision

__all__ = ["Member", "ensemble_members", "main", "member_probabilities", "predict"]


@dataclass(frozen=True)
class Member:
    """One published model: its file and what the best-config file recorded about it."""

    path: Path
    seed: int
    config: dict[str, Any]
    dev_weighted_f1: float | None


def ensemble_members(config_path: str | Path, document: dict[str, Any]) -> list[Member]:
    """The members a best-config document lists; paths are relative to the document's folder."""
    ensemble = document.get("ensemble")
    if not isinstance(ensemble, dict) or not ensemble.get("members"):
        raise UserError(f"--config {config_path}: no ensemble recorded (only a confirmed search publishes one; "
                        "run tune/confirm.py, or pass --model with a train.py --save-model file)")
    folder = Path(config_path).parent
    return [Member(folder / m["path"], int(m["seed"]), dict(m["config"]), m.get("dev_weighted_f1"))
            for m in ensemble["members"]]


def check_compatible(model: ModelFile, data: DialogueData, where: str) -> None:
    """Refuse a data file the model cannot read: another data set's widths or modalities."""
    widths = data.check_modalities(model.config.modalities)
    if widths != model.modality_dims:
        have = ", ".join(f"{k}={v}" for k, v in widths.items())
        want = ", ".join(f"{k}={v}" for k, v in model.modality_dims.items())
        raise UserError(f"{data.source} has features {have}, but {where} was trained on {want} "
                        f"(data set {model.config.dataset}): a file of another data set?")


@torch.no_grad()
def member_probabilities(model: ModelFile, data: DialogueData, split: str,
                         device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (utterances, classes), labels) of one model on one split, in file order."""
    network = model.build(device)
    precision, _ = resolve_precision(model.config.precision, device)
    loader = DialogueLoader(data.splits[split], model.config.modalities, model.n_speakers,
                            batch_size=model.config.batch_size, wp=model.config.wp, wf=model.config.wf,
                            shuffle=False, device=device, scaler=model.scaler)
    probabilities, labels = [], []
    for batch in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            log_probs = network(batch, contrast=False, reconstruct=False).log_probs.float()
        probabilities.append(log_probs.exp().cpu())
        labels.append(batch.labels.cpu())
    return torch.cat(probabilities).numpy(), torch.cat(labels).numpy()


def predict(models: list[tuple[str, ModelFile]], data: DialogueData, splits: list[str],
            device: torch.device) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
            "utterances": int(len(labels)), "weighted_f1": weighted_f1(labels, predicted),
            "accuracy": accuracy(labels, predicted),
            "members": [{"name": name, "weighted_f1": weighted_f1(labels, p.argmax(axis=1))}
                        for (name, _), p in zip(models, per_member, strict=True)]}
    return probabilities, scores


def write_predictions(path: str | Path, data: DialogueData, probabilities: dict[str, np.ndarray],
                      label_names: tuple[str, ...]) -> Path:
    """One CSV row per utterance: split, dialogue, position, label, predicted and class probabilities."""
    def write(out: Any) -> None:
        writer = csv.writer(out)
        writer.writerow(["split", "dialogue", "position", "label", "predicted", *(f"p_{n}" for n in label_names)])
        for split, probs in probabilities.items():
            row = 0
            for dialogue in data.splits[split]:
                for position, label in enumerate(dialogue.labels):
                    p = probs[row]
                    writer.writerow([split, dialogue.vid, position, label_names[int(label)],
                                     label_names[int(p.argmax())], *(f"{x:.6f}" for x in p)])
                    row += 1

    return atomic_write(path, write)


def rebuild(members: list[Member], dataset_spec: str | None, device: str) -> int:
    """Re-train every member whose file is missing; returns how many were rebuilt."""
    from joyful.run import RunOptions, train

    missing = [m for m in members if not m.path.exists()]
    for index, member in enumerate(missing, start=1):
        config = JoyfulConfig.from_dict(member.config, source=f"ensemble member seed {member.seed}")
        print(f"[{index}/{len(missing)}] re-training member seed {member.seed} -> {member.path} "
              f"({config.epochs} epochs)", flush=True)
        started = time.perf_counter()
        metrics = train(config, RunOptions(device=device, dataset_spec=dataset_spec, save_model=str(member.path)),
                        log=lambda message: print(f"  {message}", flush=True) if message.startswith("epoch") else None)
        same = member.dev_weighted_f1 is None or metrics["best_dev_weighted_f1"] == member.dev_weighted_f1
        print(f"  dev wF1 {metrics['best_dev_weighted_f1']:.4f} (recorded {member.dev_weighted_f1}: "
              f"{'reproduced exactly' if same else 'DIFFERS'}), {time.perf_counter() - started:.0f} s", flush=True)
    if not missing:
        print("every member's model file is present; nothing to rebuild")
    return len(missing)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m joyful.predict", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="best-config JSON with a published ensemble")
    source.add_argument("--model", help="one model file (train.py --save-model)")
    p.add_argument("--data", help="data pickle to predict (either JOYFUL layout)")
    p.add_argument("--split", default="test", choices=(*SPLITS, "all"), help="which split(s) of the file to predict")
    p.add_argument("--member", type=int, help="use only this ensemble member (0-based index)")
    p.add_argument("--out", help="write per-utterance predictions (CSV) here")
    p.add_argument("--scores-out", help="write the scores (JSON) here")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dataset-spec", help="JSON spec of a user-defined data set (for --rebuild)")
    p.add_argument("--rebuild", action="store_true", help="re-train the members whose files are missing, then exit "
                                                           "(or go on to predict when --data is given)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"joyful.predict: error: {exc}", file=sys.stderr)
        return UserError.exit_code


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.config:
        _, document = load_config_file(args.config)
        members = ensemble_members(args.config, document)
        if args.rebuild:
            rebuild(members, args.dataset_spec, args.device)
            if not args.data:
                return 0
        if args.member is not None:
            if not 0 <= args.member < len(members):
                raise UserError(f"--member {args.member}: the ensemble has members 0..{len(members) - 1}")
            members = [members[args.member]]
        absent = [str(m.path) for m in members if not m.path.exists()]
        if absent:
            raise UserError(f"{len(absent)} ensemble member file(s) missing ({absent[0]} ...); recreate them with: "
                            f"python -m joyful.predict --config {args.config} --rebuild")
        models = [(f"seed {m.seed}", load_model_file(m.path)) for m in members]
    else:
        if args.rebuild or args.member is not None:
            raise UserError("--rebuild and --member need --config (an ensemble); --model is one model")
        models = [(Path(args.model).name, load_model_file(args.model))]
    if not args.data:
        raise UserError("--data FILE is required to predict")
    for out in (args.out, args.scores_out):
        if out and Path(out).resolve() == Path(args.data).resolve():
            raise UserError(f"--out/--scores-out {out} is the data file itself; choose another path")
    first = models[0][1]
    data = load_dialogue_data(args.data, first.spec)
    for name, model in models:
        if model.label_names != first.label_names or model.config.modalities != first.config.modalities:
            raise UserError(f"ensemble member {name} predicts other labels or modalities than the first")
        check_compatible(model, data, f"the model ({name})")
    splits = list(SPLITS) if args.split == "all" else [args.split]
    splits = [s for s in splits if data.splits.get(s)]
    if not splits:
        raise UserError(f"{data.source} has no dialogues in --split {args.split}")
    probabilities, scores = predict(models, data, splits, device)
    what = f"ensemble of {len(models)}" if len(models) > 1 else models[0][0]
    for split, score in scores.items():
        members = ", ".join(f"{m['weighted_f1']:.4f}" for m in score["members"])
        print(f"{split}: {score['utterances']} utterances; {what}: weighted F1 {score['weighted_f1']:.4f}, "
              f"accuracy {score['accuracy']:.4f}" + (f" (members: {members})" if len(models) > 1 else ""))
    if args.out:
        print(f"wrote {write_predictions(args.out, data, probabilities, first.label_names)}")
    if args.scores_out:
        atomic_write_json(args.scores_out, {"data": str(data.source), "data_sha256": data.sha256, "models": what,
                                            "same_data_as_training": data.sha256 == first.data_sha256,
                                            "scores": scores})
        print(f"wrote {args.scores_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
