"""The report's section on references: the published model's test wF1 beside its single runs, the
always-majority level, the logistic regression, the reference runs a user has without the search,
and what the search cost against them; what limits the model when it stays below the linear
reference."""

from __future__ import annotations

import statistics
from typing import Any

from tune.records import BestConfig, ConfigurationRecord, LinearReference, Summary
from tune.reporting.context import Context
from tune.stats.references import judge, published_test

__all__ = ["references_section"]


def references_section(c: Context) -> str:
    """The published model's test wF1 beside its single runs (raw and averaged weights) and the
    references: always-majority and a logistic regression on the same vectors."""
    references = c.best.references if c.best is not None else None
    if not references:
        return ""
    lr, majority = references.logistic_regression, references.majority
    published = published_test(c.best)
    line = judge(published, references)
    rows = [
        f"| model ({references.modalities}) | dev wF1 | test wF1 |",
        "|---|---:|---:|",
        f"| always {majority.majority_class} | {majority.dev_weighted_f1:.4f} | "
        f"{majority.test_weighted_f1:.4f} |",
        f"| logistic regression ({lr.features}; C = {lr.C}) | {lr.dev_weighted_f1:.4f} "
        f"| {lr.test_weighted_f1:.4f} |",
    ]
    rows += _reference_run_rows(references)
    rows += _model_rows(c.best)
    return "\n".join(
        [
            "## Against references\n",
            "Test is evaluated once per model (each run's selected weights, and with weight "
            "averaging also its raw "
            "weights at their own best dev epoch); an ensemble averages those runs' class "
            "probabilities, so it chooses nothing on test.\n",
            "\n".join(rows) + "\n",
            _compute_line(c),
            f"**{line}.**\n" if line else "",
            # The limits are shown when the published model, or the single runs behind its ensemble,
            # stay below LR.
            _limits(c, lr)
            if published is not None
            and (published.below(references) or published.single_below(references))
            else "",
        ]
    )


def _reference_run_rows(references: Any) -> list[str]:
    """The reference runs: the defaults as `train.py` runs them and the strong untuned setting, each
    over its seeds (its best dev epoch selected on the data's own dev split)."""
    rows = []
    for run in references.runs:
        changed = "" if run.label.startswith("defaults") else f" ({_settings(run.config)})"
        rows.append(
            f"| {run.label}{changed}: {run.config.get('epochs')} epochs, best dev epoch "
            f"{', '.join(map(str, run.best_epochs))} (mean of {len(run.seeds)} seeds"
            f"{', reused' if run.reused else ''}) | {_mean_ci(run.dev_weighted_f1)} "
            f"| {_mean_ci(run.test_weighted_f1)} |"
        )
    return rows


def _settings(config: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {config[k]:g}" if isinstance(config[k], float) else f"{k} {config[k]}"
        for k in ("learning_rate", "batch_size")
        if k in config
    )


def _compute_line(c: Context) -> str:
    """What the search cost against what one run of the defaults costs a user."""
    runs = c.best.references.runs if c.best is not None and c.best.references else []
    defaults = next((r for r in runs if r.label.startswith("defaults")), None)
    if defaults is None or not defaults.wall_seconds:
        return ""
    one = defaults.wall_seconds / max(1, len(defaults.seeds))
    search = c.study.search_seconds + (
        c.best.confirmation.wall_seconds or 0.0 if c.best.confirmation else 0.0
    )
    return (
        f"Compute: the search and its confirmation took {search / 60:.0f} min; one run of the "
        f"defaults as `train.py` runs them takes {one / 60:.1f} min ({search / one:.0f} such "
        "runs).\n"
    )


