"""The publish stage, once for both commands: after a search's trials (tune/search.py) or for a
later confirmation of a finished search (tune/confirm.py).

    study record -> winner -> re-run (search) -> best config -> confirmation -> ensemble ->
    references -> best-config file (kept only if better) -> disk -> Optuna story -> report ->
    tracking -> summary

`publish(plan, record)` runs the whole stage for the search of `plan` (a `tune.plan.SearchPlan`, its
Optuna study open) whose trials `record` holds. Training goes through the same code path as
`train.py` (no Ray) for the re-run, and through Ray for the confirmation. What an interrupted stage
has done is kept: the re-run's result is stored in the Optuna study, the confirmation's finished
runs in its Ray experiment, so `--resume` does neither again. With a time budget the confirmation is
cut to what is left of it.
"""

from __future__ import annotations

import sys

from joyful.config import JoyfulConfig
from tune.plan import SearchPlan
from tune.records import (
    BestConfig,
    Comparison,
    Rerun,
    StudyRecord,
    TestScores,
    TrialRecord,
    choose_winner,
)
from tune.records.building import best_from_search, confirmed, winner_config
from tune.records.disk import tidy_disk
from tune.records.store import PublishOutcome
from tune.reporting.summary import final_lines, print_summary, write_report
from tune.reporting.tables import print_confirmation
from tune.stats.bootstrap import RunSet
from tune.stats.confirmation import ConfigRuns, ConfirmationResult, comparison
from tune.stats.references import judge, published_test
from tune.stats.runs import holm_family

__all__ = ["confirmation_top", "publish", "rerun_winner"]


