"""What a finished search writes into its Optuna study: its winner (and why Optuna's own best trial
may differ), its confirmation and what was published, as system attributes, a one-line summary and
the optuna-dashboard note - so the dashboard, `optuna best-trial` and the report tell one story."""

from __future__ import annotations

from typing import Any

from tune.common import utc_now
from tune.records import (
    RANKING_RULE,
    BestConfig,
    Confirmation,
    Ensemble,
    Outcome,
    StudyRecord,
    choose_winner,
)
from tune.study.story import set_details

__all__ = ["record_story"]


def record_story(
    study: Any, record: StudyRecord, best: BestConfig | None, published: dict[str, Any] | None
) -> None:
    """Write the search's winner, its confirmation and what was published into its Optuna study.

    `best` is the best config this search produced (None when no trial finished); `published` says
    what became of it: {"written": bool, "reason": str, "path": str}.
    """
    attrs = _winner_attrs(study, record)
    if best is not None and best.study.name == record.name:
        if best.confirmation and best.confirmation.configurations:
            attrs["confirmation"] = _confirmation_attrs(best.confirmation)
        attrs["published"] = {
            **(published or {}),
            "config_searched": best.searched,
            "dev_weighted_f1": best.value,
            "test": best.test.to_dict() if best.test else None,
            "ensemble": _ensemble_attrs(best.ensemble),
        }
    set_details(study, attrs)
    study.set_user_attr("summary", _summary(attrs))
    study.set_user_attr("finished_at", utc_now())
    _save_note(study, attrs)


def _summary(attrs: dict[str, Any]) -> str:
    """One short line for `optuna studies`: the search's winner and what became of its result."""
    winner = attrs.get("search_winner")
    if not winner:
        return "no trial finished with a score"
    line = f"winner #{winner['trial_number']} ({winner['value']:.4f})"
    published = attrs.get("published")
    if published:
        line += "; best config " + ("written" if published.get("written") else "kept earlier")
    return line


def _winner_attrs(study: Any, record: StudyRecord) -> dict[str, Any]:
    winner = choose_winner(record.trials)
    attrs: dict[str, Any] = {
        "ranking_rule": RANKING_RULE,
        "search_winner": None,
        "optuna_best_trial_differs": None,
    }
    if winner is None:
        return attrs
    attrs["search_winner"] = {
        "trial_number": winner.optuna_number,
        "ray_trial_id": winner.trial_id,
        "value": winner.best_dev_weighted_f1,
        "best_epoch": winner.best_epoch,
        "epochs_run": winner.epochs_run,
        "state": Outcome(winner.outcome).optuna_state,
    }
    try:
        optuna_best = study.best_trial
    except ValueError:  # no COMPLETE trial
        optuna_best = None
    if optuna_best is None or optuna_best.number != winner.optuna_number:
        theirs = (
            f"Optuna's best_trial is #{optuna_best.number} ({optuna_best.value:.4f}), the best of "
            "the COMPLETE trials"
            if optuna_best is not None
            else "Optuna has no COMPLETE trial to call best"
        )
        attrs["optuna_best_trial_differs"] = (
            f"{theirs}; the search's winner is #{winner.optuna_number} (Ray {winner.trial_id}, "
            f"{Outcome(winner.outcome).optuna_state}, score {winner.best_dev_weighted_f1:.4f} at "
            "epoch "
            f"{winner.best_epoch}) because the search ranks every trial by its search score, also "
            f"trials stopped early: {RANKING_RULE}"
        )
    return attrs


def _confirmation_attrs(confirmation: Confirmation) -> dict[str, Any]:
    return {
        "seeds": confirmation.seeds,
        "winner": confirmation.winner,
        "winner_seed": confirmation.winner_seed,
        "winner_fold": confirmation.winner_fold,
        "tie": confirmation.tie,
        "configurations": [
            {
                "label": c.label,
                "searched": c.searched,
                "dev_weighted_f1": {r.label: r.best_dev_weighted_f1 for r in c.runs},
                "test_weighted_f1": {r.label: r.test_weighted_f1 for r in c.runs},
                "dev_mean": c.dev_weighted_f1.mean,
                "test_mean": c.test_weighted_f1.mean,
            }
            for c in confirmation.configurations
        ],
    }


def _ensemble_attrs(ensemble: Ensemble | None) -> dict[str, Any] | None:
    if not ensemble:
        return None
    return {
        "members_from": ensemble.members_from,
        "members": [[m.label, m.seed] for m in ensemble.members],
        "dev_weighted_f1": ensemble.dev_weighted_f1,
        "test_weighted_f1": ensemble.test_weighted_f1,
    }


def _save_note(study: Any, attrs: dict[str, Any]) -> None:
    """The story as the study's optuna-dashboard note, when optuna-dashboard is installed."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    lines = [f"# {study.study_name}", "", f"**Ranking rule:** {attrs['ranking_rule']}.", ""]
    winner = attrs.get("search_winner")
    if winner:
        lines.append(
            f"**Search winner:** trial #{winner['trial_number']} (Ray `{winner['ray_trial_id']}`, "
            f"{winner['state']}), best dev {winner['value']:.4f} at epoch {winner['best_epoch']}."
        )
    if attrs.get("optuna_best_trial_differs"):
        lines += ["", f"*Why Optuna's best trial differs:* {attrs['optuna_best_trial_differs']}."]
    confirmation = attrs.get("confirmation")
    if confirmation:
        lines += [
            "",
            f"**Confirmation** over seeds {', '.join(map(str, confirmation['seeds']))}: winner "
            f"`{confirmation['winner']}`.",
            "",
            "| configuration | dev mean | test mean |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {c['label']} | {c['dev_mean']:.4f} | {c['test_mean']:.4f} |"
            for c in confirmation["configurations"]
            if c["dev_mean"] is not None and c["test_mean"] is not None
        ]
    published = attrs.get("published")
    if published:
        ensemble = published.get("ensemble")
        lines += [
            "",
            f"**Published:** {published.get('path')} "
            f"({'written' if published.get('written') else 'kept'}: "
            f"{published.get('reason')}); settings {published['config_searched']}.",
        ]
        if ensemble:
            # A refit ensemble trained on dev as well, so it has no dev score to show.
            dev = ensemble.get("dev_weighted_f1")
            dev_words = "no dev score (trained on dev)" if dev is None else f"dev {dev:.4f}"
            lines.append(
                f"Ensemble of {len(ensemble['members'])} runs ({ensemble['members_from']}): "
                f"{dev_words}, test {ensemble['test_weighted_f1']:.4f}."
            )
    save_note(study, "\n".join(lines) + "\n")
