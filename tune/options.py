"""The options of `tune/search.py` and `tune/confirm.py`, typed: one frozen dataclass field per flag.

Each field holds its flag's default, and in its metadata the help text, the group and how argparse reads it
(type, choices, repeatable). The parser is generated from the fields (`options_parser`), and so is the command
that resumes a search (`SearchOptions.resume_argv`). Options check their flag combinations themselves and
refuse a wrong one with a `UserError` that names the flags.

Nothing heavy is imported here: the commands answer --help, --version and argument errors before torch,
Ray or Optuna load.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from joyful.cli_parser import Parser
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO
from tune.space import Budget, Strategy
from tune.stats.candidates import DEFAULT_CONFIRM_SEEDS, DEFAULT_CONFIRM_SEEDS_CV, DEFAULT_CONFIRM_TOP
from tune.tracking import WANDB_MODES, Tracking

__all__ = ["ConfirmOptions", "SPACE_SECTIONS", "SearchOptions", "options_parser", "space_flags"]

BUDGET = "budget (defaults come from the space file's `budget`)"
STRATEGY = "strategy (defaults come from the space file's `strategy`)"
# The space-file sections whose every field is also a flag of the same name: (section, group, dataclass).
SPACE_SECTIONS = (("budget", BUDGET, Budget), ("strategy", STRATEGY, Strategy))
WHERE = "where and how"
CONFIRMATION = "confirmation (re-train the best configurations and the baseline over fresh seeds)"
TRACKING = "experiment tracking (optional extra: pip install 'joyful-tune[tracking]')"

# How a flag goes into the command that resumes a search; without `resume`: when it differs from its default.
PER_DATASET = "per dataset"  # one value per --dataset, written beside it
ALWAYS = "always"  # written even at its default: a later version's default must not change a resumed search
NEVER = "never"  # a resumed search continues with what it had


def _flag(default: Any = dataclasses.MISSING, help: str = "", *, group: str | None = None, **metadata: Any) -> Any:
    """An options field: `default` (none: a required flag; False: a switch), and what the parser needs.

    `metadata` may hold type, choices, metavar, const (the value of the flag given without one),
    repeatable (the flag may be given several times; the field is a tuple) and resume (PER_DATASET,
    ALWAYS or NEVER).
    """
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **metadata})


def space_flags() -> list[tuple[str, tuple[dataclasses.Field, ...]]]:
    """(argument group, fields) of the space-file settings the command line may override."""
    return [(group, dataclasses.fields(kind)) for _, group, kind in SPACE_SECTIONS]


def _spelling(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def options_parser(options: type, prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of an options dataclass: one flag per field, in field order, in the fields' groups."""
    parser = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str | None, Any] = {None: parser}
    for f in dataclasses.fields(options):
        meta = f.metadata
        if meta.get("generated"):
            for group, fields in space_flags() if f.name == "overrides" else ():
                section = parser.add_argument_group(group)
                for setting in fields:
                    keys = {key: setting.metadata[key] for key in ("type", "choices", "metavar")
                            if key in setting.metadata}
                    section.add_argument(_spelling(setting.name), default=None, help=setting.metadata["help"],
                                         dest=f"space_{setting.name}", **keys)
            continue
        if meta["group"] not in groups:
            groups[meta["group"]] = parser.add_argument_group(meta["group"])
        keys: dict[str, Any] = {"help": meta["help"]}
        if f.default is False:
            keys["action"] = "store_true"
        else:
            keys.update({key: meta[key] for key in ("type", "choices", "metavar", "const") if key in meta})
            if "const" in meta:
                keys["nargs"] = "?"
            if meta.get("repeatable"):
                keys["action"] = "append"
            if f.default is dataclasses.MISSING:
                keys["required"] = True
            else:
                keys["default"] = list(f.default) if meta.get("repeatable") else f.default
        groups[meta["group"]].add_argument(_spelling(f.name), **keys)
    return parser


Options = TypeVar("Options", bound="_Options")


class _Options:
    """What the commands' options share: reading them from the parser their fields generated."""

    @classmethod
    def from_namespace(cls: type[Options], namespace: argparse.Namespace) -> Options:
        """The options a parsed command line holds (repeated flags as tuples), checked."""
        values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if not f.metadata.get("generated")}
        if any(f.name == "overrides" for f in dataclasses.fields(cls)):
            values["overrides"] = tuple((f.name, getattr(namespace, f"space_{f.name}"))
                                        for _, fields in space_flags() for f in fields
                                        if getattr(namespace, f"space_{f.name}") is not None)
        return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})


