"""The confirmation's sections of the report: the runs over seeds, the published model against the references,
what limits the model, and the expected effects."""

from __future__ import annotations

import statistics

from tune.records import BestConfig, ConfigurationRecord, LinearReference, Summary
from tune.reporting.context import Context
from tune.reporting.plots import plot_confirmation
from tune.stats.confirmation import confirmation_markdown, per_seed_markdown
from tune.stats.effects import effects_markdown
from tune.stats.references import judge, published_test

__all__ = ["confirmation"]


def confirmation(c: Context) -> str:
    """The confirmation over seeds, the references and the expected effects; a note when there is none yet."""
    recorded = c.best.confirmation if c.best is not None else None
    if not recorded or not recorded.configurations:
        return ("## Confirmation over seeds\n\nNo confirmation recorded in the best config yet "
                f"(run `python tune/confirm.py --dataset {c.dataset}`).\n") + _references(c)
    plot_confirmation(recorded, c.figures_dir / "confirmation.png", trivial=c.trivial)
    run = recorded.winner_run
    search_seed = c.study.base_config["seed"]
    section = [
        "## Confirmation over seeds\n",
        f"Each configuration re-trained with seeds {', '.join(map(str, recorded.seeds))} (the search used "
        f"seed {search_seed}). Best dev weighted F1 over seeds: mean ± sample std, 95% t-interval; the difference "
        "to the baseline is paired by seed. Test wF1 is evaluated once per run, at its best dev epoch.\n",
        confirmation_markdown(recorded) + "\n",
        "Per seed, best dev wF1 (test wF1):\n\n" + per_seed_markdown(recorded) + "\n",
        f"**Confirmed winner: {recorded.winner}** (the best config holds it at seed {run.seed}, its median run: best "
        f"dev wF1 {run.best_dev_weighted_f1:.4f} at epoch {run.best_epoch}, test wF1 {run.test_weighted_f1:.4f}).\n",
        c.figure("confirmation.png", "confirmation over seeds") + "\n",
        _references(c),
        "## Expected effects\n",
    ]
    effects = recorded.effects
    if not effects:
        section.append("Not measured: the confirmation has no configuration besides the baseline with results.\n")
        return "\n".join(section)
    against = ("the confirmed winner" if effects.compared_is_winner
               else "the best other configuration (the baseline itself won the confirmation)")
    held = [r.description for r in effects.rows if r.verdict.held]
    others = [r.description for r in effects.rows if not r.verdict.held]
    section += [
        f"The user's expected effects, measured for the baseline against {against}, `{effects.compared}`, over "
        f"seeds {', '.join(map(str, effects.seeds))}. `seeds better` counts the seeds where its run beats the "
        "baseline's run of the same seed. These are point estimates over few seeds; see the CI95 above for F1.\n",
        effects_markdown(effects.rows, "winner" if effects.compared_is_winner else "compared") + "\n",
        f"Held on this data: {', '.join(held) or 'none'}. Did not hold or not measurable: "
        f"{', '.join(others) or 'none'}.\n",
    ]
    return "\n".join(section)


def _references(c: Context) -> str:
    """The published model's test wF1 beside its single runs (raw and averaged weights) and the references:
    always-majority and a logistic regression on the same vectors."""
    references = c.best.references if c.best is not None else None
    if not references:
        return ""
    lr, majority = references.logistic_regression, references.majority
    published = published_test(c.best)
    line = judge(published, references)
    rows = [f"| model ({references.modalities}) | dev wF1 | test wF1 |", "|---|---:|---:|",
            f"| always {majority.majority_class} | {majority.dev_weighted_f1:.4f} | {majority.test_weighted_f1:.4f} |",
            f"| logistic regression ({lr.features}; C = {lr.C}) | {lr.dev_weighted_f1:.4f} "
            f"| {lr.test_weighted_f1:.4f} |"]
    rows += _model_rows(c.best)
    return "\n".join([
        "## Against references\n",
        "Test is evaluated once per model (each run's selected weights, and with weight averaging also its raw "
        "weights at their own best dev epoch); an ensemble averages those runs' class probabilities, so it chooses "
        "nothing on test.\n",
        "\n".join(rows) + "\n",
        f"**{line}.**\n" if line else "",
        # The limits are shown when the published model, or the single runs behind its ensemble, stay below LR.
        _limits(c, lr) if published is not None and (published.below(references)
                                                      or published.single_below(references)) else "",
    ])


