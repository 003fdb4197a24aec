"""The report of a search (results/reports/<dataset>.md + PNGs), rebuilt from stored results.

It reads the study record (`StudyRecord`), the search's Optuna study from its storage (states, values,
distributions: importance, parallel coordinates, slices, contours) and, when present, the best config
(confirmation, references, expected effects), and writes results/reports/<dataset>.md and PNG plots in
results/reports/<dataset>/, atomically. Nothing is retrained and no server is needed: the Markdown
links the PNGs by relative path. Plots of dev wF1 draw the level of always predicting the dev
split's majority class. The command is `tune/report.py`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import atomic_write, portable_path, recorded_path
from tune.common import fmt_value, present, slug
from tune.records import BestConfig, StudyRecord, TrialRecord, ranked
from tune.records.store import ResultStore
from tune.reporting.optuna_plots import plot_contour, plot_parallel_coordinate, plot_slices, write_interactive_html
from tune.reporting.plots import (
    asha_rungs,
    plot_confirmation,
    plot_curves,
    plot_history,
    plot_importance,
    plot_parameter,
)
from tune.space import Parameter, SearchSpace, load_space
from tune.stats.confirmation import confirmation_markdown, per_seed_markdown
from tune.stats.effects import effects_markdown
from tune.stats.references import judge, majority_warning, published_test
from tune.study.storage import load_study

if TYPE_CHECKING:
    import optuna

    from tune.records.store import ResultStore

__all__ = ["build_report", "parameter_importance"]

# Importances and contours are fitted surfaces: from a handful of finished trials they draw noise as structure
# (issue 20: a contour of 3 trials over a colour scale of 0.4956-0.504). Below this many COMPLETE trials the
# report says so in a sentence instead.
MIN_SURFACE_TRIALS = 6
TOP_CURVES = 5
CONTOUR_PARAMS = 3  # the most important ones; a contour grid of every pair is unreadable


@dataclass
class Context:
    """What every section reads: the study record, its Optuna study, the best config, the ranked trials."""

    dataset: str
    study: StudyRecord
    optuna_study: optuna.Study | None
    optuna_note: str  # why there is no Optuna study, when there is none
    best: BestConfig | None
    figures_dir: Path
    space: SearchSpace | None
    space_note: str
    trials: list[TrialRecord]  # in start order
    ranked: list[TrialRecord]  # finished or ASHA-stopped with a score, best first
    figures: list[str] = field(default_factory=list)  # PNG files written

    @property
    def best_trial(self) -> TrialRecord | None:
        return self.ranked[0] if self.ranked else None

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The trials as the plots take them (parameters as columns), in start order."""
        return [t.to_dict() for t in self.trials]

    @property
    def trivial(self) -> tuple[str, float] | None:
        majority = self.study.majority
        return (f"always {majority['class']}", majority["dev_weighted_f1"]) if majority else None

    def figure(self, file: str, caption: str) -> str:
        """Record a written PNG and return its Markdown image link (relative to the report)."""
        self.figures.append(file)
        return f"![{caption}]({self.figures_dir.name}/{file})"


# --- reading ------------------------------------------------------------------------------


def _space(study: StudyRecord, dataset: str) -> tuple[SearchSpace | None, str]:
    """The search space the study recorded, and a note when it cannot be read."""
    try:
        return load_space(study.space_file, dataset), ""
    except UserError as exc:
        return None, f"the search-space file could not be read ({exc}); parameters are taken from the trials"


def _optuna_study(study: StudyRecord, store: ResultStore) -> tuple[optuna.Study | None, str]:
    """The search's Optuna study, read back from its journal with `optuna.load_study`."""

    try:
        return load_study(store.journal_of(study), study.optuna_study), ""
    except UserError as exc:
        return None, str(exc)


# --- importance ------------------------------------------------------------------------------