@dataclass(frozen=True)
class SearchOptions(_Options):
    """The flags of `tune/search.py`."""

    dataset: tuple[str, ...] = _flag(
        help="data set to tune (repeatable; each gets its own study, space and result)", repeatable=True,
        resume=PER_DATASET)
    data: tuple[str, ...] = _flag(
        (), "data pickle; once per --dataset, in the same order (default: ./data/<dataset>/data_<dataset>.pkl)",
        repeatable=True, resume=PER_DATASET)
    space: tuple[str, ...] = _flag(
        (), "search-space YAML; once per --dataset (default: search_spaces/<dataset>.yaml)", repeatable=True,
        resume=PER_DATASET)
    dataset_spec: str | None = _flag(None, "JSON spec of a user-defined data set (see train.py --dataset-spec)")
    # The space file's `budget` and `strategy` settings given on the command line (their flags are generated
    # from the fields of Budget and Strategy, `space_flags`), by field name.
    overrides: tuple[tuple[str, Any], ...] = _flag((), "", generated=True, resume=NEVER)
    # --- where and how
    address: str | None = _flag(
        None, "join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)", group=WHERE)
    storage_path: str = _flag(
        str(REPO / "ray_results"), "experiment storage: local folder, shared file system or pyarrow URI (s3://, "
        "gs://); must be shared by all nodes of a cluster (default: ray_results in the repository)", group=WHERE,
        resume=ALWAYS)
    name: str | None = _flag(None, "experiment name (default: search-<UTC time>); reuse it with --resume",
                             group=WHERE, resume=ALWAYS)
    resume: bool = _flag(False, "continue the experiment --name in --storage-path", group=WHERE, resume=NEVER)
    results_dir: str = _flag(str(REPO / "results"), "where best configs, trial tables and reports go", group=WHERE,
                             resume=ALWAYS)
    optuna_storage: str | None = _flag(
        None, "keep the Optuna study in this database (sqlite:///path.db, postgresql://host/db, ...) instead of the "
        "journal file beside the results; the URL is recorded in the result files, so keep passwords out of it",
        group=WHERE, metavar="URL")
    seed: int = _flag(0, "seed of the TPE sampler", group=WHERE, type=int, resume=ALWAYS)
    warm_start: str | None = _flag(
        None, "start TPE from the completed and ASHA-stopped trials of earlier searches of the same data and space "
        "(not re-run; default: the journal in --results-dir/studies, or the Optuna journal file given) and propose "
        "the data set's earlier winners first", group=WHERE, const="auto", metavar="JOURNAL", resume=NEVER)
    max_failures: int = _flag(2, "retries of a failing trial from its last checkpoint", group=WHERE, type=int,
                              resume=ALWAYS)
    overwrite: bool = _flag(False, "replace an existing best config even if it is better or for other data",
                            group=WHERE)
    no_rerun: bool = _flag(False, "skip re-training the winner (then no test metrics and no reproduction check)",
                           group=WHERE)
    confirm_top: int = _flag(
        DEFAULT_CONFIRM_TOP, f"best configurations to confirm besides the baseline (0 = no confirmation; default "
        f"{DEFAULT_CONFIRM_TOP})", group=CONFIRMATION, type=int, resume=ALWAYS)
    confirm_seeds: int | None = _flag(
        None, f"seeds per configuration: base seed + 1000 + i (default {DEFAULT_CONFIRM_SEEDS} on the dev split, at "
        f"least 2; {DEFAULT_CONFIRM_SEEDS_CV} with cross-validation, where each seed runs every fold)",
        group=CONFIRMATION, type=int)
    dashboard_host: str = _flag("127.0.0.1", "interface of a locally started Ray dashboard", group=WHERE)
    quiet: bool = _flag(False, "no Ray progress tables (one progress line per finished trial remains)", group=WHERE)
    # --- experiment tracking (tune/tracking)
    mlflow: bool = _flag(
        False, "log every trial to MLflow (default store: <results-dir>/mlflow.db, SQLite, no server needed)",
        group=TRACKING)
    mlflow_uri: str | None = _flag(None, "MLflow tracking URI (a server or a store); implies --mlflow",
                                   group=TRACKING)
    wandb_project: str | None = _flag(None, "log every trial to this W&B project", group=TRACKING)
    wandb_mode: str = _flag(
        "online", "offline: write W&B runs under <results-dir>/wandb without network (wandb sync uploads them)",
        group=TRACKING, choices=WANDB_MODES)
    write_space: str | None = _flag(
        None, "write the default search space for --dataset to FILE (a starting file to edit) and exit",
        metavar="FILE", resume=NEVER)

    def __post_init__(self) -> None:
        if self.write_space is not None:
            if len(self.dataset) != 1:
                raise UserError("--write-space writes the space of one --dataset; give exactly one")
            return  # writing a space file runs no search: the search's flags play no part
        if len(set(self.dataset)) != len(self.dataset):
            raise UserError("--dataset lists a data set twice")
        if self.max_failures < -1:
            raise UserError(f"--max-failures is {self.max_failures}, but must be >= -1 (-1 = retry forever)")
        if self.confirm_top < 0 or (self.confirm_top > 0 and self.confirm_seeds is not None and self.confirm_seeds < 1):
            raise UserError(f"--confirm-top is {self.confirm_top} and --confirm-seeds {self.confirm_seeds}, but "
                            "they must be >= 0 and >= 1 (--confirm-top 0 turns confirmation off)")
        if self.warm_start and self.resume:
            raise UserError("--warm-start starts a new search; a resumed one continues with what it had")
        if self.wandb_project is None and self.wandb_mode != "online":
            raise UserError("--wandb-mode goes with --wandb-project; name the project to log to")
        if self.name is not None:
            check_dataset_name(self.name)
        for flag, values in (("--data", self.data), ("--space", self.space)):
            if values and len(values) != len(self.dataset):
                raise UserError(f"{flag} given {len(values)} time(s) for {len(self.dataset)} --dataset; give it "
                                "once per data set")

    def datasets(self) -> list[tuple[str, str | None, str | None]]:
        """(data set, its --data or None, its --space or None), in the order of --dataset."""
        return [(dataset, self.data[i] if self.data else None, self.space[i] if self.space else None)
                for i, dataset in enumerate(self.dataset)]

    def section_overrides(self, section: str) -> dict[str, Any]:
        """The flags given for the space file's `section` (budget, strategy), by field: they replace its values."""
        kind = next(kind for name, _, kind in SPACE_SECTIONS if name == section)
        names = {f.name for f in dataclasses.fields(kind)}
        return {name: value for name, value in self.overrides if name in names}

    @property
    def tracking(self) -> Tracking:
        """The experiment trackers asked for (tune/tracking)."""
        return Tracking(self.results_dir, self.mlflow, self.mlflow_uri, self.wandb_project, self.wandb_mode)

    def resume_argv(self, name: str) -> list[str]:
        """The arguments that continue this search, named `name`: the data sets with their data and space, the
        other values a resume needs (given, always written, or changed from their defaults), then --resume."""
        fields = dataclasses.fields(self)
        argv: list[str] = []
        for index in range(len(self.dataset)):
            for f in fields:
                values = getattr(self, f.name)
                if f.metadata.get("resume") == PER_DATASET and values:
                    argv += [_spelling(f.name), values[index]]
        named = dataclasses.replace(self, name=name)
        rest = [f for f in fields if f.metadata.get("resume") not in (PER_DATASET, NEVER)]

        def order(f: dataclasses.Field) -> int:
            # Values given for flags without a default, those always written, changed values, then switches.
            if f.metadata.get("resume") == ALWAYS:
                return 1
            return 0 if f.default is None else 3 if f.default is False else 2

        for f in sorted(rest, key=order):  # stable: field order within each kind
            value = getattr(named, f.name)
            if f.metadata.get("resume") == ALWAYS or value != f.default:
                argv += [_spelling(f.name)] if f.default is False else [_spelling(f.name), str(value)]
        for name, value in self.overrides:  # a resumed search checks them against what it started with
            argv += [_spelling(name), str(value)]
        return [*argv, "--resume"]