def _model_rows(best: BestConfig) -> list[str]:
    """Table rows of the confirmed winner: single runs (raw and averaged weights), its ensemble, all runs' ensemble."""
    recorded = best.confirmation
    winner = recorded.winner_entry if recorded else None
    if winner is None:
        if best.test:
            return [f"| JOYFUL, the search's winner re-run (one seed) | {best.metric.value:.4f} "
                    f"| {best.test.weighted_f1:.4f} |"]
        return []
    averaging = winner.config.get("weight_averaging", "none")
    rows = []
    raw = winner.raw_test_weighted_f1
    if raw is not None and raw.mean is not None:
        raw_dev = [r.raw_best_dev_weighted_f1 for r in winner.runs if r.raw_best_dev_weighted_f1 is not None]
        rows.append(f"| JOYFUL single run, raw weights at their best dev epoch (mean of {raw.n} seeds) "
                    f"| {sum(raw_dev) / len(raw_dev):.4f} | {_mean_ci(raw)} |")
    label = "averaged weights" if averaging != "none" else "weights"
    rows.append(f"| JOYFUL single run, {label} (`{averaging}`) at the best dev epoch (mean of "
                f"{winner.dev_weighted_f1.n} seeds) | {_mean_ci(winner.dev_weighted_f1)} "
                f"| {_mean_ci(winner.test_weighted_f1)} |")
    if best.ensemble:
        e = best.ensemble
        source = e.members_from or "the confirmed winner's runs"
        rows.append(f"| **published: ensemble of the {len(e.members)} runs** ({source}; chosen on dev) "
                    f"| {e.dev_weighted_f1:.4f} | **{e.test_weighted_f1:.4f}** |")
        for other in e.not_chosen:
            rows.append(f"| ensemble of {other.members} runs ({other.members_from}; not published: lower dev) "
                        f"| {other.dev_weighted_f1:.4f} | {other.test_weighted_f1:.4f} |")
    elif recorded.ensemble_all:
        every = recorded.ensemble_all
        rows.append(f"| ensemble of all {every.members} confirmed runs (measured, not published) "
                    f"| {every.dev_weighted_f1:.4f} | {every.test_weighted_f1:.4f} |")
    return rows


def _mean_ci(summary: Summary) -> str:
    if summary.mean is None:
        return "n/a"
    ci = summary.ci95
    return f"{summary.mean:.4f}" + (f" ({ci[0]:.4f}–{ci[1]:.4f})" if ci else "")


def _limits(c: Context, lr: LinearReference) -> str:
    """Measured facts about why the winner stays below the linear reference, from the confirmation runs."""
    recorded = c.best.confirmation
    winner = recorded.winner_entry if recorded else None
    if winner is None:
        return ""
    runs = [r for e in recorded.configurations for r in e.runs if r.best_dev_weighted_f1 is not None]
    if not runs:
        return ""
    best_epochs = [r.best_epoch for r in runs]
    swings = [abs(b - a) for r in runs for a, b in zip(r.dev_weighted_f1[3:], r.dev_weighted_f1[4:], strict=False)]
    transfer = [r.test_weighted_f1 - r.best_dev_weighted_f1 for r in winner.runs if r.test_weighted_f1 is not None]
    lines = ["### What limits the model (measured on the confirmation runs)\n",
             f"- Best dev epochs {min(best_epochs)}–{max(best_epochs)} "
             f"(median {statistics.median(best_epochs):g}) of "
             f"{max(len(r.dev_weighted_f1) for r in runs)}; from epoch 4 on, dev wF1 moves by "
             f"{statistics.fmean(swings):.3f} on average from one epoch to the next" if swings else "",
             f"- Dev to test: the winner's runs change by {statistics.fmean(transfer):+.4f} wF1 from their best dev "
             f"score to test; the logistic regression by {lr.test_weighted_f1 - lr.dev_weighted_f1:+.4f}"
             if transfer else ""]
    single = _searched_trial(c, recorded.configurations)
    if single is not None and single.dev_weighted_f1.mean is not None:
        lines.append(f"- Selection on a small dev split: the search's best trial scored "
                     f"{c.best_trial.best_dev_weighted_f1:.4f} on dev; re-trained with the confirmation seeds it "
                     f"averaged {single.dev_weighted_f1.mean:.4f}")
    return "\n".join(line for line in lines if line) + "\n"


def _searched_trial(c: Context, configurations: list[ConfigurationRecord]) -> ConfigurationRecord | None:
    """The confirmed configuration of the search's best trial (its label names the trial), if it was confirmed."""
    trial = c.best_trial
    return next((e for e in configurations if trial and trial.trial_id in e.label), None)
