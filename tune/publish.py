"""The publish stage, once for both commands: after a search's trials (tune/search.py) or for a later
confirmation of a finished search (tune/confirm.py).

    study record -> winner -> re-run (search) -> best config -> confirmation -> ensemble -> references
    -> best-config file (kept only if better) -> disk -> Optuna story -> report -> tracking -> summary

`publish(job)` runs the whole stage; every step it takes is a function here or in the module it names.
Training goes through the same code path as `train.py` (no Ray) for the re-run, and through Ray for the
confirmation. What an interrupted stage has done is kept: the re-run's result is stored in the Optuna study,
the confirmation's finished runs in its Ray experiment, so `--resume` does neither again.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig, config_document
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import REPO, atomic_write_json, display_path, portable_path
from joyful.metrics import weighted_f1
from tune.common import utc_now
from tune.records import (
    BEST_CONFIG_SCHEMA_VERSION,
    BestConfig,
    Comparison,
    DataRef,
    Ensemble,
    EnsembleMember,
    EnsembleOption,
    EnsembleScores,
    Metric,
    Rerun,
    Resources,
    Scheduler,
    Searcher,
    SingleRunScores,
    SingleTrialBest,
    StudyInfo,
    StudyRecord,
    TestScores,
    TrialCounts,
    TrialRecord,
    Versions,
    choose_winner,
    outcome_counts,
    ranked,
)
from tune.records.store import PublishOutcome, ResultStore
from tune.reporting.tables import print_confirmation
from tune.space import SearchSpace
from tune.stats.bootstrap import Predictions
from tune.stats.confirmation import ConfigRuns, ConfirmationResult, comparison, ensemble_scores
from tune.stats.references import ReferenceModels, judge, majority_warning, published_test, reference_models
from tune.tracking import Tracking

__all__ = ["PublishJob", "best_from_search", "confirmed", "keep_ensemble", "print_summary", "publish",
           "rerun_winner", "versions", "winner_config", "write_report"]


@dataclass
class PublishJob:
    """Everything the publish stage needs.

    `existing` is None after a search (the stage re-runs the winner and offers a new best config) and the
    search's published best config for tune/confirm.py (the stage adds a confirmation to it). `experiment_root`
    is the search's Ray storage folder (`<storage>/<search name>`); its confirmation runs in
    `<experiment_root>/<confirmation_name>`.
    """

    study: StudyRecord
    space: SearchSpace
    data: DialogueData
    store: ResultStore
    experiment_root: str
    cpus_per_trial: float
    gpus_per_trial: float
    searcher_seed: int = 0
    rerun: bool = True
    rerun_skipped: str = ""  # why the winner is not re-run (rerun False)
    confirm_top: int = 0
    confirm_seeds: int = 3
    confirmation_name: str = ""
    overwrite: bool = False
    quiet: bool = False
    dataset_spec: str | None = None
    tracking: Tracking | None = None
    command: str | None = None  # tune/confirm.py's command line, recorded with its confirmation
    existing: BestConfig | None = None
    references: ReferenceModels | None = None  # fitted by the plan; fitted here when None

    @property
    def dataset(self) -> str:
        return self.study.dataset


def publish(job: PublishJob) -> int:
    """Run the publish stage (module docstring); returns the command's exit status."""
    study, store = job.study, job.store
    if job.existing is None:
        store.write_study(study)
        store.write_trials_csv(job.dataset, [t.csv_row() for t in study.trials])
    winner = choose_winner(study.trials)
    print_summary(study, winner)
    if winner is None:
        print(f"{job.dataset}: no trial finished with a finite score; nothing published", file=sys.stderr)
        _tell(job, None, None, None)
        return 1
    best = job.existing if job.existing is not None else _offer_from_search(job, winner)
    result = None
    if job.confirm_top > 0:
        result = _confirm(job)
        best = keep_ensemble(confirmed(best, result, job.space, job.command), result, store)
        print_confirmation(best.confirmation)
    references = job.references or reference_models(job.data, job.study.base().modalities)
    best = best.replace(references=references.record,
                        comparisons=_comparisons(job, best, result, references) if result is not None else [])
    for line in [c.words() for c in best.comparisons]:
        print(f"{job.dataset}: {line}")
    verdict = judge(published_test(best), best.references)
    if verdict:
        print(f"{job.dataset}: {verdict}")
    if job.existing is None:
        outcome = store.publish_best(job.dataset, best, overwrite=job.overwrite)
    else:
        outcome = store.update_confirmation(job.dataset, best)
    print(f"{job.dataset}: {'wrote' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
    _tidy_disk(job, outcome, result)
    _tell(job, winner, best, outcome)
    _final_lines(job, outcome)
    return 0 if outcome.written or job.existing is None else 1


# --- the steps -------------------------------------------------------------------------------------------


def _offer_from_search(job: PublishJob, winner: TrialRecord) -> BestConfig:
    """The best config a finished search offers: its winner, re-run through the training code path unless the
    search says why not (a re-run done before an interruption is taken from the Optuna study)."""
    rerun, test = Rerun(ran=False, reason=job.rerun_skipped or "not asked for"), None
    if job.rerun:
        from tune.study.story import recall_rerun, remember_rerun  # Optuna: only once trials have run

        journal = job.store.journal_of(job.study)
        remembered = recall_rerun(journal, job.study.name, winner.trial_id)
        if remembered is not None:
            rerun, test = remembered
            print(f"re-run of the winner ({winner.trial_id}) done before the interruption: best dev wF1 "
                  f"{rerun.best_dev_weighted_f1:.4f} ({'reproduced exactly' if rerun.reproduced else 'DIFFERS'})")
        else:
            # The same device type as the trials: exact reproduction holds on the same kind of device.
            device = "cuda" if job.gpus_per_trial > 0 and _cuda() else "cpu"
            rerun, test = rerun_winner(winner_config(job.study, job.space, winner), winner, device, job.dataset_spec)
            remember_rerun(journal, job.study.name, winner.trial_id, rerun, test)
    return best_from_search(job.study, job.space, winner, seed=job.searcher_seed, experiment_root=job.experiment_root,
                            best_path=job.store.best_config_path(job.dataset), rerun=rerun, test=test,
                            data_facts=job.data.facts(job.study.base().modalities))


def _comparisons(job: PublishJob, best: BestConfig, result: ConfirmationResult,
                 references: ReferenceModels) -> list[Comparison]:
    """The headline comparisons with their paired intervals: the published model against the logistic regression
    on test, then the confirmation's (winner against baseline and defaults, proposal against baseline)."""
    found = []
    published = _published_predictions(best, result)
    if published is not None:
        found.append(comparison("published model vs logistic regression", "published model", "logistic regression",
                                "test", published, references.test["logistic regression"], job.data.spec.n_classes))
    return found + result.comparisons()


def _published_predictions(best: BestConfig, result: ConfirmationResult) -> Predictions | None:
    """The published model's test predictions: its ensemble's members' mean probabilities, else its runs'."""
    if best.ensemble is None:
        return result.winner.predictions("test")
    chosen = {(m.label, m.seed, m.fold) for m in best.ensemble.members}
    runs = [r for e in result.entries for r in e.runs if (e.label, r.seed, r.fold) in chosen]
    return ConfigRuns("published", result.winner.config, runs).predictions("test")


def _confirm(job: PublishJob) -> ConfirmationResult:
    from tune.runner.confirmation import confirm_search  # Ray: late, as the search's own runner

    print(f"confirming the top {job.confirm_top} configuration(s) and the baseline over {job.confirm_seeds} seeds "
          f"-> {job.experiment_root.rstrip('/')}/{job.confirmation_name}")
    return confirm_search(job.study, job.space, job.data, top=job.confirm_top, seeds=job.confirm_seeds,
                          cpus_per_trial=job.cpus_per_trial, gpus_per_trial=job.gpus_per_trial,
                          storage_path=job.experiment_root, name=job.confirmation_name,
                          verbose=0 if job.quiet else 1)


def _tidy_disk(job: PublishJob, outcome: PublishOutcome, result: ConfirmationResult | None) -> None:
    """Keep what resume and re-runs need and nothing else: the trial checkpoints of the search and of its
    confirmation go (nothing reads them once it has published), and model files stay only for the ensemble
    the best-config file publishes - this search's when it was written (the ensemble it replaced loses its
    model files), else the earlier one (this search's copies go). Member configs stay: each re-runs its member."""
    from tune.runner.disk import disk_use, prune_checkpoints

    experiments = [f"{job.experiment_root.rstrip('/')}/{job.dataset}"]
    if result is not None:
        experiments.append(f"{job.experiment_root.rstrip('/')}/{job.confirmation_name}")
    freed = sum(prune_checkpoints(path) for path in experiments)
    if outcome.written:
        replaced = outcome.previous
        unpublished = replaced.study.name if replaced is not None and replaced.study.name != job.study.name else None
    else:
        unpublished = job.study.name
    removed = job.store.remove_model_files(job.dataset, unpublished) if unpublished else 0
    after = disk_use(job.experiment_root)
    models = disk_use(str(job.store.models_dir(job.dataset)))
    print(f"{job.dataset}: disk: removed {_size(freed)} of trial checkpoints and {_size(removed)} of unpublished model "
          f"files; the search's experiment folder holds {_size(after.total)}, "
          f"{display_path(job.store.models_dir(job.dataset))} {_size(models.total)}")


def _size(size: int) -> str:
    return f"{size / 2**30:.2f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def _tell(job: PublishJob, winner: TrialRecord | None, best: BestConfig | None,
          outcome: PublishOutcome | None) -> None:
    """The Optuna study's story, the report and the trackers: what every ending of the stage leaves."""
    from tune.study.story import record_story
    from tune.tracking import finish_tracking

    published = None if outcome is None else {"written": outcome.written, "reason": outcome.reason,
                                              "path": portable_path(outcome.path)}
    record_story(job.store.journal_of(job.study), job.study, best, published)
    write_report(job.dataset, job.store)
    if job.tracking is not None:
        artifacts = [job.store.report_path(job.dataset)]
        if best is not None:
            artifacts += [job.store.best_config_path(job.dataset), job.store.figures_dir(job.dataset)]
        finish_tracking(job.tracking, job.study, winner, artifacts)


