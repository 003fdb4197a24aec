"""`tune/search.py` / `joyful-search`: find the best JOYFUL settings per data set.

Ray Tune runs the trials (packed onto CPUs/GPUs, on a laptop or a cluster), one Optuna sampler per
arm of the scientific parameter proposes them (the baseline first), successive halving stops weak
ones early, and the winner of each data set is re-trained through the training code path, confirmed
against the baseline on fresh folds and seeds, measured against the references (a logistic
regression, the defaults as train.py runs them, a strong untuned setting) and written to
results/best_configs/<dataset>.json.
With --time-budget the search plans within it. The Optuna study lives in a journal beside the
results (open it with optuna-dashboard), and the report (results/reports/<dataset>.md) is rebuilt at
the end.

Read `main`: parse (typed options, tune/options.py) -> plan (tune/plan.py, no Ray) -> run
(tune/runner/tuner.py) -> publish (tune/publish.py). The search's driver runs as a child of the
command (tune/runner/supervisor.py), so that a lost Ray node ends in one line with the resume
command.

    python tune/search.py --dataset synthetic --data data/synthetic/data_synthetic.pkl
    python tune/search.py --dataset meld_text --data ../shared/data/meld_text/data_meld.pkl \
        --time-budget 90m
    python tune/search.py --dataset iemocap_4 --dataset meld --address auto \
        --storage-path /shared/ray_results
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO, display_path, portable_path
from tune.common import utc_stamp
from tune.options import SearchOptions, options_parser
from tune.plan import SearchPlan
from tune.planning import CreatedFolders, check_dataset, plan_dataset
from tune.records.store import ResultStore
from tune.runner.cluster import (
    check_shared_storage,
    check_storage_path,
    check_trial_fits,
    start_ray,
)
from tune.runner.supervisor import is_child, supervise
from tune.space import write_default_space
from tune.tracking import check_tracking

log = logging.getLogger("joyful.tune")
PROG = "tune/search.py"
INTERRUPTED_EXIT = 130
# A trial worker lost (Ray's memory monitor, a dead node) more often than --max-failures retries:
# the search stops with the command that resumes it (docs/RELIABILITY.md).
LOST_WORKER_EXIT = 3


def build_parser() -> argparse.ArgumentParser:
    """The command line, generated from `SearchOptions` (tune/options.py)."""
    return options_parser(SearchOptions, PROG, __doc__.split("\n\n")[0])


def parse_search_options(argv: list[str] | None = None) -> SearchOptions:
    """The options of a command line (argument errors exit with status 2; wrong combinations raise
    UserError)."""
    return SearchOptions.from_namespace(build_parser().parse_args(argv))


def resume_command(options: SearchOptions, name: str) -> str:
    """The exact command that continues the search `name`."""
    return shlex.join(
        [sys.executable, display_path(REPO / "tune" / "search.py"), *options.resume_argv(name)]
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, plan (every check before Ray starts), run, publish."""
    # Small trials checkpoint every epoch (exact resume, `budget.checkpoint_every`); Ray's warning
    # about frequent experiment snapshots would then repeat every few seconds.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        options = parse_search_options(argv)
    except UserError as exc:
        return _refused(exc)
    if options.write_space:
        try:
            return write_space(options.dataset[0], options.write_space)
        except UserError as exc:
            return _refused(exc)
    if not is_child():
        return _supervised(argv, options)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    created = CreatedFolders(options.storage_path, options.results_dir)
    try:
        plans = plan_search(options)
    except UserError as exc:
        return _refused(exc, created)
    except KeyboardInterrupt:
        created.remove_empty()
        print(f"{PROG}: interrupted before any trial ran; nothing was written", file=sys.stderr)
        return INTERRUPTED_EXIT
    return run_all(plans, created)


def _supervised(argv: list[str], options: SearchOptions) -> int:
    """This command again, as the child that drives the search (tune/runner/supervisor.py), named up
    front so that the resume command is known whatever happens to the child."""
    name = options.name or f"search-{utc_stamp()}"
    if "://" in options.storage_path:
        driver_log = Path(tempfile.gettempdir()) / f"joyful-{name}-driver.log"
    else:
        driver_log = Path(options.storage_path).resolve() / name / "driver.log"
    command = [
        sys.executable,
        str(REPO / "tune" / "search.py"),
        *argv,
        *([] if options.name else ["--name", name]),
    ]
    return supervise(command, resume=resume_command(options, name), log=driver_log, prog=PROG)


def _refused(exc: UserError, created: CreatedFolders | None = None) -> int:
    """A search refused before its trials ran: one line, exit status 2, and no empty folders left
    behind."""
    if created is not None:
        created.remove_empty()
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return UserError.exit_code


def write_space(dataset: str, path: str) -> int:
    check_dataset_name(dataset)
    print(
        f"wrote {write_default_space(dataset, path)}: the default search space for {dataset}; edit "
        f"it, then pass --space {path} (or keep it as search_spaces/{dataset}.yaml)"
    )
    return 0


