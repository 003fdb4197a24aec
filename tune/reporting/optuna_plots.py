"""Optuna's own views of a search's study, for the report: parallel coordinate, slices, contours
(matplotlib, PNG, written atomically) and an optional self-contained interactive HTML page (plotly).

As Optuna does, they draw only the study's COMPLETE trials (those that ran all epochs, valued at
their best dev score); their titles say how many trials that leaves out. ASHA-stopped trials are in
the report's history and parameter plots (`tune/reporting/plots.py`).
"""

from __future__ import annotations

import contextlib
import html
import math
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joyful.errors import UserError
from joyful.io import atomic_write
from tune.common import finite
from tune.reporting.plots import pyplot, save_figure

if TYPE_CHECKING:
    import optuna

__all__ = ["plot_contour", "plot_parallel_coordinate", "plot_slices", "write_interactive_html"]

TARGET = "best dev weighted F1"  # a COMPLETE Optuna trial's value (tune/runner/searcher.py)


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials Optuna's plots draw: COMPLETE (ran all epochs) with a finite value."""
    from optuna.trial import TrialState

    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if finite(t.value)
    ]


def _shown(study: optuna.Study) -> str:
    """Which trials a plot shows and which it leaves out, e.g. "7 COMPLETE trials (ran all epochs);
    not shown: 1 FAIL, 4 PRUNED (stopped early)"."""
    shown = len(_complete(study))
    left_out = Counter(t.state.name for t in study.get_trials(deepcopy=False)) - Counter(
        COMPLETE=shown
    )
    names = {"PRUNED": "PRUNED (stopped early)", "COMPLETE": "COMPLETE with a non-finite score"}
    note = f"{shown} COMPLETE trial{'' if shown == 1 else 's'} (ran all epochs)"
    return note + (
        "; not shown: " + ", ".join(f"{n} {names.get(s, s)}" for s, n in sorted(left_out.items()))
        if left_out
        else ""
    )


def _params(study: optuna.Study, params: list[str] | None) -> list[str]:
    """`params` (all, when None) that some COMPLETE trial holds, sorted: one only PRUNED or FAIL
    trials hold is left out; a name no trial holds is an error."""
    known = {name for t in study.get_trials(deepcopy=False) for name in t.params}
    unknown = sorted(set(params or ()) - known)
    if unknown:
        raise ValueError(
            f"No trial of the study has the parameter(s) {unknown}; known: {sorted(known)}"
        )
    drawn = {name for t in _complete(study) for name in t.params}
    return sorted(drawn if params is None else drawn & set(params))


@contextlib.contextmanager
def _optuna_figure() -> Iterator[Any]:
    """pyplot for one of Optuna's matplotlib plots: its ExperimentalWarning silenced and its global
    style (ggplot, set by `plt.style.use`) undone on exit, so that the report's other figures keep
    theirs."""
    import matplotlib
    from optuna.exceptions import ExperimentalWarning

    plt = pyplot()
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore", ExperimentalWarning)
        # A parameter with one value among the drawn trials gets a zero-width axis; matplotlib
        # widens it itself.
        warnings.filterwarnings(
            "ignore", message="Attempting to set identical", category=UserWarning
        )
        yield plt


def _shrink_ticks(ax: Any, rotation: float = 0) -> None:
    ax.tick_params(labelsize=7)
    if rotation:
        for label in ax.get_xticklabels():
            label.set(rotation=rotation, horizontalalignment="right")


