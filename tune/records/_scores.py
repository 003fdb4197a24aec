"""Scores as best configs store them: a metric, test scores, a mean over seeds with its interval, a
paired difference, an ensemble's scores."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from tune.records._base import Finite
from tune.records._parts import Part

__all__ = ["Comparison", "EnsembleScores", "Metric", "PairedDifference", "Summary", "TestScores"]


class Metric(Part):
    """The selection metric of a best config and the value its `config` reached on dev, at
    `best_epoch`; `scored_on` says in words which split, fold(s) and seed(s) the value is of."""

    name: str
    mode: Literal["max", "min"]
    value: Finite
    best_epoch: int
    scored_on: str = ""

    def better(self, other: Metric) -> bool:
        """Whether this value beats `other`'s strictly (an equal value keeps the earlier result)."""
        return self.value > other.value if self.mode == "max" else self.value < other.value


class TestScores(Part):
    """Test scores of one run, evaluated once at its best dev epoch."""

    weighted_f1: Finite
    accuracy: Finite


class Summary(Part):
    """A score over seeds: n, mean, sample std and the 95% t-interval of the mean (None where
    undefined)."""

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
    """A configuration minus the baseline, run by run (the same seed, and fold with
    cross-validation): the summary of the differences, and who won."""

    runs: list[str]
    diffs: list[Finite]
    wins: int
    ties: int
    losses: int
    # The interval tells whether the gain is more than seed noise (at 95%), either way.
    ci_excludes_zero: bool


class EnsembleScores(Part):
    """Dev and test wF1 of the mean class probabilities of some runs (`members` of them, at
    `seeds`)."""

    members: int
    seeds: list[int]
    dev_weighted_f1: Finite | None  # None for refits: they trained on dev
    test_weighted_f1: Finite


class Comparison(Part):
    """A headline comparison of two models on the same dialogues: `first` - `second` in weighted F1
    on `split`, with its paired dialogue-level bootstrap interval (tune/stats/bootstrap.py). An
    interval that holds 0 is a tie: the data cannot tell the two apart."""

    name: str  # what is compared, in words ("published model vs logistic regression")
    first: str
    second: str
    split: str  # "test", "dev", or "out-of-fold (cross-validation)"
    estimate: Finite
    ci95: list[Finite]
    dialogues: int
    replicates: int
    p_value: Finite | None = None  # two-sided bootstrap p-value of the difference
    p_holm: Finite | None = None  # ... adjusted for the family of comparisons it was made in (Holm)
    family: int | None = None  # how many comparisons that family held

    @property
    def tie(self) -> bool:
        """No difference shown: the interval holds 0, or the family-adjusted p-value is >= 0.05."""
        if self.p_holm is not None and self.p_holm >= 0.05:
            return True
        return self.ci95[0] <= 0.0 <= self.ci95[1]

    @property
    def verdict(self) -> str:
        if self.tie:
            return "tie"
        return f"{self.first} better" if self.estimate > 0 else f"{self.second} better"

    def words(self) -> str:
        corrected = (
            f", p {self.p_holm:.3f} Holm-adjusted over {self.family}"
            if self.p_holm is not None
            else ""
        )
        return (
            f"{self.first} - {self.second} on {self.split}: {self.estimate:+.4f} wF1, CI95 "
            f"[{self.ci95[0]:+.4f}, {self.ci95[1]:+.4f}] over {self.dialogues} dialogues"
            f"{corrected}: {self.verdict}"
        )