def plan_search(options: SearchOptions) -> list[SearchPlan]:
    """Every check that can fail before a trial runs: trackers, data, spaces, storage, name, results
    folder (`SearchOptions` has checked the flags); each data set's plan."""
    from tune.study.storage import study_exists

    # Everything that needs no torch, Ray or Optuna first: a mistake there is one line within a
    # second.
    for dataset, data, space in options.datasets():
        check_dataset(dataset, data, space, options)
    check_tracking(options.tracking)
    name = options.name or f"search-{utc_stamp()}"
    store = ResultStore(options.results_dir)
    store.check_writable()
    storage = check_storage_path(options.storage_path)
    from tune.runner.tuner import experiments_to_resume  # Ray: once the arguments hold

    resume = (
        experiments_to_resume(list(options.dataset), storage, name)
        if options.resume
        else dict.fromkeys(options.dataset, False)
    )
    plans = [
        plan_dataset(
            dataset,
            data,
            space,
            options,
            name=name,
            storage=storage,
            store=store,
            resume=resume[dataset],
            checked=True,
        )
        for dataset, data, space in options.datasets()
    ]
    for plan in plans:
        if options.resume:
            continue
        if "://" not in storage and Path(plan.experiment).exists():
            raise UserError(
                f"experiment {plan.experiment} exists; pass --resume to continue it or another "
                "--name"
            )
        if study_exists(plan.optuna_storage, name):
            raise UserError(
                f"{plan.optuna_storage} holds an Optuna study named {name!r} already (an earlier "
                "search of this data and space); pass another --name"
            )
        plan.check_confirmation()
    return plans


def run_all(plans: list[SearchPlan], created: CreatedFolders | None = None) -> int:
    """Start Ray and search each data set in order; a finished search resumed is left as it is."""
    for plan in [p for p in plans if p.finished_at]:
        print(
            f"{plan.dataset}: search {plan.name!r} finished at {plan.finished_at}; nothing to "
            f"resume (results in {plan.store.best_config_path(plan.dataset)}, study in "
            f"{portable_path(plan.optuna_storage)})"
        )
    plans = [p for p in plans if not p.finished_at]
    if not plans:
        return 0
    import ray  # late: a refused search never loads Ray

    options = plans[0].options
    try:
        info = start_ray(options.address, options.dashboard_host, quiet=options.quiet)
        print(
            f"Ray: {info['address']} with {info['nodes']} node(s); storage {plans[0].storage}; "
            f"experiment {plans[0].name}"
        )
        for plan in plans:
            check_trial_fits(plan.budget.cpus_per_trial, plan.budget.gpus_per_trial)
        check_shared_storage(plans[0].storage)
        status = 0
        for plan in plans:
            code = run_dataset(plan)
            if code == INTERRUPTED_EXIT:
                return code
            status = status or code
        return status
    except UserError as exc:
        return _refused(exc, created)
    except KeyboardInterrupt:
        print(
            f"\nsearch interrupted; resume with:\n  {resume_command(options, plans[0].name)}",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT
    except (
        Exception
    ) as exc:  # Ray's own failures: one line and the way on, when they say a worker was lost
        from tune.runner.lost_workers import lost_worker_cause

        cause = lost_worker_cause(exc)
        if cause is None:
            raise
        print(
            f"{PROG}: error: a trial worker was lost and could not be replaced ({cause}); the "
            f"finished trials are saved - resume with: {resume_command(options, plans[0].name)}",
            file=sys.stderr,
        )
        return LOST_WORKER_EXIT
    finally:
        if ray.is_initialized():
            ray.shutdown()


def run_dataset(plan: SearchPlan) -> int:
    """One data set: run (or resume) its trials, then the publish stage (tune/publish.py)."""
    from tune.publish import publish
    from tune.runner.tuner import run_search  # Ray and Optuna: only once a search runs

    if plan.options.resume and not plan.resume:
        print(f"\n== {plan.dataset}: the interrupted search had not started it; starting it now")
    if plan.warm_start:
        ws = plan.warm_start
        print(
            f"{plan.dataset}: warm start from {len(ws.trials)} trial(s) of {', '.join(ws.studies)} "
            f"({portable_path(ws.storage)}); {len(ws.proposed)} earlier winner(s) proposed first"
        )
    limit = (
        f"; time budget {plan.budget.time_budget / 60:.0f} min" if plan.budget.time_budget else ""
    )
    print(
        f"\n== {plan.dataset}: up to {plan.budget.num_samples} trials of up to "
        f"{plan.budget.max_epochs} epochs "
        f"{'on each of ' + str(plan.folds) + ' folds ' if plan.folds else ''}"
        f"({plan.budget.cpus_per_trial:g} CPU, {plan.budget.gpus_per_trial:g} GPU per "
        f"trial){limit}; Optuna study {plan.name!r} in {portable_path(plan.optuna_storage)}"
    )
    run = run_search(plan)
    if run.interrupted:
        print(
            f"\nsearch interrupted; state saved in {plan.experiment}\n"
            f"resume with:\n  {resume_command(plan.options, plan.name)}",
            file=sys.stderr,
        )
        return INTERRUPTED_EXIT
    if run.ending.kind == "time budget":
        print(
            f"{plan.dataset}: the time budget let {run.ending.trials_started} of "
            f"{plan.budget.num_samples} trials start; {run.ending.trials_not_started} were left out"
        )
    return publish(plan, plan.study_record(run))


if __name__ == "__main__":
    sys.exit(main())