def _final_lines(job: PublishJob, outcome: PublishOutcome) -> None:
    """What the best-config file now publishes (which may be an earlier search's result) and how to re-run it."""
    best = job.store.read_best(job.dataset)
    if best is None:
        return
    origin = "this search" if best.study.name == job.study.name else f"search {best.study.name!r} (kept)"
    what = ", ".join(f"{k}={v}" for k, v in sorted(best.searched.items())) or "the baseline settings"
    print(f"{job.dataset}: published ({origin}): {what}; dev wF1 {best.value:.4f}")
    if best.ensemble is not None:
        print(f"{job.dataset}: its ensemble of {len(best.ensemble.members)} ({best.ensemble.members_from}): test wF1 "
              f"{best.ensemble.test_weighted_f1:.4f}")
    elif best.test is not None:
        print(f"{job.dataset}: its test wF1 {best.test.weighted_f1:.4f}")
    print(f"re-run it with:\n  {best.rerun_command}")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# --- the records it builds ------------------------------------------------------------------------------


def rerun_winner(config: JoyfulConfig, winner: TrialRecord, device: str,
                 dataset_spec: str | None) -> tuple[Rerun, TestScores]:
    """Re-train the winner through the training code path: (the `rerun` record, its test scores)."""
    from joyful.run import RunOptions, train  # torch: only once trials have run

    print(f"re-training the winner ({winner.trial_id}) through the training code path ...")
    metrics = train(config, RunOptions(device=device, dataset_spec=dataset_spec), log=lambda message: None)
    # With cross-validation the re-run is the winner's first fold: its dev score at the chosen epoch.
    expected = winner.fold_scores[0] if config.cv_folds and winner.fold_scores else winner.best_dev_weighted_f1
    reproduced = metrics["best_dev_weighted_f1"] == expected
    test = TestScores(weighted_f1=metrics["test"]["weighted_f1"], accuracy=metrics["test"]["accuracy"])
    print(f"re-run: dev wF1 {metrics['best_dev_weighted_f1']:.4f} (trial: {expected:.4f}, "
          f"{'reproduced exactly' if reproduced else 'DIFFERS'}); test wF1 {test.weighted_f1:.4f}")
    return (Rerun(ran=True, best_dev_weighted_f1=metrics["best_dev_weighted_f1"], best_epoch=metrics["best_epoch"],
                  reproduced=reproduced, device=metrics["device"], precision=metrics["precision"]["used"],
                  wall_seconds=round(metrics["wall_seconds"], 1)), test)


