"""Scores as best configs store them: a metric, test scores, a mean over seeds with its interval, a paired
difference, an ensemble's scores."""

from __future__ import annotations

from dataclasses import dataclass

from tune.records._document import DOCUMENT, Part, finite_number

__all__ = ["EnsembleScores", "Metric", "PairedDifference", "Summary", "TestScores"]

_NUMBER = (int, float)
_MAYBE_NUMBER = (int, float, type(None))
_MAYBE_LIST = (list, type(None))


@dataclass(frozen=True)
class Metric(Part):
    """The selection metric of a best config and the value its `config` reached on dev, at `best_epoch`."""

    KEY = "metric"
    REQUIRED = ("name", "mode", "value", "best_epoch")
    TYPES = {"name": str, "best_epoch": int}

    name: str
    mode: str  # max or min
    value: float
    best_epoch: int

    def check(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"{DOCUMENT}: 'metric.mode' is {self.mode!r}, but must be one of: max, min")
        finite_number("metric.value", self.value)

    def better(self, other: Metric) -> bool:
        """Whether this value beats `other`'s strictly (an equal value keeps the earlier result)."""
        return self.value > other.value if self.mode == "max" else self.value < other.value


@dataclass(frozen=True)
class TestScores(Part):
    """Test scores of one run, evaluated once at its best dev epoch."""

    KEY = "test"
    REQUIRED = ("weighted_f1", "accuracy")
    TYPES = {"weighted_f1": _NUMBER, "accuracy": _NUMBER}

    weighted_f1: float
    accuracy: float


@dataclass(frozen=True)
class Summary(Part):
    """A score over seeds: n, mean, sample std and the 95% t-interval of the mean (None where undefined)."""

    KEY = "summary"
    TYPES = {"n": int, "mean": _MAYBE_NUMBER, "std": _MAYBE_NUMBER, "ci95": _MAYBE_LIST}

    n: int = 0
    mean: float | None = None
    std: float | None = None
    ci95: list[float] | None = None

    def check(self) -> None:
        if self.ci95 is not None and len(self.ci95) != 2:
            raise ValueError(f"{DOCUMENT}: '{self.KEY}.ci95' must be [low, high], got {self.ci95!r}")


@dataclass(frozen=True)
class PairedDifference(Summary):
    """A configuration minus the baseline, seed by seed: the summary of the differences, and who won."""

    KEY = "paired_diff_to_baseline"
    TYPES = {**Summary.TYPES, "seeds": list, "diffs": list, "wins": int, "ties": int, "losses": int,
             "ci_excludes_zero": bool}

    seeds: list[int] | None = None
    diffs: list[float] | None = None
    wins: int | None = None
    ties: int | None = None
    losses: int | None = None
    # The interval tells whether the gain is more than seed noise (at 95%), either way.
    ci_excludes_zero: bool | None = None


@dataclass(frozen=True)
class EnsembleScores(Part):
    """Dev and test wF1 of the mean class probabilities of some runs (`members` of them, at `seeds`)."""

    KEY = "ensemble"
    REQUIRED = ("members", "seeds", "dev_weighted_f1", "test_weighted_f1")
    TYPES = {"members": int, "seeds": list, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER}

    members: int
    seeds: list[int]
    dev_weighted_f1: float
    test_weighted_f1: float
