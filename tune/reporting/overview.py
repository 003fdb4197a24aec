"""The report's first section: what the search was (data, budget, strategy, resampling, space), how
it ended, the trivial level, its best trial and what is published."""

from __future__ import annotations

from typing import Any

from tune.reporting.context import Context, param_names, relative, trial_params
from tune.space import rungs
from tune.stats.references import majority_warning

__all__ = ["summary"]


def summary(c: Context) -> str:
    study = c.study
    counts: dict[str, int] = {}
    for t in c.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    lines = [
        f"- Data: `{relative(study.data_path)}` (sha256 `{study.data_sha256[:16]}…`); modalities "
        f"`{study.base_config['modalities']}`; search `{study.name}`",
        f"- Trials: {len(c.trials)} ("
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + ")",
        _budget_line(study),
        _strategy_line(study),
        f"- Resampling: {_resampling_words(study)}",
        f"- Search space: `{relative(study.space_file)}`",
        f"- Selection metric: `{study.metric}` ({study.mode}), never test"
        + _scored_model(study.base_config),
        f"- Optuna study `{study.optuna_study}` in `{study.optuna_storage}` (open it with "
        f"`optuna-dashboard {study.optuna_storage}`)",
    ]
    if study.warm_start:
        ws = study.warm_start
        lines.append(
            f"- Warm start: {ws.trials} earlier trial(s) of {', '.join(ws.studies)} (learned from, "
            f"not re-run); {len(ws.proposed)} earlier winner(s) proposed first"
        )
    if study.ending is not None:
        lines.append(_ending_line(study))
    cut = [t.trial_id for t in c.trials if t.peaked_last(study.budget.max_epochs)]
    if cut:
        lines.append(
            f"- **Best epoch = last epoch** in {len(cut)} of {len(c.trials)} trials "
            f"({', '.join(cut[:8])}"
            f"{', ...' if len(cut) > 8 else ''}): their curves had not peaked, so the epoch budget "
            f"({study.budget.max_epochs}) may have cut them short"
        )
    if study.majority:
        lines.append(
            f"- Trivial level: always `{study.majority.majority_class}` scores "
            f"{study.majority.dev_weighted_f1:.4f} "
            + (
                "wF1 on train + dev pooled (the held-out folds together)"
                if study.resampling.kind == "cv"
                else "dev wF1"
            )
            + " (the dashed line on the plots)"
        )
    warning = None
    if c.best_trial is not None:
        t = c.best_trial
        lines.append(
            f"- Best single trial: `{t.trial_id}`, {t.best_dev_weighted_f1:.4f} "
            f"{_where_ranked(study)} at epoch {t.best_epoch} ({trial_params(t, param_names(c))})"
        )
        warning = majority_warning(study, t)
    lines.append(_published(c))
    if warning:
        lines.append(f"\n**{warning}.**")
    if not c.trials:
        lines.append("\nThe study holds no trials.")
    return f"# Search report: `{c.dataset}`\n\n" + "\n".join(lines) + "\n"


def _where_ranked(study: Any) -> str:
    """What a search score is: the words after the number."""
    if study.resampling.kind == "cv":
        return (
            f"wF1 out of fold (mean of its {study.resampling.folds} folds' held-out scores, one "
            "seed)"
        )
    return "dev wF1 (the data's dev split, one seed)"


_STOPPING = {
    "patient": "a trial stopped only when it trails the cutoff by more than the noise",
    "asha": "a trial below the cutoff stopped (plain ASHA)",
}


def _budget_line(study: Any) -> str:
    budget, resampling, scheduler = study.budget, study.resampling, study.strategy.scheduler
    limit = f"; time budget {budget.time_budget / 60:.0f} min" if budget.time_budget else ""
    if scheduler == "fifo":
        halving = "every trial runs its whole budget (no early stopping)"
    elif resampling.kind == "cv":
        halving = (
            f"successive halving over folds (rungs after fold "
            f"{', '.join(map(str, rungs(1, budget.reduction_factor, resampling.folds)))}), "
            f"{_STOPPING[scheduler]}"
        )
    else:
        at = rungs(budget.grace_period, budget.reduction_factor, budget.max_epochs)
        halving = (
            f"successive halving over epochs (rungs at {', '.join(map(str, at)) or 'none'}), "
            f"{_STOPPING[scheduler]}"
        )
    per_trial = (
        f"{budget.max_epochs} epochs on each of {resampling.folds} folds a trial"
        if resampling.kind == "cv"
        else f"up to {budget.max_epochs} epochs a trial"
    )
    return f"- Budget: up to {budget.num_samples} trials of {per_trial}{limit}; {halving}"