def best_from_search(study: StudyRecord, space: SearchSpace, winner: TrialRecord, *, seed: int,
                     experiment_root: str, best_path: Path, rerun: Rerun, test: TestScores | None = None,
                     data_facts: dict[str, Any] | None = None) -> BestConfig:
    """The best config of a finished search: its winner trial, at the precision it trained with, re-run or not
    (`rerun` says which, and why not). `data_facts` (`DialogueData.facts`) let `train.py --config` check that a
    re-run reads the same data."""
    config = winner_config(study, space, winner)
    used = rerun.precision or winner.precision
    if used:  # `auto` resolved as it was where the winner trained: a re-run elsewhere must match or say so
        config = config.replace(precision=used)
    budget = study.budget
    return BestConfig(
        schema_version=BEST_CONFIG_SCHEMA_VERSION, dataset=study.dataset, modalities=config.modalities,
        data=DataRef.of(study.data_path, study.data_sha256, data_facts),
        config=config.to_dict(), searched=dict(winner.params),
        metric=Metric(name=study.metric, mode=study.mode, value=winner.best_dev_weighted_f1,
                      best_epoch=winner.best_epoch),
        test=test, rerun=rerun,
        single_trial_best=SingleTrialBest(trial_id=winner.trial_id, config=config.to_dict(),
                                          searched=dict(winner.params), value=winner.best_dev_weighted_f1,
                                          best_epoch=winner.best_epoch),
        confirmation=None,
        study=StudyInfo(
            name=study.name, experiment=portable_path(f"{experiment_root.rstrip('/')}/{study.dataset}"),
            space_file=study.space_file, space_sha256=study.space_sha256, space_fingerprint=study.space_fingerprint,
            optuna_storage=study.optuna_storage, optuna_study=study.optuna_study, num_samples=budget.num_samples,
            searcher=Searcher(kind="optuna-tpe", seed=seed, baseline_first=space.baseline_point(),
                              warm_start=study.warm_start),
            scheduler=_scheduler(study),
            resources=Resources(cpus_per_trial=budget.cpus_per_trial, gpus_per_trial=budget.gpus_per_trial,
                                max_concurrent=budget.max_concurrent),
            trials=TrialCounts(**outcome_counts(study.trials)), started_at=study.started_at, ended_at=study.ended_at,
            search_seconds=study.search_seconds, storage_path=portable_path(experiment_root.rstrip("/").rsplit("/", 1)[0])),
        versions=versions(), rerun_command=rerun_command(best_path), checkpoint=None, written_at=utc_now(),
        resampling=study.resampling)


