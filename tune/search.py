"""`tune/search.py` / `joyful-search`: find the best JOYFUL settings per data set.

Ray Tune runs the trials (packed onto CPUs/GPUs, on a laptop or a cluster),
Optuna's TPE proposes them (define-by-run, seeded, the user's baseline first),
ASHA stops weak ones early, and the winner of each data set is re-trained
through the training code path and written to results/best_configs/<dataset>.json.
The Optuna study lives in a journal beside the results (open it with optuna-dashboard),
and the report (results/reports/<dataset>.md) is rebuilt at the end.

Read `main`: parse (typed options, tune/options.py) -> plan (tune/plan.py, no Ray) ->
run (tune/runner/tuner.py) -> publish (tune/publish.py; confirmation in tune/runner/confirmation.py).

    python tune/search.py --dataset synthetic --data data/synthetic/data_synthetic.pkl
    python tune/search.py --dataset iemocap_4 --dataset meld --address auto --storage-path /shared/ray_results
    python tune/search.py --dataset synthetic --data data/synthetic/data_synthetic.pkl --warm-start
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO, display_path, portable_path
from tune.common import utc_stamp
from tune.options import SearchOptions, options_parser
from tune.plan import CreatedFolders, DatasetPlan, check_dataset, plan_dataset
from tune.records import StudyRecord
from tune.records.store import ResultStore
from tune.runner.cluster import check_shared_storage, check_storage_path, check_trial_fits, start_ray
from tune.space import write_default_space
from tune.stats.candidates import confirm_seed_count
from tune.study.storage import study_exists
from tune.tracking import check_tracking

log = logging.getLogger("joyful.tune")
INTERRUPTED_EXIT = 130
# A trial worker lost (Ray's memory monitor, a dead node) more often than --max-failures retries: the search
# stops with the command that resumes it (docs/RELIABILITY.md).
LOST_WORKER_EXIT = 3


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from `SearchOptions` (tune/options.py)."""
    return options_parser(SearchOptions, "tune/search.py", __doc__.split("\n\n")[0])


def parse_search_options(argv: list[str] | None = None) -> SearchOptions:
    """The options of a command line (argument errors exit with status 2; wrong combinations raise UserError)."""
    return SearchOptions.from_namespace(build_parser().parse_args(argv))


def resume_command(options: SearchOptions, name: str) -> str:
    """The exact command that continues the search `name`."""
    return shlex.join([sys.executable, display_path(REPO / "tune" / "search.py"), *options.resume_argv(name)])


def main(argv: list[str] | None = None) -> int:
    """Parse, plan (every check before Ray starts), run, publish."""
    # Small trials checkpoint every epoch (exact resume, `budget.checkpoint_every`); Ray's warning
    # about frequent experiment snapshots would then repeat every few seconds.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    try:
        options = parse_search_options(argv)
    except UserError as exc:
        return _refused(exc)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    created = CreatedFolders(options.storage_path, options.results_dir)
    try:
        if options.write_space:
            return write_space(options.dataset[0], options.write_space)
        search = plan_search(options)
    except UserError as exc:
        return _refused(exc, created)
    return run_all(search, options, created)


def _refused(exc: UserError, created: CreatedFolders | None = None) -> int:
    """A search refused before its trials ran: one line, exit status 2, and no empty folders left behind."""
    if created is not None:
        created.remove_empty()
    print(f"tune/search.py: error: {exc}", file=sys.stderr)
    return UserError.exit_code


def write_space(dataset: str, path: str) -> int:
    check_dataset_name(dataset)
    print(f"wrote {write_default_space(dataset, path)}: the default search space for {dataset}; edit it, then "
          f"pass --space {path} (or keep it as search_spaces/{dataset}.yaml)")
    return 0


@dataclass(frozen=True)
class SearchPlan:
    """A checked search: its name (--name, or made up from the time), each data set's plan, the experiment
    storage, the results folder, and which data sets continue an experiment (with --resume)."""

    name: str
    plans: list[DatasetPlan]
    storage: str
    store: ResultStore
    resume: dict[str, bool]


def plan_search(options: SearchOptions) -> SearchPlan:
    """Every check that can fail before a trial runs: trackers, data, spaces, storage, name, results folder
    (`SearchOptions` has checked the flags)."""
    # Everything that needs no torch, Ray or Optuna first: a mistake there is one line within a second.
    for dataset, data, space in options.datasets():
        check_dataset(dataset, data, space, dataset_spec=options.dataset_spec,
                      budget_overrides=options.budget_overrides())
    check_tracking(options.tracking)
    name = options.name or f"search-{utc_stamp()}"
    store = ResultStore(options.results_dir)
    store.check_writable()
    storage = check_storage_path(options.storage_path)
    from tune.runner.tuner import experiment_path, experiments_to_resume  # Ray: once the arguments hold

    plans = [plan_dataset(dataset, data, space, store, name=name, dataset_spec=options.dataset_spec,
                          optuna_storage=options.optuna_storage, budget_overrides=options.budget_overrides(),
                          resume=options.resume, warm_start=options.warm_start, checked=True)
             for dataset, data, space in options.datasets()]
    if options.resume:
        resume = experiments_to_resume(list(options.dataset), storage, name)
    else:
        resume = dict.fromkeys(options.dataset, False)
        for plan in plans:
            existing = Path(experiment_path(storage, name, plan.dataset))
            if "://" not in storage and existing.exists():
                raise UserError(f"experiment {existing} exists; pass --resume to continue it or another --name")
            if study_exists(plan.optuna_storage, name):
                raise UserError(f"{plan.optuna_storage} holds an Optuna study named {name!r} already (an earlier "
                                "search of this data and space); pass another --name")
    for plan in plans:
        confirm_seed_count(options.confirm_seeds, plan.resampling.folds if plan.resampling.cv else 0,
                           options.confirm_top)
    return SearchPlan(name, plans, storage, store, resume)


