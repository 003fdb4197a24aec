"""The result store of the tuning service: best configs, their history and per-trial tables.

Layout under the results folder (``--results-dir``, default ``results``; see ``results/README.md``)::

    best_configs/<dataset>.json           best config found so far; `train.py --config` reads it
    best_configs/<dataset>.history.jsonl  every document offered for publishing, kept or not
    best_configs/<dataset>.json.lock      inter-process lock of the two files above
    trials/<dataset>.csv                  one row per trial of the latest study
    studies/<dataset>.json                the latest study's record (`StudyRecord`): base config, budget, trials
    studies/<dataset>--data-<sha>--space-<sha>.journal
                                          the Optuna storage of every search on that data and space
    reports/<dataset>.md, reports/<dataset>/  the report and its figures, written after every search
    models/<dataset>/<search>/<member>-seed-<n>.pt, .json
                                          the published ensemble: each member's model file (not in git: large;
                                          `python -m joyful.predict --config ... --rebuild` recreates them) and
                                          its config (`train.py --config` re-runs the member)
    mlflow.db, mlflow-artifacts/, wandb/  MLflow's tracking store and artifacts, W&B's runs, when a search tracks

`ResultStore` names every one of these paths; no other code builds them.

Every file is written atomically (temporary file, fsync, rename) and the best-config
file is only ever replaced under the lock, after re-reading it (compare-and-swap).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import atomic_write, atomic_write_json
from tune.common import utc_now
from tune.records import BEST_CONFIG_KIND, BEST_CONFIG_SCHEMA_VERSION, BestConfig, StudyRecord

__all__ = [
    "BEST_CONFIG_KIND",
    "BEST_CONFIG_SCHEMA_VERSION",
    "TRIAL_COLUMNS",
    "PublishOutcome",
    "ResultStore",
    "validate_best_document",
]

TRIAL_COLUMNS = ("trial_id", "status", "epochs_run", "best_dev_weighted_f1", "best_epoch", "stop_reason", "error")


@dataclass
class PublishOutcome:
    """What `ResultStore.publish_best` did, and why (the reason is shown to the user)."""

    written: bool  # True when the new document is now the best-config file
    reason: str
    path: Path
    previous: BestConfig | None  # the best config found before, when it was readable


def validate_best_document(document: Any) -> BestConfig:
    """The document as a `BestConfig`, or ValueError naming its first missing or invalid key."""
    return BestConfig.from_dict(document)


class ResultStore:
    """Best configs, their history and per-trial tables of every data set under one folder."""

    def __init__(self, results_dir: str | Path = "results", *, lock_timeout_s: float = 60.0) -> None:
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
        """The Optuna journal of every search of `dataset` on this data and this space (12 hex digits of each)."""
        return (self.studies_dir()
                / f"{check_dataset_name(dataset)}--data-{data_sha256[:12]}--space-{space_fingerprint[:12]}.journal")

    def journal_of(self, study: StudyRecord) -> Path | str:
        """The Optuna storage of a study record read from this store: its journal beside it, whatever folder it was
        moved to, or the database URL it recorded."""
        if "://" in study.optuna_storage:
            return study.optuna_storage
        return self.studies_dir() / Path(study.optuna_storage).name

    def optuna_storages(self, dataset: str) -> list[Path]:
        """Every Optuna journal of `dataset`, whatever data and space it was searched on."""
        return sorted(self.studies_dir().glob(f"{check_dataset_name(dataset)}--data-*--space-*.journal"))

    def model_path(self, dataset: str, search: str, member: str, seed: int) -> Path:
        """The model file of one ensemble member: configuration `member` of search `search`'s confirmation at
        `seed` (its config file is beside it, `.json` for `.pt`)."""
        return (self.results_dir / "models" / check_dataset_name(dataset) / check_dataset_name(search)
                / f"{check_dataset_name(member)}-seed-{seed}.pt")

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
        return StudyRecord.from_dict(document, source=str(path))

    def check_writable(self) -> None:
        """Create the folders and prove each is writable, before any trial spends compute."""
        for folder in ("best_configs", "trials", "reports", "studies"):
            directory = self.results_dir / folder
            try:
                directory.mkdir(parents=True, exist_ok=True)
                handle, probe = tempfile.mkstemp(dir=directory, prefix=".write-test.", suffix=".tmp")
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
        current, problem = _read_current(path)
        if problem is not None:
            raise UserError(f"{path}: {problem}")
        return None if current is None else BestConfig.from_dict(current)

    @contextlib.contextmanager
    def _locked(self, dataset: str, action: str) -> Iterator[None]:
        """Hold the data set's inter-process lock; lock timeouts and I/O errors become one-line UserErrors."""
        path = self.best_config_path(dataset)
        lock_path = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(lock_path, timeout=self.lock_timeout_s):
                yield
        except filelock.Timeout:
            raise UserError(
                f"could not lock {lock_path} within {self.lock_timeout_s:g} s: another process is publishing "
                f"a best config for {dataset!r}; try again when it has finished"
            ) from None
        except OSError as exc:
            raise UserError(f"cannot {action} {path}: {exc}") from None

    def publish_best(self, dataset: str, best: BestConfig | dict, *, overwrite: bool = False) -> PublishOutcome:
        """Make `best` the best config of `dataset` if it beats the current one (or `overwrite`).

        Decided under an inter-process lock after re-reading the current file, so two
        searches finishing together cannot lose the better result. The document is
        appended to the history whether it is published or not. A dict is validated into a BestConfig.
        """
        document = (best if isinstance(best, BestConfig) else BestConfig.from_dict(best)).to_dict()
        if document["dataset"] != dataset:
            raise ValueError(f"best-config document is for data set {document['dataset']!r}, not {dataset!r}")
        with self._locked(dataset, "publish the best config to"):
            outcome = self._publish_locked(dataset, document, overwrite)
        return outcome

    def _publish_locked(self, dataset: str, document: dict, overwrite: bool) -> PublishOutcome:
        path = self.best_config_path(dataset)
        current, problem = _read_current(path)
        written, reason = _decide(current, problem, document, overwrite)
        if written and problem is not None and path.exists():
            # Keep an unreadable earlier file for the user to inspect: copy it aside before replacing it.
            aside = _corrupt_path(path)
            atomic_write(aside, lambda out: out.write(path.read_bytes()), binary=True)
            reason += f"; moved it to {aside}"
        if written:
            atomic_write_json(path, document)
        now = utc_now()
        record = {
            **document,
            "outcome": "published" if written else "kept-earlier",
            "reason": reason,
            "recorded_at": now,
        }
        _append_line(self.history_path(dataset), json.dumps(record))
        previous = BestConfig.from_dict(current) if current is not None and problem is None else None
        return PublishOutcome(written=written, reason=reason, path=path, previous=previous)

    def update_confirmation(self, dataset: str, confirmed: BestConfig) -> PublishOutcome:
        """Replace the current best config by `confirmed`: the same search's result with its confirmation
        recorded (and `config` set to the confirmed winner).

        Decided under the lock after re-reading the file: it is replaced only while it still holds the
        result of the same search (`study.name`) on the same data (`data.sha256`); otherwise (a newer
        search published in between, or other data) it is kept. Either way `confirmed` goes to the
        history (outcome ``"confirmed"`` or ``"kept-earlier"``).
        """
        path = self.best_config_path(dataset)
        document = confirmed.to_dict()
        with self._locked(dataset, "update the best config"):
            current, problem = _read_current(path)
            if current is None or problem is not None:
                raise UserError(
                    f"{path}: no valid best config to add the confirmation to "
                    f"({problem or 'file not found'}); run the search first"
                )
            written, reason = _decide_confirmation(current, confirmed.data["sha256"], confirmed.study["name"])
            if written:
                atomic_write_json(path, document)
            record = {
                **document,
                "outcome": "confirmed" if written else "kept-earlier",
                "reason": reason,
                "recorded_at": utc_now(),
            }
            _append_line(self.history_path(dataset), json.dumps(record))
        return PublishOutcome(written=written, reason=reason, path=path, previous=BestConfig.from_dict(current))

    def rewrite_best(self, dataset: str, best: BestConfig, expected_written_at: str) -> bool:
        """Replace the best config by `best`, the same result in an upgraded form (`python -m tune.migrate`),
        under the lock and only while the file still holds the document written at `expected_written_at`."""
        path = self.best_config_path(dataset)
        with self._locked(dataset, "upgrade the best config"):
            current, problem = _read_current(path)
            if current is None or problem is not None or current.get("written_at") != expected_written_at:
                return False
            atomic_write_json(path, best.to_dict())
        return True

    def history(self, dataset: str) -> list[dict]:
        """Every document offered for publishing, oldest first, with `outcome`, `reason` and `recorded_at`.

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
            warnings.warn(f"{path}: skipped line(s) {', '.join(map(str, skipped))}: not valid JSON", stacklevel=2)
        return records

    # --- trials ----------------------------------------------------------------
    def write_trials_csv(self, dataset: str, rows: list[dict]) -> Path:
        """Write one row per trial: the `TRIAL_COLUMNS`, then every other key as a sorted param column.

        Missing values and None are written as empty cells; lists and dicts as JSON.
        """
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or "trial_id" not in row:
                raise ValueError(f"trial row {index} must be a dict with a 'trial_id' key, got {row!r}")
        params = sorted({key for row in rows for key in row} - set(TRIAL_COLUMNS))
        columns = [*TRIAL_COLUMNS, *params]

        def write(out: Any) -> None:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(row.get(column)) for column in columns])

        return atomic_write(self.trials_csv_path(dataset), write)


# --- helpers -------------------------------------------------------------------
def _read_current(path: Path) -> tuple[dict | None, str | None]:
    """(document, None) when valid, (None, None) when absent, (raw or None, problem) otherwise."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read it ({exc})"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at line {exc.lineno})"
    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(version, int) and version > BEST_CONFIG_SCHEMA_VERSION:
        return document, f"written by a newer joyful-tune (schema_version {version}); upgrade joyful-tune"
    try:
        validate_best_document(document)
    except ValueError as exc:
        return None, f"not a valid best-config file ({exc})"
    return document, None


