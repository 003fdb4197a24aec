"""Intervals on weighted F1 from a dialogue-level bootstrap, alone or paired (two models, the same
dialogues).

Utterances of one dialogue are not independent draws (one speaker's mood runs through it), so the
unit of resampling is the dialogue: a replicate draws as many dialogues as the split has, with
replacement, and scores every utterance of each drawn dialogue. A paired interval draws the same
dialogues for both models, so what the two share (an easy or a hard dialogue) cancels out of their
difference. The interval is the percentile one (2.5% and 97.5% of the replicates for 95%).

Fast: each model's predictions become one confusion matrix per dialogue, and a replicate's confusion
matrix is those matrices weighted by how often each dialogue was drawn - one matrix product for all
replicates. Ties: a difference whose interval holds 0 is no evidence of a difference
(`Interval.tie`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "REPLICATES",
    "Interval",
    "Predictions",
    "RunSet",
    "bootstrap_interval",
    "bootstrap_runs",
    "holm",
    "standard_error",
    "weighted_f1_of_confusion",
]

REPLICATES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Predictions:
    """One model's class predictions on one split, utterance by utterance, with each utterance's
    dialogue (an index 0..dialogues-1, the same for every model scored on that split)."""

    labels: np.ndarray  # (N,) int
    predicted: np.ndarray  # (N,) int
    dialogue: np.ndarray  # (N,) int

    @classmethod
    def of(cls, labels: np.ndarray, probabilities: np.ndarray, lengths: list[int]) -> Predictions:
        """From class probabilities (N, C) of utterances in dialogue order (`lengths`: utterances
        per dialogue)."""
        dialogue = np.repeat(np.arange(len(lengths)), lengths)
        if len(dialogue) != len(labels) or len(labels) != len(probabilities):
            raise ValueError(
                f"{len(labels)} labels and {len(probabilities)} predictions for {len(dialogue)} "
                "utterances of the dialogues given"
            )
        return cls(np.asarray(labels), np.asarray(probabilities).argmax(axis=1), dialogue)

    def confusions(self, n_classes: int, n_dialogues: int) -> np.ndarray:
        """(dialogues, C * C) counts: row-major confusion matrix (true, predicted) of each
        dialogue."""
        cell = (self.dialogue * n_classes + self.labels) * n_classes + self.predicted
        counts = np.bincount(cell, minlength=n_dialogues * n_classes * n_classes)
        return counts.reshape(n_dialogues, n_classes * n_classes).astype(np.float64)


@dataclass(frozen=True)
class Interval:
    """A weighted F1 (or a difference of two) and its bootstrap interval over dialogues."""

    estimate: float  # on the split as it is
    low: float
    high: float
    dialogues: int
    replicates: int
    level: float = LEVEL
    p_value: float | None = None  # two-sided, for a difference (bootstrap_runs)

    @property
    def tie(self) -> bool:
        """For a difference: the interval holds 0, so the data cannot tell the two apart."""
        return self.low <= 0.0 <= self.high

    def words(self, digits: int = 4) -> str:
        return f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"


def weighted_f1_of_confusion(confusion: np.ndarray, n_classes: int) -> np.ndarray:
    """Weighted F1 of confusion matrices (..., C * C) as sklearn computes it (zero_division=0): per
    class F1 weighted by the class's support."""
    matrix = confusion.reshape(*confusion.shape[:-1], n_classes, n_classes)
    true_positive = np.diagonal(matrix, axis1=-2, axis2=-1)
    support = matrix.sum(axis=-1)  # utterances of each true class
    predicted = matrix.sum(axis=-2)  # utterances predicted as each class
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(support + predicted > 0, 2 * true_positive / (support + predicted), 0.0)
        total = support.sum(axis=-1)
        return np.where(total > 0, (f1 * support).sum(axis=-1) / total, 0.0)


def standard_error(
    predictions: Predictions, *, n_classes: int, replicates: int = REPLICATES, seed: int = 0
) -> float:
    """The standard deviation of the weighted F1 over dialogue-level resamples: how far the score of
    this model would move on another draw of the split's dialogues."""
    n_dialogues = int(predictions.dialogue.max()) + 1
    weights = (
        np.random.default_rng(seed)
        .multinomial(n_dialogues, np.full(n_dialogues, 1.0 / n_dialogues), size=replicates)
        .astype(np.float64)
    )
    values = weighted_f1_of_confusion(
        weights @ predictions.confusions(n_classes, n_dialogues), n_classes
    )
    return float(np.std(values, ddof=1))


