"""Scores as best configs store them: a metric, test scores, a mean over seeds with its interval, a paired
difference, an ensemble's scores."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from tune.records._base import Finite
from tune.records._parts import Part

__all__ = ["EnsembleScores", "Metric", "PairedDifference", "Summary", "TestScores"]


class Metric(Part):
    """The selection metric of a best config and the value its `config` reached on dev, at `best_epoch`."""

    name: str
    mode: Literal["max", "min"]
    value: Finite
    best_epoch: int

    def better(self, other: Metric) -> bool:
        """Whether this value beats `other`'s strictly (an equal value keeps the earlier result)."""
        return self.value > other.value if self.mode == "max" else self.value < other.value


class TestScores(Part):
    """Test scores of one run, evaluated once at its best dev epoch."""

    weighted_f1: Finite
    accuracy: Finite


class Summary(Part):
    """A score over seeds: n, mean, sample std and the 95% t-interval of the mean (None where undefined)."""

    n: int = 0
    mean: Finite | None = None
    std: Finite | None = None
    ci95: list[Finite] | None = None

    @field_validator("ci95")
    @classmethod
    def _pair(cls, ci95: list[float] | None) -> list[float] | None:
        if ci95 is not None and len(ci95) != 2:
            raise ValueError(f"'ci95' must be [low, high], got {ci95!r}")
        return ci95


class PairedDifference(Summary):
    """A configuration minus the baseline, seed by seed: the summary of the differences, and who won."""

    seeds: list[int]
    diffs: list[Finite]
    wins: int
    ties: int
    losses: int
    # The interval tells whether the gain is more than seed noise (at 95%), either way.
    ci_excludes_zero: bool


class EnsembleScores(Part):
    """Dev and test wF1 of the mean class probabilities of some runs (`members` of them, at `seeds`)."""

    members: int
    seeds: list[int]
    dev_weighted_f1: Finite
    test_weighted_f1: Finite