def parameter_importance(study: optuna.Study | None) -> tuple[dict[str, float], str]:
    """(importances, "") from the study's completed trials, or ({}, the reason they cannot be computed).

    Optuna's `get_param_importances` with the evaluator optuna-dashboard uses (PED-ANOVA, which looks for
    what the best trials share; the target is negated for a maximised metric, as the dashboard does), so the
    report and the dashboard show one ranking. ASHA-stopped (pruned) trials have no final score and do not count.
    """
    import optuna

    if study is None:
        return {}, "the search's Optuna study is not available"
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_SURFACE_TRIALS:
        return {}, (f"{len(complete)} trial(s) completed all epochs; importance needs at least {MIN_SURFACE_TRIALS} "
                    "(ASHA-stopped trials have no final score, and from fewer the fitted model shows noise)")
    if len({repr(sorted(t.params.items())) for t in complete}) < 2:
        return {}, "the completed trials all share the same parameter values"
    if len({t.value for t in complete}) < 2:
        return {}, (f"all {len(complete)} completed trials have the same score ({complete[0].value:.4f}); "
                    "there is no difference to attribute to a parameter")
    try:
        with warnings.catch_warnings():  # few trials make Optuna warn on every call; the report states the count
            warnings.simplefilter("ignore")
            maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
            importances = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=(lambda trial: -trial.value) if maximise else (lambda trial: trial.value))
    except (ValueError, RuntimeError) as exc:
        return {}, f"Optuna could not compute it ({exc})"
    if not importances:
        return {}, "no parameter is shared by the completed trials"
    # Largest first; ties (often several 0.000) by name, so the table's order is stable too.
    return {k: float(v) for k, v in sorted(importances.items(), key=lambda kv: (-kv[1], kv[0]))}, ""


# --- the report -------------------------------------------------------------------------------


def build_report(dataset: str, results_dir: str | Path, *, html: bool = False) -> Path:
    """Write results/reports/<dataset>.md and its PNGs (and, with `html`, the interactive HTML)."""

    check_dataset_name(dataset)
    results_dir = Path(results_dir)
    store = ResultStore(results_dir)
    study = store.read_study(dataset)
    best = store.read_best(dataset)
    if best is not None and best.study.get("name") != study.name:
        best = None  # the published winner comes from another search: its confirmation is not this study's
    optuna_study, optuna_note = _optuna_study(study, store)
    space, space_note = _space(study, dataset)
    context = Context(dataset, study, optuna_study, optuna_note, best, store.figures_dir(dataset), space, space_note,
                      study.in_start_order(), ranked(study.trials))
    importances, reason = parameter_importance(optuna_study)
    sections = [_summary(context), _history(context), _parameters(context), _importance(context, importances, reason),
                _optuna_plots(context, importances), _curves(context), _confirmation(context),
                _interactive(context, store, html),
                f"---\nRebuild with `python tune/report.py --dataset {dataset} --results-dir "
                f"{_relative(str(results_dir))}` (no training).\n"]
    if context.figures_dir.is_dir():
        for stale in context.figures_dir.glob("*.png"):
            if stale.name not in context.figures:
                stale.unlink()
    path = store.report_path(dataset)
    atomic_write(path, lambda out: out.write("\n".join(section for section in sections if section)))
    return path


def _summary(c: Context) -> str:
    study, budget = c.study, c.study.budget
    counts: dict[str, int] = {}
    for t in c.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    lines = [f"- Data: `{_relative(study.data_path)}` (sha256 `{study.data_sha256[:16]}…`); modalities "
             f"`{study.base_config['modalities']}`; search `{study.name}`",
             f"- Trials: {len(c.trials)} (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")",
             f"- Budget: up to {budget.max_epochs} epochs a trial; ASHA grace period {budget.grace_period}, "
             f"reduction factor {budget.reduction_factor}",
             f"- Search space: `{_relative(study.space_file)}`",
             f"- Selection metric: `{study.metric}` ({study.mode}), dev split only" + _scored_model(study.base_config),
             f"- Optuna study `{study.optuna_study}` in `{study.optuna_storage}` (open it with "
             f"`optuna-dashboard {study.optuna_storage}`)"]
    if study.warm_start:
        ws = study.warm_start
        lines.append(f"- Warm start: {ws['trials']} earlier trial(s) of {', '.join(ws['studies'])} (learned from, not "
                     f"re-run); {len(ws['proposed'])} earlier winner(s) proposed first")
    if study.majority:
        lines.append(f"- Trivial level: always `{study.majority['class']}` scores dev wF1 "
                     f"{study.majority['dev_weighted_f1']:.4f} (the dashed line on the plots)")
    if c.best_trial is not None:
        t = c.best_trial
        lines.append(f"- Best single trial: `{t.trial_id}`, best dev wF1 {t.best_dev_weighted_f1:.4f} at epoch "
                     f"{t.best_epoch} ({_params(t, _names(c))})")
        warning = majority_warning(study, t)
        if warning:
            lines.append(f"\n**{warning}.**")
    if not c.trials:
        lines.append("\nThe study holds no trials.")
    return f"# Search report: `{c.dataset}`\n\n" + "\n".join(lines) + "\n"


