"""The report's figures, one function per plot, each written atomically as PNG (matplotlib, Agg
backend).

The functions take plain stored records (the search's Ray trials with their per-epoch curves, a
confirmation's dict), so a report can be rebuilt from results/ without retraining. Optuna's own
views of a study (parallel coordinate, slice, contour, interactive HTML) are in
`tune/reporting/optuna_plots.py`.

`trivial`, where a plot takes it, is ``(name, dev weighted F1)`` of a trivial model, e.g. ``("always
neutral", 0.2523)``: a dashed line, so that a search that never beat it shows at a glance.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from joyful.io import atomic_write
from tune.common import finite, present
from tune.records import Confirmation, Outcome
from tune.space import Parameter

__all__ = [
    "draw_trivial_level",
    "plot_confirmation",
    "plot_curves",
    "plot_history",
    "plot_importance",
    "plot_parameter",
    "pyplot",
    "save_figure",
]

# The trials the dev-F1 plots draw, by status label: marker and legend words.
_DRAWN = (
    (Outcome.COMPLETE.label, "o", "ran its whole budget"),
    (Outcome.EARLY_STOPPED.label, "v", "stopped early"),
)


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """PNG written atomically (temporary file, then rename); no timestamps, so a rebuild gives the
    same bytes."""
    plt = pyplot()
    atomic_write(
        path,
        lambda out: fig.savefig(out, format="png", dpi=110, metadata={"Software": None}),
        binary=True,
    )
    plt.close(fig)


def draw_trivial_level(ax: Any, trivial: tuple[str, float] | None, *, widen: bool = True) -> None:
    """A dashed line at `trivial` = (name, dev weighted F1) with a legend label; with `widen` the
    y-limits widen to hold it with a margin. Without, a level outside the data's range is named in a
    note at the axis edge instead, so the differences between the runs keep the whole height. Call
    it after the data is drawn."""
    if trivial is None:
        return
    name, level = trivial
    if not isinstance(name, str) or not name or not finite(level):
        raise ValueError(
            f"The trivial level is {trivial!r}, but must be (name, finite dev weighted F1), "
            "e.g. ('always neutral', 0.2523)"
        )
    low, high = ax.get_ylim()  # autoscaled to the data drawn so far
    label = f"{name} (dev wF1 {level:.3f})"
    if not widen and not low <= level <= high:
        below = level < low
        ax.text(
            0.01,
            0.02 if below else 0.98,
            f"{label}: {'below' if below else 'above'} this axis",
            transform=ax.transAxes,
            fontsize=7,
            color="tab:red",
            va="bottom" if below else "top",
        )
        return
    low, high = min(low, level), max(high, level)
    margin = 0.06 * (high - low) or 0.01
    ax.axhline(level, color="tab:red", linestyle="--", linewidth=1.2, zorder=2, label=label)
    ax.set_ylim(low - margin, high + margin)


def _legend(ax: Any) -> None:
    ax.legend(fontsize=7, loc="best", framealpha=0.85)


def plot_history(
    trials: list[dict[str, Any]], path: Path, *, trivial: tuple[str, float] | None = None
) -> None:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    best, running = [], -math.inf
    for trial in trials:
        if finite(trial.get("best_dev_weighted_f1")):
            running = max(running, trial["best_dev_weighted_f1"])
        best.append(running if math.isfinite(running) else math.nan)
    for status, marker, label in _DRAWN:
        points = [
            (n, t["best_dev_weighted_f1"])
            for n, t in enumerate(trials)
            if t.get("status") == status and finite(t.get("best_dev_weighted_f1"))
        ]
        if points:
            ax.scatter(*zip(*points, strict=True), marker=marker, label=label, zorder=3)
    ax.step(range(len(trials)), best, where="post", color="black", linewidth=1, label="best so far")
    draw_trivial_level(ax, trivial)
    ax.set_xlabel("trial (in order of start)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("best dev weighted F1")
    ax.set_title("Optimisation history")
    _legend(ax)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_parameter(
    name: str,
    parameter: Parameter | None,
    trials: list[dict[str, Any]],
    best_id: str | None,
    path: Path,
    *,
    trivial: tuple[str, float] | None = None,
) -> None:
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    points = [(t[name], t["best_dev_weighted_f1"], t) for t in trials if present(t.get(name))]
    categorical = (
        parameter.type == "categorical"
        if parameter
        else any(isinstance(v, str) for v, _, _ in points)
    )
    if categorical:
        choices = list(parameter.choices) if parameter else sorted({str(v) for v, _, _ in points})
        jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=len(points))
        xs = [
            choices.index(v) + j if v in choices else math.nan
            for (v, _, _), j in zip(points, jitter, strict=True)
        ]
        ax.set_xticks(range(len(choices)), [str(c) for c in choices])
        ax.set_xlim(-0.5, len(choices) - 0.5)
    else:
        xs = [float(v) for v, _, _ in points]
    for status, marker, label in _DRAWN:
        chosen = [
            (x, y) for x, (_, y, t) in zip(xs, points, strict=True) if t.get("status") == status
        ]
        if chosen:
            ax.scatter(*zip(*chosen, strict=True), marker=marker, label=label, alpha=0.8, zorder=3)
    best = [(x, y) for x, (_, y, t) in zip(xs, points, strict=True) if t["trial_id"] == best_id]
    if best:
        ax.scatter(
            *zip(*best, strict=True),
            marker="*",
            s=220,
            color="gold",
            edgecolor="black",
            label="best trial",
            zorder=4,
        )
    if not categorical and parameter is not None:  # after the points, so a log axis has its limits
        if parameter.log:
            ax.set_xscale("log")
        ax.axvline(parameter.low, color="grey", linestyle=":", linewidth=1)
        ax.axvline(
            parameter.high, color="grey", linestyle=":", linewidth=1, label="range of the space"
        )
    draw_trivial_level(ax, trivial)
    ax.set_xlabel(name + (" (log scale)" if parameter is not None and parameter.log else ""))
    ax.set_ylabel("best dev weighted F1")
    _legend(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def plot_importance(importances: dict[str, float], path: Path) -> None:
    plt = pyplot()
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.5 * len(names)))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (Optuna, normalised to sum 1)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    save_figure(fig, path)


def plot_curves(
    top: list[dict[str, Any]],
    rungs: list[int],
    path: Path,
    *,
    trivial: tuple[str, float] | None = None,
) -> None:
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(7, 4))
    for rung in rungs:
        ax.axvline(rung, color="grey", linestyle=":", linewidth=1)
    stopped_label = "stopped early"
    for trial in top:
        epochs = [p["epoch"] for p in trial["curve"]]
        values = [p["dev_weighted_f1"] for p in trial["curve"]]
        (line,) = ax.plot(
            epochs,
            values,
            marker=".",
            label=f"{trial['trial_id']} ({trial['best_dev_weighted_f1']:.4f})",
        )
        if trial.get("status") == Outcome.EARLY_STOPPED.label and epochs:
            ax.scatter(
                [epochs[-1]],
                [values[-1]],
                marker="X",
                s=90,
                color=line.get_color(),
                edgecolor="black",
                zorder=4,
                label=stopped_label,
            )
            stopped_label = None
    draw_trivial_level(ax, trivial)
    ax.set_xlabel("epoch (dotted: rungs)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("dev weighted F1")
    ax.set_title(f"Learning curves of the top {len(top)} trials")
    _legend(ax)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_confirmation(
    confirmation: Confirmation, path: Path, *, trivial: tuple[str, float] | None = None
) -> None:
    """Left: per-seed best dev F1 with mean and CI95 per configuration. Right: mean dev F1
    curves."""
    import numpy as np

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    configs = confirmation.configurations
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for index, c in enumerate(configs):
        values = [r.best_dev_weighted_f1 for r in c.runs if finite(r.best_dev_weighted_f1)]
        left.scatter([index] * len(values), values, alpha=0.7, zorder=3)
        stats = c.dev_weighted_f1
        if stats.mean is not None:
            low, high = stats.ci95 or (stats.mean, stats.mean)
            left.errorbar(
                [index + 0.15],
                [stats.mean],
                yerr=[[stats.mean - low], [high - stats.mean]],
                fmt="D",
                color="black",
                capsize=4,
            )
        runs = [r.dev_weighted_f1 for r in c.runs if r.dev_weighted_f1]
        if runs:
            length = min(len(r) for r in runs)
            mean = np.mean([r[:length] for r in runs], axis=0)
            right.plot(range(1, length + 1), mean, marker=".", label=c.label)
    labels = [c.label + (" *" if c.label == confirmation.winner else "") for c in configs]
    left.set_xticks(range(len(configs)), labels, rotation=15, fontsize=7)
    left.set_xlim(-0.5, len(configs) - 0.5)
    # The runs differ by hundredths: the trivial level is noted, not drawn, when it would squash
    # them.
    draw_trivial_level(left, trivial, widen=False)
    draw_trivial_level(right, trivial, widen=False)
    left.set_ylabel("dev weighted F1 of each run")
    left.set_title("Runs (dots), mean and CI95 (diamond); * published", fontsize=10)
    if left.get_legend_handles_labels()[0]:
        _legend(left)
    left.grid(alpha=0.3)
    right.set_xlabel("epoch")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_ylabel("dev weighted F1, mean over runs")
    right.set_title("Mean learning curves of the confirmation runs")
    _legend(right)
    right.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
