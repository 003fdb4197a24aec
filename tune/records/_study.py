"""The record of one search (study): what it searched, on which data, when, and every trial."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import Field, field_validator, model_validator

from joyful.config import JoyfulConfig
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from tune.records._base import Finite, Record
from tune.records._parts import Ending, Resampling, Sampling, WarmStartSummary
from tune.records._trial import TrialRecord
from tune.space import Budget, Strategy

__all__ = ["STUDY_KIND", "STUDY_SCHEMA_VERSION", "Invocation", "MajorityLevel", "StudyRecord"]

STUDY_SCHEMA_VERSION = 3
STUDY_KIND = "joyful-tune study"


class MajorityLevel(Record):
    """The level a model that learned nothing reaches: always the dev split's most frequent class
    (`class`), scored by dev weighted F1. Every search records it and its plots draw it."""

    DOCUMENT = "study record 'majority'"

    majority_class: str = Field(alias="class")
    dev_weighted_f1: Finite


class Invocation(Record):
    """One run of `tune/search.py` on the search (the first, and one per --resume): when it started
    and when and in how many seconds its trial phase ended. `ended_at` is None while its trials run,
    or when it was killed during them (a kill during confirmation leaves the end of its trials
    recorded)."""

    started_at: str
    ended_at: str | None = None
    seconds: Finite | None = None  # the trials' wall time in this invocation
    resumed: bool = False


class StudyRecord(Record):
    """One search of one data set: what it searched, on which data, when, and every trial.

    The Optuna side (states, values, intermediate values, distributions) lives in the Optuna storage
    named by `optuna_storage` and `optuna_study`; this record holds what Optuna does not: the base
    config every trial started from, the budget, the data and space fingerprints, the majority level
    and the Ray trials with their curves. `started_at` is when the search was created (kept by every
    --resume); `search_seconds` adds up the invocations' trial phases.
    """

    DOCUMENT = "study record"

    schema_version: int = STUDY_SCHEMA_VERSION
    kind: str = STUDY_KIND
    dataset: str
    name: str  # the search (Ray experiment) name; also the Optuna study's name
    metric: str
    mode: str
    space_file: str
    space_sha256: str
    space_fingerprint: str
    data_path: str
    data_sha256: str
    base_config: dict[
        str, Any
    ]  # JoyfulConfig.to_dict() before sampling: epochs = budget.max_epochs
    budget: Budget
    strategy: Strategy = Field(default_factory=Strategy)
    optuna_storage: str  # journal file (portable path) or database URL
    optuna_study: str
    trials: list[TrialRecord]
    majority: MajorityLevel | None = None  # on dev, or on train + dev with cross-validation
    resampling: Resampling
    warm_start: WarmStartSummary | None = None
    started_at: str = ""
    ended_at: str = ""
    search_seconds: Finite = 0.0
    invocations: list[Invocation] = Field(default_factory=list)
    sampling: Sampling | None = None  # how the trials were proposed
    ending: Ending | None = None  # how the trial phase ended

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_from_fields(cls, value: Any) -> Any:
        if isinstance(
            value, dict
        ):  # Budget is a dataclass (tune/space): its JSON form is its fields
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(Budget)})
            if unknown:
                raise ValueError(f"'budget' has unknown key(s) {', '.join(unknown)}")
            return Budget(**value)
        return value

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy_from_fields(cls, value: Any) -> Any:
        if isinstance(
            value, dict
        ):  # Strategy is a dataclass (tune/space): its JSON form is its fields
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(Strategy)})
            if unknown:
                raise ValueError(f"'strategy' has unknown key(s) {', '.join(unknown)}")
            return Strategy(**value)
        return value

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, version: int) -> int:
        if version != STUDY_SCHEMA_VERSION:
            newer = version > STUDY_SCHEMA_VERSION
            raise ValueError(
                f"schema_version {version} is not a study record of this joyful-tune (schema "
                f"{STUDY_SCHEMA_VERSION}); "
                + ("upgrade joyful-tune" if newer else "re-run the search with this joyful-tune")
            )
        return version

    @model_validator(mode="after")
    def _check(self) -> StudyRecord:
        if self.kind != STUDY_KIND:
            raise ValueError(f"'kind' is {self.kind!r}, but must be {STUDY_KIND!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"'mode' is {self.mode!r}, but must be max or min")
        try:
            check_dataset_name(self.dataset)
            self.budget.check("study record")
            self.base()
        except UserError as exc:
            raise ValueError(str(exc)) from None
        return self

    @classmethod
    def read(cls, document: Any, source: str) -> StudyRecord:
        """`from_dict`, with errors as one-line UserErrors naming `source` (the file)."""
        try:
            return cls.from_dict(document)
        except ValueError as exc:
            raise UserError(f"{source}: {exc}") from None

    def base(self) -> JoyfulConfig:
        """The config every trial started from."""
        return JoyfulConfig.from_dict(self.base_config, source=f"study {self.name} base_config")

    def in_start_order(self) -> list[TrialRecord]:
        """The trials in the order the searcher sampled them (Optuna trial number; Ray's order
        otherwise)."""
        order = {id(t): index for index, t in enumerate(self.trials)}
        return sorted(
            self.trials,
            key=lambda t: (
                t.optuna_number if t.optuna_number is not None else len(self.trials) + order[id(t)],
                order[id(t)],
            ),
        )
