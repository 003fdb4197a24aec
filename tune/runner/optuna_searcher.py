"""OptunaSearch that tells Optuna the truth about how each trial ended.

Ray's OptunaSearch reports an ASHA-stopped trial to Optuna as COMPLETE with its
last, truncated score, so TPE learns from early-epoch scores as if they were
final. Here:

* a trial that ran its whole budget (`max_budget` epochs, or folds with cross-validation) is COMPLETE with
  its search score: on the dev split the best epoch's (the epoch the Coach would select), not the last one;
  with cross-validation the last report's, the mean over all folds (a mean over fewer folds is no final score);
* a trial stopped early by the scheduler is PRUNED (its per-epoch scores stay
  as Optuna intermediate values, which TPE treats as a partial observation);
* a trial whose loss became non-finite, or that errored, is FAIL and never
  stays RUNNING.

Each Optuna trial also gets user attributes `ray_trial_id`, `outcome`, `epochs_run` and
`stop_reason`. With `storage=` (a search's journal, see `tune/study/storage.py`) all of this is
what `optuna-dashboard` and `optuna trials` show.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from tune.records import Outcome, classify, stop_reason

log = logging.getLogger("joyful.tune")


class TruthfulOptunaSearch(OptunaSearch):
    def __init__(self, *args: Any, max_budget: int, time_attr: str = "epoch", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_budget, self.time_attr = max_budget, time_attr

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if trial_id in self._ot_trials:  # known from the start: the tracker and the records map Ray ids to numbers
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        value = result.get(self.metric)
        if value is None or not math.isfinite(value):
            return  # Optuna refuses non-finite intermediate values; the outcome is told at completion
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        ot_trial = self._ot_trials[trial_id]
        outcome = classify(result, error, self.max_budget, self.time_attr)
        ot_trial.set_user_attr("ray_trial_id", trial_id)
        ot_trial.set_user_attr("outcome", outcome)
        last = int(result[self.time_attr]) if result and self.time_attr in result else 0
        ot_trial.set_user_attr(f"{self.time_attr}s_run", last)
        ot_trial.set_user_attr("stop_reason", stop_reason(outcome, last, self.max_budget,
                                                          str((result or {}).get("stop_reason") or ""),
                                                          unit=self.time_attr))
        if outcome.can_win:
            self._report_last(ot_trial, result)
        if outcome is Outcome.COMPLETE:
            self._ot_study.tell(ot_trial, self._best_value(ot_trial.number, result), state=TrialState.COMPLETE)
        elif outcome is Outcome.EARLY_STOPPED:
            self._ot_study.tell(ot_trial, state=TrialState.PRUNED)
        else:
            self._ot_study.tell(ot_trial, state=TrialState.FAIL)
        self._completed_trials.add(trial_id)

    def _report_last(self, ot_trial: Any, result: dict) -> None:
        """Record the trial's last result as an intermediate value: when the scheduler stops a trial (ASHA at a
        rung, and at max_t for a full run), Tune hands that result to `on_trial_complete` only, never to
        `on_trial_result`, so without this the last epoch would be missing from the curve and the best value."""
        value, step = result.get(self.metric), result.get("training_iteration")
        if value is None or step is None or not math.isfinite(value):
            return
        frozen = self._ot_study.get_trials(deepcopy=False)[ot_trial.number]
        if int(step) not in frozen.intermediate_values:
            ot_trial.report(float(value), int(step))

    def _best_value(self, number: int, result: dict) -> float:
        """The trial's final value: the search score of its last report (a running best on the dev split, the
        mean over all folds with cross-validation); with no finite report, the best intermediate one."""
        if result and math.isfinite(result.get(self.metric, math.nan)):
            return float(result[self.metric])
        frozen = self._ot_study.get_trials(deepcopy=False)[number]
        values = [v for v in frozen.intermediate_values.values() if math.isfinite(v)]
        if not values:
            return float(result[self.metric])
        return max(values) if self.mode == "max" else min(values)