def _model_rows(best: BestConfig) -> list[str]:
    """Table rows of the confirmed winner: single runs (raw and averaged weights), its ensemble, all
    runs' ensemble."""
    recorded = best.confirmation
    winner = recorded.winner_entry if recorded else None
    if winner is None:
        if best.test:
            return [
                f"| JOYFUL, the search's winner re-run (one seed) | {best.metric.value:.4f} "
                f"| {best.test.weighted_f1:.4f} |"
            ]
        return []
    averaging = winner.config.get("weight_averaging", "none")
    rows = []
    raw = winner.raw_test_weighted_f1
    if raw is not None and raw.mean is not None:
        raw_dev = [
            r.raw_best_dev_weighted_f1
            for r in winner.runs
            if r.raw_best_dev_weighted_f1 is not None
        ]
        rows.append(
            f"| JOYFUL single run, raw weights at their best dev epoch (mean of {raw.n} seeds) "
            f"| {sum(raw_dev) / len(raw_dev):.4f} | {_mean_ci(raw)} |"
        )
    label = "averaged weights" if averaging != "none" else "weights"
    rows.append(
        f"| JOYFUL single run, {label} (`{averaging}`) at the best dev epoch (mean of "
        f"{winner.dev_weighted_f1.n} seeds) | {_mean_ci(winner.dev_weighted_f1)} "
        f"| {_mean_ci(winner.test_weighted_f1)} |"
    )
    if best.ensemble:
        e = best.ensemble
        refit = e.dev_weighted_f1 is None
        rows.append(
            f"| **published ensemble**: {e.members_from} "
            f"({'the space publishes refits' if refit else 'chosen on dev'}) "
            f"| {'n/a (trained on dev)' if refit else f'{e.dev_weighted_f1:.4f}'} "
            f"| **{e.test_weighted_f1:.4f}** |"
        )
        for other in e.not_chosen:
            rows.append(
                f"| ensemble of {other.members_from} (not published"
                f"{'' if refit else ': lower dev'}) "
                f"| {other.dev_weighted_f1:.4f} | {other.test_weighted_f1:.4f} |"
            )
    elif recorded.ensemble_all:
        every = recorded.ensemble_all
        rows.append(
            f"| ensemble of all {every.members} confirmed runs (measured, not published) "
            f"| {every.dev_weighted_f1:.4f} | {every.test_weighted_f1:.4f} |"
        )
    return rows


def _mean_ci(summary: Summary) -> str:
    if summary.mean is None:
        return "n/a"
    ci = summary.ci95
    return f"{summary.mean:.4f}" + (f" ({ci[0]:.4f}–{ci[1]:.4f})" if ci else "")


def _limits(c: Context, lr: LinearReference) -> str:
    """Measured facts about why the winner stays below the linear reference, from the confirmation
    runs."""
    recorded = c.best.confirmation
    winner = recorded.winner_entry if recorded else None
    if winner is None:
        return ""
    runs = [
        r for e in recorded.configurations for r in e.runs if r.best_dev_weighted_f1 is not None
    ]
    if not runs:
        return ""
    best_epochs = [r.best_epoch for r in runs]
    swings = [
        abs(b - a)
        for r in runs
        for a, b in zip(r.dev_weighted_f1[3:], r.dev_weighted_f1[4:], strict=False)
    ]
    transfer = [
        r.test_weighted_f1 - r.best_dev_weighted_f1
        for r in winner.runs
        if r.test_weighted_f1 is not None
    ]
    lines = [
        "### What limits the model (measured on the confirmation runs)\n",
        f"- Best dev epochs {min(best_epochs)}–{max(best_epochs)} "
        f"(median {statistics.median(best_epochs):g}) of "
        f"{max(len(r.dev_weighted_f1) for r in runs)}; from epoch 4 on, dev wF1 moves by "
        f"{statistics.fmean(swings):.3f} on average from one epoch to the next"
        if swings
        else "",
        f"- Dev to test: the winner's runs change by {statistics.fmean(transfer):+.4f} wF1 from "
        "their best dev "
        f"score to test; the logistic regression by {lr.test_weighted_f1 - lr.dev_weighted_f1:+.4f}"
        if transfer
        else "",
    ]
    single = _searched_trial(c, recorded.configurations)
    if single is not None and single.dev_weighted_f1.mean is not None:
        lines.append(
            f"- Selection on a small dev split: the search's best trial scored "
            f"{c.best_trial.best_dev_weighted_f1:.4f} on dev; re-trained with the confirmation "
            f"seeds it averaged {single.dev_weighted_f1.mean:.4f}"
        )
    return "\n".join(line for line in lines if line) + "\n"


def _searched_trial(
    c: Context, configurations: list[ConfigurationRecord]
) -> ConfigurationRecord | None:
    """The confirmed configuration of the search's best trial (its label names the trial), if it was
    confirmed."""
    trial = c.best_trial
    return next((e for e in configurations if trial and trial.trial_id in e.label), None)