def _decide(current: dict | None, problem: str | None, new: dict, overwrite: bool) -> tuple[bool, str]:
    """Whether `new` replaces the current best-config file, and the reason shown to the user."""
    if current is None and problem is None:
        return True, "no earlier result"
    if problem is not None and current is None:
        return True, f"earlier file was {problem}"
    if problem is not None:  # a document from a newer joyful-tune: never replace it silently
        if overwrite:
            return True, f"overwrite requested; earlier file was {problem}"
        return (
            False,
            f"kept earlier result: it was {problem}; pass --overwrite to replace it (this result is kept in history)",
        )
    old_metric, new_metric = current["metric"], new["metric"]
    old_sha, new_sha = current["data"]["sha256"], new["data"]["sha256"]
    if old_sha != new_sha:
        difference = f"earlier result is for other data (sha256 {old_sha[:12]}… vs {new_sha[:12]}…)"
    elif (old_metric["name"], old_metric["mode"]) != (new_metric["name"], new_metric["mode"]):
        difference = (
            f"earlier result uses another metric ({old_metric['name']}/{old_metric['mode']} "
            f"vs {new_metric['name']}/{new_metric['mode']})"
        )
    else:
        difference = None
    if difference is not None:
        if overwrite:
            return True, f"overwrite requested; {difference} — replaced, earlier kept in history"
        return (
            False,
            f"kept earlier result: {difference}; pass --overwrite to replace it (this result is kept in history)",
        )
    old, value, mode = old_metric["value"], new_metric["value"], new_metric["mode"]
    better = value > old if mode == "max" else value < old
    if better:
        sign = ">" if mode == "max" else "<"
        reason = f"better than earlier result: {value:.6g} {sign} {old:.6g} ({new_metric['name']}, {mode})"
        if current.get("confirmation") and not new.get("confirmation"):
            # Said, not refused: the search's own choice (--confirm-top 0); the earlier one stays in the history.
            reason += ("; note: the earlier result was confirmed over seeds and this one is a single unconfirmed "
                       "trial - confirm it with tune/confirm.py")
        return True, reason
    if overwrite:
        return True, f"overwrite requested (earlier {old:.6g}, this {value:.6g} {new_metric['name']})"
    sign = ">=" if mode == "max" else "<="
    return (
        False,
        f"kept earlier result: {old:.6g} {sign} {value:.6g} on the same data and metric ({new_metric['name']}, {mode})",
    )


