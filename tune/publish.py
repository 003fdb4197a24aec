"""After the trials: the study record, the winner's re-run, the best config, its confirmation, the summary lines
and the report. Training here goes through the same code path as `train.py` (no Ray).
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig, config_document
from joyful.errors import UserError
from joyful.io import REPO, atomic_write_json, display_path, portable_path
from joyful.run import RunOptions, train
from tune.common import utc_now
from tune.records import (
    BEST_CONFIG_SCHEMA_VERSION,
    BestConfig,
    DataRef,
    Ensemble,
    EnsembleMember,
    EnsembleOption,
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
    outcome_counts,
    ranked,
)
from tune.records.store import ResultStore
from tune.reporting.report import build_report
from tune.space import SearchSpace
from tune.stats.confirmation import ConfirmationResult, ensemble_scores
from tune.stats.references import majority_warning

__all__ = ["best_from_search", "confirmed", "keep_ensemble", "print_summary", "rerun_winner",
           "versions", "write_report"]


def rerun_winner(config: JoyfulConfig, winner: TrialRecord, device: str,
                 dataset_spec: str | None) -> tuple[Rerun, TestScores]:
    """Re-train the winner through the training code path: (the `rerun` record, its test scores)."""
    print(f"re-training the winner ({winner.trial_id}) through the training code path ...")
    metrics = train(config, RunOptions(device=device, dataset_spec=dataset_spec), log=lambda message: None)
    reproduced = metrics["best_dev_weighted_f1"] == winner.best_dev_weighted_f1
    test = TestScores(weighted_f1=metrics["test"]["weighted_f1"], accuracy=metrics["test"]["accuracy"])
    print(f"re-run: best dev wF1 {metrics['best_dev_weighted_f1']:.4f} (trial: {winner.best_dev_weighted_f1:.4f}, "
          f"{'reproduced exactly' if reproduced else 'DIFFERS'}); test wF1 {test.weighted_f1:.4f}")
    return (Rerun(ran=True, best_dev_weighted_f1=metrics["best_dev_weighted_f1"], best_epoch=metrics["best_epoch"],
                  reproduced=reproduced, device=metrics["device"], wall_seconds=metrics["wall_seconds"]), test)


def best_from_search(study: StudyRecord, space: SearchSpace, winner: TrialRecord, *, seed: int, experiment: str,
                     best_path: Path, rerun: Rerun | None = None, test: TestScores | None = None,
                     data_facts: dict[str, Any] | None = None) -> BestConfig:
    """The best config of a finished search: its winner trial, re-run or not (`rerun`, `test`). `data_facts`
    (`DialogueData.facts`) let `train.py --config` check that a re-run reads the same data."""
    # An ASHA-stopped winner is re-run for exactly the epochs it trained, so the re-run reproduces it.
    config = winner_config(study, space, winner)
    budget = study.budget
    return BestConfig(
        schema_version=BEST_CONFIG_SCHEMA_VERSION, dataset=study.dataset, modalities=config.modalities,
        data=DataRef.of(study.data_path, study.data_sha256, data_facts),
        config=config.to_dict(), searched=dict(winner.params),
        metric=Metric(name=study.metric, mode=study.mode, value=winner.best_dev_weighted_f1,
                      best_epoch=winner.best_epoch),
        test=test, rerun=rerun or Rerun(ran=False),
        single_trial_best=SingleTrialBest(trial_id=winner.trial_id, config=config.to_dict(),
                                          searched=dict(winner.params), value=winner.best_dev_weighted_f1,
                                          best_epoch=winner.best_epoch, checkpoint=portable_path(winner.checkpoint)),
        confirmation=None,
        study=StudyInfo(
            name=study.name, experiment=portable_path(experiment), space_file=study.space_file,
            space_sha256=study.space_sha256, space_fingerprint=study.space_fingerprint,
            optuna_storage=study.optuna_storage, optuna_study=study.optuna_study, num_samples=budget.num_samples,
            searcher=Searcher(kind="optuna-tpe", seed=seed, baseline_first=space.baseline_point(),
                              warm_start=study.warm_start),
            scheduler=Scheduler(kind="asha", time_attr="epoch", max_t=budget.max_epochs,
                                grace_period=budget.grace_period, reduction_factor=budget.reduction_factor),
            resources=Resources(cpus_per_trial=budget.cpus_per_trial, gpus_per_trial=budget.gpus_per_trial,
                                max_concurrent=budget.max_concurrent),
            trials=TrialCounts(**outcome_counts(study.trials)), started_at=study.started_at, ended_at=study.ended_at,
            search_seconds=round(study.search_seconds, 1), storage_path=portable_path(experiment.rsplit("/", 2)[0])),
        versions=versions(), rerun_command=rerun_command(best_path),
        checkpoint=portable_path(winner.checkpoint), written_at=utc_now())


def rerun_command(best_path: Path) -> str:
    """The command that re-runs a best config, as typed in the folder the search ran in."""
    return f"python {shlex.quote(display_path(REPO / 'train.py'))} --config {shlex.quote(display_path(best_path))}"


def winner_config(study: StudyRecord, space: SearchSpace, winner: TrialRecord) -> JoyfulConfig:
    """The winner trial's full config, for exactly the epochs it trained."""
    return space.trial_config(study.base(), winner.params).replace(epochs=winner.epochs_run)


