"""The options of `tune/search.py` and `tune/confirm.py`, typed: one frozen dataclass field per
flag.

Each field holds its flag's default, and in its metadata the help text, the group and how argparse
reads it (type, choices, repeatable). The parser is generated from the fields (tune/flags.py), and
so is the command that resumes a search (`SearchOptions.resume_argv`). Options check their flag
combinations themselves and refuse a wrong one with a `UserError` that names the flags.

Nothing heavy is imported here: the commands answer --help, --version and argument errors before
torch, Ray or Optuna load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO
from tune.flags import (
    ALWAYS,
    NEVER,
    PER_DATASET,
    SPACE_SECTIONS,
    Options,
    flag,
    options_parser,
    space_flags,
    spelling,
)
from tune.stats.candidates import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_CONFIRM_SEEDS_CV,
    DEFAULT_CONFIRM_TOP,
)
from tune.tracking import WANDB_MODES, Tracking

__all__ = ["ConfirmOptions", "SearchOptions", "options_parser", "space_flags"]

WHERE = "where and how"
CONFIRMATION = "confirmation (re-train the best configurations and the baseline over fresh seeds)"
TRACKING = "experiment tracking (optional extra: pip install 'joyful-tune[tracking]')"


@dataclass(frozen=True)
class SearchOptions(Options):
    """The flags of `tune/search.py`."""

    dataset: tuple[str, ...] = flag(
        help="data set to tune (repeatable; each gets its own study, space and result)",
        repeatable=True,
        resume=PER_DATASET,
    )
    data: tuple[str, ...] = flag(
        (),
        "data pickle; once per --dataset, in the same order (default: "
        "./data/<dataset>/data_<dataset>.pkl)",
        repeatable=True,
        resume=PER_DATASET,
    )
    space: tuple[str, ...] = flag(
        (),
        "search-space YAML; once per --dataset (default: search_spaces/<dataset>.yaml)",
        repeatable=True,
        resume=PER_DATASET,
    )
    dataset_spec: str | None = flag(
        None, "JSON spec of a user-defined data set (see train.py --dataset-spec)"
    )
    # The space file's `budget` and `strategy` settings given on the command line (their flags are
    # generated from the fields of Budget and Strategy, `space_flags`), by field name.
    overrides: tuple[tuple[str, Any], ...] = flag((), "", generated=True, resume=NEVER)
    # --- where and how
    address: str | None = flag(
        None,
        "join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)",
        group=WHERE,
    )
    storage_path: str = flag(
        str(REPO / "ray_results"),
        "experiment storage: local folder, shared file system or pyarrow URI (s3://, "
        "gs://); must be shared by all nodes of a cluster (default: ray_results in the repository)",
        group=WHERE,
        resume=ALWAYS,
    )
    name: str | None = flag(
        None,
        "experiment name (default: search-<UTC time>); reuse it with --resume",
        group=WHERE,
        resume=ALWAYS,
    )
    resume: bool = flag(
        False, "continue the experiment --name in --storage-path", group=WHERE, resume=NEVER
    )
    results_dir: str = flag(
        str(REPO / "results"),
        "where best configs, trial tables and reports go",
        group=WHERE,
        resume=ALWAYS,
    )
    optuna_storage: str | None = flag(
        None,
        "keep the Optuna study in this database (sqlite:///path.db, postgresql://host/db, ...) "
        "instead of the "
        "journal file beside the results; the URL is recorded in the result files, so keep "
        "passwords out of it",
        group=WHERE,
        metavar="URL",
    )
    seed: int = flag(0, "seed of the sampler", group=WHERE, type=int, resume=ALWAYS)
    warm_start: str | None = flag(
        None,
        "start the sampler from the completed and early-stopped trials of earlier searches of "
        "the same data and space "
        "(not re-run; default: the journal in --results-dir/studies, or the Optuna journal file "
        "given) and propose the data set's earlier winners first",
        group=WHERE,
        const="auto",
        metavar="JOURNAL",
        resume=NEVER,
    )
    max_failures: int = flag(
        2,
        "retries of a failing trial from its last checkpoint",
        group=WHERE,
        type=int,
        resume=ALWAYS,
    )
    overwrite: bool = flag(
        False, "replace an existing best config even if it is better or for other data", group=WHERE
    )
    no_rerun: bool = flag(
        False,
        "skip re-training the winner (then no test metrics and no reproduction check)",
        group=WHERE,
    )
    confirm_top: int = flag(
        DEFAULT_CONFIRM_TOP,
        f"best configurations to confirm besides the baseline (0 = no confirmation; default "
        f"{DEFAULT_CONFIRM_TOP})",
        group=CONFIRMATION,
        type=int,
        resume=ALWAYS,
    )
    confirm_seeds: int | None = flag(
        None,
        f"seeds per configuration, at least 2: base seed + 1000 + i (default "
        f"{DEFAULT_CONFIRM_SEEDS} on the dev split; {DEFAULT_CONFIRM_SEEDS_CV} with "
        "cross-validation, "
        "where each seed runs every fold of a fresh fold assignment)",
        group=CONFIRMATION,
        type=int,
    )
    dashboard_host: str = flag(
        "127.0.0.1", "interface of a locally started Ray dashboard", group=WHERE
    )
    quiet: bool = flag(
        False, "no Ray progress tables (one progress line per finished trial remains)", group=WHERE
    )
    # --- experiment tracking (tune/tracking)
    mlflow: bool = flag(
        False,
        "log every trial to MLflow (default store: <results-dir>/mlflow.db, SQLite, no server "
        "needed)",
        group=TRACKING,
    )
    mlflow_uri: str | None = flag(
        None, "MLflow tracking URI (a server or a store); implies --mlflow", group=TRACKING
    )
    wandb_project: str | None = flag(None, "log every trial to this W&B project", group=TRACKING)
    wandb_mode: str = flag(
        "online",
        "offline: write W&B runs under <results-dir>/wandb without network (wandb sync uploads "
        "them)",
        group=TRACKING,
        choices=WANDB_MODES,
    )
    write_space: str | None = flag(
        None,
        "write the default search space for --dataset to FILE (a starting file to edit) and exit",
        metavar="FILE",
        resume=NEVER,
    )

    def __post_init__(self) -> None:
        if self.write_space is not None:
            if len(self.dataset) != 1:
                raise UserError("--write-space writes the space of one --dataset; give exactly one")
            return  # writing a space file runs no search: the search's flags play no part
        if len(set(self.dataset)) != len(self.dataset):
            raise UserError("--dataset lists a data set twice")
        if self.max_failures < -1:
            raise UserError(
                f"--max-failures is {self.max_failures}, but must be >= -1 (-1 = retry forever)"
            )
        if self.confirm_top < 0 or (
            self.confirm_top > 0 and self.confirm_seeds is not None and self.confirm_seeds < 1
        ):
            raise UserError(
                f"--confirm-top is {self.confirm_top} and --confirm-seeds {self.confirm_seeds}, "
                "but they must be >= 0 and >= 1 (--confirm-top 0 turns confirmation off)"
            )
        if self.warm_start and self.resume:
            raise UserError(
                "--warm-start starts a new search; a resumed one continues with what it had"
            )
        if self.wandb_project is None and self.wandb_mode != "online":
            raise UserError("--wandb-mode goes with --wandb-project; name the project to log to")
        if self.name is not None:
            check_dataset_name(self.name)
        for name, values in (("--data", self.data), ("--space", self.space)):
            if values and len(values) != len(self.dataset):
                raise UserError(
                    f"{name} given {len(values)} time(s) for {len(self.dataset)} --dataset; give "
                    "it once per data set"
                )

    def datasets(self) -> list[tuple[str, str | None, str | None]]:
        """(data set, its --data or None, its --space or None), in the order of --dataset."""
        return [
            (dataset, self.data[i] if self.data else None, self.space[i] if self.space else None)
            for i, dataset in enumerate(self.dataset)
        ]

    def section_overrides(self, section: str) -> dict[str, Any]:
        """The flags given for the space file's `section` (budget, strategy), by field: they replace
        its values."""
        kind = next(kind for name, _, kind in SPACE_SECTIONS if name == section)
        names = {f.name for f in dataclasses.fields(kind)}
        return {name: value for name, value in self.overrides if name in names}

    @property
    def tracking(self) -> Tracking:
        """The experiment trackers asked for (tune/tracking)."""
        return Tracking(
            self.results_dir, self.mlflow, self.mlflow_uri, self.wandb_project, self.wandb_mode
        )

    def resume_argv(self, name: str) -> list[str]:
        """The arguments that continue this search, named `name`: the data sets with their data and
        space, the other values a resume needs (given, always written, or changed from their
        defaults), then --resume."""
        fields = dataclasses.fields(self)
        argv: list[str] = []
        for index in range(len(self.dataset)):
            for f in fields:
                values = getattr(self, f.name)
                if f.metadata.get("resume") == PER_DATASET and values:
                    argv += [spelling(f.name), values[index]]
        named = dataclasses.replace(self, name=name)
        rest = [f for f in fields if f.metadata.get("resume") not in (PER_DATASET, NEVER)]

        def order(f: dataclasses.Field) -> int:
            # Values given for flags without a default, those always written, changed values, then
            # switches.
            if f.metadata.get("resume") == ALWAYS:
                return 1
            return 0 if f.default is None else 3 if f.default is False else 2

        for f in sorted(rest, key=order):  # stable: field order within each kind
            value = getattr(named, f.name)
            if f.metadata.get("resume") == ALWAYS or value != f.default:
                argv += [spelling(f.name)] if f.default is False else [spelling(f.name), str(value)]
        for (
            name,
            value,
        ) in self.overrides:  # a resumed search checks them against what it started with
            argv += [spelling(name), str(value)]
        return [*argv, "--resume"]


@dataclass(frozen=True)
class ConfirmOptions(Options):
    """The flags of `tune/confirm.py`."""

    dataset: str = flag(help="data set of a finished search")
    results_dir: str = flag(str(REPO / "results"), "results folder of the search")
    data: str | None = flag(None, "data pickle (default: the path recorded in the best config)")
    dataset_spec: str | None = flag(None, "JSON spec of a user-defined data set")
    confirm_top: int = flag(
        DEFAULT_CONFIRM_TOP,
        "best configurations of the search to confirm besides the baseline",
        type=int,
    )
    confirm_seeds: int | None = flag(
        None, "seeds per configuration (base seed + 1000 + i; default: as the search)", type=int
    )
    cpus_per_trial: float | None = flag(None, "CPUs per run (default: the search's)", type=float)
    gpus_per_trial: float | None = flag(None, "GPUs per run (default: the search's)", type=float)
    address: str | None = flag(
        None, "join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)"
    )
    storage_path: str = flag(
        str(REPO / "ray_results"), "Ray experiment storage (shared by all nodes)"
    )
    name: str | None = flag(None, "experiment name (default: confirm-<dataset>-<UTC time>)")
    quiet: bool = flag(False, "no Ray progress tables")

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if self.name is not None:
            check_dataset_name(self.name)

    def resources(self) -> dict[str, float]:
        """The per-run resources given (by Budget field), which replace the search's."""
        return {
            name: getattr(self, name)
            for name in ("cpus_per_trial", "gpus_per_trial")
            if getattr(self, name) is not None
        }
