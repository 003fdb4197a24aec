"""Reference scores a search result is judged against: always the majority class, and a
context-free logistic regression on the same utterance vectors.

Statistics only (no Ray, no training of the JOYFUL model). The logistic regression sees each
utterance's modality vectors, concatenated and standardised with train statistics; its C is
chosen on dev weighted F1 and test is evaluated once, with that C: the same rules as the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from joyful.data.dialogues import DialogueData
from joyful.metrics import weighted_f1
from tune.records import (
    BestConfig,
    Comparison,
    LinearReference,
    MajorityLevel,
    MajorityReference,
    References,
    StudyRecord,
    Summary,
    TrialRecord,
)
from tune.stats.bootstrap import Predictions, bootstrap_interval

__all__ = [
    "C_GRID",
    "Published",
    "ReferenceModels",
    "Standing",
    "judge",
    "majority_level",
    "majority_warning",
    "published_test",
    "reference_models",
    "reference_scores",
    "winner_test",
]

C_GRID = (0.01, 0.1, 1.0)


def _split(data: DialogueData, split: str, modalities: str) -> tuple[np.ndarray, np.ndarray]:
    dialogues = data.splits[split]
    features = np.concatenate(
        [np.concatenate([d.features[m] for m in modalities], axis=1) for d in dialogues]
    )
    return features.astype(np.float64), np.concatenate([d.labels for d in dialogues])


@dataclass(frozen=True)
class ReferenceModels:
    """The references' scores (the record a best config keeps) and their predictions, utterance by
    utterance, on dev and test: what the intervals compare a published model with, and what the
    split's noise is measured on."""

    record: References
    dev: dict[str, Predictions]  # "logistic regression", "majority"
    test: dict[str, Predictions]


def reference_models(data: DialogueData, modalities: str, seed: int = 0) -> ReferenceModels:
    """Always-majority (train's majority class) and the logistic regression, fitted on train (C
    chosen on dev), scored on dev and test."""
    from sklearn.linear_model import LogisticRegression

    (x_train, y_train), (x_dev, y_dev), (x_test, y_test) = (
        _split(data, s, modalities) for s in ("train", "dev", "test")
    )
    majority = int(np.bincount(y_train).argmax())
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std < 1e-8] = 1.0

    def scaled(x: np.ndarray) -> np.ndarray:
        return (x - mean) / std

    best: tuple[float, float, Any] | None = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=300, random_state=seed).fit(
            scaled(x_train), y_train
        )
        dev = weighted_f1(y_dev, model.predict(scaled(x_dev)))
        if best is None or dev > best[0]:
            best = (dev, c, model)
    dev_f1, c, model = best

    def predictions(split: str, labels: np.ndarray, predicted: np.ndarray) -> Predictions:
        lengths = [len(d) for d in data.splits[split]]
        return Predictions(labels, predicted, np.repeat(np.arange(len(lengths)), lengths))

    dev = {
        "logistic regression": predictions("dev", y_dev, model.predict(scaled(x_dev))),
        "majority": predictions("dev", y_dev, np.full_like(y_dev, majority)),
    }
    test = {
        "logistic regression": predictions("test", y_test, model.predict(scaled(x_test))),
        "majority": predictions("test", y_test, np.full_like(y_test, majority)),
    }
    n_classes = data.spec.n_classes
    record = References(
        modalities=modalities,
        majority=MajorityReference(
            majority_class=data.spec.label_names[majority],
            dev_weighted_f1=weighted_f1(y_dev, dev["majority"].predicted),
            test_weighted_f1=weighted_f1(y_test, test["majority"].predicted),
            test_ci95=_ci95(test["majority"], n_classes),
        ),
        logistic_regression=LinearReference(
            C=c,
            dev_weighted_f1=dev_f1,
            test_weighted_f1=weighted_f1(y_test, test["logistic regression"].predicted),
            test_ci95=_ci95(test["logistic regression"], n_classes),
            features="each utterance's vectors, concatenated, standardised on "
            f"train; C in {list(C_GRID)} chosen on dev",
        ),
    )
    return ReferenceModels(record, dev, test)


def reference_scores(data: DialogueData, modalities: str, seed: int = 0) -> References:
    """The references' record alone (see `reference_models`)."""
    return reference_models(data, modalities, seed).record


def _ci95(predictions: Predictions, n_classes: int) -> list[float]:
    interval = bootstrap_interval(predictions, n_classes=n_classes)
    return [interval.low, interval.high]


class Standing(Enum):
    """Where a published model's test wF1 stands against the logistic regression (LR): by the paired
    interval of their difference on the same test dialogues when there is one, else by the point
    estimates alone."""

    ABOVE = "above"  # the interval lies above 0 (or, without one, a higher score)
    TIE = "tie"  # the interval holds 0: the data cannot tell the two apart
    BELOW = "below"  # the interval lies below 0 (or, without one, a score at or below LR's)

    def words(self, lr: float, interval: Comparison | None) -> str:
        ci = (
            f", CI95 [{interval.ci95[0]:+.4f}, {interval.ci95[1]:+.4f}]"
            if interval
            else " (no interval)"
        )
        difference = f" by {interval.estimate:+.4f}{ci}" if interval else ci
        return {
            Standing.ABOVE: f"above logistic regression ({lr:.4f}){difference}",
            Standing.TIE: f"a tie with logistic regression ({lr:.4f}){difference}",
            Standing.BELOW: f"BELOW logistic regression ({lr:.4f}){difference}",
        }[self]