def confirmed(best: BestConfig, result: ConfirmationResult, space: SearchSpace, command: str | None = None) -> BestConfig:
    """`best` with its confirmation recorded: `config` becomes the confirmed winner at its median-seed run
    (with that run's `metric` and `test`), and no checkpoint is kept (none was saved for it)."""
    run, config = result.winner_run, result.winner_config
    values = config.to_dict()
    active = space.active_point(values)
    return best.replace(config=values, searched=active,
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

    options = [("the confirmed winner's runs", [(result.winner, r) for r in usable(result.winner.runs)]),
               ("every confirmed run", [(e, r) for e in result.entries for r in usable(e.runs)])]
    scored = [(ensemble_scores([r for _, r in members]), what, members) for what, members in options]
    scored = [option for option in scored if option[0] is not None]
    if not scored:
        return best
    # Chosen on dev only; a tie keeps the smaller ensemble (the winner's runs come first).
    scores, what, chosen = max(scored, key=lambda option: (option[0].dev_weighted_f1, -len(option[2])))
    folder = store.best_config_path(best.dataset).parent
    members = []
    for entry, run in chosen:
        config = entry.config.replace(seed=run.seed)
        destination = store.model_path(best.dataset, best.study.name, _slug(entry.label), run.seed)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.tmp")
        _copy_out(run.model_checkpoint, MODEL_FILE, temporary)
        temporary.replace(destination)
        config_file = atomic_write_json(destination.with_suffix(".json"), {**config_document(config),
                                                                             "data": best.data.to_dict()})
        members.append(EnsembleMember(label=entry.label, seed=run.seed, path=os.path.relpath(destination, folder),
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
        rule="mean of the members' class probabilities; a member is one confirmation run, its selected "
             "(averaged) weights at its best dev epoch; the members are the winner's runs or every "
             "confirmed run, whichever ensemble scores higher on dev",
        rebuild_command=f"python -m joyful.predict --config {display_path(store.best_config_path(best.dataset))} "
                        "--rebuild")
    return best.replace(ensemble=ensemble)


def _slug(label: str) -> str:
    """A file-name form of a confirmation label ("rank 1: trial 3f2a" -> "rank-1-trial-3f2a")."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or "run"


def _copy_out(checkpoint: str, name: str, destination: Path) -> None:
    """Copy file `name` of a Ray checkpoint (a local folder or a storage URI) to `destination`."""
    from ray import tune

    with tune.Checkpoint(checkpoint).as_directory() as folder:
        shutil.copyfile(Path(folder) / name, destination)


def print_summary(study: StudyRecord, winner: TrialRecord | None, top: int = 10) -> None:
    counts = outcome_counts(study.trials)
    print(f"\n{study.dataset}: {len(study.trials)} trials - "
          + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    listed = ranked(study.trials) + [t for t in study.trials if not t.eligible]
    print(f"{'trial':<18}{'status':<15}{'epochs':>7}{'best dev wF1':>14}  params")
    for t in listed[:top]:
        score = f"{t.best_dev_weighted_f1:.4f}" if t.best_dev_weighted_f1 is not None else "-"
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(t.params.items()))
        mark = " <- best" if winner is not None and t.trial_id == winner.trial_id else ""
        print(f"{t.trial_id:<18}{t.status:<15}{t.epochs_run:>7}{score:>14}  {params}{mark}")
        if t.error:
            print(f"{'':<18}error: {t.error}")
    if study.majority:
        print(f"always-{study.majority.majority_class} on dev: wF1 {study.majority.dev_weighted_f1:.4f}")
    warning = majority_warning(study, winner)
    if warning:
        print(warning)


def write_report(dataset: str, store: ResultStore) -> bool:
    """Rebuild the data set's report; a failure is one line (the results themselves are already saved)."""
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
