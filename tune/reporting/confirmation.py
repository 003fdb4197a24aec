"""The confirmation's sections of the report: the runs over seeds, the published model against the
references, what limits the model, and the expected effects."""

from __future__ import annotations

from tune.reporting.context import Context
from tune.reporting.plots import plot_confirmation
from tune.reporting.references import references_section
from tune.reporting.tables import confirmation_markdown, effects_markdown, per_run_markdown

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
            + references_section(c)
        )
    plot_confirmation(recorded, c.figures_dir / "confirmation.png", trivial=c.trivial)
    run = recorded.winner_run
    search_seed = c.study.base_config["seed"]
    cv = recorded.resampling != "holdout"
    runs = (
        f"on each fold ({recorded.resampling}) with seeds {', '.join(map(str, recorded.seeds))}: "
        "each run trains on the other folds of train + dev, for the epoch count its trial chose by "
        "cross-validation, and its dev score is its held-out fold's - on a fresh assignment of "
        "dialogues to folds, not the one the search ranked its trials on, so that these scores are "
        "not the ones the configurations were selected on"
        if cv
        else f"with seeds {', '.join(map(str, recorded.seeds))}, each run selecting its best dev "
        "epoch"
    )
    section = [
        "## Confirmation\n",
        _whose(c),
        f"Each configuration re-trained {runs} (the search used seed {search_seed}). "
        "Dev wF1 over runs: mean ± sample std, 95% t-interval; the difference to the baseline is "
        "paired by run. Test wF1 is evaluated once per run.\n",
        confirmation_markdown(recorded) + "\n",
        "Every run, dev wF1 (test wF1):\n\n" + per_run_markdown(recorded) + "\n",
        f"**Confirmed winner: {recorded.winner}** (the best config holds its median run, "
        f"{run.label}: dev wF1 "
        f"{run.best_dev_weighted_f1:.4f}, test wF1 {run.test_weighted_f1:.4f}).\n",
        f"*{recorded.tie}.*\n" if recorded.tie else "",
        c.figure("confirmation.png", "confirmation over runs") + "\n",
        _comparisons(c),
        references_section(c),
        "## Expected effects\n",
    ]
    effects = recorded.effects
    if not effects:
        section.append(
            "Not measured: the effects compare the space's proposal with the baseline, and no "
            "confirmed configuration has the proposal's values (no trial of the search ran them "
            "with results, or the space has no proposal).\n"
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
        "| comparison | on | difference (wF1) | CI95 | p (Holm) | dialogues | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    rows += [
        f"| {x.first} vs {x.second} | {x.split} | {x.estimate:+.4f} | [{x.ci95[0]:+.4f}, "
        f"{x.ci95[1]:+.4f}] | {'-' if x.p_holm is None else f'{x.p_holm:.3f}'} | {x.dialogues} "
        f"| {x.verdict} |"
        for x in found
    ]
    family = next((x.family for x in found if x.family), len(found))
    lines = [
        "## Comparisons, with intervals\n",
        "Each row compares two models on the same dialogues: the difference of their weighted F1, "
        "and its 95% interval from resampling the dialogues and each side's runs (paired; the "
        "seeds' spread is in it: tune/stats/bootstrap.py). The rows are one family of "
        f"{family} comparisons: a difference is claimed only where its p-value, adjusted for the "
        "family (Holm), is below 0.05 - otherwise it is a tie. Out-of-fold rows are on the "
        "confirmation's fresh folds; test rows were seen only after every decision.\n",
        "\n".join(rows) + "\n",
    ]
    beat = [x for x in found if x.first == "published model" and x.second != "logistic regression"]
    if beat:
        lines.append(
            "**Did the search beat the references a user has without it?** "
            + "; ".join(
                f"against the {x.second}: "
                f"{'yes' if not x.tie and x.estimate > 0 else 'no' if not x.tie else 'a tie'} "
                f"({x.estimate:+.4f} test wF1, CI95 [{x.ci95[0]:+.4f}, {x.ci95[1]:+.4f}])"
                for x in beat
            )
            + ".\n"
        )
    return "\n".join(lines)