def plot_parallel_coordinate(
    study: optuna.Study, path: Path, params: list[str] | None = None
) -> bool:
    """One line per COMPLETE trial across the parameters (a conditional one it lacks sits at
    "None"), coloured by its score. False, and nothing written, with fewer than 2 COMPLETE trials.
    """
    names = _params(study, params)
    if len(_complete(study)) < 2 or not names:
        return False
    from optuna.visualization.matplotlib import plot_parallel_coordinate as optuna_plot

    with _optuna_figure():
        ax = optuna_plot(study, params=names, target_name=TARGET)
        fig = ax.figure
        # Optuna colours by "Blues", whose low end is white: the worst trial's line vanished. The
        # same scale without its lightest third keeps every line visible; the colour bar follows the
        # lines.
        import numpy as np
        from matplotlib.collections import LineCollection
        from matplotlib.colors import ListedColormap

        for collection in ax.collections:
            if isinstance(collection, LineCollection):
                base = collection.get_cmap()
                span = (
                    (0.0, 0.65) if base.name.endswith("_r") else (0.35, 1.0)
                )  # "Blues_r": white at the top
                collection.set_cmap(
                    ListedColormap(base(np.linspace(*span, 256)), name=f"{base.name}_visible")
                )
                collection.set_linewidth(1.6)
        fig.set_size_inches(max(7.0, 1.25 * (len(names) + 1) + 2), 5)
        for axis in fig.axes:
            axis.tick_params(labelsize=7)
        for label in ax.get_xticklabels():
            label.set(rotation=25, horizontalalignment="right", fontsize=8)
        ax.set_title(f"Parallel coordinates\n{_shown(study)}", fontsize=9, y=1.03)
        fig.subplots_adjust(left=0.12, right=0.88, bottom=0.22, top=0.88)
        save_figure(fig, path)
    return True


def plot_slices(study: optuna.Study, path: Path, params: list[str] | None = None) -> bool:
    """Score against each parameter, one panel per parameter in a grid of up to 4 columns; COMPLETE
    trials only, coloured by trial number. False, and nothing written, with fewer than 2 COMPLETE
    trials."""
    names = _params(study, params)
    if len(_complete(study)) < 2 or not names:
        return False
    from optuna.visualization.matplotlib import plot_slice

    with _optuna_figure():
        result = plot_slice(study, params=names, target_name=TARGET)
        axes = list(getattr(result, "flat", [result]))
        fig = axes[0].figure
        colorbar = next(a for a in fig.axes if a not in axes)
        # Optuna lays the panels out in one row; ten of them are unreadable, so re-place them in a
        # grid.
        columns = min(len(axes), 4)
        rows = math.ceil(len(axes) / columns)
        cell_w, cell_h, gap_w, gap_h, left, right, top, bottom = (
            2.8,
            2.3,
            0.35,
            0.95,
            0.9,
            1.0,
            0.8,
            0.25,
        )
        cell_w = {1: 4.6, 2: 3.4}.get(columns, cell_w)  # room for the title
        width = left + columns * cell_w + (columns - 1) * gap_w + right
        height = top + rows * (cell_h + gap_h) + bottom
        fig.set_size_inches(width, height)
        for index, ax in enumerate(axes):
            row, column = divmod(index, columns)
            x0 = left + column * (cell_w + gap_w)
            y0 = height - top - (row + 1) * cell_h - row * gap_h
            ax.set_position([x0 / width, y0 / height, cell_w / width, cell_h / height])
            ax.set_title("")  # Optuna's "Slice Plot" on a single panel; the figure has the title
            ax.tick_params(labelleft=column == 0)
            ax.set_ylabel(TARGET if column == 0 else "", fontsize=8)
            ax.set_xlabel(ax.get_xlabel(), fontsize=8)
            _shrink_ticks(ax, rotation=20)
        colorbar.set_position(
            [
                (width - right + 0.25) / width,
                (height - top - rows * cell_h - (rows - 1) * gap_h) / height,
                0.15 / width,
                (rows * cell_h + (rows - 1) * gap_h) / height,
            ]
        )
        colorbar.set_box_aspect(None)  # fill the height given, not Optuna's 20:1 bar
        colorbar.tick_params(labelsize=7)
        colorbar.set_ylabel("trial number", fontsize=8)
        fig.suptitle(f"Slice plot\n{_shown(study)}", fontsize=9, y=1 - 0.2 / height)
        save_figure(fig, path)
    return True