@dataclass(frozen=True)
class Published:
    """The test score of what a best config publishes: its ensemble, else its confirmed winner's
    mean over runs, else the re-run winner; `single` is the confirmed single-run mean beside an
    ensemble; `against` the paired interval against the logistic regression."""

    what: str
    test_weighted_f1: float
    ci95: list[float] | None = None
    single: Summary | None = None  # the confirmed winner's single runs (with an ensemble)
    against: Comparison | None = None

    def standing(self, references: References) -> Standing:
        if self.against is not None:
            if self.against.tie:
                return Standing.TIE
            return Standing.ABOVE if self.against.estimate > 0 else Standing.BELOW
        return (
            Standing.ABOVE
            if self.test_weighted_f1 > references.logistic_regression.test_weighted_f1
            else Standing.BELOW
        )

    def below(self, references: References) -> bool:
        return self.standing(references) is not Standing.ABOVE

    def single_below(self, references: References) -> bool:
        """Whether the single runs behind an ensemble stay at or below the logistic regression."""
        return (
            self.single is not None
            and self.single.mean is not None
            and self.single.mean <= references.logistic_regression.test_weighted_f1
        )


def published_test(best: BestConfig) -> Published | None:
    """What `best` publishes and its test wF1 (see `Published`); None when nothing was tested."""
    single = winner_test(best)
    against = next((c for c in best.comparisons if c.second == "logistic regression"), None)
    if best.ensemble:
        return Published(
            f"published ensemble ({best.ensemble.members_from})",
            best.ensemble.test_weighted_f1,
            single=single if single and single.n > 1 else None,
            against=against,
        )
    if single and single.mean is not None:
        what = f"confirmed winner over {single.n} runs" if best.confirmation else "re-run winner"
        return Published(what, single.mean, single.ci95, against=against)
    return None


def judge(published: Published | None, references: References | None) -> str | None:
    """One line: the published model's test wF1 against the references (with the paired interval
    against the logistic regression when there is one); None when either is missing."""
    if published is None or not references:
        return None
    lr = references.logistic_regression.test_weighted_f1
    majority = references.majority
    interval = (
        f" (CI95 [{published.ci95[0]:.4f}, {published.ci95[1]:.4f}])" if published.ci95 else ""
    )
    verdict = published.standing(references).words(lr, published.against)
    single = ""
    if published.single and published.single.mean is not None:
        ci = published.single.ci95
        single = f"; its single runs {published.single.mean:.4f}" + (
            f" (CI95 [{ci[0]:.4f}, {ci[1]:.4f}])" if ci else ""
        )
    return (
        f"{published.what}: test wF1 {published.test_weighted_f1:.4f}{interval}: "
        f"{verdict}{single}; always-{majority.majority_class} {majority.test_weighted_f1:.4f}"
    )


def winner_test(best: BestConfig) -> Summary | None:
    """Test wF1 of a best config's single-run winner: over the confirmation's seeds, else the
    re-run's value."""
    winner = best.confirmation.winner_entry if best.confirmation else None
    if winner is not None:
        return winner.test_weighted_f1
    return Summary(n=1, mean=best.test.weighted_f1) if best.test else None


def majority_level(data: DialogueData, pooled: bool = False) -> MajorityLevel:
    """The level a trivial model reaches where the search ranks: always the training split's most
    frequent class (the class the references table's always-majority row predicts), scored by
    weighted F1 on dev (`pooled`: on train + dev, what the held-out folds of a cross-validated
    search add up to, with the majority class of that pool).

    Cheap (labels only), so every search records it and its plots draw it; a winner at this level
    has learned nothing (e.g. a weak modality that trains to "always neutral")."""
    fitted_on = data.splits["train"] + (data.splits["dev"] if pooled else [])
    scored_on = data.splits["dev"] + (data.splits["train"] if pooled else [])
    majority = int(np.bincount(np.concatenate([d.labels for d in fitted_on])).argmax())
    labels = np.concatenate([d.labels for d in scored_on])
    return MajorityLevel(
        majority_class=data.spec.label_names[majority],
        dev_weighted_f1=weighted_f1(labels, np.full_like(labels, majority)),
    )


def majority_warning(study: StudyRecord, winner: TrialRecord | None) -> str | None:
    """One line when the search's winner does not clear always-majority on dev (it learned nothing
    more)."""
    if winner is None or not study.majority:
        return None
    level = study.majority.dev_weighted_f1
    if winner.best_dev_weighted_f1 > level + 1e-9:
        return None
    return (
        f"WARNING: {study.dataset}: the best trial's dev wF1 {winner.best_dev_weighted_f1:.4f} "
        "does not clear "
        f"always-{study.majority.majority_class} ({level:.4f}): the search found nothing better "
        "than predicting the majority class"
    )
