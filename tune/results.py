"""The result store of the tuning service: best configs, their history and per-trial tables.

Layout under the results folder (``--results-dir``, default ``results``; see ``results/README.md``)::

    best_configs/<dataset>.json           best config found so far; `train.py --config` reads it
    best_configs/<dataset>.history.jsonl  every document offered for publishing, kept or not
    best_configs/<dataset>.json.lock      inter-process lock of the two files above
    trials/<dataset>.csv                  one row per trial of the latest study
    studies/<dataset>.json                the latest study's trials in full, written by the search
    reports/<dataset>.md                  written by the report tool

Every file is written atomically (temporary file, fsync, rename) and the best-config
file is only ever replaced under the lock, after re-reading it (compare-and-swap).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock

from joyful.config import CONFIG_SCHEMA_VERSION, JoyfulConfig, upgrade_config_values
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import atomic_write, atomic_write_json

__all__ = [
    "BEST_CONFIG_KIND",
    "BEST_CONFIG_SCHEMA_VERSION",
    "TRIAL_COLUMNS",
    "PublishOutcome",
    "ResultStore",
    "validate_best_document",
]

# A best-config file is a superset of the plain config document, so both share one version.
BEST_CONFIG_SCHEMA_VERSION = CONFIG_SCHEMA_VERSION
BEST_CONFIG_KIND = "joyful-tune best config"
METRIC_MODES = ("max", "min")
TRIAL_COLUMNS = ("trial_id", "status", "epochs_run", "best_dev_weighted_f1", "best_epoch", "stop_reason", "error")

# Required keys of the nested objects; other keys are allowed and kept.
_REQUIRED = {
    "data": ("path", "sha256"),
    "metric": ("name", "mode", "value", "best_epoch"),
    "single_trial_best": ("trial_id",),
    "study": (
        "name",
        "space_file",
        "space_sha256",
        "num_samples",
        "searcher",
        "scheduler",
        "trials",
        "started_at",
        "ended_at",
        "storage_path",
    ),
    "versions": ("python", "torch", "ray", "optuna", "joyful_tune"),
}


@dataclass
class PublishOutcome:
    """What `ResultStore.publish_best` did, and why (the reason is shown to the user)."""

    written: bool  # True when the new document is now the best-config file
    reason: str
    path: Path
    previous: dict | None  # the best-config document found before, when it was readable


def validate_best_document(document: dict) -> None:
    """Raise ValueError naming the first missing or invalid key of a best-config document."""
    if not isinstance(document, dict):
        raise ValueError(f"a best-config document must be a dict, got {type(document).__name__}")

    def need(key: str, kinds: type | tuple[type, ...], where: dict = document, prefix: str = "") -> Any:
        if key not in where:
            raise ValueError(f"best-config document: missing key '{prefix}{key}'")
        value, allowed = where[key], _as_tuple(kinds)
        # bool is an int subclass, but True is no epoch number
        if not isinstance(value, allowed) or (isinstance(value, bool) and int in allowed):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
            raise ValueError(f"best-config document: '{prefix}{key}' must be {names}, got {value!r}")
        return value

    version = need("schema_version", int)
    if not 1 <= version <= BEST_CONFIG_SCHEMA_VERSION:
        raise ValueError(
            f"best-config document: 'schema_version' is {version}, but must be 1..{BEST_CONFIG_SCHEMA_VERSION}"
        )
    if need("kind", str) != BEST_CONFIG_KIND:
        raise ValueError(f"best-config document: 'kind' is {document['kind']!r}, but must be {BEST_CONFIG_KIND!r}")
    dataset = need("dataset", str)
    if not _is_dataset_name(dataset):
        raise ValueError(f"best-config document: 'dataset' {dataset!r} is not a plain name (letters, digits, _ . -)")
    modalities = need("modalities", str)
    for key in ("data", "metric", "single_trial_best", "study", "versions"):
        section = need(key, dict)
        for inner in _REQUIRED[key]:
            need(inner, object, section, f"{key}.")
    data = document["data"]
    need("path", str, data, "data.")
    if not need("sha256", str, data, "data."):
        raise ValueError("best-config document: 'data.sha256' must not be empty")
    metric = document["metric"]
    need("name", str, metric, "metric.")
    if metric["mode"] not in METRIC_MODES:
        raise ValueError(f"best-config document: 'metric.mode' is {metric['mode']!r}, but must be one of: max, min")
    if not math.isfinite(need("value", (int, float), metric, "metric.")):
        raise ValueError(f"best-config document: 'metric.value' is {metric['value']}, but must be a finite number")
    need("best_epoch", int, metric, "metric.")
    need("trials", dict, document["study"], "study.")
    config = need("config", dict)
    try:
        JoyfulConfig.from_dict(upgrade_config_values(config, version), source="best-config document 'config'")
    except UserError as exc:
        raise ValueError(str(exc)) from None
    for key, expected in (("dataset", dataset), ("modalities", modalities)):
        if config.get(key) != expected:
            raise ValueError(
                f"best-config document: 'config.{key}' is {config.get(key)!r}, but {key!r} is {expected!r}"
            )
    need("searched", dict)
    test = need("test", (dict, type(None)))
    if test is not None:
        for key in ("weighted_f1", "accuracy"):
            need(key, (int, float), test, "test.")
    need("confirmation", (dict, type(None)))
    if not need("rerun_command", str).strip():
        raise ValueError("best-config document: 'rerun_command' must not be empty")
    need("checkpoint", (str, type(None)))
    written_at = need("written_at", str)
    try:
        datetime.fromisoformat(written_at.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"best-config document: 'written_at' {written_at!r} is not an ISO 8601 time") from None
    try:
        json.dumps(document)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"best-config document: not JSON-serialisable ({exc})") from None


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
    def read_best(self, dataset: str) -> dict | None:
        """The current best-config document, or None when there is none yet."""
        path = self.best_config_path(dataset)
        current, problem = _read_current(path)
        if problem is not None:
            raise UserError(f"{path}: {problem}")
        return current

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

    def publish_best(self, dataset: str, document: dict, *, overwrite: bool = False) -> PublishOutcome:
        """Make `document` the best config of `dataset` if it beats the current one (or `overwrite`).

        Decided under an inter-process lock after re-reading the current file, so two
        searches finishing together cannot lose the better result. The document is
        appended to the history whether it is published or not.
        """
        validate_best_document(document)
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
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = {
            **document,
            "outcome": "published" if written else "kept-earlier",
            "reason": reason,
            "recorded_at": now,
        }
        _append_line(self.history_path(dataset), json.dumps(record))
        previous = current if problem is None else None
        return PublishOutcome(written=written, reason=reason, path=path, previous=previous)

    def update_confirmation(
        self, dataset: str, confirmation: dict, changes: dict | None = None, *, data_sha256: str, study_name: str
    ) -> PublishOutcome:
        """Record a confirmation in the current best config: set `confirmation` and the top-level `changes`
        (e.g. `config` = the confirmed winner, with its `metric` and `test`).

        Decided under the lock after re-reading the file: it is updated only while it still holds the
        result of search `study_name` on data `data_sha256`; otherwise (a newer search published in
        between, or other data) it is kept. Either way the offered document goes to the history
        (outcome ``"confirmed"`` or ``"kept-earlier"``).
        """
        path = self.best_config_path(dataset)
        with self._locked(dataset, "update the best config"):
            current, problem = _read_current(path)
            if current is None or problem is not None:
                raise UserError(
                    f"{path}: no valid best config to add the confirmation to "
                    f"({problem or 'file not found'}); run the search first"
                )
            document = {**current, **(changes or {}), "confirmation": confirmation}
            validate_best_document(document)
            written, reason = _decide_confirmation(current, data_sha256, study_name)
            if written:
                atomic_write_json(path, document)
            record = {
                **document,
                "outcome": "confirmed" if written else "kept-earlier",
                "reason": reason,
                "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            _append_line(self.history_path(dataset), json.dumps(record))
        return PublishOutcome(written=written, reason=reason, path=path, previous=current)

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
def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _is_dataset_name(name: str) -> bool:
    try:
        check_dataset_name(name)
    except UserError:
        return False
    return True


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
        return True, f"better than earlier result: {value:.6g} {sign} {old:.6g} ({new_metric['name']}, {mode})"
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