def _scheduler(study: StudyRecord) -> Scheduler:
    """The scheduler record: successive halving over epochs, or over folds with cross-validation."""
    budget = study.budget
    if study.resampling.kind == "cv":
        return Scheduler(kind="patient-asha", time_attr="fold", max_t=study.resampling.folds, grace_period=1,
                         reduction_factor=budget.reduction_factor)
    return Scheduler(kind="patient-asha", time_attr="epoch", max_t=budget.max_epochs, grace_period=budget.grace_period,
                     reduction_factor=budget.reduction_factor)


def rerun_command(best_path: Path) -> str:
    """The command that re-runs a best config, as typed in the folder the search ran in."""
    return f"python {shlex.quote(display_path(REPO / 'train.py'))} --config {shlex.quote(display_path(best_path))}"


def winner_config(study: StudyRecord, space: SearchSpace, winner: TrialRecord) -> JoyfulConfig:
    """The winner trial's full config, as a re-run reproduces it: for exactly the epochs it trained; with
    cross-validation its first fold, for the epoch count it chose on its folds, keeping that epoch."""
    config = space.trial_config(study.base(), winner.params)
    if study.resampling.kind == "cv":
        return config.replace(cv_folds=study.resampling.folds, cv_fold=1, epochs=winner.best_epoch,
                              select_epoch="last")
    return config.replace(epochs=winner.epochs_run)


