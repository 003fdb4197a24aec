"""Proposing trials: each arm of the scientific parameter is tuned on its own trials
(`ArmedSampler`).

The search's question is an arm against another (the original AutoFusion against the hierarchical
fusion), each at its own tuned nuisance settings (tuning playbook). So every arm gets its own
sampler and an in-memory Optuna study that holds only that arm's trials: the hierarchical arm's
learning rate is never fitted on AutoFusion's results, and no fixed value overrides what a model
proposed. The arms take turns (the one with the fewest trials started goes next), so each gets an
equal share of the budget. The search's persistent Optuna study (the journal the dashboard reads)
holds every trial with its full parameters; the arm studies mirror it and are rebuilt from it when a
search resumes.

Points queued first (the baseline, earlier winners) run before any proposal and count for their arm.

With cross-validation (`stopped_scored`) a trial the scheduler stopped after some folds has a score
of the same quantity as a finished one (the mean held-out score over the folds it ran, only
noisier), so its arm's model learns it as finished with that score; the search's own study keeps it
PRUNED. Without this, a sampler that models only finished trials (Optuna's GP) would never see the
trials early stopping cut short. Over epochs a stopped trial's score is a truncated curve, so there
it stays pruned for the model too.

No Ray here: the Ray searcher (tune/runner/searcher.py) and the replays of benchmarks/replay.py
drive the same object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tune.sampling._samplers import build_sampler, default_startup, learns_from
from tune.space import SearchSpace, Strategy

__all__ = ["ArmedSampler", "Proposal", "arm_key"]

ORIGINS = ("queued", "start-up", "model")


def arm_key(arm: dict[str, Any]) -> str:
    """An arm's name: its scientific values, as `fusion=hierarchical` ("all" with one arm)."""
    return ",".join(f"{k}={v}" for k, v in arm.items()) or "all"


@dataclass(frozen=True)
class Proposal:
    """A trial to run: its number in the search's study, its values, its arm and who chose them
    (`queued`: the baseline or an earlier winner; `start-up`: a random draw; `model`: the sampler's
    model)."""

    number: int
    params: dict[str, Any]
    arm: str
    origin: str


