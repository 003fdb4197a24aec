"""The result store of the tuning service: best configs, their history and per-trial tables.

Layout under the results folder (``--results-dir``, default ``results``; see
``results/README.md``)::

    best_configs/<dataset>.json           best config found so far; `train.py --config` reads it
    best_configs/<dataset>.history.jsonl  every document offered for publishing, kept or not
    best_configs/<dataset>.json.lock      inter-process lock of the two files above
    trials/<dataset>.csv                  one row per trial of the latest study
    studies/<dataset>.json                the latest study's record (`StudyRecord`)
    studies/<dataset>--data-<sha>--space-<sha>.journal
                                          the Optuna storage of every search on that data and space
    references/<dataset>/<key>.json, .npz the reference runs of a data file (records, probabilities)
    reports/<dataset>.md, reports/<dataset>/
                                          the report and its figures, written after every search
    models/<dataset>/<search>/<member>-seed-<n>.pt, .json
                                          the published ensemble: each member's model file (not in
                                          git: large; `python -m joyful.predict --config ...
                                          --rebuild` recreates them) and its config (`train.py
                                          --config` re-runs the member)
    mlflow.db, mlflow-artifacts/, wandb/  MLflow's and W&B's runs, when a search tracks

`ResultStore` names every one of these paths; no other code builds them.

Every file is written atomically (temporary file, fsync, rename) and the best-config
file is only ever replaced under the lock, after re-reading it (compare-and-swap).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import filelock

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import atomic_write, atomic_write_json
from tune.common import utc_now
from tune.records import BEST_CONFIG_KIND, BEST_CONFIG_SCHEMA_VERSION, BestConfig, StudyRecord
from tune.records._best_file import PublishOutcome, decide, read_current
from tune.records._files import append_line, corrupt_path, write_rows_csv

__all__ = [
    "BEST_CONFIG_KIND",
    "BEST_CONFIG_SCHEMA_VERSION",
    "TRIAL_COLUMNS",
    "PublishOutcome",
    "ResultStore",
]

TRIAL_COLUMNS = (
    "trial_id",
    "status",
    "epochs_run",
    "folds_run",
    "best_dev_weighted_f1",
    "best_epoch",
    "stop_reason",
    "error",
)


class ResultStore:
    """Best configs, their history and per-trial tables of every data set under one folder."""

    def __init__(
        self, results_dir: str | Path = "results", *, lock_timeout_s: float = 60.0
    ) -> None:
        if lock_timeout_s < 0:
            raise ValueError(f"The value of `lock_timeout_s` is {lock_timeout_s}, but must be >= 0")
        self.results_dir = Path(results_dir)
        self.lock_timeout_s = lock_timeout_s

    # --- paths -----------------------------------------------------------
    def best_config_path(self, dataset: str) -> Path:
        return self.results_dir / "best_configs" / f"{check_dataset_name(dataset)}.json"

    def history_path(self, dataset: str) -> Path:
        return self.results_dir / "best_configs" / f"{check_dataset_name(dataset)}.history.jsonl"

    def trials_csv_path(self, dataset: str) -> Path:
        return self.results_dir / "trials" / f"{check_dataset_name(dataset)}.csv"

    def report_path(self, dataset: str) -> Path:
        return self.results_dir / "reports" / f"{check_dataset_name(dataset)}.md"

    def figures_dir(self, dataset: str) -> Path:
        """The report's PNGs (linked from the report by relative path)."""
        return self.report_path(dataset).with_suffix("")

    def interactive_report_path(self, dataset: str) -> Path:
        return self.report_path(dataset).with_suffix(".html")

    def studies_dir(self) -> Path:
        return self.results_dir / "studies"

    def study_path(self, dataset: str) -> Path:
        return self.studies_dir() / f"{check_dataset_name(dataset)}.json"

    def optuna_storage_path(self, dataset: str, data_sha256: str, space_fingerprint: str) -> Path:
        """The Optuna journal of every search of `dataset` on this data and this space (12 hex
        digits of each)."""
        name = check_dataset_name(dataset)
        return self.studies_dir() / (
            f"{name}--data-{data_sha256[:12]}--space-{space_fingerprint[:12]}.journal"
        )

    def journal_of(self, study: StudyRecord) -> Path | str:
        """The Optuna storage of a study record read from this store: its journal beside it,
        whatever folder it was moved to, or the database URL it recorded."""
        if "://" in study.optuna_storage:
            return study.optuna_storage
        return self.studies_dir() / Path(study.optuna_storage).name

    def optuna_storages(self, dataset: str) -> list[Path]:
        """Every Optuna journal of `dataset`, whatever data and space it was searched on."""
        return sorted(
            self.studies_dir().glob(f"{check_dataset_name(dataset)}--data-*--space-*.journal")
        )

    def model_path(
        self, dataset: str, search: str, member: str, seed: int, fold: int | None = None
    ) -> Path:
        """The model file of one ensemble member: configuration `member` of search `search`'s
        confirmation at `seed` (and `fold`) (its config file is beside it, `.json` for `.pt`)."""
        tail = f"-fold-{fold}" if fold else ""
        return (
            self.results_dir
            / "models"
            / check_dataset_name(dataset)
            / check_dataset_name(search)
            / f"{check_dataset_name(member)}-seed-{seed}{tail}.pt"
        )

    def references_path(self, dataset: str, key: str) -> Path:
        """The runs of a data set's references (tune/runner/references.py) under `key` (their data
        and configs): `.json` their records, `.npz` beside it their class probabilities."""
        return self.results_dir / "references" / check_dataset_name(dataset) / f"{key}.json"

    def models_dir(self, dataset: str) -> Path:
        """Every published ensemble's model files of `dataset`, one folder per search."""
        return self.results_dir / "models" / check_dataset_name(dataset)

    def remove_model_files(self, dataset: str, search: str) -> int:
        """Remove the model files (.pt) of search `search`'s ensemble of `dataset` (its member
        configs stay: each re-runs its member); returns the bytes freed."""
        folder = self.models_dir(dataset) / check_dataset_name(search)
        freed = 0
        for path in sorted(folder.glob("*.pt")) if folder.is_dir() else []:
            freed += path.stat().st_size
            path.unlink()
        return freed

    def mlflow_uri(self) -> str:
        # MLflow 3 refuses new file stores; SQLite is its local default.
        return f"sqlite:///{(self.results_dir / 'mlflow.db').resolve()}"

    def mlflow_artifacts_dir(self) -> Path:
        """Where the local MLflow store keeps its runs' artifacts (best config, report)."""
        return self.results_dir / "mlflow-artifacts"

    def wandb_dir(self) -> Path:
        """Where W&B writes its (offline) runs."""
        return self.results_dir / "wandb"

    def datasets_with_studies(self) -> list[str]:
        return sorted(p.stem for p in self.studies_dir().glob("*.json"))

    # --- studies -------------------------------------------------------------
    def write_study(self, study: StudyRecord) -> Path:
        return atomic_write_json(self.study_path(study.dataset), study.to_dict())

    def read_study(self, dataset: str) -> StudyRecord:
        path = self.study_path(dataset)
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: not found; run tune/search.py for {dataset} first") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: cannot read it ({exc})") from None
        return StudyRecord.read(document, source=str(path))

    def check_writable(self) -> None:
        """Create the folders and prove each is writable, before any trial spends compute."""
        for folder in ("best_configs", "trials", "reports", "studies"):
            directory = self.results_dir / folder
            try:
                directory.mkdir(parents=True, exist_ok=True)
                handle, probe = tempfile.mkstemp(
                    dir=directory, prefix=".write-test.", suffix=".tmp"
                )
                os.close(handle)
                os.unlink(probe)
            except OSError as exc:
                raise UserError(
                    f"--results-dir {self.results_dir} is not writable: {exc.strerror or exc} "
                    f"({exc.filename or directory}); pass a folder you can write to"
                ) from None

    # --- best configs ------------------------------------------------------
    def read_best(self, dataset: str) -> BestConfig | None:
        """The current best config, or None when there is none yet."""
        path = self.best_config_path(dataset)
        current, problem = read_current(path)
        if problem is not None:
            raise UserError(f"{path}: {problem}")
        return current

    @contextlib.contextmanager
    def _locked(self, dataset: str, action: str) -> Iterator[None]:
        """Hold the data set's inter-process lock; lock timeouts and I/O errors become one-line
        UserErrors."""
        path = self.best_config_path(dataset)
        lock_path = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(lock_path, timeout=self.lock_timeout_s):
                yield
        except filelock.Timeout:
            raise UserError(
                f"could not lock {lock_path} within {self.lock_timeout_s:g} s: another process is "
                f"publishing a best config for {dataset!r}; try again when it has finished"
            ) from None
        except OSError as exc:
            raise UserError(f"cannot {action} {path}: {exc}") from None

    def publish_best(
        self, dataset: str, best: BestConfig | dict, *, overwrite: bool = False
    ) -> PublishOutcome:
        """Make `best` the best config of `dataset` if it beats the current one (or `overwrite`).

        Decided under an inter-process lock after re-reading the current file, so two searches
        finishing together cannot lose the better result. The document is appended to the history
        whether it is published or not. A dict is validated into a BestConfig.
        """
        best = best if isinstance(best, BestConfig) else BestConfig.from_dict(best)
        if best.dataset != dataset:
            raise ValueError(
                f"best-config document is for data set {best.dataset!r}, not {dataset!r}"
            )
        with self._locked(dataset, "publish the best config to"):
            path = self.best_config_path(dataset)
            current, problem = read_current(path)
            written, reason = decide(current, problem, best, overwrite)
            if written and problem is not None and path.exists():
                # Keep an unreadable earlier file for the user to inspect: copy it aside before
                # replacing it.
                aside = corrupt_path(path)
                atomic_write(aside, lambda out: out.write(path.read_bytes()), binary=True)
                reason += f"; moved it to {aside}"
            self._record(dataset, best, written, "published" if written else "kept-earlier", reason)
        return PublishOutcome(
            written=written, reason=reason, path=path, previous=current if problem is None else None
        )

    def update_confirmation(self, dataset: str, confirmed: BestConfig) -> PublishOutcome:
        """Replace the current best config by `confirmed`: the same search's result with its
        confirmation recorded (and `config` set to the confirmed winner).

        Decided under the lock after re-reading the file, by `BestConfig.confirms`: it is replaced
        only while it still holds the result of the same search on the same data. Either way
        `confirmed` goes to the history (outcome ``"confirmed"`` or ``"kept-earlier"``).
        """
        path = self.best_config_path(dataset)
        with self._locked(dataset, "update the best config"):
            current, problem = read_current(path)
            if current is None or problem is not None:
                raise UserError(
                    f"{path}: no valid best config to add the confirmation to "
                    f"({problem or 'file not found'}); run the search first"
                )
            written, reason = confirmed.confirms(current)
            self._record(
                dataset, confirmed, written, "confirmed" if written else "kept-earlier", reason
            )
        return PublishOutcome(written=written, reason=reason, path=path, previous=current)

    def _record(
        self, dataset: str, best: BestConfig, written: bool, outcome: str, reason: str
    ) -> None:
        """Write `best` as the best-config file when `written`, and append it to the history
        (callers hold the lock)."""
        document = best.to_dict()
        if written:
            atomic_write_json(self.best_config_path(dataset), document)
        record = {**document, "outcome": outcome, "reason": reason, "recorded_at": utc_now()}
        append_line(self.history_path(dataset), json.dumps(record))

    def history(self, dataset: str) -> list[dict]:
        """Every document offered for publishing, oldest first, with `outcome`, `reason` and
        `recorded_at`.

        Lines that are not valid JSON (an append cut short by a crash) are skipped with a warning.
        """
        path = self.history_path(dataset)
        try:
            lines = path.read_text().split("\n")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read it ({exc})") from None
        records, skipped = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                skipped.append(number)
        if skipped:
            # Usually an append cut short by a crash; the records around it are still worth reading.
            warnings.warn(
                f"{path}: skipped line(s) {', '.join(map(str, skipped))}: not valid JSON",
                stacklevel=2,
            )
        return records

    def offered(self, dataset: str, search: str) -> tuple[BestConfig, str, str] | None:
        """The latest result search `search` offered for publishing (from the history), with what
        became of it: (best config, outcome, reason); None when it offered none."""
        for record in reversed(self.history(dataset)):
            if (record.get("study") or {}).get("name") != search:
                continue
            try:
                return (
                    BestConfig.from_dict(record),
                    str(record.get("outcome")),
                    str(record.get("reason")),
                )
            except ValueError:
                return None  # a line of another layout: nothing to show
        return None

    # --- trials ----------------------------------------------------------------
    def write_trials_csv(self, dataset: str, rows: list[dict]) -> Path:
        """Write one row per trial: the `TRIAL_COLUMNS`, then every other key as a sorted param
        column (missing values and None as empty cells; lists and dicts as JSON)."""
        return write_rows_csv(self.trials_csv_path(dataset), rows, TRIAL_COLUMNS)
