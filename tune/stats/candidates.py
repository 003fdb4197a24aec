"""Which configurations a confirmation re-trains, chosen from a finished search's trials (no Ray, no
training).

* the **baseline** at tuned nuisance settings (`tuned_point`): its own values, and for the nuisance
  parameters it leaves open those of the best trial sharing its scientific values;
* the **top K** distinct configurations by the one trial ranking (`tune.records.ranked`);
* the space's **proposal** at the best trial that has all its values (a configuration the search
  evaluated, tuned within the proposal's arm), when none of the top K is one.

On the dev split every candidate keeps the search's full epoch budget, also when its trial was
stopped early. With cross-validation each trains for the epoch count its trial chose on its folds
and keeps that epoch, on a fresh assignment of dialogues to folds. Beside them, every search is
measured against two references that do not depend on it (`reference_configs`): the project's
defaults as `train.py` runs them and a strong untuned setting (tune/runner/references.py)."""

from __future__ import annotations

from typing import Any

from joyful.config import JoyfulConfig, field_default
from joyful.errors import UserError
from tune.records import TrialRecord, ranked
from tune.space import SearchSpace

__all__ = [
    "DEFAULTS_LABEL",
    "UNTUNED_LABEL",
    "DEFAULT_CONFIRM_SEEDS",
    "DEFAULT_CONFIRM_SEEDS_CV",
    "DEFAULT_CONFIRM_TOP",
    "SEED_OFFSET",
    "as_confirmed",
    "candidates_from_study",
    "confirm_seed_count",
    "confirmation_seeds",
    "proposal_trial",
    "same_setup",
    "tuned_baseline",
    "tuned_point",
    "reference_configs",
]

# The two references every search is measured against (`reference_configs`).
DEFAULTS_LABEL = "defaults, as train.py runs them"
UNTUNED_LABEL = "strong untuned setting"
SEED_OFFSET = 1000  # confirmation seeds are base seed + 1000 + i: never the search's own seed
DEFAULT_CONFIRM_TOP = 2
DEFAULT_CONFIRM_SEEDS = 3  # on the dev split
# With cross-validation each seed runs every fold; two put the seeds' variance in the intervals.
DEFAULT_CONFIRM_SEEDS_CV = 2
# Confirmation scores on another assignment of dialogues to folds than the search ranked on: what it
# publishes is not the number a configuration was selected on.
CONFIRMATION_FOLD_SEED = 1


def confirm_seed_count(given: int | None, folds: int, top: int) -> int:
    """The seeds a confirmation runs: --confirm-seeds, else the default for the resampling; checked
    before any trial runs (on the dev split a spread and a paired interval need two seeds)."""
    seeds = given or (DEFAULT_CONFIRM_SEEDS_CV if folds else DEFAULT_CONFIRM_SEEDS)
    if top > 0 and seeds < 2:
        raise UserError(
            f"--confirm-seeds is {seeds}, but a confirmation needs at least 2 seeds (with "
            "cross-validation 2 runs of every fold): the seeds' spread belongs in every interval"
        )
    return seeds


def confirmation_seeds(base_seed: int, count: int, folds: int = 0) -> list[int]:
    """`count` seeds for confirmation runs (at least two: the seeds' spread belongs in every
    interval), all different from the search's `base_seed`; with cross-validation each runs every
    fold."""
    if count < 2:
        raise UserError(
            f"--confirm-seeds is {count}, but must be >= 2 (the seeds' spread belongs in every "
            "interval)"
        )
    return [base_seed + SEED_OFFSET + i for i in range(count)]


def same_setup(a: JoyfulConfig, b: JoyfulConfig) -> bool:
    """Whether two configurations differ in nothing but the seed."""
    return a.replace(seed=0) == b.replace(seed=0)


def as_confirmed(config: JoyfulConfig, trial: TrialRecord | None, folds: int) -> JoyfulConfig:
    """`config` as confirmation trains it: on the data's dev split for the full epoch budget,
    keeping the best dev epoch (`folds` 0); or, cross-validated, on each of `folds` folds for the
    epoch count its trial chose on its folds (the budget without a trial), keeping that last epoch.
    """
    if not folds:
        return config
    epochs = trial.best_epoch if trial is not None and trial.best_epoch else config.epochs
    return config.replace(
        cv_folds=folds, cv_fold_seed=CONFIRMATION_FOLD_SEED, epochs=epochs, select_epoch="last"
    )


