"""Asynchronous successive halving that stops a trial only on evidence (`PatientHalving`).

ASHA (Li et al., 2020) records each trial's score when it reaches a rung (grace_period x
reduction_factor^k epochs, or folds) and stops it when it falls below the top 1/reduction_factor of
the scores recorded there so far. Early in training those scores are mostly noise: trials near the
always-majority level are told apart by chance, and on a small dev split the trials that pass cannot
be told from the ones stopped. So, by default (`patient`), a trial below the cutoff is stopped only
when

1. at least `reduction_factor` other trials have been recorded at the rung (one or two scores
   estimate no quantile),
2. the cutoff clears the always-majority level (`floor`) by more than the noise: the leaders have
   learned something, and
3. the trial trails the cutoff by more than the noise of the comparison (`noise(t)`: the standard
   error of a difference of two scores at budget t, measured from the data, see `tune.stats.noise`).

A trial that passed a rung only because too few others had reached it is judged again at its next
report, once they have: arriving first does not let a trial run its whole budget unchallenged. A
trial that reaches `max_t` is stopped (its budget is spent), as ASHA does. The score compared is the
one the search ranks by (`search_score`: the best epoch so far, or the mean over folds), so a rung
never judges a trial by a number the ranking ignores. With `patient` False it is plain ASHA: one
earlier score makes a cutoff, and any trial below it stops.

Ray does not keep a scheduler's records across `Tuner.restore`; `rebuild` puts them back from the
scores the search's Optuna study holds (tune/runner/searcher.py calls it when a search resumes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tune.space import rungs

__all__ = ["PatientHalving"]


class PatientHalving(FIFOScheduler):
    """ASHA's rungs and cutoffs, with the three conditions of the module docstring before a trial is
    stopped."""

    def __init__(
        self,
        *,
        time_attr: str,
        max_t: int,
        grace_period: int,
        reduction_factor: int,
        floor: float,
        noise: Callable[[int], float] | float,
        metric: str | None = None,
        mode: str | None = None,
        patient: bool = True,
    ) -> None:
        super().__init__()
        self._metric, self._mode = metric, mode
        if reduction_factor < 2:
            raise ValueError(
                f"The value of `reduction_factor` is {reduction_factor}, but must be >= 2"
            )
        if not 1 <= grace_period <= max_t:
            raise ValueError(
                f"The value of `grace_period` is {grace_period}, but must be in [1, max_t={max_t}]"
            )
        self.time_attr, self.max_t, self.reduction_factor = time_attr, max_t, reduction_factor
        self.floor, self.patient = floor, patient
        self.noise = noise if callable(noise) else _Constant(noise)
        self.recorded: dict[int, dict[str, float]] = {
            rung: {} for rung in rungs(grace_period, reduction_factor, max_t)
        }
        self.pending: dict[
            str, list[int]
        ] = {}  # trial id -> rungs it passed before enough others reached them
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
        """STOP or CONTINUE for one reported result of trial `trial_id` (what Tune calls, without
        Tune)."""
        budget = result.get(self.time_attr)
        if budget is not None and budget >= self.max_t:
            return TrialScheduler.STOP
        if self._judged_again(trial_id) == TrialScheduler.STOP:
            return TrialScheduler.STOP
        score = result.get(self._metric)
        if budget is None or score is None or not np.isfinite(score):
            return TrialScheduler.CONTINUE
        reached = [rung for rung in self.recorded if budget >= rung]
        if not reached or trial_id in self.recorded[reached[-1]]:
            return TrialScheduler.CONTINUE
        rung = reached[-1]
        earlier = list(self.recorded[rung].values())
        self.recorded[rung][trial_id] = self._sign * score
        if len(earlier) < self._needed:
            if self.patient:
                self.pending.setdefault(trial_id, []).append(rung)
            return TrialScheduler.CONTINUE
        return self._verdict(trial_id, rung, earlier)

    def _judged_again(self, trial_id: str) -> str:
        """Judge the rungs `trial_id` passed unjudged, where enough other trials have been recorded
        since."""
        for rung in list(self.pending.get(trial_id, [])):
            others = [score for other, score in self.recorded[rung].items() if other != trial_id]
            if len(others) < self._needed:
                continue
            self.pending[trial_id].remove(rung)
            if self._verdict(trial_id, rung, others, again=True) == TrialScheduler.STOP:
                return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def _verdict(self, trial_id: str, rung: int, others: list[float], again: bool = False) -> str:
        action, why = self._compare(rung, self.recorded[rung][trial_id], others)
        if action == TrialScheduler.STOP:
            self.stopped[trial_id] = why + (
                " (judged when it reached its next report, once enough trials had "
                "reached that rung)"
                if again
                else ""
            )
        return action

    @property
    def _sign(self) -> float:
        return 1.0 if self._mode != "min" else -1.0

    @property
    def _needed(self) -> int:
        """Other trials' scores at a rung before a trial there is judged."""
        return self.reduction_factor if self.patient else 1

    def _compare(self, rung: int, score: float, earlier: list[float]) -> tuple[str, str]:
        cutoff = float(np.percentile(earlier, (1 - 1 / self.reduction_factor) * 100))
        if score >= cutoff:
            return TrialScheduler.CONTINUE, ""
        noise = self.noise(rung) if self.patient else 0.0
        if self.patient:
            floor = self.floor if self._mode != "min" else -self.floor
            if cutoff - floor <= noise or cutoff - score <= noise:
                return TrialScheduler.CONTINUE, ""
        margin = f" by more than the noise {noise:.4f}" if self.patient else ""
        return TrialScheduler.STOP, (
            f"stopped at the {self.time_attr}-{rung} rung: {abs(score):.4f}, below the cutoff "
            f"{abs(cutoff):.4f} of {len(earlier)} trials{margin}"
        )

    def rebuild(
        self, scores: dict[str, dict[int, float]], running: set[str] | frozenset = frozenset()
    ) -> None:
        """Put back the rung records of a resumed search: `scores` holds each trial's search score
        at each step it reported (its Optuna intermediate values); the `running` ones are judged
        again at their next report, against every score the rungs hold now."""
        for trial_id, steps in scores.items():
            for rung in self.recorded:
                if rung in steps and np.isfinite(steps[rung]):
                    self.recorded[rung][trial_id] = self._sign * float(steps[rung])
                    if trial_id in running and self.patient:
                        self.pending.setdefault(trial_id, []).append(rung)

    def debug_string(self) -> str:
        return "PatientHalving: " + ", ".join(
            f"{self.time_attr} {rung}: {len(scores)} recorded"
            for rung, scores in self.recorded.items()
        )


class _Constant:
    """A picklable noise function that does not depend on the budget (the dev split: one fixed
    set)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, budget: int) -> float:
        return self.value
