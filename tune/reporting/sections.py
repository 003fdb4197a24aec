"""The search's sections of the report: summary, optimisation history, each parameter, importance,
Optuna's views of the study, learning curves, and the link to the interactive page."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tune.common import fmt_value, present, slug
from tune.records import Outcome
from tune.records.store import ResultStore
from tune.reporting.context import (
    CONTOUR_PARAMS,
    MIN_SURFACE_TRIALS,
    TOP_CURVES,
    Context,
    param_names,
    trial_row,
)
from tune.reporting.optuna_plots import (
    plot_contour,
    plot_parallel_coordinate,
    plot_slices,
    write_interactive_html,
)
from tune.reporting.plots import plot_curves, plot_history, plot_importance, plot_parameter
from tune.space import Parameter, rungs

if TYPE_CHECKING:
    import optuna

__all__ = [
    "curves",
    "history",
    "importance",
    "interactive",
    "optuna_views",
    "parameters",
]


def history(c: Context) -> str:
    if not c.trials:
        return ""
    plot_history(c.rows, c.figures_dir / "history.png", trivial=c.trivial)
    return "## Optimisation history\n\n" + c.figure("history.png", "optimisation history") + "\n"


def parameters(c: Context) -> str:
    names = param_names(c)
    if not names or not c.ranked:
        return ""
    section = ["## Dev F1 against each searched parameter\n"]
    if c.space_note:
        section.append(f"Note: {c.space_note}.\n")
    by_name = {p.name: p for p in c.space.parameters} if c.space else {}
    best = c.best_trial
    rows = [trial_row(t) for t in c.ranked]
    for name in names:
        parameter = by_name.get(name)
        section.append(f"### `{name}`\n")
        if not any(name in t.params for t in c.ranked):
            section.append(f"No finished trial used it{_condition(parameter)}.\n")
            continue
        file = f"param_{slug(name)}.png"
        plot_parameter(
            name, parameter, rows, best.trial_id, c.figures_dir / file, trivial=c.trivial
        )
        value = best.params.get(name)
        if parameter is not None and present(value) and parameter.at_edge(value):
            section.append(
                f"**Warning:** the best trial's {name} = {fmt_value(value)} lies at the edge of "
                "the searched "
                f"range [{fmt_value(parameter.low)}, {fmt_value(parameter.high)}]; the optimum may "
                "lie outside it — widen the range and search again.\n"
            )
        section.append(c.figure(file, f"dev F1 against {name}") + "\n")
    return "\n".join(section)


def importance(c: Context, importances: dict[str, float], reason: str) -> str:
    if not importances:
        return f"## Parameter importance\n\nNot computed: {reason}.\n"
    plot_importance(importances, c.figures_dir / "importance.png")
    table = "\n".join(
        f"| {k} | {v:.3f} | {_confirmed_effect(c, k)} |" for k, v in importances.items()
    )
    completed = sum(t.outcome == Outcome.COMPLETE for t in c.trials)
    return (
        "## Parameter importance\n\nOptuna's `get_param_importances` (PED-ANOVA, as "
        "optuna-dashboard "
        f"computes it) over the {completed} trials that ran all epochs; few trials make it a rough "
        "guide only. Beside it, what the confirmation measured on test (fresh folds and seeds, "
        "Holm-adjusted) for the comparisons whose two configurations differ in that parameter: a "
        "high importance beside a tie is the search's ranking not holding up.\n\n"
        f"| parameter | importance | confirmed effect on test |\n|---|---:|---|\n{table}\n\n"
        + c.figure("importance.png", "parameter importance")
        + "\n"
    )


def _confirmed_effect(c: Context, name: str) -> str:
    """The test comparisons of the confirmation whose configurations differ in parameter `name`."""
    recorded = c.best.confirmation if c.best is not None else None
    if recorded is None:
        return "not confirmed"
    found = []
    for comparison in c.best.comparisons:
        entry = recorded.entry(comparison.first)
        other = recorded.entry(comparison.second)
        if comparison.split != "test" or entry is None or other is None:
            continue
        if entry.config.get(name) != other.config.get(name):
            found.append(
                f"{comparison.name}: {comparison.estimate:+.4f} [{comparison.ci95[0]:+.4f}, "
                f"{comparison.ci95[1]:+.4f}], {comparison.verdict}"
            )
    return "; ".join(found) or "no confirmed pair differs in it"


def optuna_views(c: Context, importances: dict[str, float]) -> str:
    """Optuna's own views of the study: parallel coordinates, slices, and contours of the most
    important pairs."""
    if c.optuna_study is None:
        return f"## Parameters together\n\nNot drawn: {c.optuna_note}.\n"
    section = [
        "## Parameters together\n",
        "Optuna's matplotlib views of the study; they show the trials that ran all epochs "
        "(COMPLETE) with "
        "their best dev score. ASHA-stopped trials are in the history and parameter plots above.\n",
    ]
    drawn = False
    if plot_parallel_coordinate(c.optuna_study, c.figures_dir / "parallel_coordinate.png"):
        section.append(c.figure("parallel_coordinate.png", "parallel coordinates") + "\n")
        drawn = True
    if plot_slices(c.optuna_study, c.figures_dir / "slices.png"):
        section.append(c.figure("slices.png", "slice plots") + "\n")
        drawn = True
    # Contours interpolate between trials: only numeric axes (a categorical or true/false one has no
    # values in between); those are in the slices and the per-parameter plots.
    numeric = [n for n in importances if _numeric(c.optuna_study, n)][:CONTOUR_PARAMS]
    complete = sum(t.state.name == "COMPLETE" for t in c.optuna_study.get_trials(deepcopy=False))
    if complete < MIN_SURFACE_TRIALS:
        section.append(
            f"Contours not drawn: {complete} trial(s) ran all epochs; a contour needs at least "
            f"{MIN_SURFACE_TRIALS}, or it draws noise as structure.\n"
        )
    elif len(numeric) >= 2 and plot_contour(c.optuna_study, c.figures_dir / "contour.png", numeric):
        section.append(
            f"Contours of the {len(numeric)} most important numeric parameters "
            f"({', '.join(numeric)}), from {complete} trials that ran all epochs:\n"
        )
        section.append(c.figure("contour.png", "contour plots") + "\n")
        drawn = True
    else:
        section.append(
            "Contours not drawn: fewer than 2 numeric parameters vary among the trials that ran "
            "all epochs.\n"
        )
    if not drawn:
        section.append("Not drawn: fewer than 2 trials ran all epochs.\n")
    return "\n".join(section)


def _numeric(study: optuna.Study, name: str) -> bool:
    """Whether `name` is a float or int parameter of the study (not a categorical, even of
    numbers)."""
    import optuna

    return any(
        isinstance(
            t.distributions.get(name),
            (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution),
        )
        for t in study.get_trials(deepcopy=False)
    )


def interactive(c: Context, store: ResultStore, html: bool) -> str:
    path = store.interactive_report_path(c.dataset)
    if html and c.optuna_study is not None:
        write_interactive_html(c.optuna_study, path)
    if path.is_file():
        return f"Interactive version (plotly, self-contained): [{path.name}]({path.name})\n"
    return ""


def curves(c: Context) -> str:
    top = [t for t in c.ranked if t.curve][:TOP_CURVES]
    if not top:
        return ""
    budget = c.study.budget
    if c.study.resampling.kind == "cv":
        plot_curves(
            [trial_row(t) for t in top], [], c.figures_dir / "curves.png", trivial=c.trivial
        )
        return (
            f"## Learning curves of the top {len(top)} trials\n\nEach curve is a trial's dev wF1 "
            "per epoch, "
            "averaged over the folds it ran; its score is the curve's highest point. The dashed "
            "line is always predicting the majority class of train + dev.\n\n"
            + c.figure("curves.png", "learning curves")
            + "\n"
        )
    epochs = rungs(budget.grace_period, budget.reduction_factor, budget.max_epochs)
    plot_curves(
        [trial_row(t) for t in top], epochs, c.figures_dir / "curves.png", trivial=c.trivial
    )
    return (
        f"## Learning curves of the top {len(top)} trials\n\nDotted lines: the rungs (epochs "
        f"{', '.join(map(str, epochs)) or 'none'}); a cross marks where a trial was stopped; the "
        "dashed line is always predicting the dev majority class.\n\n"
        + c.figure("curves.png", "learning curves")
        + "\n"
    )


def _condition(parameter: Parameter | None) -> str:
    if parameter is None or not parameter.when:
        return ""
    return (
        " (searched only when "
        + " and ".join(f"{k} is {' or '.join(map(str, v))}" for k, v in parameter.when.items())
        + ")"
    )
