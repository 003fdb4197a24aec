"""The report of a search (results/reports/<dataset>.md + PNGs), rebuilt from stored results.

It reads the study record (`StudyRecord`), the search's Optuna study from its storage (states,
values, distributions: importance, parallel coordinates, slices, contours) and, when present, the
best config (confirmation, references, expected effects), and writes results/reports/<dataset>.md
and PNG plots in results/reports/<dataset>/, atomically. Nothing is retrained and no server is
needed: the Markdown links the PNGs by relative path. Plots of dev wF1 draw the level of always
predicting the dev split's majority class. The command is `tune/report.py`; the sections are in
`sections` (the search) and `confirmation` (confirmation, references, effects).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import atomic_write
from tune.records import StudyRecord, ranked
from tune.records.store import ResultStore
from tune.reporting import overview, sections
from tune.reporting.confirmation import confirmation
from tune.reporting.context import MIN_SURFACE_TRIALS, Context, relative
from tune.space import SearchSpace, load_space
from tune.study.storage import load_study

if TYPE_CHECKING:
    import optuna

__all__ = ["build_report", "parameter_importance"]


# --- reading ------------------------------------------------------------------------------


def _space(study: StudyRecord, dataset: str) -> tuple[SearchSpace | None, str]:
    """The search space the study recorded, and a note when it cannot be read."""
    try:
        return load_space(study.space_file, dataset), ""
    except UserError as exc:
        return (
            None,
            f"the search-space file could not be read ({exc}); parameters are taken from the "
            "trials",
        )


def _optuna_study(study: StudyRecord, store: ResultStore) -> tuple[optuna.Study | None, str]:
    """The search's Optuna study, read back from its journal with `optuna.load_study`."""

    try:
        return load_study(store.journal_of(study), study.optuna_study), ""
    except UserError as exc:
        return None, str(exc)


# --- importance ------------------------------------------------------------------------------


def parameter_importance(study: optuna.Study | None) -> tuple[dict[str, float], str]:
    """(importances, "") from the study's completed trials, or ({}, the reason they cannot be
    computed).

    Optuna's `get_param_importances` with the evaluator optuna-dashboard uses (PED-ANOVA, which
    looks for what the best trials share; the target is negated for a maximised metric, as the
    dashboard does), so the report and the dashboard show one ranking. ASHA-stopped (pruned) trials
    have no final score and do not count.
    """
    import optuna

    if study is None:
        return {}, "the search's Optuna study is not available"
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_SURFACE_TRIALS:
        return {}, (
            f"{len(complete)} trial(s) completed all epochs; importance needs at least "
            f"{MIN_SURFACE_TRIALS} "
            "(ASHA-stopped trials have no final score, and from fewer the fitted model shows noise)"
        )
    if len({repr(sorted(t.params.items())) for t in complete}) < 2:
        return {}, "the completed trials all share the same parameter values"
    if len({t.value for t in complete}) < 2:
        return {}, (
            f"all {len(complete)} completed trials have the same score ({complete[0].value:.4f}); "
            "there is no difference to attribute to a parameter"
        )
    try:
        with (
            warnings.catch_warnings()
        ):  # few trials make Optuna warn on every call; the report states the count
            warnings.simplefilter("ignore")
            maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
            importances = optuna.importance.get_param_importances(
                study,
                evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=(lambda trial: -trial.value) if maximise else (lambda trial: trial.value),
            )
    except (ValueError, RuntimeError) as exc:
        return {}, f"Optuna could not compute it ({exc})"
    if not importances:
        return {}, "no parameter is shared by the completed trials"
    # Largest first; ties (often several 0.000) by name, so the table's order is stable too.
    return {k: float(v) for k, v in sorted(importances.items(), key=lambda kv: (-kv[1], kv[0]))}, ""


def build_report(dataset: str, results_dir: str | Path, *, html: bool = False) -> Path:
    """Write results/reports/<dataset>.md and its PNGs (and, with `html`, the interactive HTML)."""

    check_dataset_name(dataset)
    results_dir = Path(results_dir)
    store = ResultStore(results_dir)
    study = store.read_study(dataset)
    # This search's own result (its confirmation, its ensemble), whether or not the best-config file
    # kept it, and what the file publishes now (an earlier search's result when this one did not
    # beat it).
    published = store.read_best(dataset)
    offered = store.offered(dataset, study.name)
    best = (
        offered[0]
        if offered
        else (published if published and published.study.name == study.name else None)
    )
    decision = (offered[1], offered[2]) if offered else None
    optuna_study, optuna_note = _optuna_study(study, store)
    space, space_note = _space(study, dataset)
    context = Context(
        dataset,
        study,
        optuna_study,
        optuna_note,
        best,
        store.figures_dir(dataset),
        space,
        space_note,
        study.in_start_order(),
        ranked(study.trials),
        published=published,
        decision=decision,
        best_path=relative(str(store.best_config_path(dataset))),
    )
    importances, reason = parameter_importance(optuna_study)
    parts = [
        overview.summary(context),
        sections.history(context),
        sections.parameters(context),
        sections.importance(context, importances, reason),
        sections.optuna_views(context, importances),
        sections.curves(context),
        confirmation(context),
        sections.interactive(context, store, html),
        f"---\nRebuild with `python tune/report.py --dataset {dataset} --results-dir "
        f"{relative(str(results_dir))}` (no training).\n",
    ]
    if context.figures_dir.is_dir():
        for stale in context.figures_dir.glob("*.png"):
            if stale.name not in context.figures:
                stale.unlink()
    path = store.report_path(dataset)
    atomic_write(path, lambda out: out.write("\n".join(part for part in parts if part)))
    return path