def run_all(search: SearchPlan, options: SearchOptions, created: CreatedFolders | None = None) -> int:
    name, storage, store = search.name, search.storage, search.store
    for plan in [p for p in search.plans if p.finished_at]:  # --resume of a finished search: records stay as they are
        print(f"{plan.dataset}: search {name!r} finished at {plan.finished_at}; nothing to resume (results in "
              f"{store.best_config_path(plan.dataset)}, study in {portable_path(plan.optuna_storage)})")
    plans = [p for p in search.plans if not p.finished_at]
    if not plans:
        return 0
    import ray  # late: a refused search never loads Ray

    try:
        info = start_ray(options.address, options.dashboard_host, quiet=options.quiet)
        print(f"Ray: {info['address']} with {info['nodes']} node(s); storage {storage}; experiment {name}")
        for plan in plans:
            check_trial_fits(plan.budget.cpus_per_trial, plan.budget.gpus_per_trial)
        check_shared_storage(storage)
        status = 0
        for plan in plans:
            code = run_dataset(plan, options, name, storage, store, search.resume[plan.dataset])
            if code == INTERRUPTED_EXIT:
                return code
            status = status or code
        return status
    except UserError as exc:
        return _refused(exc, created)
    except KeyboardInterrupt:
        print(f"\nsearch interrupted; resume with:\n  {resume_command(options, name)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    except Exception as exc:  # Ray's own failures: one line and the way on, when they say a worker was lost
        from tune.runner.lost_workers import lost_worker_cause

        cause = lost_worker_cause(exc)
        if cause is None:
            raise
        print(f"tune/search.py: error: a trial worker was lost and could not be replaced ({cause}); the finished trials "
              f"are saved - resume with: {resume_command(options, name)}", file=sys.stderr)
        return LOST_WORKER_EXIT
    finally:
        if ray.is_initialized():
            ray.shutdown()


def run_dataset(plan: DatasetPlan, options: SearchOptions, name: str, storage: str, store: ResultStore,
                resume: bool) -> int:
    """One data set: run (or resume) the trials, then the publish stage (tune/publish.py)."""
    from tune.publish import PublishJob, publish
    from tune.runner.tuner import run_search  # Ray and Optuna: only once a search runs
    from tune.study.storage import load_study
    from tune.study.story import end_invocation, search_times, start_invocation

    if options.resume and not resume:
        print(f"\n== {plan.dataset}: the interrupted search had not started it; starting it now")
    if plan.warm_start:
        ws = plan.warm_start
        print(f"{plan.dataset}: warm start from {len(ws.trials)} trial(s) of {', '.join(ws.studies)} "
              f"({portable_path(ws.storage)}); {len(ws.proposed)} earlier winner(s) proposed first")
    print(f"\n== {plan.dataset}: {plan.budget.num_samples} trials, up to {plan.budget.max_epochs} epochs each "
          f"({plan.budget.cpus_per_trial:g} CPU, {plan.budget.gpus_per_trial:g} GPU per trial); "
          f"Optuna study {name!r} in {portable_path(plan.optuna_storage)}")
    run = run_search(plan, storage, name, resume, seed=options.seed, max_failures=options.max_failures,
                     quiet=options.quiet, tracking=options.tracking,
                     on_start=lambda: start_invocation(plan.optuna_storage, name, resumed=resume))
    if run.invocation is not None:
        end_invocation(plan.optuna_storage, name, run.invocation, run.seconds)
    if run.interrupted:
        print(f"\nsearch interrupted; state saved in {run.experiment}\n"
              f"resume with:\n  {resume_command(options, name)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    times = search_times(load_study(plan.optuna_storage, name))
    study = StudyRecord(
        dataset=plan.dataset, name=name, metric=plan.space.metric, mode=plan.space.mode,
        space_file=portable_path(plan.space.path) or "", space_sha256=plan.space.sha256,
        space_fingerprint=plan.space_fingerprint, data_path=portable_path(plan.data.source) or "",
        data_sha256=plan.data.sha256, base_config=plan.base_config.to_dict(), budget=plan.budget,
        optuna_storage=portable_path(plan.optuna_storage) or "", optuna_study=name, trials=run.trials,
        majority=plan.majority, resampling=plan.resampling_record(),
        warm_start=plan.warm_start.summary() if plan.warm_start else None, **times)
    root = f"{storage.rstrip('/')}/{name}"
    return publish(PublishJob(
        study=study, space=plan.space, data=plan.data, store=store, experiment_root=root,
        cpus_per_trial=plan.budget.cpus_per_trial, gpus_per_trial=plan.budget.gpus_per_trial,
        searcher_seed=options.seed, rerun=not options.no_rerun,
        rerun_skipped="--no-rerun was given" if options.no_rerun else "",
        confirm_top=options.confirm_top,
        confirm_seeds=confirm_seed_count(options.confirm_seeds, plan.resampling.folds if plan.resampling.cv else 0,
                                            options.confirm_top),
        confirmation_name=f"{plan.dataset}-confirm", overwrite=options.overwrite, quiet=options.quiet,
        dataset_spec=options.dataset_spec, tracking=options.tracking, references=plan.references))


if __name__ == "__main__":
    sys.exit(main())
