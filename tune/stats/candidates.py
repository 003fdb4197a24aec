"""Which configurations a confirmation re-trains, chosen from a finished search's trials (no Ray, no training).

* the **baseline** at tuned nuisance settings (`tuned_point`): its own values, and for the nuisance
  parameters it leaves open those of the best trial sharing its scientific values;
* the **top K** distinct configurations by the one trial ranking (`tune.records.ranked`);
* the space's **proposal**, tuned by the baseline's rule, when none of the top K is one.

Every candidate keeps the search's full epoch budget, also when ASHA stopped its trial early.
"""

from __future__ import annotations

from typing import Any

from joyful.config import JoyfulConfig
from joyful.errors import UserError
from tune.records import TrialRecord, ranked
from tune.space import SearchSpace

__all__ = ["DEFAULT_CONFIRM_SEEDS", "DEFAULT_CONFIRM_TOP", "SEED_OFFSET", "candidates_from_study",
           "confirmation_seeds", "same_setup", "tuned_baseline", "tuned_point"]

SEED_OFFSET = 1000  # confirmation seeds are base seed + 1000 + i: never the search's own seed
DEFAULT_CONFIRM_TOP = 2
DEFAULT_CONFIRM_SEEDS = 3


def confirmation_seeds(base_seed: int, count: int) -> list[int]:
    """`count` seeds for confirmation runs, all different from the search's `base_seed`."""
    if count < 2:
        raise UserError(f"--confirm-seeds is {count}, but must be >= 2 (a spread and a CI need two seeds)")
    return [base_seed + SEED_OFFSET + i for i in range(count)]


def same_setup(a: JoyfulConfig, b: JoyfulConfig) -> bool:
    """Whether two configurations differ in nothing but the seed."""
    return a.replace(seed=0) == b.replace(seed=0)


def tuned_point(trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig,
                point: dict[str, Any]) -> tuple[JoyfulConfig, str | None]:
    """`point` (the baseline or the proposal) at tuned nuisance settings: its own values, and for the
    nuisance parameters it leaves open the values of the best trial that shares its scientific values
    (for the baseline, the best AutoFusion trial's learning rate etc.; for the proposal, the best
    hierarchical trial's). Returns the config and that trial's id; without such a trial, `point` as
    written and None."""
    scientific = {k: v for k, v in point.items() if k in space.scientific_names()}
    for trial in ranked(trials):
        if all(trial.params.get(k) == v for k, v in scientific.items()):
            tuned = {k: trial.params[k] for k in space.tuned_names(point) if k in trial.params}
            values = {**tuned, **point}
            return space.trial_config(base, space.active_point(values)), trial.trial_id
    return space.trial_config(base, point), None


def tuned_baseline(trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig) -> JoyfulConfig:
    """The baseline at tuned nuisance settings (see `tuned_point`)."""
    return tuned_point(trials, space, base, space.baseline_point())[0]


def candidates_from_study(trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig,
                          top: int) -> list[tuple[str, JoyfulConfig]]:
    """The `top` best distinct configurations of a search, the (tuned) baseline's excluded, and the space's
    `proposal` at tuned nuisance settings when none of those is one; as (label, config) pairs."""
    if top < 0:
        raise UserError(f"--confirm-top is {top}, but must be >= 0")
    baseline = tuned_baseline(trials, space, base)
    chosen: list[tuple[str, JoyfulConfig]] = []

    def distinct(config: JoyfulConfig) -> bool:
        return not same_setup(config, baseline) and not any(same_setup(config, c) for _, c in chosen)

    for rank, trial in enumerate(ranked(trials), start=1):
        if len(chosen) >= top:
            break
        config = space.trial_config(base, trial.params)
        if distinct(config):
            chosen.append((f"rank {rank}: trial {trial.trial_id}", config))
    if top > 0 and space.proposal and not any(_matches(c, space.proposal) for _, c in chosen):
        # Tuned by the baseline's rule, so that the two differ in what the user proposes, not in how
        # often the search happened to sample the proposal's corner of the space.
        config, source = tuned_point(trials, space, base, space.proposal)
        if distinct(config):
            chosen.append((f"proposal, tuned from trial {source}" if source else "proposal, untuned", config))
    return chosen


def _matches(config: JoyfulConfig, values: dict[str, Any]) -> bool:
    return all(getattr(config, k) == v for k, v in values.items())
