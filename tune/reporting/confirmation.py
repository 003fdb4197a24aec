"""The confirmation's sections of the report: the runs over seeds, the published model against the
references, what limits the model, and the expected effects."""

from __future__ import annotations

import statistics

from tune.records import BestConfig, ConfigurationRecord, LinearReference, Summary
from tune.reporting.context import Context
from tune.reporting.plots import plot_confirmation
from tune.reporting.tables import confirmation_markdown, effects_markdown, per_run_markdown
from tune.stats.references import judge, published_test

__all__ = ["confirmation"]


def _whose(c: Context) -> str:
    """Which search this confirmation belongs to, and whether its result is the one published."""
    own = c.best is not None and c.best.study.name == c.study.name
    published = (
        c.published is not None
        and c.best is not None
        and c.published.study.name == c.best.study.name
    )
    search = "this search" if own else f"search `{c.best.study.name}`"
    if published or c.published is None:
        return (
            f"The confirmation of {search}, whose result is "
            f"{'the published one' if published else 'not published'}.\n"
        )
    kept = c.published
    what = (
        f"its confirmed winner {kept.confirmation.winner} (dev wF1 {kept.value:.4f})"
        if kept.confirmation
        else f"dev wF1 {kept.value:.4f}, not confirmed"
    )
    if kept.ensemble is not None:
        what += (
            f", its ensemble of {len(kept.ensemble.members)} at test wF1 "
            f"{kept.ensemble.test_weighted_f1:.4f}"
        )
    return (
        f"The confirmation of {search}, whose result is not published: the best-config file keeps "
        f"search `{kept.study.name}`'s result, {what}.\n"
    )


def confirmation(c: Context) -> str:
    """The confirmation over seeds (and folds), the headline comparisons with their intervals, the
    references and the expected effects; a note when there is none yet."""
    recorded = c.best.confirmation if c.best is not None else None
    if not recorded or not recorded.configurations:
        return (
            (
                "## Confirmation\n\nThis search's result was not confirmed (`--confirm-top 0`); "
                f"confirm it with `python tune/confirm.py --dataset {c.dataset}`.\n"
            )
            + _comparisons(c)
            + _references(c)
        )
    plot_confirmation(recorded, c.figures_dir / "confirmation.png", trivial=c.trivial)
    run = recorded.winner_run
    search_seed = c.study.base_config["seed"]
    cv = recorded.resampling != "holdout"
    runs = (
        f"on each fold ({recorded.resampling}) with seeds {', '.join(map(str, recorded.seeds))}: "
        "each run trains on the other folds of train + dev, for the epoch count its trial chose by "
        "cross-validation, and its dev score is its held-out fold's"
        if cv
        else f"with seeds {', '.join(map(str, recorded.seeds))}, each run selecting its best dev "
        "epoch"
    )
    defaults = (
        "The untuned defaults (the project's defaults with the space's fixed values) have the "
        "baseline's settings here, so the baseline's runs stand for them."
        if recorded.defaults == "baseline"
        else f"The untuned defaults (`{recorded.defaults or 'not run'}`: the project's defaults "
        "with the space's fixed values) run beside the tuned ones."
    )
    section = [
        "## Confirmation\n",
        _whose(c),
        f"Each configuration re-trained {runs} (the search used seed {search_seed}). {defaults} "
        "Dev wF1 over runs: "
        "mean ± sample std, 95% t-interval; the difference to the baseline is paired by run. Test "
        "wF1 is evaluated once per run.\n",
        confirmation_markdown(recorded) + "\n",
        "Every run, dev wF1 (test wF1):\n\n" + per_run_markdown(recorded) + "\n",
        f"**Confirmed winner: {recorded.winner}** (the best config holds its median run, "
        f"{run.label}: dev wF1 "
        f"{run.best_dev_weighted_f1:.4f}, test wF1 {run.test_weighted_f1:.4f}).\n",
        f"*{recorded.tie}.*\n" if recorded.tie else "",
        c.figure("confirmation.png", "confirmation over runs") + "\n",
        _comparisons(c),
        _references(c),
        "## Expected effects\n",
    ]
    effects = recorded.effects
    if not effects:
        section.append(
            "Not measured: the confirmation has no configuration besides the baseline with "
            "results.\n"
        )
        return "\n".join(section)
    against = (
        "the confirmed winner"
        if effects.compared_is_winner
        else f"`{effects.compared}`" + (" (the proposal)" if effects.proposal else "")
    )
    held = [r.description for r in effects.rows if r.verdict.held]
    others = [r.description for r in effects.rows if not r.verdict.held]
    section += [
        f"The expected effects of the proposal, measured for the baseline against {against}, over "
        "the runs both have "
        f"({', '.join(effects.runs)}). `seeds better` counts the runs where it beats the "
        "baseline's run of the same "
        "seed (and fold). These are point estimates over few runs; the intervals above say what is "
        "noise.\n",
        effects_markdown(effects.rows, "winner" if effects.compared_is_winner else "compared")
        + "\n",
        f"Held on this data: {', '.join(held) or 'none'}. Did not hold or not measurable: "
        f"{', '.join(others) or 'none'}.\n",
    ]
    return "\n".join(section)


