"""The record of one search (study): what it searched, on which data, and every trial."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from joyful.config import JoyfulConfig, upgrade_config_values
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from tune.common import finite
from tune.records._parts import WarmStartSummary
from tune.records._trial import TrialRecord
from tune.space import Budget

__all__ = ["STUDY_KIND", "STUDY_SCHEMA_VERSION", "MajorityLevel", "StudyRecord"]

STUDY_SCHEMA_VERSION = 2
STUDY_KIND = "joyful-tune study"


@dataclass(frozen=True)
class MajorityLevel:
    """The level a model that learned nothing reaches: always the dev split's most frequent class
    (`majority_class`), scored by dev weighted F1. Every search records it and its plots draw it."""

    majority_class: str
    dev_weighted_f1: float

    def __post_init__(self) -> None:
        if not finite(self.dev_weighted_f1):
            raise ValueError(f"majority.dev_weighted_f1 is {self.dev_weighted_f1!r}, but must be a finite number")

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.majority_class, "dev_weighted_f1": self.dev_weighted_f1}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> MajorityLevel:
        return cls(majority_class=str(document["class"]), dev_weighted_f1=document["dev_weighted_f1"])


@dataclass(frozen=True)
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
    majority: MajorityLevel | None = None
    warm_start: WarmStartSummary | None = None  # when warm-started
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
            elif f.name in ("majority", "warm_start") and value is not None:
                value = value.to_dict()
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
            if values.get("majority") is not None:
                values["majority"] = MajorityLevel.from_dict(values["majority"])
            if values.get("warm_start") is not None:
                values["warm_start"] = WarmStartSummary.from_dict(values["warm_start"])
            return cls(**values)
        except (KeyError, TypeError, ValueError, UserError) as exc:
            raise UserError(f"{source}: not a valid study record ({exc})") from None
