"""The tuning service's records, typed: one Ray trial, one study (search), one best config.

Each record validates itself and owns its JSON form; every other module passes these objects,
not JSON-shaped dicts. The rules that decide between trials live here, once:

* **eligibility**: a trial may win when it ran all epochs or ASHA stopped it, with a finite score;
* **ranking**: highest best dev weighted F1, then the earlier best epoch (cheaper), then the trial id.

Search (the winner), confirmation (its candidates and tuned points) and the report (its tables
and plots) all rank with `ranked`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from joyful.config import CONFIG_SCHEMA_VERSION, JoyfulConfig, upgrade_config_values
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from tune.common import finite, present
from tune.space import Budget

__all__ = ["BEST_CONFIG_KIND", "BEST_CONFIG_SCHEMA_VERSION", "COMPLETE", "EARLY_STOPPED", "ERRORED", "NON_FINITE",
           "RANKING_RULE", "STATUS_LABELS", "STUDY_KIND", "STUDY_SCHEMA_VERSION", "BestConfig", "StudyRecord",
           "TrialRecord", "choose_winner", "classify", "outcome_counts", "ranked", "stop_reason"]

# --- how a trial ended -------------------------------------------------------------------------

COMPLETE, EARLY_STOPPED, NON_FINITE, ERRORED = "completed", "early_stopped", "non_finite", "errored"
# The words of the trials table and the study file (Ray's own status names where they exist).
STATUS_LABELS = {COMPLETE: "TERMINATED", EARLY_STOPPED: "EARLY_STOPPED", NON_FINITE: "NON_FINITE", ERRORED: "ERROR"}
OUTCOMES = {label: outcome for outcome, label in STATUS_LABELS.items()}
ELIGIBLE_OUTCOMES = (COMPLETE, EARLY_STOPPED)


def classify(result: dict[str, Any] | None, error: bool, max_epochs: int) -> str:
    """How a trial ended, from its last reported result."""
    if error or not result:
        return ERRORED
    if result.get("non_finite"):
        return NON_FINITE
    if int(result.get("epoch", 0)) < max_epochs:
        return EARLY_STOPPED
    return COMPLETE


def stop_reason(outcome: str, last_epoch: Any, max_epochs: int, reported: str = "") -> str:
    """Why a trial ended, in words: what the trial reported itself (a non-finite loss), else its outcome's rule."""
    if reported:
        return reported
    return {COMPLETE: f"ran all {max_epochs} epochs", EARLY_STOPPED: f"stopped by ASHA after epoch {last_epoch}",
            ERRORED: "error", NON_FINITE: "non-finite loss"}[outcome]


