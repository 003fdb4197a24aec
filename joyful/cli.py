"""`train.py` / `joyful-train`: the training CLI, built from :class:`JoyfulConfig`.

Every config field is a flag (``--encoder_loss_weight`` or ``--encoder-loss-weight``).
The original JOYFUL flags either work or are refused with a reason.
Precedence: defaults < ``--config FILE.json`` < explicit flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

from joyful.cli_parser import Parser
from joyful.config import JoyfulConfig, field_names, field_type, load_config_file
from joyful.datasets import resolve_dataset
from joyful.errors import UserError
from joyful.io import check_data_file, recorded_path

# Original flags that never had an effect (or belonged to Comet); refused, not ignored.
REFUSED_FLAGS = {
    "optimizer2": "the original built a second optimizer and never used it",
    "n_speakers": "the speaker count comes from the data-set registry or --dataset-spec",
    "encoding": "unused in the original",
    "trans_encoding": "unused in the original",
    "num_bases": "unused in the original (RGCNConv had no bases)",
    "use_pe_in_seqcontext": "unused in the original",
    "tuning": "Comet hyper-parameter hook; use tune/search.py",
    "tag": "Comet experiment tag; use tune/search.py --name",
}


class _Refuse(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        parser.error(f"{option_string} is not supported: {REFUSED_FLAGS[self.dest]}")


class _Set(argparse.Action):
    """A switch that sets a config field to a fixed value (e.g. --use_smooth_l1)."""

    def __init__(self, option_strings, dest, const, **kwargs):  # noqa: ANN001
        super().__init__(option_strings, dest, nargs=0, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        setattr(namespace, self.dest, self.const)


def _spellings(name: str) -> list[str]:
    dashed = name.replace("_", "-")
    return [f"--{name}"] + ([f"--{dashed}"] if dashed != name else [])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="train.py",
        description="Train JOYFUL (multimodal fusion + graph contrastive learning) for ERC.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    groups = {
        name: parser.add_argument_group(f"{name} settings")
        for name in ("data", "model", "loss", "train")
    }
    for f in dataclasses.fields(JoyfulConfig):
        kind = field_type(f.name)
        group = groups[f.metadata["group"]]
        help_text = f"{f.metadata['help']} (default: {f.default})"
        if kind is bool:
            group.add_argument(
                *_spellings(f.name),
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        else:
            group.add_argument(
                *_spellings(f.name),
                dest=f.name,
                type=kind,
                choices=f.metadata.get("choices"),
                metavar=f.name.upper() if not f.metadata.get("choices") else None,
                help=help_text,
            )
    user = parser.add_argument_group("the fusion extension switches")
    user.add_argument(
        "--use_hierarchical_fusion",
        "--use-hierarchical-fusion",
        dest="fusion",
        action=_Set,
        const="hierarchical",
        help="same as --fusion hierarchical",
    )
    user.add_argument(
        "--use_smooth_l1",
        "--use-smooth-l1",
        dest="reconstruction_loss",
        action=_Set,
        const="smooth_l1",
        help="same as --reconstruction_loss smooth_l1",
    )
    user.add_argument(
        "--optimizer1",
        dest="optimizer",
        choices=("adam", "adamw", "sgd"),
        help="original name of --optimizer",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--config", help="config JSON (plain or a best-config file from tune/search.py)"
    )
    run.add_argument(
        "--metrics-out",
        "--metrics_out",
        dest="metrics_out",
        help="write the run's metrics JSON here",
    )
    run.add_argument(
        "--checkpoint-dir",
        "--checkpoint_dir",
        dest="checkpoint_dir",
        help="save last.pt every epoch; a later run with the same config resumes from it",
    )
    run.add_argument(
        "--save-model",
        "--save_model",
        dest="save_model",
        help="write the selected model (weights, feature statistics, config) here, for "
        "joyful.predict",
    )
    run.add_argument(
        "--from_begin",
        "--from-begin",
        dest="from_begin",
        action="store_true",
        help="start from scratch even if --checkpoint-dir holds a checkpoint",
    )
    run.add_argument(
        "--model_ckpt",
        "--model-ckpt",
        dest="model_ckpt",
        help="initialise weights from this checkpoint",
    )
    run.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    run.add_argument(
        "--dataset-spec",
        "--dataset_spec",
        dest="dataset_spec",
        help="JSON spec of a user-defined data set: name, label_names, n_speakers",
    )
    run.add_argument("--quiet", "-q", action="store_true", help="print only the final line")
    for name in REFUSED_FLAGS:
        parser.add_argument(
            *_spellings(name), dest=name, action=_Refuse, nargs="?", help=argparse.SUPPRESS
        )
    return parser


def resolve_config(values: dict[str, Any]) -> tuple[JoyfulConfig, dict[str, Any] | None]:
    """Defaults, then the config file, then the flags given on the command line; and the data facts
    the config file recorded (None without one, or when it records none). `values` are the parsed
    flags: the config's fields and the run's own (--config, --device, ...), which are not settings
    of the model."""
    config_fields = set(field_names())
    flags = {k: v for k, v in values.items() if k in config_fields}
    if flags.get(
        "data"
    ):  # typed here: relative to the working folder (a relative `data` in a file is the repo's)
        flags["data"] = str(Path(flags["data"]).expanduser().resolve())
    base: dict[str, Any] = {}
    recorded = None
    if values.get("config"):
        file_config, document = load_config_file(values["config"])
        if "dataset" in flags and flags["dataset"] != file_config.dataset:
            raise UserError(
                f"--config {values['config']} is for data set {file_config.dataset!r}, "
                f"but --dataset is {flags['dataset']!r}; drop one of them"
            )
        base = file_config.to_dict()
        recorded = document.get("data") if isinstance(document.get("data"), dict) else None
    return JoyfulConfig.from_dict({**base, **flags}, source="command line"), recorded


def check_writable(path: str | None, flag: str) -> None:
    if not path:
        return
    folder = Path(path).parent if flag != "--checkpoint-dir" else Path(path)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise UserError(f"{flag} {path}: {probe} is not a writable folder")


def main(argv: list[str] | None = None) -> int:
    values = vars(build_parser().parse_args(argv))
    quiet = values.get("quiet", False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        config, recorded_data = resolve_config(values)
        # Every check that needs no torch comes first: a mistake is one line within a second.
        resolve_dataset(config.dataset, values.get("dataset_spec"))
        if config.data:
            check_data_file(recorded_path(config.data))
        for note in config.inactive_settings():
            print(f"warning: {note}", file=sys.stderr)
        check_writable(values.get("metrics_out"), "--metrics-out")
        check_writable(values.get("checkpoint_dir"), "--checkpoint-dir")
        check_writable(values.get("save_model"), "--save-model")
        from joyful.run import RunOptions, train  # torch: only once the arguments hold

        options = RunOptions(
            device=values.get("device", "auto"),
            checkpoint_dir=values.get("checkpoint_dir"),
            from_begin=values.get("from_begin", False),
            metrics_out=values.get("metrics_out"),
            dataset_spec=values.get("dataset_spec"),
            init_checkpoint=values.get("model_ckpt"),
            progress=not quiet and sys.stderr.isatty(),
            save_model=values.get("save_model"),
            expected_data=recorded_data,
            config_file=values.get("config"),
            exact_rerun=bool(values.get("config")) and "precision" not in values,
        )
        document = train(config, options, log=(lambda message: None) if quiet else print)
    except UserError as exc:
        print(f"train.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    except RuntimeError as exc:
        from joyful.coach import NonFiniteLossError

        if not isinstance(exc, NonFiniteLossError):
            raise
        print(f"train.py: training failed: {exc}", file=sys.stderr)
        return 1
    if quiet:
        test = document["test"]
        print(
            f"best dev wF1 {document['best_dev_weighted_f1']:.4f} (epoch "
            f"{document['best_epoch']}), test wF1 {test['weighted_f1']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