def tuned_point(
    trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig, point: dict[str, Any]
) -> tuple[JoyfulConfig, TrialRecord | None]:
    """`point` (the baseline or the proposal) at tuned nuisance settings: its own values, and for
    the nuisance parameters it leaves open the values of the best trial that shares its scientific
    values (for the baseline, the best AutoFusion trial's learning rate etc.; for the proposal, the
    best hierarchical trial's). Returns the config and that trial; without such a trial, `point` as
    written and None."""
    scientific = {k: v for k, v in point.items() if k in space.scientific_names()}
    for trial in ranked(trials):
        if all(trial.params.get(k) == v for k, v in scientific.items()):
            tuned = {k: trial.params[k] for k in space.tuned_names(point) if k in trial.params}
            values = {**tuned, **point}
            return space.trial_config(base, space.active_point(values)), trial
    return space.trial_config(base, point), None


def tuned_baseline(
    trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig, folds: int = 0
) -> JoyfulConfig:
    """The baseline at tuned nuisance settings (see `tuned_point`), as confirmation trains it."""
    config, trial = tuned_point(trials, space, base, space.baseline_point())
    return as_confirmed(config, trial, folds)


def reference_configs(base: JoyfulConfig, space: SearchSpace) -> list[tuple[str, JoyfulConfig]]:
    """The two references of the space's search: the project's defaults with the space's fixed
    values as `train.py` runs them (its own epoch count, the best epoch on the data's dev split),
    and the same with the space's strong untuned setting; labelled as the confirmation's records
    name them."""
    as_run = base.replace(
        epochs=field_default("epochs"), cv_folds=0, cv_fold=1, select_epoch="best"
    )
    return [
        (DEFAULTS_LABEL, as_run),
        (UNTUNED_LABEL, JoyfulConfig.from_dict({**as_run.to_dict(), **space.references.untuned})),
    ]


def candidates_from_study(
    trials: list[TrialRecord], space: SearchSpace, base: JoyfulConfig, top: int, folds: int = 0
) -> list[tuple[str, JoyfulConfig]]:
    """The `top` best distinct configurations of a search, the (tuned) baseline's excluded, and the
    space's `proposal` at tuned nuisance settings when none of those is one; as (label, config)
    pairs, each as confirmation trains it (`as_confirmed`, `folds` of the search's
    cross-validation)."""
    if top < 0:
        raise UserError(f"--confirm-top is {top}, but must be >= 0")
    baseline = tuned_baseline(trials, space, base, folds)
    chosen: list[tuple[str, JoyfulConfig]] = []

    def distinct(config: JoyfulConfig) -> bool:
        return not same_setup(config, baseline) and not any(
            same_setup(config, c) for _, c in chosen
        )

    for rank, trial in enumerate(ranked(trials), start=1):
        if len(chosen) >= top:
            break
        config = as_confirmed(space.trial_config(base, trial.params), trial, folds)
        if distinct(config):
            chosen.append((f"rank {rank}: trial {trial.trial_id}", config))
    if top > 0 and space.proposal and not any(_matches(c, space.proposal) for _, c in chosen):
        # The best trial with every value the user proposes: a configuration the search evaluated,
        # its nuisance settings tuned on the proposal's own arm (never a combination no trial ran).
        source = proposal_trial(trials, space)
        if source is not None:
            config = as_confirmed(space.trial_config(base, source.params), source, folds)
            if distinct(config):
                chosen.append((f"proposal: trial {source.trial_id}", config))
    return chosen


def proposal_trial(trials: list[TrialRecord], space: SearchSpace) -> TrialRecord | None:
    """The best-ranked trial that has every value of the space's proposal, or None when no trial had
    them."""
    return next(
        (t for t in ranked(trials) if all(t.params.get(k) == v for k, v in space.proposal.items())),
        None,
    )


def _matches(config: JoyfulConfig, values: dict[str, Any]) -> bool:
    return all(getattr(config, k) == v for k, v in values.items())