@dataclass(frozen=True)
class ConfirmOptions(_Options):
    """The flags of `tune/confirm.py`."""

    dataset: str = _flag(help="data set of a finished search")
    results_dir: str = _flag(str(REPO / "results"), "results folder of the search")
    data: str | None = _flag(None, "data pickle (default: the path recorded in the best config)")
    dataset_spec: str | None = _flag(None, "JSON spec of a user-defined data set")
    confirm_top: int = _flag(DEFAULT_CONFIRM_TOP, "best configurations of the search to confirm besides the baseline",
                             type=int)
    confirm_seeds: int | None = _flag(None, "seeds per configuration (base seed + 1000 + i; default: as the search)",
                               type=int)
    cpus_per_trial: float | None = _flag(None, "CPUs per run (default: the search's)", type=float)
    gpus_per_trial: float | None = _flag(None, "GPUs per run (default: the search's)", type=float)
    address: str | None = _flag(None, "join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)")
    storage_path: str = _flag(str(REPO / "ray_results"), "Ray experiment storage (shared by all nodes)")
    name: str | None = _flag(None, "experiment name (default: confirm-<dataset>-<UTC time>)")
    quiet: bool = _flag(False, "no Ray progress tables")

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if self.name is not None:
            check_dataset_name(self.name)

    def resources(self) -> dict[str, float]:
        """The per-run resources given (by Budget field), which replace the search's."""
        return {name: getattr(self, name) for name in ("cpus_per_trial", "gpus_per_trial")
                if getattr(self, name) is not None}