# --- one trial ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialRecord:
    """One Ray trial of a search, with its per-epoch curve (epoch, dev_weighted_f1, dev_loss, train_loss)."""

    trial_id: str
    params: dict[str, Any]
    outcome: str  # COMPLETE, EARLY_STOPPED, NON_FINITE or ERRORED
    epochs_run: int
    best_dev_weighted_f1: float | None
    best_epoch: int | None
    stop_reason: str = ""
    error: str = ""
    checkpoint: str | None = None
    curve: list[dict[str, float]] = field(default_factory=list)
    optuna_number: int | None = None  # the Optuna trial it was sampled as (start order)

    def __post_init__(self) -> None:
        if self.outcome not in STATUS_LABELS:
            raise ValueError(f"trial {self.trial_id}: outcome {self.outcome!r} is not one of {list(STATUS_LABELS)}")

    @property
    def status(self) -> str:
        return STATUS_LABELS[self.outcome]

    @property
    def eligible(self) -> bool:
        """May this trial win? It ran all epochs or ASHA stopped it, with a finite score."""
        return self.outcome in ELIGIBLE_OUTCOMES and finite(self.best_dev_weighted_f1)

    def rank_key(self) -> tuple:
        """The one ranking of trials (eligible ones): best score, then earlier best epoch, then trial id."""
        return -self.best_dev_weighted_f1, self.best_epoch or 0, self.trial_id

    def csv_row(self) -> dict[str, Any]:
        """The trials-table row: fixed columns, then the parameters the trial used."""
        return {"trial_id": self.trial_id, "status": self.status, "epochs_run": self.epochs_run,
                "best_dev_weighted_f1": self.best_dev_weighted_f1, "best_epoch": self.best_epoch,
                "stop_reason": self.stop_reason, "error": self.error, **self.params}

    def to_dict(self) -> dict[str, Any]:
        return {**self.csv_row(), "curve": self.curve, "checkpoint": self.checkpoint,
                "optuna_number": self.optuna_number}

    @classmethod
    def from_dict(cls, row: dict[str, Any], param_names: list[str] | None = None) -> TrialRecord:
        """From `to_dict`'s form (or a study file of schema 1, where parameters sit beside the fixed keys)."""
        fixed = {"trial_id", "status", "epochs_run", "best_dev_weighted_f1", "best_epoch", "stop_reason", "error",
                 "curve", "checkpoint", "optuna_number"}
        try:
            params = {k: v for k, v in row.items() if k not in fixed and (param_names is None or k in param_names)
                      and present(v)}
            best = row.get("best_dev_weighted_f1")
            return cls(trial_id=str(row["trial_id"]), params=params, outcome=OUTCOMES[row["status"]],
                       epochs_run=int(row.get("epochs_run") or 0),
                       best_dev_weighted_f1=float(best) if finite(best) else None,
                       best_epoch=int(row["best_epoch"]) if finite(row.get("best_epoch")) else None,
                       stop_reason=str(row.get("stop_reason") or ""), error=str(row.get("error") or ""),
                       checkpoint=row.get("checkpoint"), curve=list(row.get("curve") or []),
                       optuna_number=row.get("optuna_number"))
        except KeyError as exc:
            raise ValueError(f"trial record {row.get('trial_id', '?')}: missing or unknown {exc}") from None


# The rule of `ranked`, in words (the Optuna study records it: its own best_trial counts COMPLETE trials only).
RANKING_RULE = ("highest best-epoch dev score among the trials that ran all epochs (Optuna: COMPLETE) or were "
                "stopped by ASHA (Optuna: PRUNED), then the earlier best epoch, then the Ray trial id")


def ranked(trials: list[TrialRecord]) -> list[TrialRecord]:
    """The eligible trials, best first (see `TrialRecord.rank_key`)."""
    return sorted((t for t in trials if t.eligible), key=TrialRecord.rank_key)


def choose_winner(trials: list[TrialRecord]) -> TrialRecord | None:
    best = ranked(trials)
    return best[0] if best else None


def outcome_counts(trials: list[TrialRecord]) -> dict[str, int]:
    return {"completed": sum(t.outcome == COMPLETE for t in trials),
            "early_stopped": sum(t.outcome == EARLY_STOPPED for t in trials),
            "errored": sum(t.outcome == ERRORED for t in trials),
            "non_finite": sum(t.outcome == NON_FINITE for t in trials)}


# --- one study ------------------------------------------------------------------------------------

STUDY_SCHEMA_VERSION = 2
STUDY_KIND = "joyful-tune study"


