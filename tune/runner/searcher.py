"""The Ray Tune searcher of a search: proposals from `tune.sampling.ArmedSampler`, outcomes told
truthfully.

* A trial is asked from the arm samplers (each arm of the scientific parameter tuned on its own
  trials) and recorded in the search's Optuna study with its Ray trial id (`ray_trial_id`), its arm
  and who proposed it.
* Its scores at each epoch (on the dev split) or after each fold (cross-validation) become Optuna
  intermediate values; the per-epoch progress reports of a cross-validated trial only feed the pace
  of the time forecast.
* How it ended is told as it was: COMPLETE with its search score when it ran its whole budget;
  PRUNED when the scheduler stopped it (with the scheduler's words as `stop_reason`); FAIL when its
  loss became non-finite or it errored. Ray's own Optuna searcher tells a stopped trial as COMPLETE
  with its truncated score.
* With a time budget it starts no trial that is not expected to end by the search's deadline
  (`tune.forecast.TimeBudget`) and then tells Tune it has finished; the trials running go on to
  their end.
* On `Tuner.restore` it reopens the study, which holds everything it needs: the arm samplers are
  rebuilt from it, trials the interrupted driver started but Ray never recorded are told FAIL, and
  the scheduler's rung records are put back from the trials' intermediate values (Ray does not keep
  them)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from tune.forecast import Forecast, Pace, SearchShape, TimeBudget
from tune.records import Outcome, classify, stop_reason
from tune.sampling import ArmedSampler
from tune.space import SearchSpace, Strategy

__all__ = ["ArmSearcher"]


class ArmSearcher(Searcher):
    """See the module docstring. `study` is the open Optuna study of the search (None: opened from
    `storage` and `study_name` when first needed, as after a restore); `queued` the points run
    first; `max_concurrent` 0 leaves concurrency to Tune's resources."""

    def __init__(
        self,
        *,
        storage: str,
        study_name: str,
        space: SearchSpace,
        strategy: Strategy,
        seed: int,
        trials: int,
        queued: list[dict[str, Any]],
        time_attr: str,
        max_budget: int,
        metric: str,
        mode: str,
        max_concurrent: int = 0,
        scheduler: Any = None,
        pace: Pace | None = None,
        shape: SearchShape | None = None,
        time_budget: TimeBudget | None = None,
        study: Any = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.storage, self.study_name, self.space, self.strategy = (
            storage,
            study_name,
            space,
            strategy,
        )
        self.seed, self.trials, self.queued = seed, trials, list(queued)
        self.time_attr, self.max_budget, self.max_concurrent = time_attr, max_budget, max_concurrent
        self.scheduler, self.pace, self.shape, self.time_budget = (
            scheduler,
            pace or Pace(),
            shape,
            time_budget,
        )
        self.numbers: dict[str, int] = {}  # Ray trial id -> the study's trial number
        self.ended_on_time = False
        self._started_at: float | None = None
        self._sampler: ArmedSampler | None = None
        if study is not None:
            self._sampler = self._build(study)

    # --- the sampler and its study
    # -------------------------------------------------------------------------
    def _build(self, study: Any) -> ArmedSampler:
        return ArmedSampler(
            study,
            self.space,
            self.strategy,
            seed=self.seed,
            trials=self.trials,
            queued=self.queued,
            stopped_scored=self.time_attr == "fold",
        )

    @property
    def sampler(self) -> ArmedSampler:
        if self._sampler is None:
            from tune.study.storage import load_study

            self._sampler = self._build(load_study(self.storage, self.study_name))
        return self._sampler

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its searcher with the experiment; the open study and the samplers are rebuilt
        # from the study's storage instead.
        return {**self.__dict__, "_sampler": None}

    # --- Tune's calls
    # --------------------------------------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        self._metric, self._mode = metric or self._metric, mode or self._mode
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        sampler = self.sampler
        if self.max_concurrent and len(sampler.live()) >= self.max_concurrent:
            return None
        if self._started_at is None:
            self._started_at = time.monotonic()
        if self.time_budget is not None and self.shape is not None:
            forecast = Forecast.of(self.shape, self.pace)
            started = sum(sampler.started.values())
            decision = self.time_budget.decide(
                time.monotonic() - self._started_at, forecast, started, self.shape.concurrency
            )
            if decision == "wait":
                return None
            if decision == "done":
                self.ended_on_time = True
                return Searcher.FINISHED
        proposal = sampler.ask()
        sampler.study._storage.set_trial_user_attr(
            self._trial_id(proposal.number), "ray_trial_id", trial_id
        )
        self.numbers[trial_id] = proposal.number
        return proposal.params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if result.get("epoch_seconds") is not None:
            self.pace.add_epoch(trial_id, float(result["epoch_seconds"]))
        self._report(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id not in self.numbers:
            return
        number = self.numbers[trial_id]
        if number not in self.sampler.live():
            # Told already: the interrupted driver recorded this trial's end after Ray last saved
            # the experiment, so on resume Ray runs it again from its last checkpoint.
            return
        outcome = classify(result, error, self.max_budget, self.time_attr)
        last = int(result[self.time_attr]) if result and self.time_attr in result else 0
        scheduled = (
            self.scheduler.stopped.get(trial_id, "")
            if self.scheduler is not None and outcome is Outcome.EARLY_STOPPED
            else ""
        )
        reason = stop_reason(
            outcome,
            last,
            self.max_budget,
            str((result or {}).get("stop_reason") or scheduled),
            unit=self.time_attr,
        )
        storage, trial = self.sampler.study._storage, self._trial_id(number)
        for key, value in (
            ("outcome", str(outcome)),
            (f"{self.time_attr}s_run", last),
            ("stop_reason", reason),
        ):
            storage.set_trial_user_attr(trial, key, value)
        if outcome.can_win and result:
            self._report(
                trial_id, result
            )  # Tune hands the result that ended a trial to this call alone
        value = (result or {}).get(self.metric)
        if outcome is Outcome.COMPLETE and value is not None and math.isfinite(value):
            self.sampler.finish(number, "COMPLETE", float(value))
        else:
            self.sampler.finish(number, outcome.optuna_state if outcome.can_win else "FAIL")
        if result and result.get("time_total_s"):
            self.pace.add_finished(trial_id, float(result["time_total_s"]))

    def _report(self, trial_id: str, result: dict) -> None:
        step, value = result.get(self.time_attr), result.get(self.metric)
        if trial_id not in self.numbers or not step or value is None or not math.isfinite(value):
            return
        self.sampler.report(self.numbers[trial_id], int(step), float(value))

    def _trial_id(self, number: int) -> int:
        return self.sampler.study._storage.get_trial_id_from_study_id_trial_number(
            self.sampler.study._study_id, number
        )

    # --- resume
    # --------------------------------------------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(
            json.dumps({"numbers": self.numbers, "ended_on_time": self.ended_on_time})
        )

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.numbers, self.ended_on_time = dict(state["numbers"]), bool(state["ended_on_time"])
        self._sampler, self._started_at = None, None
        study = self.sampler.study
        known = set(self.numbers.values())
        for number in self.sampler.live():
            if (
                number not in known
            ):  # started by the interrupted driver after Ray last saved the experiment
                self.sampler.study._storage.set_trial_user_attr(
                    self._trial_id(number),
                    "stop_reason",
                    "lost: its driver died before Ray recorded the trial",
                )
                self.sampler.finish(number, "FAIL")
        if self.time_budget is not None:
            from tune.study.story import search_times

            self.time_budget = TimeBudget(
                self.time_budget.seconds, search_times(study)["search_seconds"]
            )
        if self.scheduler is not None:
            by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
            scores = {
                ray_id: dict(by_number[n].intermediate_values)
                for ray_id, n in self.numbers.items()
                if n in by_number
            }
            running = {ray_id for ray_id, n in self.numbers.items() if n in self.sampler.live()}
            self.scheduler.rebuild(scores, running)