class ArmedSampler:
    """Proposes trials for `study` (the search's persistent Optuna study) from one sampler per arm.

    `trials` is the search's trial budget (sizes the start-up when the strategy leaves it at 0),
    `queued` the points run first. With `separate_arms` False one sampler sees every trial and each
    arm's value is fixed on the trial it proposes, as a partial fixed parameter (the benchmarks'
    reference for sharing a model across arms). The study's existing trials (a warm start's, or this
    search's before a resume) are read in.
    """

    def __init__(
        self,
        study: Any,
        space: SearchSpace,
        strategy: Strategy,
        *,
        seed: int,
        trials: int,
        queued: list[dict[str, Any]] | tuple = (),
        separate_arms: bool = True,
        stopped_scored: bool = False,
    ) -> None:
        import optuna

        self.study, self.space, self.kind = study, space, strategy.sampler
        # Every value of the search's study comes from the arm samplers through its queue: its own
        # sampler draws nothing, so the cheapest one does.
        study.sampler = optuna.samplers.RandomSampler(seed=seed)
        self.arms = {arm_key(arm): arm for arm in space.arms()}
        self.separate = separate_arms and len(self.arms) > 1
        per_arm = trials / (len(self.arms) if self.separate else 1)
        self.startup = strategy.startup_trials or default_startup(self.kind, per_arm)
        self.stopped_scored = stopped_scored
        self._counted = learns_from(self.kind)  # random search learns from nothing
        direction = "maximize" if space.mode == "max" else "minimize"
        groups = list(self.arms) if self.separate else ["all"]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._models = {
            name: optuna.create_study(
                direction=direction,
                sampler=build_sampler(self.kind, seed=seed + index, startup=self.startup),
            )
            for index, name in enumerate(groups)
        }
        self._live: dict[
            int, tuple[Any, Any]
        ] = {}  # study trial number -> (its Trial, its model study's Trial)
        self._reported: dict[int, dict[int, float]] = {}
        self.started = dict.fromkeys(
            self.arms, 0
        )  # this search's trials per arm (warm-start ones aside)
        self._queue = list(queued)
        self._read_study()

    # --- proposing
    # ---------------------------------------------------------------------------------------
    def ask(self) -> Proposal:
        """The next trial: a queued point, else a proposal for the arm with the fewest trials
        started."""
        if self._queue:
            point, origin = self._queue.pop(0), "queued"
            arm = self._arm_of(point)
        else:
            arm = min(self.arms, key=lambda name: (self.started[name], list(self.arms).index(name)))
            point, origin = None, "model" if self.model_ready(arm) else "start-up"
        model_study = self._models[arm if self.separate else "all"]
        if point is not None:
            model_study.enqueue_trial(self._model_part(point))
        elif not self.separate:
            model_study.enqueue_trial(
                dict(self.arms[arm])
            )  # the arm's value fixed, the rest sampled
        model_trial = model_study.ask()
        given = dict(self.arms[arm]) if self.separate else {}
        params = self.space.suggest(model_trial, given)
        trial = self._ask_study(params)
        trial.set_user_attr("arm", arm)
        trial.set_user_attr("proposed_by", origin)
        self._live[trial.number] = (trial, model_trial)
        self._reported[trial.number] = {}
        self.started[arm] += 1
        return Proposal(trial.number, params, arm, origin)

    def model_ready(self, arm: str) -> bool:
        """Whether the sampler's model proposes the next trial of `arm` (its start-up is over)."""
        if not self._counted:
            return False
        model_study = self._models[arm if self.separate else "all"]
        done = [t for t in model_study.get_trials(deepcopy=False) if t.state.name in self._counted]
        return len(done) >= self.startup

    # --- results
    # -----------------------------------------------------------------------------------------
    def report(self, number: int, step: int, value: float) -> None:
        """An intermediate score of trial `number` at `step` (an epoch, or a fold); a step is
        reported once."""
        if number not in self._live or step in self._reported[number]:
            return
        self._reported[number][step] = float(value)
        for trial in self._live[number]:
            trial.report(float(value), int(step))

    def finish(self, number: int, state: str, value: float | None = None) -> None:
        """Trial `number` ended as COMPLETE (with `value`), PRUNED or FAIL; told to both studies."""
        from optuna.trial import TrialState

        if number not in self._live:
            return
        trial, model_trial = self._live.pop(number)
        reported = self._reported.pop(number, {})
        state_ = TrialState[state]
        values = value if state_ == TrialState.COMPLETE else None
        self.study.tell(trial, values, state=state_)
        if state_ == TrialState.PRUNED and self.stopped_scored and reported:
            # its score over the folds it ran (module docstring)
            model_trial.study.tell(model_trial, reported[max(reported)], state=TrialState.COMPLETE)
        else:
            model_trial.study.tell(model_trial, values, state=state_)

    # --- what it did
    # ---------------------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        """How the search's trials were proposed: start-up size and, by origin, the count of
        trials."""
        origins = dict.fromkeys(ORIGINS, 0)
        for t in self.study.get_trials(deepcopy=False):
            if "warm_start_from" not in t.user_attrs and t.user_attrs.get("proposed_by") in origins:
                origins[t.user_attrs["proposed_by"]] += 1
        return {
            "sampler": self.kind,
            "startup_per_arm": self.startup,
            "separate_arms": self.separate,
            "arms": list(self.arms),
            **origins,
        }

    # --- the two studies
    # ---------------------------------------------------------------------------------
    def _arm_of(self, point: dict[str, Any]) -> str:
        for name, arm in self.arms.items():
            if all(point.get(k) == v for k, v in arm.items()):
                return name
        raise ValueError(f"point {point} belongs to no arm of {list(self.arms)}")

    def _model_part(self, point: dict[str, Any]) -> dict[str, Any]:
        """The values of `point` its model study samples (the arm's own values are given, not
        sampled)."""
        if not self.separate:
            return dict(point)
        return {k: v for k, v in point.items() if k not in self.space.scientific_names()}

    def _ask_study(self, params: dict[str, Any]) -> Any:
        """A new trial of the search's study holding `params` (its distributions recorded as Optuna
        does)."""
        self.study.enqueue_trial(params, skip_if_exists=False)
        trial = self.study.ask()
        self.space.suggest(trial)  # each value comes back from the queue
        return trial

    def _read_study(self) -> None:
        """Mirror the study's existing trials into the model studies: finished ones as results,
        running ones (a resumed search's) as running trials that will report; queued points already
        run leave the queue."""
        import optuna

        ran_queued = 0
        for frozen in self.study.get_trials(deepcopy=False):
            arm = frozen.user_attrs.get("arm") or self._arm_of(frozen.params)
            if "warm_start_from" not in frozen.user_attrs:
                self.started[arm] = self.started.get(arm, 0) + 1
                ran_queued += frozen.user_attrs.get("proposed_by") == "queued"
            model_study = self._models[arm if self.separate else "all"]
            part = self._model_part(frozen.params)
            if frozen.state.is_finished():
                scored = (
                    self.stopped_scored
                    and frozen.state.name == "PRUNED"
                    and bool(frozen.intermediate_values)
                )
                if frozen.state.name in ("COMPLETE", "PRUNED"):
                    last = frozen.intermediate_values.get(
                        max(frozen.intermediate_values, default=0)
                    )
                    model_study.add_trial(
                        optuna.trial.create_trial(
                            state=optuna.trial.TrialState.COMPLETE if scored else frozen.state,
                            value=frozen.value
                            if frozen.state.name == "COMPLETE"
                            else (last if scored else None),
                            params=part,
                            distributions={k: frozen.distributions[k] for k in part},
                            intermediate_values=dict(frozen.intermediate_values),
                        )
                    )
                continue
            model_study.enqueue_trial(part)
            model_trial = model_study.ask()
            self.space.suggest(model_trial, dict(self.arms[arm]) if self.separate else {})
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            for step, value in sorted(frozen.intermediate_values.items()):
                model_trial.report(value, step)
            self._live[frozen.number] = (trial, model_trial)
            self._reported[frozen.number] = dict(frozen.intermediate_values)
        self._queue = self._queue[ran_queued:]

    def live(self) -> list[int]:
        """The study numbers of the trials proposed and not yet finished."""
        return sorted(self._live)

    def describe(self) -> str:
        """One line for a search's start: the sampler, its start-up and the arms."""
        arms = (
            f"{len(self.arms)} arms ({', '.join(self.arms)}), each on its own trials"
            if self.separate
            else "one model over every arm"
        )
        return (
            f"sampler {self.kind}"
            + (f" after {self.startup} random trials per arm" if self.startup else "")
            + f"; {arms}"
        )

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"ArmedSampler({json.dumps(self.counts())})"
