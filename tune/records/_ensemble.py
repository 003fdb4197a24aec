"""The published ensemble of a best config: its members (confirmation runs with their model files),
its scores, the ensemble not chosen, and the single runs it is set against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from tune.records._base import Finite
from tune.records._parts import Part
from tune.records._scores import Summary

__all__ = ["Ensemble", "EnsembleMember", "EnsembleOption", "SingleRunScores"]


class EnsembleMember(Part):
    """One member: a confirmation run, its model file and its config (paths relative to the best
    config)."""

    label: str
    seed: int
    fold: int | None = (
        None  # with cross-validation: the fold it held out (it trained on the others)
    )
    path: str  # the model file
    config_file: str  # `train.py --config` re-runs the member
    megabytes: Finite
    best_epoch: int
    dev_weighted_f1: Finite | None  # None for a refit member: it trained on dev
    test_weighted_f1: Finite
    config: dict[str, Any]

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        if Path(path).is_absolute():
            raise ValueError(
                f"'ensemble.members[].path' {path!r} must be relative to the file's folder"
            )
        return path


class EnsembleOption(Part):
    """An ensemble that was measured but not published (it scored lower on dev)."""

    members_from: str
    members: int
    dev_weighted_f1: Finite
    test_weighted_f1: Finite


class SingleRunScores(Part):
    """The confirmed winner's single runs, over the seeds: dev, test, and test of the raw (not
    averaged) weights."""

    dev_weighted_f1: Summary | None = None
    test_weighted_f1: Summary | None = None
    raw_test_weighted_f1: Summary | None = None


class Ensemble(Part):
    """The published model: the mean class probabilities of `members`, chosen on dev."""

    members_from: str  # what the members are, in words ("the 3 runs of baseline, one per seed")
    label: str  # the confirmed winner's label
    members: list[EnsembleMember]
    dev_weighted_f1: Finite | None  # None for refit members (they trained on dev)
    test_weighted_f1: Finite
    not_chosen: list[EnsembleOption] = Field(default_factory=list)
    single_run: SingleRunScores | None = None
    rule: str
    rebuild_command: str