def _decide_confirmation(current: dict, data_sha256: str, study_name: str) -> tuple[bool, str]:
    """Whether a confirmation of search `study_name` on data `data_sha256` may update the current file."""
    if current["data"]["sha256"] != data_sha256:
        return False, (
            f"kept earlier result: it is for other data (sha256 {current['data']['sha256'][:12]}… vs "
            f"{data_sha256[:12]}…); the confirmation is kept in history"
        )
    if current["study"]["name"] != study_name:
        return False, (
            f"kept earlier result: it now holds search {current['study']['name']!r}, not the confirmed "
            f"{study_name!r}; the confirmation is kept in history"
        )
    return True, f"confirmation of search {study_name!r} recorded"


def _corrupt_path(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    stem = path.name.removesuffix(".json")
    candidate, n = path.with_name(f"{stem}.corrupt-{stamp}.json"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{stem}.corrupt-{stamp}-{n}.json"), n + 1
    return candidate


def _append_line(path: Path, line: str) -> None:
    """Append one line with a single write, then fsync (callers hold the lock)."""
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        data = line.encode() + b"\n"
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            data = b"\n" + data  # the previous append was cut short; don't glue onto it
        if os.write(handle, data) != len(data):
            raise OSError(f"short write to {path}")
        os.fsync(handle)
    finally:
        os.close(handle)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value