def confirmed(best: BestConfig, result: ConfirmationResult, space: SearchSpace, command: str | None = None) -> BestConfig:
    """`best` with its confirmation recorded: `config` becomes the confirmed winner at its median-seed run
    (with that run's `metric`, `test` and precision)."""
    run, config = result.winner_run, result.winner_config  # its seed, and fold with cross-validation
    if run.precision:
        config = config.replace(precision=run.precision)
    values = config.to_dict()
    return best.replace(config=values, searched=space.active_point(values),
                        metric=best.metric.replace(value=run.best_dev_weighted_f1, best_epoch=run.best_epoch),
                        test=TestScores(weighted_f1=run.test_weighted_f1, accuracy=run.test_accuracy),
                        checkpoint=None, confirmation=result.to_record().replace(command=command),
                        written_at=utc_now())


def keep_ensemble(best: BestConfig, result: ConfirmationResult, store: ResultStore) -> BestConfig:
    """`best` with its published ensemble, chosen on dev: the confirmed winner's runs, or every confirmed run
    (all configurations) when that ensemble scores higher on dev. Each member's model file is copied from the
    Ray experiment to `store.model_path`, with its config beside it (`train.py --config` re-runs the member),
    before the best config that names them is written. Unchanged when fewer than two runs left a model file."""
    from tune.runner.confirmation import MODEL_FILE  # a Ray module: loaded only when an ensemble is kept

    def usable(runs: list) -> list:
        return [r for r in runs if r.ok and r.model_checkpoint and r.probabilities is not None]

    if result.folds:
        scored = _fold_ensemble(result, [(result.winner, r) for r in usable(result.winner.runs)])
    else:
        options = [(f"the {len(usable(result.winner.runs))} runs of {result.winner_label}, one per seed",
                    [(result.winner, r) for r in usable(result.winner.runs)]),
                   ("every confirmed run, all configurations", [(e, r) for e in result.entries for r in usable(e.runs)])]
        scored = [(ensemble_scores([r for _, r in members]), what, members) for what, members in options]
        scored = [option for option in scored if option[0] is not None]
    if not scored:
        return best
    # Chosen on dev only; a tie keeps the smaller ensemble (the winner's runs come first).
    scores, what, chosen = max(scored, key=lambda option: (option[0].dev_weighted_f1, -len(option[2])))
    folder = store.best_config_path(best.dataset).parent
    members = []
    for entry, run in chosen:
        config = entry.config.replace(seed=run.seed, precision=run.precision or entry.config.precision)
        if run.fold:
            config = config.replace(cv_fold=run.fold)
        destination = store.model_path(best.dataset, best.study.name, _slug(entry.label), run.seed, run.fold)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        _copy_out(run.model_checkpoint, MODEL_FILE, temporary)
        temporary.replace(destination)
        config_file = atomic_write_json(destination.with_suffix(".json"), {**config_document(config),
                                                                             "data": best.data.to_dict()})
        members.append(EnsembleMember(label=entry.label, seed=run.seed, fold=run.fold,
                                      path=os.path.relpath(destination, folder),
                                      config_file=os.path.relpath(config_file, folder),
                                      megabytes=round(destination.stat().st_size / 2**20, 1),
                                      best_epoch=run.best_epoch, dev_weighted_f1=run.best_dev_weighted_f1,
                                      test_weighted_f1=run.test_weighted_f1, config=config.to_dict()))
    winner = best.confirmation.entry(result.winner_label) if best.confirmation else None
    ensemble = Ensemble(
        members_from=what, label=result.winner_label, members=members, dev_weighted_f1=scores.dev_weighted_f1,
        test_weighted_f1=scores.test_weighted_f1,
        not_chosen=[EnsembleOption(members_from=w, members=s.members, dev_weighted_f1=s.dev_weighted_f1,
                                   test_weighted_f1=s.test_weighted_f1) for s, w, _ in scored if w != what],
        single_run=SingleRunScores(dev_weighted_f1=winner and winner.dev_weighted_f1,
                                   test_weighted_f1=winner and winner.test_weighted_f1,
                                   raw_test_weighted_f1=winner and winner.raw_test_weighted_f1),
        rule=("mean of the members' class probabilities; a member is one confirmation run of the published "
              "configuration on one fold (trained on the other folds of train + dev, its selected weights after the "
              "epoch count chosen by cross-validation): bagging over folds; its dev score is the out-of-fold one"
              if result.folds else
              "mean of the members' class probabilities; a member is one confirmation run, its selected "
              "(averaged) weights at its best dev epoch; the members are the winner's runs or every "
              "confirmed run, whichever ensemble scores higher on dev"),
        rebuild_command=f"python -m joyful.predict --config {display_path(store.best_config_path(best.dataset))} "
                        "--rebuild")
    return best.replace(ensemble=ensemble)


