"""The published model of a cross-validated search, refit on all of train + dev.

Cross-validation chose the winner and its epoch count, and confirmation measured it on a fresh fold
assignment. Each of its fold models, though, trained on only (K-1)/K of the data. With the space's
`ensemble: refit` the published ensemble is instead K runs of the confirmed winner trained on all of
train + dev for that epoch count, each with its own seed (scikit-learn's `refit`, AutoGluon's
`refit_full`): nothing is selected on them, since they have no held-out data, so their only score
is test, evaluated once per run. The fold-model ensemble stays recorded beside it (its out-of-fold
score is the evidence the winner was chosen on). Whether refitting beats the fold models was
measured on dev evidence (scripts/refit_check.py, docs/TUNING.md "Publishing").
"""

from __future__ import annotations

from typing import Any

from tune.stats.runs import ConfigRuns

__all__ = ["REFIT_SEED_OFFSET", "refit_config", "refit_runs", "refit_seeds"]

# Refit seeds: base seed + 3000 + i (never a trial's, a confirmation's or a reference's).
REFIT_SEED_OFFSET = 3000


def refit_config(config: Any) -> Any:
    """A cross-validated configuration (`JoyfulConfig`) as its refit: every fold's data, the same
    epoch count, the last epoch kept."""
    return config.replace(cv_fold=0, select_epoch="last")


def refit_seeds(base_seed: int, folds: int) -> list[int]:
    """One refit per fold the fold-model ensemble has: the same number of members."""
    return [base_seed + REFIT_SEED_OFFSET + i for i in range(folds)]


def refit_runs(plan: Any, winner: ConfigRuns, folds: int) -> ConfigRuns:
    """Train the refits of `winner` (the confirmed winner's entry) for the search of `plan` (a
    SearchPlan) as Ray trials in `<experiment root>/<dataset>-refit` (an interrupted one resumes);
    returns them as one entry."""
    from tune.runner.confirmation import train_plan_runs  # Ray: only when refits are trained

    entry = ConfigRuns(f"{winner.label}, refit", refit_config(winner.config), [])
    seeds = refit_seeds(plan.base_config.seed, folds)
    print(
        f"{plan.dataset}: refitting {winner.label} on all of train + dev ({len(seeds)} seeds, "
        f"{entry.config.epochs} epochs): the published ensemble"
    )
    train_plan_runs(plan, [entry], seeds, "refit")
    entry.runs.sort(key=lambda r: r.key)
    return entry