def _scored_model(base: dict[str, Any]) -> str:
    """Which weights the scores are of: the averaged copy, when the search trained with averaging."""
    averaging = base.get("weight_averaging", "none")
    if averaging == "none":
        return ""
    window = (f"over {base.get('ema_epochs')} epochs" if averaging == "ema"
              else f"from epoch {base.get('swa_start')}")
    return (f"; every score is the dev wF1 of the trial's averaged weights (`{averaging}` {window}), the one ASHA, "
            "TPE, the ranking, the curves and the Optuna study all use")


def _history(c: Context) -> str:
    if not c.trials:
        return ""
    plot_history(c.rows, c.figures_dir / "history.png", trivial=c.trivial)
    return "## Optimisation history\n\n" + c.figure("history.png", "optimisation history") + "\n"


def _parameters(c: Context) -> str:
    names = _names(c)
    if not names or not c.ranked:
        return ""
    section = ["## Dev F1 against each searched parameter\n"]
    if c.space_note:
        section.append(f"Note: {c.space_note}.\n")
    by_name = {p.name: p for p in c.space.parameters} if c.space else {}
    best = c.best_trial
    rows = [t.to_dict() for t in c.ranked]
    for name in names:
        parameter = by_name.get(name)
        section.append(f"### `{name}`\n")
        if not any(name in t.params for t in c.ranked):
            section.append(f"No finished trial used it{_condition(parameter)}.\n")
            continue
        file = f"param_{slug(name)}.png"
        plot_parameter(name, parameter, rows, best.trial_id, c.figures_dir / file, trivial=c.trivial)
        value = best.params.get(name)
        if parameter is not None and present(value) and parameter.at_edge(value):
            section.append(f"**Warning:** the best trial's {name} = {fmt_value(value)} lies at the edge of the searched "
                           f"range [{fmt_value(parameter.low)}, {fmt_value(parameter.high)}]; the optimum may lie outside it — "
                           "widen the range and search again.\n")
        section.append(c.figure(file, f"dev F1 against {name}") + "\n")
    return "\n".join(section)


def _importance(c: Context, importances: dict[str, float], reason: str) -> str:
    if not importances:
        return f"## Parameter importance\n\nNot computed: {reason}.\n"
    plot_importance(importances, c.figures_dir / "importance.png")
    table = "\n".join(f"| {k} | {v:.3f} |" for k, v in importances.items())
    completed = sum(t.outcome == "completed" for t in c.trials)
    return ("## Parameter importance\n\nOptuna's `get_param_importances` (PED-ANOVA, as optuna-dashboard "
            f"computes it) over the {completed} trials that ran all epochs; few trials make it a rough guide only:\n\n"
            f"| parameter | importance |\n|---|---:|\n{table}\n\n"
            + c.figure("importance.png", "parameter importance") + "\n")