def plot_contour(study: optuna.Study, path: Path, params: list[str]) -> bool:
    """Interpolated score over pairs of `params` (pass 2-3: more make an unreadable grid), COMPLETE
    trials as dots. Parameters with a single value are left out; False, and nothing written, when
    fewer than 2 remain, no pair of them shares 2 COMPLETE trials, or every COMPLETE trial has the
    same score (no contour)."""
    names = _params(study, params)
    complete = _complete(study)
    names = [n for n in names if len({repr(t.params[n]) for t in complete if n in t.params}) > 1]
    shared = [
        sum(a in t.params and b in t.params for t in complete)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    if len({t.value for t in complete}) < 2 or not shared or max(shared) < 2:
        return False
    import matplotlib
    from optuna.visualization.matplotlib import plot_contour as optuna_plot

    with _optuna_figure():
        matplotlib.rcParams["figure.figsize"] = (
            (7.5, 6) if len(names) == 2 else (2.6 * len(names) + 1.6, 2.6 * len(names) + 0.6)
        )
        result = optuna_plot(study, params=names, target_name=TARGET)
        axes = list(getattr(result, "flat", [result]))
        fig = axes[0].figure
        for ax in fig.axes:  # the colorbar too
            _shrink_ticks(ax, rotation=20 if ax in axes else 0)
            ax.xaxis.label.set_size(8)
            ax.yaxis.label.set_size(8)
        title = f"Contour plot\n{_shown(study)}"
        if len(names) == 2:
            axes[0].set_title(title, fontsize=9)
        else:  # Optuna leaves the diagonal blank; name its parameter there, as a pair plot does
            fig.suptitle(title, fontsize=9)
            for name, ax in zip(names, axes[:: len(names) + 1], strict=True):
                ax.text(
                    0.5, 0.5, name, transform=ax.transAxes, ha="center", va="center", fontsize=9
                )
        save_figure(fig, path)
    return True


def write_interactive_html(
    study: optuna.Study, path: Path, params: list[str] | None = None
) -> Path:
    """One self-contained HTML page (plotly.js inlined once, works offline) with Optuna's
    interactive optimisation history, parallel coordinate, slice and (when PED-ANOVA can compute
    them) parameter importances, of the COMPLETE trials. Needs plotly; written atomically. Returns
    `path`."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        raise UserError(
            "The interactive report needs plotly: pip install plotly (or pip install -e "
            '".[dashboard]")'
        ) from None
    import optuna
    import optuna.visualization as vis
    from plotly.offline import get_plotlyjs

    names, complete, shown = _params(study, params), _complete(study), _shown(study)
    sections: list[tuple[str, str, Any]] = []  # (id, heading, figure or a note)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # PED-ANOVA warns whenever a target is passed; the target here is negated for a maximised
        # metric on purpose.
        warnings.filterwarnings(
            "ignore", message="PedAnovaImportanceEvaluator computes the importances"
        )
        if complete:
            sections.append(
                (
                    "history",
                    "Optimisation history",
                    vis.plot_optimization_history(study, target_name=TARGET),
                )
            )
        if len(complete) >= 2 and names:
            sections.append(
                (
                    "parallel",
                    "Parallel coordinates",
                    vis.plot_parallel_coordinate(study, params=names, target_name=TARGET),
                )
            )
            sections.append(
                ("slice", "Slice plot", vis.plot_slice(study, params=names, target_name=TARGET))
            )
            if len({t.value for t in complete}) < 2:
                sections.append(
                    (
                        "importance",
                        "Parameter importance",
                        "Not computed: every COMPLETE trial has the same score.",
                    )
                )
            else:
                try:
                    # The evaluator and target of optuna-dashboard and the Markdown report: one
                    # ranking everywhere.
                    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
                    figure = vis.plot_param_importances(
                        study,
                        evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                        target=(lambda trial: -trial.value)
                        if maximise
                        else (lambda trial: trial.value),
                        target_name="importance for the best dev weighted F1",
                    )
                except (ValueError, RuntimeError) as exc:
                    figure = f"Not computed: Optuna could not ({exc})."
                sections.append(("importance", "Parameter importance (PED-ANOVA)", figure))
    body = [
        f"<h1>Study {html.escape(study.study_name)}</h1>",
        f"<p>Shown: {html.escape(shown)}.</p>",
    ]
    if len(complete) < 2:
        body.append(
            "<p>Nothing to plot: no trial ran all epochs.</p>"
            if not complete
            else "<p>Parallel coordinates, slices and importances need at least 2 trials that ran "
            "all epochs.</p>"
        )
    for key, heading, figure in sections:
        body.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(figure, str):
            body.append(f"<p>{html.escape(figure)}</p>")
        else:
            figure.update_layout(title=f"{heading}: {shown}")
            body.append(
                figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"figure-{key}")
            )
    page = (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>Study {html.escape(study.study_name)}</title>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>\n<body>\n'
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
    return atomic_write(path, lambda out: out.write(page.encode("utf-8")), binary=True)