@dataclass
class StudyRecord:
    """One search of one data set: what it searched, on which data, and every trial.

    The Optuna side (states, values, intermediate values, distributions) lives in the Optuna storage
    named by `optuna_storage` and `optuna_study`; this record holds what Optuna does not: the base
    config every trial started from, the budget, the data and space fingerprints, the trivial level
    and the Ray trials with their curves and checkpoints.
    """

    dataset: str
    name: str  # the search (Ray experiment) name; also the Optuna study's name
    metric: str
    mode: str
    space_file: str
    space_sha256: str
    space_fingerprint: str
    data_path: str
    data_sha256: str
    base_config: dict[str, Any]  # JoyfulConfig.to_dict() before sampling: epochs = budget.max_epochs
    budget: Budget
    optuna_storage: str  # journal file, portable path
    optuna_study: str
    trials: list[TrialRecord]
    majority: dict[str, Any] | None = None  # {"class", "dev_weighted_f1"}: always the dev split's majority class
    warm_start: dict[str, Any] | None = None  # {"storage", "studies", "trials", "proposed"} when warm-started
    started_at: str = ""
    ended_at: str = ""
    search_seconds: float = 0.0

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if self.mode not in ("max", "min"):
            raise ValueError(f"study record: mode is {self.mode!r}, but must be max or min")
        self.budget.check("study record")
        self.base()

    def base(self) -> JoyfulConfig:
        """The config every trial started from. The record has no config schema of its own: a setting its
        base config lacks predates that setting, and takes the value that meant what the search ran."""
        return JoyfulConfig.from_dict(upgrade_config_values(self.base_config, 1), source=f"study {self.name} base_config")

    def in_start_order(self) -> list[TrialRecord]:
        """The trials in the order the searcher sampled them (Optuna trial number; Ray's order otherwise)."""
        order = {id(t): index for index, t in enumerate(self.trials)}
        return sorted(self.trials, key=lambda t: (t.optuna_number if t.optuna_number is not None
                                                  else len(self.trials) + order[id(t)], order[id(t)]))

    def to_dict(self) -> dict[str, Any]:
        document = {"schema_version": STUDY_SCHEMA_VERSION, "kind": STUDY_KIND}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "budget":
                value = dataclasses.asdict(value)
            elif f.name == "trials":
                value = [t.to_dict() for t in value]
            document[f.name] = value
        return document

    @classmethod
    def from_dict(cls, document: Any, source: str = "study record") -> StudyRecord:
        """Validate and build; a study file of schema 1 (before the Optuna storage) is refused with the
        command that migrates it."""
        if not isinstance(document, dict):
            raise UserError(f"{source}: not a study record (a JSON object)")
        version = document.get("schema_version")
        if version is None and "optuna_trials" in document:
            raise UserError(f"{source}: written by joyful-tune before studies lived in an Optuna storage; migrate it "
                            "with `python -m tune.migrate --results-dir <results folder>`")
        if version != STUDY_SCHEMA_VERSION or document.get("kind") != STUDY_KIND:
            newer = isinstance(version, int) and version > STUDY_SCHEMA_VERSION
            raise UserError(f"{source}: schema_version {version!r}, kind {document.get('kind')!r} is not a study record "
                            f"of this joyful-tune (schema {STUDY_SCHEMA_VERSION})"
                            + ("; upgrade joyful-tune" if newer else ""))
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            values = {k: v for k, v in document.items() if k in names}
            values["budget"] = Budget(**values["budget"])
            values["trials"] = [TrialRecord.from_dict(t) for t in values["trials"]]
            return cls(**values)
        except (KeyError, TypeError, ValueError, UserError) as exc:
            raise UserError(f"{source}: not a valid study record ({exc})") from None


# --- the best config ---------------------------------------------------------------------------------

# A best-config file is a superset of the plain config document, so both share one version.
BEST_CONFIG_SCHEMA_VERSION = CONFIG_SCHEMA_VERSION
BEST_CONFIG_KIND = "joyful-tune best config"

_OPTIONAL = ("references", "rerun", "ensemble")  # keys a best config may lack (older versions, or not computed)
# Required keys of the nested objects; other keys are allowed and kept.
_REQUIRED = {
    "data": ("path", "sha256"),
    "metric": ("name", "mode", "value", "best_epoch"),
    "single_trial_best": ("trial_id",),
    "study": ("name", "space_file", "space_sha256", "num_samples", "searcher", "scheduler", "trials", "started_at",
              "ended_at", "storage_path"),
    "versions": ("python", "torch", "ray", "optuna", "joyful_tune"),
}