def _optuna_plots(c: Context, importances: dict[str, float]) -> str:
    """Optuna's own views of the study: parallel coordinates, slices, and contours of the most important pairs."""
    if c.optuna_study is None:
        return f"## Parameters together\n\nNot drawn: {c.optuna_note}.\n"
    section = ["## Parameters together\n",
               "Optuna's matplotlib views of the study; they show the trials that ran all epochs (COMPLETE) with "
               "their best dev score. ASHA-stopped trials are in the history and parameter plots above.\n"]
    drawn = False
    if plot_parallel_coordinate(c.optuna_study, c.figures_dir / "parallel_coordinate.png"):
        section.append(c.figure("parallel_coordinate.png", "parallel coordinates") + "\n")
        drawn = True
    if plot_slices(c.optuna_study, c.figures_dir / "slices.png"):
        section.append(c.figure("slices.png", "slice plots") + "\n")
        drawn = True
    # Contours interpolate between trials: only numeric axes (a categorical or true/false one has no values in
    # between); those are in the slices and the per-parameter plots.
    numeric = [n for n in importances if _numeric(c.optuna_study, n)][:CONTOUR_PARAMS]
    complete = sum(t.state.name == "COMPLETE" for t in c.optuna_study.get_trials(deepcopy=False))
    if complete < MIN_SURFACE_TRIALS:
        section.append(f"Contours not drawn: {complete} trial(s) ran all epochs; a contour needs at least "
                       f"{MIN_SURFACE_TRIALS}, or it draws noise as structure.\n")
    elif len(numeric) >= 2 and plot_contour(c.optuna_study, c.figures_dir / "contour.png", numeric):
        section.append(f"Contours of the {len(numeric)} most important numeric parameters ({', '.join(numeric)}), "
                       f"from {complete} trials that ran all epochs:\n")
        section.append(c.figure("contour.png", "contour plots") + "\n")
        drawn = True
    else:
        section.append("Contours not drawn: fewer than 2 numeric parameters vary among the trials that ran all "
                       "epochs.\n")
    if not drawn:
        section.append("Not drawn: fewer than 2 trials ran all epochs.\n")
    return "\n".join(section)


def _numeric(study: optuna.Study, name: str) -> bool:
    """Whether `name` is a float or int parameter of the study (not a categorical, even of numbers)."""
    import optuna

    return any(isinstance(t.distributions.get(name), (optuna.distributions.FloatDistribution,
                                                       optuna.distributions.IntDistribution))
               for t in study.get_trials(deepcopy=False))


def _interactive(c: Context, store: ResultStore, html: bool) -> str:
    path = store.interactive_report_path(c.dataset)
    if html and c.optuna_study is not None:

        write_interactive_html(c.optuna_study, path)
    if path.is_file():
        return f"Interactive version (plotly, self-contained): [{path.name}]({path.name})\n"
    return ""


def _curves(c: Context) -> str:
    top = [t for t in c.ranked if t.curve][:TOP_CURVES]
    if not top:
        return ""
    budget = c.study.budget
    rungs = asha_rungs(budget.max_epochs, budget.grace_period, budget.reduction_factor)
    plot_curves([t.to_dict() for t in top], rungs, c.figures_dir / "curves.png", trivial=c.trivial)
    return (f"## Learning curves of the top {len(top)} trials\n\nDotted lines: ASHA rungs (epochs "
            f"{', '.join(map(str, rungs)) or 'none'}); a cross marks where ASHA stopped a trial; the dashed line is "
            "always predicting the dev majority class.\n\n" + c.figure("curves.png", "learning curves") + "\n")


