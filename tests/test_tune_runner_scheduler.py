"""The scheduler that stops a trial only on evidence (tune/runner/scheduler.py), driven by crafted curves with no
model and no Ray trial: as Optuna's pruner tests drive a study in memory."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import TrialScheduler

from tune.runner.scheduler import PatientHalving
from tune.stats.noise import SplitNoise

STOP, GO = TrialScheduler.STOP, TrialScheduler.CONTINUE


def _scheduler(
    noise: float | SplitNoise = 0.02,
    *,
    time_attr: str = "epoch",
    max_t: int = 10,
    grace: int = 2,
    rf: int = 2,
    floor: float = 0.25,
) -> PatientHalving:
    return PatientHalving(
        time_attr=time_attr,
        max_t=max_t,
        grace_period=grace,
        reduction_factor=rf,
        floor=floor,
        noise=noise,
        metric="search_score",
        mode="max",
    )


def _at(scheduler: PatientHalving, trial: str, budget: int, score: float) -> str:
    return scheduler.decide(trial, {scheduler.time_attr: budget, "search_score": score})


def test_no_trial_is_stopped_while_the_leaders_sit_at_the_majority_level() -> None:
    """MELD's first study: every trial near always-neutral (0.25) at the epoch-2 rung, and half were stopped."""
    scheduler = _scheduler()
    scores = {"a": 0.262, "b": 0.251, "c": 0.258, "d": 0.166, "e": 0.240, "f": 0.170}
    assert [_at(scheduler, t, 2, s) for t, s in scores.items()] == [GO] * 6
    assert set(scheduler.recorded[2]) == set(scores)


def test_a_clearly_worse_trial_is_stopped_and_a_close_one_goes_on() -> None:
    scheduler = _scheduler()
    for trial, score in (("a", 0.50), ("b", 0.52), ("c", 0.55)):
        assert _at(scheduler, trial, 2, score) == GO
    assert (
        _at(scheduler, "close", 2, 0.52) == GO
    )  # below the cutoff (0.535, the median of 3) by 0.015 < noise 0.02
    assert _at(scheduler, "bad", 2, 0.30) == STOP
    assert scheduler.stopped["bad"] == (
        "stopped at the epoch-2 rung: 0.3000, below the cutoff 0.5200 of 4 trials by "
        "more than the noise 0.0200"
    )
    assert _at(scheduler, "bad", 3, 0.30) == GO  # a rung decides once per trial


def test_the_first_trials_at_a_rung_are_not_judged_by_one_or_two_scores() -> None:
    scheduler = _scheduler(rf=3)
    assert _at(scheduler, "a", 2, 0.60) == GO
    assert _at(scheduler, "b", 2, 0.30) == GO  # one earlier score is no quantile
    assert _at(scheduler, "c", 2, 0.58) == GO
    assert (
        _at(scheduler, "d", 2, 0.30) == STOP
    )  # three earlier scores: it trails the top third by far


def test_the_next_rung_and_the_budget() -> None:
    scheduler = _scheduler()
    assert sorted(scheduler.recorded) == [2, 4, 8]
    for trial, score in (("a", 0.5), ("b", 0.52), ("c", 0.6)):
        _at(scheduler, trial, 2, score)
        assert _at(scheduler, trial, 3, score) == GO  # between rungs: nothing to decide
        _at(scheduler, trial, 4, score)
    assert _at(scheduler, "d", 4, 0.35) == STOP
    assert _at(scheduler, "c", 10, 0.61) == STOP  # its budget is spent


def test_with_folds_the_noise_shrinks_as_folds_accumulate() -> None:
    """Cross-validation: a fold holds ~1/5 of train + dev, so a one-fold score is noisier than the dev split's,
    and a mean over more folds less so. A trial 0.03 behind is kept after fold 1 and stopped after fold 4."""
    noise = SplitNoise(dev_se=0.06, dev_dialogues=100, folds=5, pool_dialogues=1000)
    assert noise(1) == pytest.approx(0.06 * (100 / 200) ** 0.5) and noise(4) == pytest.approx(
        noise(1) / 2
    )
    scheduler = _scheduler(noise, time_attr="fold", max_t=5, grace=1)
    assert sorted(scheduler.recorded) == [1, 2, 4]
    for trial, score in (("a", 0.55), ("b", 0.56), ("c", 0.57)):
        _at(scheduler, trial, 1, score)
        _at(scheduler, trial, 4, score)
    assert (
        _at(scheduler, "d", 1, 0.53) == GO
    )  # 0.03 behind the cutoff 0.56; the noise after one fold 0.042
    assert (
        _at(scheduler, "d", 4, 0.53) == STOP
    )  # the same gap after four folds, whose mean is uncertain by 0.021


def test_bad_arguments_name_the_rule() -> None:
    with pytest.raises(ValueError, match="`reduction_factor` is 1, but must be >= 2"):
        _scheduler(rf=1)
    with pytest.raises(ValueError, match=r"`grace_period` is 11, but must be in \[1, max_t=10\]"):
        _scheduler(grace=11)