@dataclass
class BestConfig:
    """The best config of a data set: what `train.py --config` reads, and how it was found.

    `from_dict` validates a document (schema 1..current; the first bad key is named) and `to_dict` gives
    it back; keys this version does not know are kept in `extra` and written back unchanged.
    """

    schema_version: int
    dataset: str
    modalities: str
    data: dict[str, Any]  # path, sha256
    config: dict[str, Any]  # JoyfulConfig.to_dict() of the winner
    searched: dict[str, Any]
    metric: dict[str, Any]  # name, mode, value, best_epoch
    test: dict[str, Any] | None
    single_trial_best: dict[str, Any]
    confirmation: dict[str, Any] | None
    study: dict[str, Any]
    versions: dict[str, str]
    rerun_command: str
    checkpoint: str | None
    written_at: str
    references: dict[str, Any] | None = None
    rerun: dict[str, Any] | None = None  # the winner re-trained at publishing
    # The published ensemble: the confirmed winner's runs (model files under results/models), scored.
    ensemble: dict[str, Any] | None = None
    kind: str = BEST_CONFIG_KIND
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate_best(self.to_dict())

    @property
    def value(self) -> float:
        return self.metric["value"]

    def joyful_config(self) -> JoyfulConfig:
        return JoyfulConfig.from_dict(upgrade_config_values(self.config, self.schema_version),
                                      source=f"best config of {self.dataset}")

    def replace(self, **changes: Any) -> BestConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        for optional in _OPTIONAL:  # absent from older documents: written only when set
            if document[optional] is None:
                del document[optional]
        order = ("schema_version", "kind")
        return {**{k: document[k] for k in order}, **{k: v for k, v in document.items() if k not in order},
                **self.extra}

    @classmethod
    def from_dict(cls, document: Any) -> BestConfig:
        """Raise ValueError naming the first missing or invalid key."""
        _validate_best(document)
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: v for k, v in document.items() if k in names},
                   extra={k: v for k, v in document.items() if k not in names})


def _validate_best(document: Any) -> None:
    if not isinstance(document, dict):
        raise ValueError(f"a best-config document must be a dict, got {type(document).__name__}")

    def need(key: str, kinds: type | tuple[type, ...], where: dict = document, prefix: str = "") -> Any:
        if key not in where:
            raise ValueError(f"best-config document: missing key '{prefix}{key}'")
        value, allowed = where[key], kinds if isinstance(kinds, tuple) else (kinds,)
        # bool is an int subclass, but True is no epoch number
        if not isinstance(value, allowed) or (isinstance(value, bool) and int in allowed):
            names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
            raise ValueError(f"best-config document: '{prefix}{key}' must be {names}, got {value!r}")
        return value

    version = need("schema_version", int)
    if not 1 <= version <= BEST_CONFIG_SCHEMA_VERSION:
        raise ValueError(f"best-config document: 'schema_version' is {version}, but must be "
                         f"1..{BEST_CONFIG_SCHEMA_VERSION}")
    if need("kind", str) != BEST_CONFIG_KIND:
        raise ValueError(f"best-config document: 'kind' is {document['kind']!r}, but must be {BEST_CONFIG_KIND!r}")
    dataset = need("dataset", str)
    try:
        check_dataset_name(dataset)
    except UserError:
        raise ValueError(f"best-config document: 'dataset' {dataset!r} is not a plain name "
                         "(letters, digits, _ . -)") from None
    modalities = need("modalities", str)
    for key, inner_keys in _REQUIRED.items():
        section = need(key, dict)
        for inner in inner_keys:
            need(inner, object, section, f"{key}.")
    need("path", str, document["data"], "data.")
    if not need("sha256", str, document["data"], "data."):
        raise ValueError("best-config document: 'data.sha256' must not be empty")
    metric = document["metric"]
    need("name", str, metric, "metric.")
    if metric["mode"] not in ("max", "min"):
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
            raise ValueError(f"best-config document: 'config.{key}' is {config.get(key)!r}, but {key!r} is "
                             f"{expected!r}")
    need("searched", dict)
    for optional in _OPTIONAL:
        if optional in document:
            need(optional, (dict, type(None)))
    test = need("test", (dict, type(None)))
    if test is not None:
        for key in ("weighted_f1", "accuracy"):
            need(key, (int, float), test, "test.")
    need("confirmation", (dict, type(None)))
    ensemble = document.get("ensemble")
    if ensemble is not None:
        members = need("members", list, ensemble, "ensemble.")
        for index, member in enumerate(members):
            where = f"ensemble.members[{index}]."
            if not isinstance(member, dict):
                raise ValueError(f"best-config document: '{where[:-1]}' must be an object")
            need("seed", int, member, where)
            need("config", dict, member, where)
            path = need("path", str, member, where)
            if Path(path).is_absolute():
                raise ValueError(f"best-config document: '{where}path' {path!r} must be relative to the file's folder")
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
