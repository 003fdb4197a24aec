"""The reference scores a best config records beside its own: always the majority class, and a
context-free logistic regression on the same utterance vectors
(`tune.stats.references.reference_scores` computes them)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tune.records._base import Finite
from tune.records._parts import Part
from tune.records._scores import Summary

__all__ = ["LinearReference", "MajorityReference", "ReferenceRun", "References"]


class MajorityReference(Part):
    """Always predicting train's majority class (`class`), scored on dev and test."""

    majority_class: str = Field(alias="class")
    dev_weighted_f1: Finite
    test_weighted_f1: Finite
    test_ci95: list[Finite] | None = (
        None  # a dialogue-level bootstrap of its test wF1 (tune/stats/bootstrap.py)
    )


class LinearReference(Part):
    """A logistic regression on each utterance's vectors, its C chosen on dev, test evaluated
    once."""

    C: Finite  # noqa: N815 - the key sklearn and the file use
    dev_weighted_f1: Finite
    test_weighted_f1: Finite
    test_ci95: list[Finite] | None = (
        None  # a dialogue-level bootstrap of its test wF1 (tune/stats/bootstrap.py)
    )
    features: str = ""  # what it sees, in words


class ReferenceRun(Part):
    """A reference trained as a user would without the search (the project's defaults as `train.py`
    runs them, or a strong untuned setting), over `seeds`: its scores and what it cost."""

    label: str
    config: dict[str, Any]
    seeds: list[int]
    test_weighted_f1: Summary  # over its seeds (mean, std, CI95 over seeds)
    dev_weighted_f1: Summary  # the best dev epoch of each seed, as train.py selects it
    best_epochs: list[int]
    wall_seconds: Finite | None = None  # all its runs together
    file: str = ""  # where its runs are kept (reused by later searches of the same data)
    reused: bool = False  # taken from an earlier search's runs


class References(Part):
    """The references of one modality set."""

    modalities: str
    majority: MajorityReference
    logistic_regression: LinearReference
    runs: list[ReferenceRun] = Field(default_factory=list)
