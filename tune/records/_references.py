"""The reference scores a best config records beside its own: always the majority class, and a
context-free logistic regression on the same utterance vectors
(`tune.stats.references.reference_scores` computes them)."""

from __future__ import annotations

from pydantic import Field

from tune.records._base import Finite
from tune.records._parts import Part

__all__ = ["LinearReference", "MajorityReference", "References"]


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


class References(Part):
    """The references of one modality set."""

    modalities: str
    majority: MajorityReference
    logistic_regression: LinearReference
