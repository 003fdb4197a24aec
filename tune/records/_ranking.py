"""The one ranking of trials: which may win, and in which order."""

from __future__ import annotations

from tune.records._outcome import Outcome
from tune.records._trial import TrialRecord

__all__ = ["RANKING_RULE", "choose_winner", "outcome_counts", "ranked"]

# The rule of `ranked`, in words (the Optuna study records it: its own best_trial counts COMPLETE
# trials only).
RANKING_RULE = (
    "highest search score (the best epoch's dev score, or with cross-validation the best epoch of "
    "the mean over folds) among the trials that ran their whole budget (Optuna: COMPLETE) or were "
    "stopped early (Optuna: PRUNED), then the earlier best epoch, then the Ray trial id"
)


def ranked(trials: list[TrialRecord]) -> list[TrialRecord]:
    """The eligible trials, best first (see `TrialRecord.rank_key`)."""
    return sorted((t for t in trials if t.eligible), key=TrialRecord.rank_key)


def choose_winner(trials: list[TrialRecord]) -> TrialRecord | None:
    best = ranked(trials)
    return best[0] if best else None


def outcome_counts(trials: list[TrialRecord]) -> dict[str, int]:
    """How many trials ended each way, keyed by the outcome's stored string."""
    return {outcome.value: sum(t.outcome == outcome for t in trials) for outcome in Outcome}