def _strategy_line(study: Any) -> str:
    """Which sampler proposed the trials, how many its model proposed, and how many ran at once."""
    sampling = study.sampling
    if sampling is None:
        return f"- Sampler: `{study.strategy.sampler}`"
    arms = (
        f"each of {len(sampling.arms)} arms ({', '.join(sampling.arms)}) on its own trials"
        if sampling.separate_arms
        else "one model over every arm"
    )
    startup = (
        f", after {sampling.startup_per_arm} random trials per arm"
        if sampling.startup_per_arm
        else ""
    )
    at_once = (
        f"; {sampling.concurrency} trial(s) at once ({sampling.concurrency_reason})"
        if sampling.concurrency
        else ""
    )
    return (
        f"- Sampler: `{sampling.sampler}`{startup}, {arms}: of {sampling.proposed} trials "
        f"{sampling.queued} "
        f"queued (the baseline, earlier winners), {sampling.start_up} random, {sampling.model} "
        f"proposed by the model ({sampling.model_share:.0%}){at_once}"
    )


def _ending_line(study: Any) -> str:
    """How the trial phase ended: every trial ran, or the time budget stopped new ones (and what it
    left out)."""
    ending = study.ending
    if ending.kind == "time budget":
        line = (
            f"- **Ended on its time budget** ({ending.time_budget_s / 60:.0f} min): "
            f"{ending.trials_started} of "
            f"{study.budget.num_samples} trials started, {ending.trials_not_started} left out"
        )
    else:
        line = f"- Ended: every trial it planned ran ({ending.trials_started})"
    if ending.epoch_seconds:
        line += f"; an epoch took {ending.epoch_seconds:.1f} s (median)"
    if ending.confirmation_left_out:
        line += f"; {ending.confirmation_left_out}"
    return line


def _resampling_words(study: Any) -> str:
    resampling = study.resampling
    what = (
        f"{resampling.folds}-fold cross-validation by dialogue over train + dev (a trial's score: "
        "the mean over its folds at one epoch count, the best such epoch)"
        if resampling.kind == "cv"
        else "the data's dev split (a trial's score: its best epoch's dev wF1)"
    )
    noise = (
        f"; one dev wF1 is uncertain by {resampling.dev_noise:.3f}"
        if resampling.dev_noise is not None
        else ""
    )
    why = resampling.reason.removeprefix(
        "resampling: "
    )  # the line the search printed, which names the subject
    return f"{what}{noise}; chosen: {why}" if why else what + noise


def _published(c: Context) -> str:
    """Which result the best-config file publishes: this search's, or an earlier one that this
    search did not beat."""
    published = c.published
    if published is None:
        return "- **Published:** nothing yet (no best-config file)"
    ensemble = published.ensemble
    score = (
        f"ensemble of {len(ensemble.members)} test wF1 {ensemble.test_weighted_f1:.4f}"
        if ensemble
        else f"test wF1 {published.test.weighted_f1:.4f}"
        if published.test
        else "not tested"
    )
    scored_on = f" ({published.metric.scored_on})" if published.metric.scored_on else ""
    what = f"dev wF1 {published.value:.4f}{scored_on}, {score}"
    if published.study.name == c.study.name:
        return f"- **Published:** this search's result, in `{c.best_path}` ({what})"
    line = (
        f"- **Published:** the result of the earlier search `{published.study.name}`, in "
        f"`{c.best_path}` ({what})"
    )
    if c.decision is not None:
        line += f"; this search's result was not published: {c.decision[1]}"
    return line


def _scored_model(base: dict[str, Any]) -> str:
    """Which weights the scores are of: the averaged copy, when the search trained with
    averaging."""
    averaging = base.get("weight_averaging", "none")
    if averaging == "none":
        return ""
    window = (
        f"over {base.get('ema_epochs')} epochs"
        if averaging == "ema"
        else f"from epoch {base.get('swa_start')}"
    )
    return (
        f"; every score is the dev wF1 of the trial's averaged weights (`{averaging}` {window}), "
        "the one the scheduler, the sampler, the ranking, the curves and the Optuna study all use"
    )
