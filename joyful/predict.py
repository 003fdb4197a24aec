"""`python -m joyful.predict`: run a published ensemble (or one model) on a data file.

    python -m joyful.predict --config results/best_configs/meld_text.json [--data FILE] [--out F]
    python -m joyful.predict --config results/best_configs/meld_text.json --data FILE --member 0
    python -m joyful.predict --model run/model.pt --data FILE     # a train.py --save-model file
    python -m joyful.predict --config results/best_configs/meld_text.json --rebuild

A best-config file written by a confirmed search lists its ensemble's members (`ensemble.members`:
one model file per confirmation run - per seed, and per fold with cross-validation - stored beside
the results, see docs/PREDICT.md). Each member reads the file's features, scales them with the
statistics of its own training data, and gives class probabilities; the ensemble's prediction is the
mean of its members' probabilities. The output (CSV) has one row per utterance: split, dialogue,
position, label, predicted label and the probability of every class. With labels in the file (the
pickle layouts always carry them) every split is scored (weighted F1, accuracy), for the ensemble
and for each member.

A file of another data set is refused with one line and exit status 2: other feature widths, a label
or speaker index the model does not know, or a missing modality. `--rebuild` re-trains the members
whose files are missing, each an exact re-run of its recorded config and seed (what `train.py
--config FILE --seed S --save-model PATH` does) on the data file the best config records (another
file is refused: its sha256 must match) at the recorded precision, and checks each against its
recorded dev score (a refit: its test score). A member recorded in bf16 is refused on a machine
without native bf16 unless `--precision fp32` asks for a non-exact rebuild.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from joyful.cli_parser import Parser
from joyful.config import load_config_file
from joyful.errors import UserError

SPLITS = (
    "train",
    "dev",
    "test",
)  # joyful.data.dialogues.SPLITS, without importing numpy for --help

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m joyful.predict",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="best-config JSON with a published ensemble")
    source.add_argument("--model", help="one model file (train.py --save-model)")
    p.add_argument(
        "--data",
        help="data pickle to predict (either JOYFUL layout; with --config default: the file it "
        "records)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=(*SPLITS, "all"),
        help="which split(s) of the file to predict",
    )
    p.add_argument("--member", type=int, help="use only this ensemble member (0-based index)")
    p.add_argument("--out", help="write per-utterance predictions (CSV) here")
    p.add_argument("--scores-out", help="write the scores (JSON) here")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dataset-spec", help="JSON spec of a user-defined data set (for --rebuild)")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="re-train the members whose files are missing, then exit "
        "(or go on to predict when --data is given)",
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        help="with --rebuild: train at this precision instead of the recorded one (fp32 on a "
        "machine without native bf16: a non-exact rebuild)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    flags = vars(build_parser().parse_args(argv))
    try:
        return run(**flags)
    except UserError as exc:
        print(f"python -m joyful.predict: error: {exc}", file=sys.stderr)
        return UserError.exit_code


def run(
    *,
    config: str | None,
    model: str | None,
    data: str | None,
    split: str,
    member: int | None,
    out: str | None,
    scores_out: str | None,
    device: str,
    dataset_spec: str | None,
    rebuild: bool,
    precision: str | None = None,
) -> int:
    """Predict `data` with the ensemble of the best-config file `config` (or its `member`), or with
    one `model` file; the values are the flags of the same names (`build_parser` says what each
    means)."""
    # torch and numpy: only once the arguments are fine (--help and argument errors answer at once).
    from joyful.data.dialogues import load_dialogue_data
    from joyful.ensemble import check_compatible, ensemble_members, predict, write_predictions
    from joyful.ensemble import rebuild as rebuild_members
    from joyful.io import atomic_write_json, display_path, recorded_path
    from joyful.model_file import load_model_file
    from joyful.runtime import resolve_device

    target = resolve_device(device)
    if config:
        _, document = load_config_file(config)
        members = ensemble_members(config, document)
        if precision and not rebuild:
            raise UserError(
                "--precision goes with --rebuild (it sets the precision members are re-trained at)"
            )
        if rebuild:
            rebuild_members(
                members, dataset_spec, device, data=document.get("data"), precision=precision
            )
            if not data:
                return 0
        if member is not None:
            if not 0 <= member < len(members):
                raise UserError(
                    f"--member {member}: the ensemble has members 0..{len(members) - 1}"
                )
            members = [members[member]]
        absent = [str(m.path) for m in members if not m.path.exists()]
        if absent:
            raise UserError(
                f"{len(absent)} ensemble member file(s) missing ({absent[0]} ...); recreate them "
                f"with: python -m joyful.predict --config {config} --rebuild"
            )
        models = [(m.name, load_model_file(m.path)) for m in members]
    else:
        if rebuild or member is not None or precision:
            raise UserError(
                "--rebuild, --member and --precision need --config (an ensemble); --model is one "
                "model"
            )
        models = [(Path(model).name, load_model_file(model))]
    if not data and config:
        recorded = (document.get("data") or {}).get("path")
        if not recorded or not recorded_path(recorded).exists():
            raise UserError(
                f"--data FILE is required: {config} records the data file {recorded or '(none)'}, "
                "which is not here"
            )
        data = str(recorded_path(recorded))
        print(f"data: {display_path(data)} (the file {config} records; --data predicts another)")
    if not data:
        raise UserError("--data FILE is required to predict")
    for written in (out, scores_out):
        if written and Path(written).resolve() == Path(data).resolve():
            raise UserError(
                f"--out/--scores-out {written} is the data file itself; choose another path"
            )
    first = models[0][1]
    dialogues = load_dialogue_data(data, first.spec)
    for name, loaded in models:
        if (
            loaded.label_names != first.label_names
            or loaded.config.modalities != first.config.modalities
        ):
            raise UserError(
                f"ensemble member {name} predicts other labels or modalities than the first"
            )
        check_compatible(loaded, dialogues, f"the model ({name})")
    splits = list(SPLITS) if split == "all" else [split]
    splits = [part for part in splits if dialogues.splits.get(part)]
    if not splits:
        raise UserError(f"{dialogues.source} has no dialogues in --split {split}")
    probabilities, scores = predict(models, dialogues, splits, target)
    what = f"ensemble of {len(models)}" if len(models) > 1 else models[0][0]
    for part, score in scores.items():
        each = ", ".join(f"{m['weighted_f1']:.4f}" for m in score["members"])
        print(
            f"{part}: {score['utterances']} utterances; {what}: weighted F1 "
            f"{score['weighted_f1']:.4f}, "
            f"accuracy {score['accuracy']:.4f}" + (f" (members: {each})" if len(models) > 1 else "")
        )
    if out:
        print(f"wrote {write_predictions(out, dialogues, probabilities, first.label_names)}")
    if scores_out:
        atomic_write_json(
            scores_out,
            {
                "data": str(dialogues.source),
                "data_sha256": dialogues.sha256,
                "models": what,
                "same_data_as_training": dialogues.sha256 == first.data_sha256,
                "scores": scores,
            },
        )
        print(f"wrote {scores_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
