"""The reference scores a best config records beside its own: always the majority class, and a context-free
logistic regression on the same utterance vectors (`tune.stats.references.reference_scores` computes them)."""

from __future__ import annotations

from dataclasses import dataclass

from tune.records._document import Part

__all__ = ["LinearReference", "MajorityReference", "References"]

_NUMBER = (int, float)


@dataclass(frozen=True, kw_only=True)
class MajorityReference(Part):
    """Always predicting train's majority class (`class`), scored on dev and test."""

    KEY = "references.majority"
    REQUIRED = ("majority_class", "dev_weighted_f1", "test_weighted_f1")
    RENAMED = {"majority_class": "class"}
    TYPES = {"majority_class": str, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER}

    majority_class: str
    dev_weighted_f1: float
    test_weighted_f1: float


@dataclass(frozen=True, kw_only=True)
class LinearReference(Part):
    """A logistic regression on each utterance's vectors, its C chosen on dev, test evaluated once."""

    KEY = "references.logistic_regression"
    REQUIRED = ("C", "dev_weighted_f1", "test_weighted_f1")
    TYPES = {"C": _NUMBER, "dev_weighted_f1": _NUMBER, "test_weighted_f1": _NUMBER, "features": str}

    C: float  # noqa: N815 - the key sklearn and the file use
    dev_weighted_f1: float
    test_weighted_f1: float
    features: str = ""  # what it sees, in words


@dataclass(frozen=True, kw_only=True)
class References(Part):
    """The references of one modality set."""

    KEY = "references"
    REQUIRED = ("modalities", "majority", "logistic_regression")
    TYPES = {"modalities": str}
    PARTS = {"majority": MajorityReference, "logistic_regression": LinearReference}

    modalities: str
    majority: MajorityReference
    logistic_regression: LinearReference
