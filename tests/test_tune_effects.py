"""The expected-effects measures on hand-built curves: exact numbers, no training."""

from __future__ import annotations

import math
import statistics

import pytest

from tune.reporting.tables import effects_markdown
from tune.stats.effects import (
    EXPECTATIONS,
    RunCurve,
    compare_effects,
    epochs_to_reach,
    summarise_runs,
    tail_std,
    verdict,
)


def test_epochs_to_reach_is_the_first_epoch_at_95_percent_of_the_best() -> None:
    # best 0.60; 95% of it is 0.57: epoch 3 (0.58) is the first at or above it.
    assert epochs_to_reach([0.30, 0.50, 0.58, 0.60, 0.59]) == 3
    assert epochs_to_reach([0.5, 0.4]) == 1  # the best epoch itself always qualifies
    assert epochs_to_reach([0.2, 0.57, 0.6]) == 2  # exactly 95% counts
    assert epochs_to_reach([0.1, 0.2, 0.4], fraction=0.5) == 2


def test_epochs_to_reach_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        epochs_to_reach([])
    with pytest.raises(ValueError, match="`fraction` is 0"):
        epochs_to_reach([0.5], fraction=0)


def test_tail_std_uses_the_last_ten_epochs_or_all() -> None:
    values = [0.0] * 5 + [float(i) for i in range(10)]
    assert tail_std(values) == pytest.approx(statistics.stdev(range(10)))  # 3.0277
    assert tail_std([1.0, 3.0]) == pytest.approx(math.sqrt(2))  # fewer than 10: all epochs
    assert math.isnan(tail_std([0.4]))


def _runs(curves: list[list[float]], losses: list[float], tests: list[float]) -> list[RunCurve]:
    return [
        RunCurve(c, [1.0] * (len(c) - 1) + [loss], [0.5] * (len(c) - 1) + [loss / 2], test)
        for c, loss, test in zip(curves, losses, tests, strict=True)
    ]


def test_summarise_and_compare_on_hand_built_runs() -> None:
    baseline = summarise_runs(
        _runs([[0.2, 0.4, 0.5, 0.6], [0.3, 0.5, 0.55, 0.6]], [0.8, 1.0], [0.50, 0.52])
    )
    winner = summarise_runs(
        _runs([[0.5, 0.62, 0.62, 0.61], [0.55, 0.64, 0.63, 0.62]], [0.7, 0.83], [0.53, 0.53])
    )
    # epochs to 95%: baseline 4 and 4 (0.57 / 0.57 first reached at epoch 4); winner 2 and 2.
    assert baseline.epochs_to_95 == 4.0 and winner.epochs_to_95 == 2.0
    assert baseline.best_dev_std == 0.0 and winner.best_dev_std == pytest.approx(
        statistics.stdev([0.62, 0.64])
    )
    assert baseline.final_train_loss == pytest.approx(
        0.9
    ) and winner.final_train_loss == pytest.approx(0.765)
    assert baseline.final_train_nll == pytest.approx(0.45)
    assert winner.dev_weighted_f1 == pytest.approx(
        0.63
    ) and winner.test_weighted_f1 == pytest.approx(0.53)
    rows = {row.measure: row for row in compare_effects(baseline, winner)}
    assert [r.measure for r in compare_effects(baseline, winner)] == [
        e.measure for e in EXPECTATIONS
    ]
    assert rows["epochs_to_95"].change == pytest.approx(0.5)  # 50% faster: beyond 15-25%
    assert rows["epochs_to_95"].verdict == "held (beyond the expected range)"
    assert rows["epochs_to_95"].seeds_better == "2/2"
    assert rows["final_train_loss"].change == pytest.approx(0.15)  # 0.9 -> 0.765: inside 10-20%
    assert rows["final_train_loss"].verdict == "held"
    assert rows["dev_weighted_f1"].change == pytest.approx(3.0)  # 0.60 -> 0.63: +3 points
    assert rows["test_weighted_f1"].change == pytest.approx(2.0)  # 0.51 -> 0.53: +2 points
    assert rows["test_weighted_f1"].verdict == "held"  # the top of the range is inside it
    assert rows["test_weighted_f1"].seeds_better == "2/2"  # 0.50 -> 0.53 and 0.52 -> 0.53
    # Across-seed std of the baseline is 0: a relative reduction is undefined, and said so.
    assert rows["best_dev_std"].change is None and rows["best_dev_std"].verdict == "not measurable"
    assert rows["best_dev_std"].seeds_better is None
    table = effects_markdown(list(rows.values()))
    assert (
        "| convergence | epochs to 95% of the run's best dev wF1 | 4.00 | 2.00 | 50.0% faster |"
        in table
    )
    assert "not measurable" in table