def publish(plan: SearchPlan, record: StudyRecord) -> int:
    """Run the publish stage (module docstring); returns the command's exit status."""
    store, dataset = plan.store, plan.dataset
    top, left_out = confirmation_top(plan, record)
    if left_out:
        ending = record.ending.replace(confirmation_left_out=left_out) if record.ending else None
        record = record.replace(ending=ending)
        print(f"{dataset}: {left_out}")
    if plan.existing is None:
        store.write_study(record)
        store.write_trials_csv(dataset, [t.csv_row() for t in record.trials])
    winner = choose_winner(record.trials)
    print_summary(record, winner)
    if winner is None:
        print(
            f"{dataset}: no trial finished with a finite score; nothing published", file=sys.stderr
        )
        _tell(plan, record, None, None, None)
        return 1
    best = plan.existing if plan.existing is not None else _offer_from_search(plan, record, winner)
    result, references = None, plan.references.record
    if top > 0:
        # Ray checkpoints and the reference runs: only once confirmation runs.
        from tune.runner.ensemble_files import keep_ensemble
        from tune.runner.references import reference_runs

        result = _confirm(plan, record, top)
        refit = _refit(plan, result)
        best = confirmed(best, result, plan.space, plan.command)
        best = keep_ensemble(best, result, store, refit=refit)
        print_confirmation(best.confirmation)
        ran = reference_runs(plan)
        references = references.replace(runs=ran.records())
        entries = result.entries + ([refit] if refit is not None else [])
        best = best.replace(comparisons=_comparisons(plan, best, result, entries, ran.entries))
    best = best.replace(references=references)
    for line in [c.words() for c in best.comparisons]:
        print(f"{dataset}: {line}")
    verdict = judge(published_test(best), best.references)
    if verdict:
        print(f"{dataset}: {verdict}")
    if plan.existing is None:
        outcome = store.publish_best(dataset, best, overwrite=plan.options.overwrite)
    else:
        outcome = store.update_confirmation(dataset, best)
    print(f"{dataset}: {'wrote' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
    tidy_disk(plan, outcome, confirmed=result is not None)
    _tell(plan, record, winner, best, outcome)
    final_lines(plan, outcome)
    return 0 if outcome.written or plan.existing is None else 1


def confirmation_top(plan: SearchPlan, record: StudyRecord) -> tuple[int, str]:
    """How many configurations beside the baseline confirmation re-trains, and what was left out to
    fit the time budget: --confirm-top, cut (not below 1) until the expected confirmation fits what
    is left of the budget."""
    top = plan.options.confirm_top
    if top <= 0 or plan.time_budget is None or not record.trials:
        return top, ""
    from tune.forecast import Forecast

    if record.ending is None or not record.ending.epoch_seconds:
        return top, ""
    concurrency = (
        record.sampling.concurrency if record.sampling and record.sampling.concurrency else 1
    )
    forecast = Forecast(plan.shape(concurrency), record.ending.epoch_seconds)
    left = plan.budget.time_budget - record.search_seconds - forecast.rerun_seconds()
    fits = top
    while fits > 1 and forecast.confirmation_seconds(plan.confirmation_runs(fits)) > left:
        fits -= 1
    if fits == top:
        return top, ""
    return fits, (
        f"confirmation cut from the top {top} to the top {fits} configuration(s) to fit what is "
        f"left of the time budget ({max(0.0, left) / 60:.0f} min)"
    )


# --- the steps
# -------------------------------------------------------------------------------------------


def _offer_from_search(plan: SearchPlan, record: StudyRecord, winner: TrialRecord) -> BestConfig:
    """The best config a finished search offers: its winner, re-run through the training code path
    unless the search says why not (a re-run done before an interruption is taken from the Optuna
    study)."""
    from tune.study.story import recall_rerun, remember_rerun  # Optuna: only once trials have run

    rerun, test = Rerun(ran=False, reason="--no-rerun was given"), None
    if not plan.options.no_rerun:
        remembered = recall_rerun(plan.study, winner.trial_id)
        if remembered is not None:
            rerun, test = remembered
            print(
                f"re-run of the winner ({winner.trial_id}) done before the interruption: best dev "
                f"wF1 {rerun.best_dev_weighted_f1:.4f} "
                f"({'reproduced exactly' if rerun.reproduced else 'DIFFERS'})"
            )
        else:
            # The same device type as the trials: exact reproduction holds on the same kind of
            # device.
            device = "cuda" if plan.budget.gpus_per_trial > 0 and _cuda() else "cpu"
            rerun, test = rerun_winner(
                winner_config(record, plan.space, winner), winner, device, plan.options.dataset_spec
            )
            remember_rerun(plan.study, winner.trial_id, rerun, test)
    return best_from_search(
        record,
        plan.space,
        winner,
        seed=plan.options.seed,
        experiment_root=plan.experiment_root,
        best_path=plan.store.best_config_path(plan.dataset),
        rerun=rerun,
        test=test,
        data_facts=plan.data.facts(record.base().modalities),
    )


def _refit(plan: SearchPlan, result: ConfirmationResult) -> ConfigRuns | None:
    """The confirmed winner refit on all of train + dev, when the search cross-validated and its
    space publishes refits (`ensemble: refit`); else None (the fold models are published)."""
    if not result.folds or plan.space.ensemble != "refit" or not result.winner.runs:
        return None
    from tune.runner.refit import refit_runs  # Ray: only once confirmation runs

    return refit_runs(plan, result.winner, result.folds)


def _comparisons(
    plan: SearchPlan,
    best: BestConfig,
    result: ConfirmationResult,
    entries: list[ConfigRuns],
    ran: list[ConfigRuns],
) -> list[Comparison]:
    """The headline comparisons with their paired intervals (over dialogues and runs): the published
    model against the logistic regression and the two reference runs on test, then the
    confirmation's (winner against baseline, proposal against baseline); one Holm family. `entries`
    are every confirmed configuration's runs (and the refits)."""
    found = []
    published = _published_predictions(best, result, entries)
    against = [("logistic regression", plan.references.test["logistic regression"])]
    against += [(entry.label, entry.run_set("test")) for entry in ran]
    for label, theirs in against if published is not None else []:
        if theirs is not None:
            found.append(
                comparison(
                    f"published model vs {label}",
                    "published model",
                    label,
                    "test",
                    published,
                    theirs,
                    plan.data.spec.n_classes,
                )
            )
    # One family: the more comparisons a confirmation makes, the more each must show (Holm).
    return holm_family(found + result.comparisons())


def _published_predictions(
    best: BestConfig, result: ConfirmationResult, entries: list[ConfigRuns]
) -> RunSet | None:
    """The published model's test predictions: its ensemble's members (or the winner's runs), each
    a run whose redraw puts the seeds' variance in the interval."""
    if best.ensemble is None:
        return result.winner.run_set("test")
    chosen = {(m.label, m.seed, m.fold) for m in best.ensemble.members}
    runs = [r for e in entries for r in e.runs if (e.label, r.seed, r.fold) in chosen]
    return ConfigRuns("published", result.winner.config, runs).run_set("test")


def _confirm(plan: SearchPlan, record: StudyRecord, top: int) -> ConfirmationResult:
    from tune.runner.confirmation import confirm_search  # Ray: late, as the search's own runner

    print(
        f"confirming the top {top} configuration(s) and the baseline over {plan.confirm_seeds} "
        f"seeds -> {plan.experiment_root}/{plan.confirmation_name}"
    )
    return confirm_search(
        record,
        plan.space,
        plan.data,
        top=top,
        seeds=plan.confirm_seeds,
        cpus_per_trial=plan.budget.cpus_per_trial,
        gpus_per_trial=plan.budget.gpus_per_trial,
        storage_path=plan.experiment_root,
        name=plan.confirmation_name,
        verbose=0 if plan.options.quiet else 1,
    )


def _tell(
    plan: SearchPlan,
    record: StudyRecord,
    winner: TrialRecord | None,
    best: BestConfig | None,
    outcome: PublishOutcome | None,
) -> None:
    """The Optuna study's story, the report and the trackers: what every ending of the stage
    leaves."""
    from joyful.io import portable_path
    from tune.study.outcome import record_story
    from tune.tracking import finish_tracking

    published = (
        None
        if outcome is None
        else {
            "written": outcome.written,
            "reason": outcome.reason,
            "path": portable_path(outcome.path),
        }
    )
    record_story(plan.study, record, best, published)
    write_report(plan.dataset, plan.store)
    artifacts = [plan.store.report_path(plan.dataset)]
    if best is not None:
        artifacts += [
            plan.store.best_config_path(plan.dataset),
            plan.store.figures_dir(plan.dataset),
        ]
    finish_tracking(plan.options.tracking, record, winner, artifacts)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def rerun_winner(
    config: JoyfulConfig, winner: TrialRecord, device: str, dataset_spec: str | None
) -> tuple[Rerun, TestScores]:
    """Re-train the winner through the training code path: (the `rerun` record, its test scores)."""
    from joyful.run import RunOptions, train  # torch: only once trials have run

    print(f"re-training the winner ({winner.trial_id}) through the training code path ...")
    metrics = train(
        config, RunOptions(device=device, dataset_spec=dataset_spec), log=lambda message: None
    )
    # With cross-validation the re-run is the winner's first fold: its dev score at the chosen
    # epoch.
    expected = (
        winner.fold_scores[0]
        if config.cv_folds and winner.fold_scores
        else winner.best_dev_weighted_f1
    )
    reproduced = metrics["best_dev_weighted_f1"] == expected
    test = TestScores(
        weighted_f1=metrics["test"]["weighted_f1"], accuracy=metrics["test"]["accuracy"]
    )
    what = f"fold 1 of {config.cv_folds}" if config.cv_folds else "the dev split"
    print(
        f"re-run ({what}): dev wF1 {metrics['best_dev_weighted_f1']:.4f} (the trial's on {what}: "
        f"{expected:.4f}, {'reproduced exactly' if reproduced else 'DIFFERS'}); test wF1 "
        f"{test.weighted_f1:.4f}"
    )
    return (
        Rerun(
            ran=True,
            best_dev_weighted_f1=metrics["best_dev_weighted_f1"],
            best_epoch=metrics["best_epoch"],
            reproduced=reproduced,
            device=metrics["device"],
            precision=metrics["precision"]["used"],
            wall_seconds=round(metrics["wall_seconds"], 1),
        ),
        test,
    )