def _comparisons(c: Context) -> str:
    """The headline comparisons: each a difference of weighted F1 on the same dialogues, with its
    paired bootstrap interval; an interval that holds 0 is a tie."""
    found = c.best.comparisons if c.best is not None else []
    if not found:
        return ""
    rows = [
        "| comparison | on | difference (wF1) | CI95 | dialogues | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    rows += [
        f"| {x.first} vs {x.second} | {x.split} | {x.estimate:+.4f} | [{x.ci95[0]:+.4f}, "
        f"{x.ci95[1]:+.4f}] | {x.dialogues} | {x.verdict} |"
        for x in found
    ]
    tuned = [x for x in found if x.name == "winner vs defaults"]
    lines = [
        "## Comparisons, with intervals\n",
        "Each row compares two models on the same dialogues: the difference of their weighted F1, "
        "and its 95% "
        "interval from resampling the dialogues (paired; tune/stats/bootstrap.py). An interval "
        "that holds 0 is a "
        "tie. Dev (out-of-fold) rows are what the decisions used; test rows were seen only after "
        "them.\n",
        "\n".join(rows) + "\n",
    ]
    recorded = c.best.confirmation
    if not tuned and recorded is not None and recorded.defaults == recorded.winner:
        lines.append(
            "**Did tuning beat the untuned defaults?** No: the published configuration "
            f"(`{recorded.winner}`) has the untuned defaults' settings.\n"
        )
    if tuned:
        lines.append(
            "**Did tuning beat the untuned defaults?** "
            + "; ".join(
                f"on {x.split}: "
                f"{'yes' if not x.tie and x.estimate > 0 else 'no' if not x.tie else 'a tie'} "
                f"({x.estimate:+.4f}, CI95 [{x.ci95[0]:+.4f}, {x.ci95[1]:+.4f}])"
                for x in tuned
            )
            + ".\n"
        )
    return "\n".join(lines)


def _references(c: Context) -> str:
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
    rows += _model_rows(c.best)
    return "\n".join(
        [
            "## Against references\n",
            "Test is evaluated once per model (each run's selected weights, and with weight "
            "averaging also its raw "
            "weights at their own best dev epoch); an ensemble averages those runs' class "
            "probabilities, so it chooses nothing on test.\n",
            "\n".join(rows) + "\n",
            f"**{line}.**\n" if line else "",
            # The limits are shown when the published model, or the single runs behind its ensemble,
            # stay below LR.
            _limits(c, lr)
            if published is not None
            and (published.below(references) or published.single_below(references))
            else "",
        ]
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
        rows.append(
            f"| **published ensemble**: {e.members_from} (chosen on dev) "
            f"| {e.dev_weighted_f1:.4f} | **{e.test_weighted_f1:.4f}** |"
        )
        for other in e.not_chosen:
            rows.append(
                f"| ensemble of {other.members_from} (not published: lower dev) "
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