def test_verdicts() -> None:
    assert verdict(0.2, 0.15, 0.25) == "held"
    assert verdict(0.3, 0.15, 0.25) == "held (beyond the expected range)"
    assert verdict(0.05, 0.15, 0.25) == "weaker than expected"
    assert verdict(0.0, 0.15, 0.25) == "did not hold"
    assert verdict(-0.1, 0.15, 0.25) == "did not hold"
    assert verdict(math.nan, 0.15, 0.25) == "not measurable"


def test_a_worse_winner_is_reported_as_such() -> None:
    baseline = summarise_runs(_runs([[0.5, 0.6], [0.5, 0.62]], [0.5, 0.5], [0.6, 0.6]))
    winner = summarise_runs(_runs([[0.3, 0.59], [0.3, 0.57]], [0.6, 0.6], [0.55, 0.56]))
    rows = {row.measure: row for row in compare_effects(baseline, winner)}
    assert rows["final_train_loss"].change == pytest.approx(-0.2)
    assert rows["final_train_loss"].verdict == "did not hold"
    assert rows["dev_weighted_f1"].change == pytest.approx(-3.0)
    assert rows["dev_weighted_f1"].seeds_better == "0/2"
    assert "20.0% higher" in effects_markdown([rows["final_train_loss"]])


def test_run_curve_checks_lengths() -> None:
    with pytest.raises(ValueError, match="train_loss has 1 epochs, but dev_weighted_f1 has 2"):
        RunCurve([0.1, 0.2], [1.0])


def test_the_spread_across_seeds_is_of_each_seeds_mean_over_its_folds() -> None:
    # Two seeds, two folds each: the folds differ a lot (0.4 vs 0.6), the seeds' means do not (0.5).
    curves = [[0.4], [0.6], [0.6], [0.4]]
    runs = _runs(curves, [1.0] * 4, [0.5] * 4)
    across_seeds = summarise_runs(runs, seeds=[0, 0, 1, 1])
    assert across_seeds.best_dev_std == 0.0
    # Without the seeds each run counts as its own seed: the folds' spread.
    assert summarise_runs(runs).best_dev_std == pytest.approx(
        statistics.stdev([0.4, 0.6, 0.6, 0.4])
    )
    # Seeds whose means differ do show it.
    apart = summarise_runs(_runs([[0.4], [0.6], [0.7], [0.5]], [1.0] * 4, [0.5] * 4), [0, 0, 1, 1])
    assert apart.best_dev_std == pytest.approx(statistics.stdev([0.5, 0.6]))


def test_a_spread_across_two_seeds_is_shown_but_not_judged() -> None:
    """Confirmation's 2 seeds per fold: the s.d. of two seed means is shown, not turned into a
    verdict (MELD's study got "98% lower, held" from two means 0.0001 apart); 3 seeds are judged."""
    two = summarise_runs(_runs([[0.50], [0.56]], [1.0] * 2, [0.5] * 2))
    steadier = summarise_runs(_runs([[0.52], [0.53]], [1.0] * 2, [0.5] * 2))
    [row] = [r for r in compare_effects(two, steadier) if r.measure == "best_dev_std"]
    assert row.baseline == pytest.approx(statistics.stdev([0.50, 0.56]))
    assert row.change is None and row.verdict == "not measurable"
    assert "2 seeds: too few to judge a spread, needs 3" in row.description
    three = summarise_runs(_runs([[0.50], [0.56], [0.53]], [1.0] * 3, [0.5] * 3))
    calm = summarise_runs(_runs([[0.52], [0.53], [0.525]], [1.0] * 3, [0.5] * 3))
    [row] = [r for r in compare_effects(three, calm) if r.measure == "best_dev_std"]
    assert row.change == pytest.approx(5 / 6) and row.verdict == "held (beyond the expected range)"
    assert "too few" not in row.description
