"""The dialogue-level bootstrap (tune/stats/bootstrap.py), checked against sklearn and a per-replicate loop."""

from __future__ import annotations

import numpy as np
import pytest

from joyful.metrics import weighted_f1
from tune.stats.bootstrap import (
    Predictions,
    RunSet,
    bootstrap_interval,
    bootstrap_runs,
    holm,
    weighted_f1_of_confusion,
)


def _model(
    seed: int, accuracy: float, lengths: list[int], n_classes: int = 4
) -> tuple[np.ndarray, Predictions]:
    rng = np.random.default_rng(seed)
    labels = np.random.default_rng(0).integers(0, n_classes, sum(lengths))
    right = rng.random(len(labels)) < accuracy
    predicted = np.where(right, labels, rng.integers(0, n_classes, len(labels)))
    return labels, Predictions(labels, predicted, np.repeat(np.arange(len(lengths)), lengths))


def test_the_weighted_f1_of_a_confusion_matrix_is_sklearns() -> None:
    labels, model = _model(1, 0.6, [5, 9, 3, 12])
    labels[:3] = 3  # a class never predicted right, one never true: zero division paths
    model = Predictions(labels, np.where(model.predicted == 2, 1, model.predicted), model.dialogue)
    confusion = model.confusions(4, 4).sum(axis=0)
    assert weighted_f1_of_confusion(confusion, 4) == pytest.approx(
        weighted_f1(labels, model.predicted)
    )


def test_the_interval_is_the_percentile_one_over_resampled_dialogues() -> None:
    """The same replicates drawn by hand: whole dialogues with replacement, every utterance of each scored."""
    lengths = [3, 7, 2, 5, 6, 4]
    labels, model = _model(2, 0.7, lengths)
    interval = bootstrap_interval(model, n_classes=4, replicates=300, seed=5)
    rng = np.random.default_rng(5)
    weights = rng.multinomial(len(lengths), np.full(len(lengths), 1 / len(lengths)), size=300)
    scores = []
    for draw in weights:
        chosen = np.concatenate(
            [
                np.flatnonzero(model.dialogue == d)
                for d, times in enumerate(draw)
                for _ in range(times)
            ]
        )
        scores.append(weighted_f1(labels[chosen], model.predicted[chosen]))
    assert interval.estimate == pytest.approx(weighted_f1(labels, model.predicted))
    assert (interval.low, interval.high) == pytest.approx(
        tuple(np.quantile(scores, [0.025, 0.975]))
    )
    assert interval.dialogues == 6 and interval.low <= interval.estimate <= interval.high


def test_a_paired_difference_cancels_what_both_models_share() -> None:
    lengths = [int(n) for n in np.random.default_rng(3).integers(3, 15, 80)]
    labels, better = _model(4, 0.80, lengths)
    _, worse = _model(5, 0.55, lengths)
    paired = bootstrap_interval(better, worse, n_classes=4, seed=1)
    assert paired.estimate == pytest.approx(
        weighted_f1(labels, better.predicted) - weighted_f1(labels, worse.predicted)
    )
    assert paired.low > 0 and not paired.tie
    same = bootstrap_interval(better, better, n_classes=4, seed=1)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0) and same.tie
    close = bootstrap_interval(
        better,
        Predictions(
            labels, np.where(np.arange(len(labels)) == 0, -1 % 4, better.predicted), better.dialogue
        ),
        n_classes=4,
        seed=1,
    )
    assert close.tie  # one utterance apart: no evidence either way


def test_a_paired_interval_needs_the_same_utterances() -> None:
    _, model = _model(1, 0.5, [3, 4])
    other = Predictions(model.labels[::-1].copy(), model.predicted, model.dialogue)
    with pytest.raises(ValueError, match="same utterances"):
        bootstrap_interval(model, other, n_classes=4)


def _run_set(runs: list[list[int]], labels: list[int], classes: int = 3) -> RunSet:
    """Crafted runs: each a list of predicted classes, as one-hot probabilities; one utterance per
    dialogue."""
    probabilities = np.stack([np.eye(classes)[predicted] for predicted in runs])
    return RunSet(np.array(labels), np.arange(len(labels)), probabilities)


def test_with_one_run_each_the_run_bootstrap_is_the_dialogue_bootstrap() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 60)
    a = [list(np.where(rng.random(60) < 0.7, labels, rng.integers(0, 3, 60)))]
    b = [list(np.where(rng.random(60) < 0.5, labels, rng.integers(0, 3, 60)))]
    runs = bootstrap_runs(_run_set(a, labels), _run_set(b, labels), n_classes=3)
    plain = bootstrap_interval(
        _run_set(a, labels).predictions(), _run_set(b, labels).predictions(), n_classes=3
    )
    assert (runs.estimate, runs.low, runs.high) == (plain.estimate, plain.low, plain.high)
    assert 0 < runs.p_value <= 1


def test_the_interval_widens_with_the_seeds_variance() -> None:
    """Two configurations whose mean predictions are alike: with runs that agree the difference is
    pinned down by the dialogues alone; with runs that scatter, redrawing the seeds widens it."""
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 120)

    def runs(spread: float) -> list[list[int]]:
        return [
            list(np.where(rng.random(120) < 0.75 - spread * k, labels, (labels + 1) % 3))
            for k in (-1, 0, 1)
        ]

    steady = bootstrap_runs(_run_set(runs(0.0), labels), _run_set(runs(0.0), labels), n_classes=3)
    scattered = bootstrap_runs(
        _run_set(runs(0.2), labels), _run_set(runs(0.2), labels), n_classes=3
    )
    assert scattered.high - scattered.low > 1.2 * (steady.high - steady.low)


def test_holm_adjusts_a_family_step_down() -> None:
    # Smallest times 4, next times 3 (kept monotone), then times 2, then times 1.
    assert holm([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert holm([]) == []


def test_a_difference_that_does_not_survive_the_family_is_a_tie() -> None:
    from tune.records import Comparison

    shown = Comparison(
        name="x",
        first="a",
        second="b",
        split="test",
        estimate=0.02,
        ci95=[0.001, 0.04],
        dialogues=100,
        replicates=2000,
        p_value=0.03,
    )
    assert not shown.tie and shown.verdict == "a better"
    family = shown.replace(p_holm=0.09, family=3)
    assert family.tie and "Holm-adjusted over 3" in family.words()
