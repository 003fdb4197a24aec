"""Opening a search's Optuna study: a new one with its fingerprints, budget and strategy (and a warm
start's trials), or the stored one a resumed search continues. The open study then travels with the
plan."""

from __future__ import annotations

from typing import Any

from tune.study.storage import create_study, load_study, open_storage, study_exists
from tune.study.story import creation_attrs, creation_details, set_details

__all__ = ["open_study", "sampler_seed"]


def sampler_seed(seed: int, warm_start_trials: int) -> int:
    """The samplers' seed: `--seed`, or for a search warm-started from `warm_start_trials` earlier
    trials a seed derived from both. With the `--seed` alone, a warm-started search would replay the
    earlier search's random start-up draws and re-run its configurations. A search without a warm
    start keeps its seed, so a seed gives the same search; a warm start from the same trials and
    seed does too."""
    return seed + 1_000_003 * warm_start_trials


def open_study(plan: Any) -> Any:
    """The study of `plan` (a `tune.plan.SearchPlan`): loaded when the search resumes and its study
    exists, else created (and filled with the warm start's trials); also kept as `plan.study`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if plan.resume and study_exists(plan.optuna_storage, plan.name):
        plan.study = load_study(plan.optuna_storage, plan.name)
        return plan.study
    seed = sampler_seed(plan.options.seed, len(plan.warm_start.trials) if plan.warm_start else 0)
    study = create_study(
        open_storage(plan.optuna_storage),
        plan.name,
        plan.space.mode,
        creation_attrs(plan.fingerprints, seed),
    )
    set_details(
        study, creation_details(plan.budget, plan.strategy, plan.resampling, plan.resampling_reason)
    )
    if plan.warm_start:  # learned from, never re-run
        study.add_trials(plan.warm_start.trials)
    plan.study = study
    return study
