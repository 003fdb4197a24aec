"""What the publish stage prints: the trials table, the report's path and the lines that say what is
published."""

from __future__ import annotations

import sys
from typing import Any

from joyful.errors import UserError
from joyful.io import display_path
from tune.records import StudyRecord, TrialRecord, outcome_counts, ranked
from tune.records.store import PublishOutcome, ResultStore
from tune.stats.references import majority_warning

__all__ = ["final_lines", "print_summary", "write_report"]


def print_summary(study: StudyRecord, winner: TrialRecord | None, top: int = 10) -> None:
    """The trials table (the `top` best, then a line saying how many are not shown) and the majority
    level."""
    counts = outcome_counts(study.trials)
    print(
        f"\n{study.dataset}: {len(study.trials)} trials - "
        + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items())
    )
    listed = ranked(study.trials) + [t for t in study.trials if not t.eligible]
    cv = study.resampling.kind == "cv"
    ran, score_name = ("folds", "mean over folds") if cv else ("epochs", "best dev wF1")
    print(f"{'trial':<18}{'status':<15}{ran:>7}{score_name:>16}  params")
    for t in listed[:top]:
        score = f"{t.best_dev_weighted_f1:.4f}" if t.best_dev_weighted_f1 is not None else "-"
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(t.params.items())
        )
        mark = " <- best" if winner is not None and t.trial_id == winner.trial_id else ""
        budget = f"{t.folds_run or 0}/{study.resampling.folds}" if cv else str(t.epochs_run)
        print(f"{t.trial_id:<18}{t.status:<15}{budget:>7}{score:>16}  {params}{mark}")
        if t.error:
            print(f"{'':<18}error: {t.error}")
    if len(listed) > top:
        print(
            f"... and {len(listed) - top} more trial(s), ranked lower: every trial is in the "
            "trials table (results/trials/<dataset>.csv) and the report"
        )
    peaks = [t.peak_resident_mb for t in study.trials if t.peak_resident_mb]
    if peaks:
        print(
            f"memory: a trial worker held up to {max(peaks) / 1024:.2f} GB resident (size "
            "--max-concurrent with it)"
        )
    if study.majority:
        print(
            f"always-{study.majority.majority_class} on dev: wF1 "
            f"{study.majority.dev_weighted_f1:.4f}"
        )
    warning = majority_warning(study, winner)
    if warning:
        print(warning)


def write_report(dataset: str, store: ResultStore) -> bool:
    """Rebuild the data set's report; a failure is one line (the results themselves are already
    saved)."""
    from tune.reporting.report import build_report  # matplotlib: only when a report is written

    try:
        path = build_report(dataset, store.results_dir)
    except (UserError, OSError, ValueError, RuntimeError) as exc:
        print(
            f"{dataset}: the report could not be written ({exc}); the results are saved - rebuild "
            "it with "
            f"`python tune/report.py --dataset {dataset} --results-dir {store.results_dir}`",
            file=sys.stderr,
        )
        return False
    print(f"{dataset}: report {display_path(path)}")
    return True


def final_lines(plan: Any, outcome: PublishOutcome) -> None:
    """What the best-config file now publishes (which may be an earlier search's result) and how to
    re-run it; `plan` is the search's SearchPlan."""
    best = plan.store.read_best(plan.dataset)
    if best is None:
        return
    origin = "this search" if best.study.name == plan.name else f"search {best.study.name!r} (kept)"
    what = (
        ", ".join(f"{k}={v}" for k, v in sorted(best.searched.items())) or "the baseline settings"
    )
    print(f"{plan.dataset}: published ({origin}): {what}; dev wF1 {best.value:.4f}")
    if best.ensemble is not None:
        print(
            f"{plan.dataset}: its ensemble of {len(best.ensemble.members)} "
            f"({best.ensemble.members_from}): test wF1 {best.ensemble.test_weighted_f1:.4f}"
        )
    elif best.test is not None:
        print(f"{plan.dataset}: its test wF1 {best.test.weighted_f1:.4f}")
    print(f"re-run it with:\n  {best.rerun_command}")