def _fold_ensemble(result: ConfirmationResult, members: list) -> list:
    """The published configuration's fold models as one ensemble (bagging), scored out of fold on train + dev
    (each utterance by the models that did not train on it) and on test (every member)."""
    if len(members) < 2:
        return []
    runs = ConfigRuns(result.winner_label, result.winner.config, [r for _, r in members])
    dev, test = runs.predictions("dev"), runs.predictions("test")
    scores = EnsembleScores(members=len(members), seeds=sorted({r.seed for _, r in members}),
                            dev_weighted_f1=weighted_f1(dev.labels, dev.predicted),
                            test_weighted_f1=weighted_f1(test.labels, test.predicted))
    folds = len({r.fold for _, r in members})
    seeds = len(scores.seeds)
    return [(scores, f"the {len(members)} fold models of {result.winner_label}, {folds} folds x {seeds} seed(s)",
             members)]


def _slug(label: str) -> str:
    """A file-name form of a confirmation label ("rank 1: trial 3f2a" -> "rank-1-trial-3f2a")."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "run"


def _copy_out(checkpoint: str, name: str, destination: Path) -> None:
    """Copy file `name` of a Ray checkpoint (a local folder or a storage URI) to `destination`."""
    from ray import tune

    with tune.Checkpoint(checkpoint).as_directory() as folder:
        shutil.copyfile(Path(folder) / name, destination)


# --- what it prints -------------------------------------------------------------------------------------


def print_summary(study: StudyRecord, winner: TrialRecord | None, top: int = 10) -> None:
    """The trials table (the `top` best, then a line saying how many are not shown) and the majority level."""
    counts = outcome_counts(study.trials)
    print(f"\n{study.dataset}: {len(study.trials)} trials - "
          + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    listed = ranked(study.trials) + [t for t in study.trials if not t.eligible]
    cv = study.resampling.kind == "cv"
    ran, score_name = ("folds", "mean over folds") if cv else ("epochs", "best dev wF1")
    print(f"{'trial':<18}{'status':<15}{ran:>7}{score_name:>16}  params")
    for t in listed[:top]:
        score = f"{t.best_dev_weighted_f1:.4f}" if t.best_dev_weighted_f1 is not None else "-"
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(t.params.items()))
        mark = " <- best" if winner is not None and t.trial_id == winner.trial_id else ""
        budget = f"{t.folds_run or 0}/{study.resampling.folds}" if cv else str(t.epochs_run)
        print(f"{t.trial_id:<18}{t.status:<15}{budget:>7}{score:>16}  {params}{mark}")
        if t.error:
            print(f"{'':<18}error: {t.error}")
    if len(listed) > top:
        print(f"... and {len(listed) - top} more trial(s), ranked lower: every trial is in the trials table "
              "(results/trials/<dataset>.csv) and the report")
    peaks = [t.peak_resident_mb for t in study.trials if t.peak_resident_mb]
    if peaks:
        print(f"memory: a trial worker held up to {max(peaks) / 1024:.2f} GB resident (size --max-concurrent with it)")
    if study.majority:
        print(f"always-{study.majority.majority_class} on dev: wF1 {study.majority.dev_weighted_f1:.4f}")
    warning = majority_warning(study, winner)
    if warning:
        print(warning)


def write_report(dataset: str, store: ResultStore) -> bool:
    """Rebuild the data set's report; a failure is one line (the results themselves are already saved)."""
    from tune.reporting.report import build_report  # matplotlib: only when a report is written

    try:
        path = build_report(dataset, store.results_dir)
    except (UserError, OSError, ValueError, RuntimeError) as exc:
        print(f"{dataset}: the report could not be written ({exc}); the results are saved - rebuild it with "
              f"`python tune/report.py --dataset {dataset} --results-dir {store.results_dir}`", file=sys.stderr)
        return False
    print(f"{dataset}: report {display_path(path)}")
    return True


def versions() -> Versions:
    import optuna
    import ray
    import torch

    import joyful

    return Versions(python=platform.python_version(), torch=torch.__version__, ray=ray.__version__,
                    optuna=optuna.__version__, joyful_tune=joyful.__version__)
