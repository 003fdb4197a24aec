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
import sys
from pathlib import Path

from joyful.cli_parser import Parser
from joyful.config import load_config_file
from joyful.errors import UserError

SPLITS = ("train", "dev", "test")  # joyful.data.dialogues.SPLITS, without importing numpy for --help

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m joyful.predict", description=__doc__.split("\n\n")[0],
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
    from joyful.data.dialogues import load_dialogue_data
    from joyful.ensemble import check_compatible, ensemble_members, predict, rebuild, write_predictions
    from joyful.io import atomic_write_json
    from joyful.model_file import load_model_file
    from joyful.runtime import resolve_device

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