def _confirmation(c: Context) -> str:

    confirmation = c.best.confirmation if c.best is not None else None
    if not confirmation:
        return ("## Confirmation over seeds\n\nNo confirmation recorded in the best config yet "
                f"(run `python tune/confirm.py --dataset {c.dataset}`).\n") + _references(c)
    plot_confirmation(confirmation, c.figures_dir / "confirmation.png", trivial=c.trivial)
    winner = confirmation["winner"]
    run = next(r for entry in confirmation["configurations"] if entry["label"] == winner for r in entry["runs"]
               if r["seed"] == confirmation["winner_seed"])
    search_seed = c.study.base_config["seed"]
    section = [
        "## Confirmation over seeds\n",
        f"Each configuration re-trained with seeds {', '.join(map(str, confirmation['seeds']))} (the search used "
        f"seed {search_seed}). Best dev weighted F1 over seeds: mean ± sample std, 95% t-interval; the difference "
        "to the baseline is paired by seed. Test wF1 is evaluated once per run, at its best dev epoch.\n",
        confirmation_markdown(confirmation) + "\n",
        "Per seed, best dev wF1 (test wF1):\n\n" + per_seed_markdown(confirmation) + "\n",
        f"**Confirmed winner: {winner}** (the best config holds it at seed {run['seed']}, its median run: best dev "
        f"wF1 {run['best_dev_weighted_f1']:.4f} at epoch {run['best_epoch']}, test wF1 "
        f"{run['test_weighted_f1']:.4f}).\n",
        c.figure("confirmation.png", "confirmation over seeds") + "\n",
        _references(c),
        "## Expected effects\n",
    ]
    effects = confirmation.get("effects")
    if not effects:
        section.append("Not measured: the confirmation has no configuration besides the baseline with results.\n")
        return "\n".join(section)
    against = ("the confirmed winner" if effects["compared_is_winner"]
               else "the best other configuration (the baseline itself won the confirmation)")
    rows = effects["rows"]
    held = [r["description"] for r in rows if r["verdict"].startswith("held")]
    others = [r["description"] for r in rows if not r["verdict"].startswith("held")]
    section += [
        f"The user's expected effects, measured for the baseline against {against}, `{effects['compared']}`, over "
        f"seeds {', '.join(map(str, effects['seeds']))}. `seeds better` counts the seeds where its run beats the "
        "baseline's run of the same seed. These are point estimates over few seeds; see the CI95 above for F1.\n",
        effects_markdown(rows, "winner" if effects["compared_is_winner"] else "compared") + "\n",
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
    lr, majority = references["logistic_regression"], references["majority"]
    published = published_test(c.best)
    line = judge(published, references)
    rows = [f"| model ({references['modalities']}) | dev wF1 | test wF1 |", "|---|---:|---:|",
            f"| always {majority['class']} | {majority['dev_weighted_f1']:.4f} | {majority['test_weighted_f1']:.4f} |",
            f"| logistic regression ({lr['features']}; C = {lr['C']}) | {lr['dev_weighted_f1']:.4f} "
            f"| {lr['test_weighted_f1']:.4f} |"]
    rows += _model_rows(c.best)
    return "\n".join([
        "## Against references\n",
        "Test is evaluated once per model (each run's selected weights, and with weight averaging also its raw "
        "weights at their own best dev epoch); an ensemble averages those runs' class probabilities, so it chooses "
        "nothing on test.\n",
        "\n".join(rows) + "\n",
        f"**{line}.**\n" if line else "",
        _limits(c, lr) if published is not None and (published.below(references) or _single_below(published, lr))
        else "",
    ])


def _single_below(published: Any, lr: dict[str, Any]) -> bool:
    """Whether the single runs behind an ensemble stay below the linear reference (then the limits are shown)."""
    single = published.single or {}
    return single.get("mean") is not None and single["mean"] <= lr["test_weighted_f1"]


def _model_rows(best: BestConfig) -> list[str]:
    """Table rows of the confirmed winner: single runs (raw and averaged weights), its ensemble, all runs' ensemble."""
    confirmation = best.confirmation
    if not confirmation:
        if best.test:
            return [f"| JOYFUL, the search's winner re-run (one seed) | {best.metric['value']:.4f} "
                    f"| {best.test['weighted_f1']:.4f} |"]
        return []
    winner = next(e for e in confirmation["configurations"] if e["label"] == confirmation["winner"])
    averaging = winner["config"].get("weight_averaging", "none")
    n = winner["dev_weighted_f1"]["n"]
    rows = []
    raw = winner.get("raw_test_weighted_f1") or {}
    if raw.get("mean") is not None:
        raw_dev = [r["raw_best_dev_weighted_f1"] for r in winner["runs"] if r.get("raw_best_dev_weighted_f1") is not None]
        rows.append(f"| JOYFUL single run, raw weights at their best dev epoch (mean of {raw['n']} seeds) "
                    f"| {sum(raw_dev) / len(raw_dev):.4f} | {_mean_ci(raw)} |")
    label = "averaged weights" if averaging != "none" else "weights"
    rows.append(f"| JOYFUL single run, {label} (`{averaging}`) at the best dev epoch (mean of {n} seeds) "
                f"| {_mean_ci(winner['dev_weighted_f1'])} | {_mean_ci(winner['test_weighted_f1'])} |")
    if best.ensemble:
        e = best.ensemble
        source = e.get("members_from", "the confirmed winner's runs")
        rows.append(f"| **published: ensemble of the {len(e['members'])} runs** ({source}; chosen on dev) "
                    f"| {e['dev_weighted_f1']:.4f} | **{e['test_weighted_f1']:.4f}** |")
        for other in e.get("not_chosen", []):
            rows.append(f"| ensemble of {other['members']} runs ({other['members_from']}; not published: lower dev) "
                        f"| {other['dev_weighted_f1']:.4f} | {other['test_weighted_f1']:.4f} |")
    elif confirmation.get("ensemble_all"):
        every = confirmation["ensemble_all"]
        rows.append(f"| ensemble of all {every['members']} confirmed runs (measured, not published) "
                    f"| {every['dev_weighted_f1']:.4f} | {every['test_weighted_f1']:.4f} |")
    return rows


def _mean_ci(summary: dict[str, Any]) -> str:
    if summary.get("mean") is None:
        return "n/a"
    ci = summary.get("ci95")
    return f"{summary['mean']:.4f}" + (f" ({ci[0]:.4f}–{ci[1]:.4f})" if ci else "")


def _limits(c: Context, lr: dict[str, Any]) -> str:
    """Measured facts about why the winner stays below the linear reference, from the confirmation runs."""
    import statistics

    confirmation = c.best.confirmation
    if not confirmation:
        return ""
    winner = next(e for e in confirmation["configurations"] if e["label"] == confirmation["winner"])
    runs = [r for e in confirmation["configurations"] for r in e["runs"] if r.get("best_dev_weighted_f1") is not None]
    if not runs:
        return ""
    best_epochs = [r["best_epoch"] for r in runs]
    swings = [abs(b - a) for r in runs for a, b in zip(r["dev_weighted_f1"][3:], r["dev_weighted_f1"][4:], strict=False)]
    transfer = [r["test_weighted_f1"] - r["best_dev_weighted_f1"] for r in winner["runs"]
                if r.get("test_weighted_f1") is not None]
    lines = ["### What limits the model (measured on the confirmation runs)\n",
             f"- Best dev epochs {min(best_epochs)}–{max(best_epochs)} (median {statistics.median(best_epochs):g}) of "
             f"{max(len(r['dev_weighted_f1']) for r in runs)}; from epoch 4 on, dev wF1 moves by "
             f"{statistics.fmean(swings):.3f} on average from one epoch to the next" if swings else "",
             f"- Dev to test: the winner's runs change by {statistics.fmean(transfer):+.4f} wF1 from their best dev "
             f"score to test; the logistic regression by {lr['test_weighted_f1'] - lr['dev_weighted_f1']:+.4f}"
             if transfer else ""]
    trial = c.best_trial
    single = next((e for e in confirmation["configurations"] if trial and trial.trial_id in e["label"]), None)
    if single is not None and single["dev_weighted_f1"]["mean"] is not None:
        lines.append(f"- Selection on a small dev split: the search's best trial scored {trial.best_dev_weighted_f1:.4f} "
                     f"on dev; re-trained with the confirmation seeds it averaged {single['dev_weighted_f1']['mean']:.4f}")
    return "\n".join(line for line in lines if line) + "\n"


def _condition(parameter: Parameter | None) -> str:
    if parameter is None or not parameter.when:
        return ""
    return " (searched only when " + " and ".join(
        f"{k} is {' or '.join(map(str, v))}" for k, v in parameter.when.items()) + ")"


def _names(c: Context) -> list[str]:
    if c.space is not None:
        return c.space.param_names()
    names: list[str] = []
    for trial in c.trials:
        names += [n for n in trial.params if n not in names]
    return names


def _params(trial: TrialRecord, names: list[str]) -> str:
    return ", ".join(f"{n}={fmt_value(trial.params[n])}" for n in names if n in trial.params)


def _relative(path: str) -> str:
    """A recorded path as the report shows it: relative to the repository root where it can be."""
    return portable_path(recorded_path(path)) or path
