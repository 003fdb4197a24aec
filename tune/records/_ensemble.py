"""The published ensemble of a best config: its members (confirmation runs with their model files), its
scores, the ensemble not chosen, and the single runs it is set against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tune.records._document import DOCUMENT, Part
from tune.records._scores import Summary

__all__ = ["Ensemble", "EnsembleMember", "EnsembleOption", "SingleRunScores"]

_NUMBER = (int, float)


@dataclass(frozen=True, kw_only=True)
class EnsembleMember(Part):
    """One member: a confirmation run, its model file and its config (paths relative to the best config)."""

    KEY = "ensemble.members[]"
    REQUIRED = ("seed", "config", "path")
    TYPES = {"label": str, "seed": int, "path": str, "config_file": str, "megabytes": _NUMBER,
             "best_epoch": int, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER, "config": dict}

    label: str | None = None
    seed: int
    path: str  # the model file
    config_file: str | None = None  # `train.py --config` re-runs the member
    megabytes: float | None = None
    best_epoch: int | None = None
    dev_weighted_f1: float | None = None
    test_weighted_f1: float | None = None
    config: dict[str, Any]

    def check(self) -> None:
        if Path(self.path).is_absolute():
            raise ValueError(f"{DOCUMENT}: '{self.KEY}.path' {self.path!r} must be relative to the file's folder")


@dataclass(frozen=True, kw_only=True)
class EnsembleOption(Part):
    """An ensemble that was measured but not published (it scored lower on dev)."""

    KEY = "ensemble.not_chosen[]"
    REQUIRED = ("members_from", "members", "dev_weighted_f1", "test_weighted_f1")
    TYPES = {"members_from": str, "members": int, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER}

    members_from: str
    members: int
    dev_weighted_f1: float
    test_weighted_f1: float


@dataclass(frozen=True, kw_only=True)
class SingleRunScores(Part):
    """The confirmed winner's single runs, over the seeds: dev, test, and test of the raw (not averaged) weights."""

    KEY = "ensemble.single_run"
    PARTS = {"dev_weighted_f1": Summary, "test_weighted_f1": Summary, "raw_test_weighted_f1": Summary}

    dev_weighted_f1: Summary | None = None
    test_weighted_f1: Summary | None = None
    raw_test_weighted_f1: Summary | None = None


@dataclass(frozen=True, kw_only=True)
class Ensemble(Part):
    """The published model: the mean class probabilities of `members`, chosen on dev."""

    KEY = "ensemble"
    REQUIRED = ("members", "dev_weighted_f1", "test_weighted_f1")
    TYPES = {"members_from": str, "label": str, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER,
             "rule": str, "rebuild_command": str}
    LISTS = {"members": EnsembleMember, "not_chosen": EnsembleOption}
    PARTS = {"single_run": SingleRunScores}

    members_from: str | None = None  # "the confirmed winner's runs" or "every confirmed run"
    label: str | None = None  # the confirmed winner's label
    members: list[EnsembleMember]
    dev_weighted_f1: float
    test_weighted_f1: float
    not_chosen: list[EnsembleOption] = field(default_factory=list)
    single_run: SingleRunScores | None = None
    rule: str | None = None
    rebuild_command: str | None = None
