"""Asynchronous successive halving that stops a trial only on evidence (`PatientHalving`).

ASHA (Li et al., 2020) records each trial's score when it reaches a rung (grace_period x reduction_factor^k
epochs, or folds) and stops it when it falls below the top 1/reduction_factor of the scores recorded there so
far. Early in training those scores are mostly noise: on MELD, 6 of 12 trials were stopped at the epoch-2 rung
with dev wF1 0.17-0.26 while always-"neutral" scores 0.25, and on a small dev split the trials that passed could
not be told from the ones stopped (issue 26). So a trial below the cutoff is stopped only when

1. at least `reduction_factor` trials have been recorded at the rung (one or two scores estimate no quantile),
2. the cutoff clears the always-majority level (`floor`) by more than the noise: the leaders have learned
   something, and
3. the trial trails the cutoff by more than the noise of the comparison (`noise(t)`: the standard error of a
   difference of two scores at budget t, measured from the data, see `tune.stats.noise`).

Otherwise it goes on to the next rung, where it is compared again. A trial that reaches `max_t` is stopped (its
budget is spent), as ASHA does. The score compared is the one the search ranks by (`search_score`: the best epoch
so far, or the mean over folds), so a rung never judges a trial by a number the ranking ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tune.space import rungs

__all__ = ["PatientHalving"]


class PatientHalving(FIFOScheduler):
    """ASHA's rungs and cutoffs, with the three conditions of the module docstring before a trial is stopped."""

    def __init__(self, *, time_attr: str, max_t: int, grace_period: int, reduction_factor: int, floor: float,
                 noise: Callable[[int], float] | float, metric: str | None = None, mode: str | None = None) -> None:
        super().__init__()
        self._metric, self._mode = metric, mode
        if reduction_factor < 2:
            raise ValueError(f"The value of `reduction_factor` is {reduction_factor}, but must be >= 2")
        if not 1 <= grace_period <= max_t:
            raise ValueError(f"The value of `grace_period` is {grace_period}, but must be in [1, max_t={max_t}]")
        self.time_attr, self.max_t, self.reduction_factor = time_attr, max_t, reduction_factor
        self.floor = floor
        self.noise = noise if callable(noise) else _Constant(noise)
        self.recorded: dict[int, dict[str, float]] = {rung: {} for rung in rungs(grace_period, reduction_factor, max_t)}
        self.stopped: dict[str, str] = {}  # trial id -> why it was stopped, in words

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        return self.decide(trial.trial_id, result)

    def decide(self, trial_id: str, result: dict) -> str:
        """STOP or CONTINUE for one reported result of trial `trial_id` (what Tune calls, without Tune)."""
        if self.time_attr not in result or self._metric not in result:
            return TrialScheduler.CONTINUE
        budget, score = result[self.time_attr], result[self._metric]
        if budget >= self.max_t:
            return TrialScheduler.STOP
        reached = [rung for rung in self.recorded if budget >= rung]
        if not reached or trial_id in self.recorded[reached[-1]] or score is None or not np.isfinite(score):
            return TrialScheduler.CONTINUE
        rung = reached[-1]
        sign = 1.0 if self._mode != "min" else -1.0
        action, why = self._compare(rung, sign * score)
        self.recorded[rung][trial_id] = sign * score
        if action == TrialScheduler.STOP:
            self.stopped[trial_id] = why
        return action

    def _compare(self, rung: int, score: float) -> tuple[str, str]:
        earlier = list(self.recorded[rung].values())
        if len(earlier) < self.reduction_factor:
            return TrialScheduler.CONTINUE, ""
        cutoff = float(np.percentile(earlier, (1 - 1 / self.reduction_factor) * 100))
        noise = self.noise(rung)
        floor = self.floor if self._mode != "min" else -self.floor
        if score >= cutoff or cutoff - floor <= noise or cutoff - score <= noise:
            return TrialScheduler.CONTINUE, ""
        return TrialScheduler.STOP, (f"stopped at the {self.time_attr}-{rung} rung: {abs(score):.4f}, below the cutoff "
                                     f"{abs(cutoff):.4f} of {len(earlier)} trials by more than the noise {noise:.4f}")

    def debug_string(self) -> str:
        return "PatientHalving: " + ", ".join(f"{self.time_attr} {rung}: {len(scores)} recorded"
                                              for rung, scores in self.recorded.items())


class _Constant:
    """A picklable noise function that does not depend on the budget (the dev split: one fixed set)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, budget: int) -> float:
        return self.value