def bootstrap_interval(
    first: Predictions,
    second: Predictions | None = None,
    *,
    n_classes: int,
    replicates: int = REPLICATES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """The weighted F1 of `first`, or with `second` the paired difference first - second, with its
    percentile interval over `replicates` dialogue-level resamples (seeded: the same call gives the
    same interval)."""
    n_dialogues = int(first.dialogue.max()) + 1 if len(first.dialogue) else 0
    if n_dialogues == 0:
        raise ValueError("no utterances to score")
    if second is not None and (
        not np.array_equal(first.labels, second.labels)
        or not np.array_equal(first.dialogue, second.dialogue)
    ):
        raise ValueError("a paired interval needs both models' predictions of the same utterances")
    weights = (
        np.random.default_rng(seed)
        .multinomial(n_dialogues, np.full(n_dialogues, 1.0 / n_dialogues), size=replicates)
        .astype(np.float64)
    )  # (B, D)

    def scores(predictions: Predictions) -> tuple[float, np.ndarray]:
        per_dialogue = predictions.confusions(n_classes, n_dialogues)
        whole = weighted_f1_of_confusion(per_dialogue.sum(axis=0), n_classes)
        return float(whole), weighted_f1_of_confusion(weights @ per_dialogue, n_classes)

    estimate, values = scores(first)
    if second is not None:
        other, other_values = scores(second)
        estimate, values = estimate - other, values - other_values
    tail = (1.0 - level) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), n_dialogues, replicates, level)


@dataclass(frozen=True)
class RunSet:
    """Several runs' class probabilities of the same utterances (a configuration's seeds, or its
    fold models): `probabilities` (runs, N, C), with the utterances' labels and dialogues. What a
    configuration predicts is the mean of its runs' probabilities."""

    labels: np.ndarray  # (N,) int
    dialogue: np.ndarray  # (N,) int
    probabilities: np.ndarray  # (R, N, C)

    def predictions(self, runs: np.ndarray | None = None) -> Predictions:
        """The predictions of the mean of `runs` (indices, repeats allowed; default: every run)."""
        chosen = self.probabilities if runs is None else self.probabilities[runs]
        return Predictions(self.labels, chosen.mean(axis=0).argmax(axis=1), self.dialogue)


def bootstrap_runs(
    first: RunSet,
    second: RunSet | None = None,
    *,
    n_classes: int,
    replicates: int = REPLICATES,
    seed: int = 0,
    level: float = LEVEL,
) -> Interval:
    """As `bootstrap_interval`, with the seed's variance in it too: each replicate also redraws each
    configuration's runs (with replacement, as many as it has) before averaging their probabilities,
    so a difference that another draw of seeds could undo is not called one. With one run each it is
    the dialogue bootstrap."""
    n_dialogues = int(first.dialogue.max()) + 1 if len(first.dialogue) else 0
    if n_dialogues == 0:
        raise ValueError("no utterances to score")
    if second is not None and (
        not np.array_equal(first.labels, second.labels)
        or not np.array_equal(first.dialogue, second.dialogue)
    ):
        raise ValueError("a paired interval needs both models' predictions of the same utterances")
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(
        n_dialogues, np.full(n_dialogues, 1.0 / n_dialogues), size=replicates
    ).astype(np.float64)

    def score(runs: RunSet, picks: np.ndarray | None, w: np.ndarray | None) -> float:
        confusions = runs.predictions(picks).confusions(n_classes, n_dialogues)
        total = confusions.sum(axis=0) if w is None else w @ confusions
        return float(weighted_f1_of_confusion(total, n_classes))

    estimate = score(first, None, None) - (score(second, None, None) if second else 0.0)
    values = np.empty(replicates)
    for b in range(replicates):
        picks_a = rng.integers(0, len(first.probabilities), size=len(first.probabilities))
        values[b] = score(first, picks_a, weights[b])
        if second is not None:
            picks_b = rng.integers(0, len(second.probabilities), size=len(second.probabilities))
            values[b] -= score(second, picks_b, weights[b])
    tail = (1.0 - level) / 2
    low, high = np.quantile(values, [tail, 1.0 - tail])
    p_value = min(1.0, 2 * min((values <= 0).mean(), (values >= 0).mean()) + 1.0 / replicates)
    return Interval(estimate, float(low), float(high), n_dialogues, replicates, level, p_value)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order as given): the smallest is
    multiplied by the family's size, the next by one less, and so on, each kept at least as large as
    the one before; a difference is claimed only where the adjusted value is below the level."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
