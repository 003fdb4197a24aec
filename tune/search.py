"""`tune/search.py` / `joyful-search`: find the best JOYFUL settings per data set.

Ray Tune runs the trials (packed onto CPUs/GPUs, on a laptop or a cluster),
Optuna's TPE proposes them (define-by-run, seeded, the user's baseline first),
ASHA stops weak ones early, and the winner of each data set is re-trained
through the training code path and written to results/best_configs/<dataset>.json.
The Optuna study lives in a journal beside the results (open it with optuna-dashboard),
and the report (results/reports/<dataset>.md) is rebuilt at the end.

Read `main`: parse -> plan (tune/plan.py, no Ray) -> run (tune/runner/tuner.py) ->
publish (tune/publish.py; confirmation in tune/runner/confirmation.py).

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
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.cli_parser import Parser
from joyful.datasets import check_dataset_name
from joyful.errors import UserError
from joyful.io import REPO, display_path, portable_path
from tune.common import utc_now, utc_stamp
from tune.plan import BUDGET_FLAGS, CreatedFolders, DatasetPlan, per_dataset, plan_dataset
from tune.records import StudyRecord, choose_winner
from tune.records.store import ResultStore
from tune.runner.cluster import check_shared_storage, check_storage_path, check_trial_fits, start_ray
from tune.space import write_default_space
from tune.stats.candidates import DEFAULT_CONFIRM_SEEDS, DEFAULT_CONFIRM_TOP
from tune.stats.confirmation import print_confirmation
from tune.stats.references import judge, published_test, reference_scores
from tune.study.storage import study_exists
from tune.study.story import record_story
from tune.tracking import add_tracking_arguments, check_tracking, finish_tracking

log = logging.getLogger("joyful.tune")
INTERRUPTED_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tune/search.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", action="append", required=True,
                   help="data set to tune (repeatable; each gets its own study, space and result)")
    p.add_argument("--data", action="append", default=[],
                   help="data pickle; once per --dataset, in the same order (default: ./data/<dataset>/data_<dataset>.pkl)")
    p.add_argument("--space", action="append", default=[],
                   help="search-space YAML; once per --dataset (default: search_spaces/<dataset>.yaml)")
    p.add_argument("--dataset-spec", help="JSON spec of a user-defined data set (see train.py --dataset-spec)")
    budget = p.add_argument_group("budget (defaults come from the space file's `budget`)")
    budget.add_argument("--num-samples", type=int, help="trials per data set")
    budget.add_argument("--max-epochs", type=int, help="epochs of a full trial (ASHA's max_t)")
    budget.add_argument("--grace-period", type=int, help="epochs before ASHA may stop a trial")
    budget.add_argument("--reduction-factor", type=int, help="ASHA keeps 1/reduction_factor of trials at each rung")
    budget.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (also torch's thread count)")
    budget.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; fractions pack trials on one GPU (0.25 = 4 per GPU)")
    budget.add_argument("--max-concurrent", type=int, help="trials at once (0 = as many as resources allow)")
    budget.add_argument("--checkpoint-every", type=int,
                        help="checkpoint a trial every N epochs and at its last (a retry replays up to N-1 epochs)")
    run = p.add_argument_group("where and how")
    run.add_argument("--address", help="join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)")
    run.add_argument("--storage-path", default=str(REPO / "ray_results"),
                     help="experiment storage: local folder, shared file system or pyarrow URI (s3://, gs://); "
                          "must be shared by all nodes of a cluster (default: ray_results in the repository)")
    run.add_argument("--name", help="experiment name (default: search-<UTC time>); reuse it with --resume")
    run.add_argument("--resume", action="store_true", help="continue the experiment --name in --storage-path")
    run.add_argument("--results-dir", default=str(REPO / "results"), help="where best configs, trial tables and reports go")
    run.add_argument("--optuna-storage", metavar="URL",
                     help="keep the Optuna study in this database (sqlite:///path.db, postgresql://host/db, ...) "
                          "instead of the journal file beside the results; the URL is recorded in the result "
                          "files, so keep passwords out of it")
    run.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
    run.add_argument("--warm-start", nargs="?", const="auto", metavar="JOURNAL",
                     help="start TPE from the completed and ASHA-stopped trials of earlier searches of the same data "
                          "and space (not re-run; default: the journal in --results-dir/studies, or the Optuna "
                          "journal file given) and propose the data set's earlier winners first")
    run.add_argument("--max-failures", type=int, default=2, help="retries of a failing trial from its last checkpoint")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing best config even if it is better or for other data")
    run.add_argument("--no-rerun", action="store_true",
                     help="skip re-training the winner (then no test metrics and no reproduction check)")
    confirm = p.add_argument_group("confirmation (re-train the best configurations and the baseline over fresh seeds)")
    confirm.add_argument("--confirm-top", type=int, default=DEFAULT_CONFIRM_TOP,
                         help=f"best configurations to confirm besides the baseline (0 = no confirmation; "
                              f"default {DEFAULT_CONFIRM_TOP})")
    confirm.add_argument("--confirm-seeds", type=int, default=DEFAULT_CONFIRM_SEEDS,
                         help=f"seeds per configuration: base seed + 1000 + i (at least 2; default {DEFAULT_CONFIRM_SEEDS})")
    run.add_argument("--dashboard-host", default="127.0.0.1", help="interface of a locally started Ray dashboard")
    run.add_argument("--quiet", action="store_true",
                     help="no Ray progress tables (one progress line per finished trial remains)")
    add_tracking_arguments(p)
    p.add_argument("--write-space", metavar="FILE",
                   help="write the default search space for --dataset to FILE (a starting file to edit) and exit")
    return p


def resume_command(args: argparse.Namespace) -> str:
    """The exact command that continues this search."""
    parts = [sys.executable, display_path(REPO / "tune" / "search.py")]
    for index, dataset in enumerate(args.dataset):
        parts += ["--dataset", dataset]
        if args.data:
            parts += ["--data", args.data[index]]
        if args.space:
            parts += ["--space", args.space[index]]
    for flag in (*BUDGET_FLAGS, "address", "dataset_spec", "mlflow_uri", "wandb_project", "optuna_storage"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    parts += ["--storage-path", args.storage_path, "--name", args.name, "--results-dir", args.results_dir,
              "--seed", str(args.seed), "--max-failures", str(args.max_failures),
              "--confirm-top", str(args.confirm_top), "--confirm-seeds", str(args.confirm_seeds)]
    if args.dashboard_host != "127.0.0.1":
        parts += ["--dashboard-host", args.dashboard_host]
    if args.wandb_project and args.wandb_mode != "online":
        parts += ["--wandb-mode", args.wandb_mode]
    parts += [f"--{flag.replace('_', '-')}" for flag in ("overwrite", "no_rerun", "quiet", "mlflow") if getattr(args, flag)]
    return shlex.join([*parts, "--resume"])


def main(argv: list[str] | None = None) -> int:
    """Parse, plan (every check before Ray starts), run, publish."""
    # Small trials checkpoint every epoch (exact resume, `budget.checkpoint_every`); Ray's warning
    # about frequent experiment snapshots would then repeat every few seconds.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    created = CreatedFolders(args.storage_path, args.results_dir)
    try:
        if args.write_space:
            return write_space(args)
        plans, storage, store, resume = plan_search(args)
    except UserError as exc:
        created.remove_empty()
        print(f"search.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_all(plans, args, storage, store, resume, created)


def write_space(args: argparse.Namespace) -> int:
    if len(args.dataset) != 1:
        raise UserError("--write-space writes the space of one --dataset; give exactly one")
    check_dataset_name(args.dataset[0])
    print(f"wrote {write_default_space(args.dataset[0], args.write_space)}: the default search space "
          f"for {args.dataset[0]}; edit it, then pass --space {args.write_space} (or keep it as "
          f"search_spaces/{args.dataset[0]}.yaml)")
    return 0


def plan_search(args: argparse.Namespace) -> tuple[list[DatasetPlan], str, ResultStore, dict[str, bool]]:
    """Every check that can fail before a trial runs: flags, data, spaces, storage, name, results folder."""
    from tune.runner.tuner import experiment_path, experiments_to_resume

    if len(set(args.dataset)) != len(args.dataset):
        raise UserError("--dataset lists a data set twice")
    if args.max_failures < -1:
        raise UserError(f"--max-failures is {args.max_failures}, but must be >= -1 (-1 = retry forever)")
    if args.confirm_top < 0 or (args.confirm_top > 0 and args.confirm_seeds < 2):
        raise UserError(f"--confirm-top is {args.confirm_top} and --confirm-seeds {args.confirm_seeds}, but "
                        "they must be >= 0 and >= 2 (--confirm-top 0 turns confirmation off)")
    if args.warm_start and args.resume:
        raise UserError("--warm-start starts a new search; a resumed one continues with what it had")
    check_tracking(args)
    args.name = args.name or f"search-{utc_stamp()}"
    check_dataset_name(args.name)
    store = ResultStore(args.results_dir)
    data_paths = per_dataset(args.data, args.dataset, "--data")
    space_paths = per_dataset(args.space, args.dataset, "--space")
    plans = [plan_dataset(d, dp, sp, args, store) for d, dp, sp in zip(args.dataset, data_paths, space_paths,
                                                                         strict=True)]
    # Storage and name first: refusing them must not leave empty result folders behind.
    storage = check_storage_path(args.storage_path)
    if args.resume:
        resume = experiments_to_resume(args.dataset, storage, args.name)
    else:
        resume = dict.fromkeys(args.dataset, False)
        for plan in plans:
            existing = Path(experiment_path(storage, args.name, plan.dataset))
            if "://" not in storage and existing.exists():
                raise UserError(f"experiment {existing} exists; pass --resume to continue it or another --name")
            if study_exists(plan.optuna_storage, args.name):
                raise UserError(f"{plan.optuna_storage} holds an Optuna study named {args.name!r} already (an earlier "
                                "search of this data and space); pass another --name")
    store.check_writable()
    return plans, storage, store, resume


def run_all(plans: list[DatasetPlan], args: argparse.Namespace, storage: str, store: ResultStore,
            resume: dict[str, bool], created: CreatedFolders | None = None) -> int:
    for plan in [p for p in plans if p.finished_at]:  # --resume of a finished search: its records stay as they are
        print(f"{plan.dataset}: search {args.name!r} finished at {plan.finished_at}; nothing to resume (results in "
              f"{store.best_config_path(plan.dataset)}, study in {portable_path(plan.optuna_storage)})")
    plans = [p for p in plans if not p.finished_at]
    if not plans:
        return 0
    import ray


    try:
        info = start_ray(args.address, args.dashboard_host, quiet=args.quiet)
        print(f"Ray: {info['address']} with {info['nodes']} node(s); storage {storage}; experiment {args.name}")
        for plan in plans:
            check_trial_fits(plan.budget.cpus_per_trial, plan.budget.gpus_per_trial)
        check_shared_storage(storage)
        status = 0
        for plan in plans:
            code = run_dataset(plan, args, storage, store, resume[plan.dataset])
            if code == INTERRUPTED_EXIT:
                return code
            status = status or code
        return status
    except UserError as exc:
        if created is not None:
            created.remove_empty()
        print(f"search.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print(f"\nsearch interrupted; resume with:\n  {resume_command(args)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        if ray.is_initialized():
            ray.shutdown()


def run_dataset(plan: DatasetPlan, args: argparse.Namespace, storage: str, store: ResultStore, resume: bool) -> int:
    """One data set: run the trials, then publish (study record, winner re-run, confirmation, best config, report)."""
    from tune.runner.tuner import run_search

    started_at = utc_now()
    if args.resume and not resume:
        print(f"\n== {plan.dataset}: the interrupted search had not started it; starting it now")
    if plan.warm_start:
        ws = plan.warm_start
        print(f"{plan.dataset}: warm start from {len(ws.trials)} trial(s) of {', '.join(ws.studies)} "
              f"({portable_path(ws.storage)}); {len(ws.proposed)} earlier winner(s) proposed first")
    print(f"\n== {plan.dataset}: {plan.budget.num_samples} trials, up to {plan.budget.max_epochs} epochs each "
          f"({plan.budget.cpus_per_trial:g} CPU, {plan.budget.gpus_per_trial:g} GPU per trial); "
          f"Optuna study {args.name!r} in {portable_path(plan.optuna_storage)}")
    run = run_search(plan, args, storage, args.name, resume)
    if run.interrupted:
        print(f"\nsearch interrupted; state saved in {run.experiment}\n"
              f"resume with:\n  {resume_command(args)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    study = StudyRecord(
        dataset=plan.dataset, name=args.name, metric=plan.space.metric, mode=plan.space.mode,
        space_file=portable_path(plan.space.path) or "", space_sha256=plan.space.sha256,
        space_fingerprint=plan.space_fingerprint, data_path=portable_path(plan.data.source) or "",
        data_sha256=plan.data.sha256, base_config=plan.base_config.to_dict(), budget=plan.budget,
        optuna_storage=portable_path(plan.optuna_storage) or "", optuna_study=args.name, trials=run.trials,
        majority=plan.majority, warm_start=plan.warm_start.summary() if plan.warm_start else None,
        started_at=started_at, ended_at=utc_now(),
        search_seconds=run.seconds)
    return publish_search(plan, study, run.experiment, args, storage, store)


def publish_search(plan: DatasetPlan, study: StudyRecord, experiment: str, args: argparse.Namespace, storage: str,
                   store: ResultStore) -> int:
    from tune.publish import (
        best_from_search,
        confirmed,
        keep_ensemble,
        print_summary,
        rerun_winner,
        winner_config,
        write_report,
    )

    store.write_study(study)
    store.write_trials_csv(plan.dataset, [t.csv_row() for t in study.trials])
    winner = choose_winner(study.trials)
    print_summary(study, winner)
    if winner is None:
        print(f"{plan.dataset}: no trial finished with a finite score; nothing published", file=sys.stderr)
        record_story(plan.optuna_storage, study, None, None)
        write_report(plan.dataset, store)
        finish_tracking(args, plan, args.name, None, [store.report_path(plan.dataset)])
        return 1
    rerun, test = None, None
    if not args.no_rerun:
        # The same device type as the trials: exact reproduction holds on the same kind of device.
        device = "cuda" if plan.budget.gpus_per_trial > 0 and _cuda() else "cpu"
        rerun, test = rerun_winner(winner_config(study, plan.space, winner), winner, device, args.dataset_spec)
    best = best_from_search(study, plan.space, winner, seed=args.seed, experiment=experiment,
                            best_path=store.best_config_path(plan.dataset), rerun=rerun, test=test,
                            data_facts=plan.data.facts(plan.base_config.modalities))
    if args.confirm_top > 0:
        from tune.runner.confirmation import confirm_search

        print(f"confirming the top {args.confirm_top} configuration(s) and the baseline over {args.confirm_seeds} "
              "seeds ...")
        result = confirm_search(study, plan.space, plan.data, top=args.confirm_top, seeds=args.confirm_seeds,
                                cpus_per_trial=plan.budget.cpus_per_trial, gpus_per_trial=plan.budget.gpus_per_trial,
                                storage_path=f"{storage.rstrip('/')}/{args.name}",
                                name=f"{plan.dataset}-confirm-{utc_stamp()}",
                                verbose=0 if args.quiet else 1)
        best = keep_ensemble(confirmed(best, result, plan.space), result, store)
        print_confirmation(best.confirmation)
    best = best.replace(references=reference_scores(plan.data, plan.base_config.modalities))
    verdict = judge(published_test(best), best.references)
    if verdict:
        print(f"{plan.dataset}: {verdict}")
    outcome = store.publish_best(plan.dataset, best, overwrite=args.overwrite)
    print(f"{plan.dataset}: {'wrote' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
    record_story(plan.optuna_storage, study, best, {"written": outcome.written, "reason": outcome.reason,
                                                    "path": portable_path(outcome.path)})
    print(f"re-run the winner with:\n  {best.rerun_command}")
    write_report(plan.dataset, store)
    finish_tracking(args, plan, args.name, winner, [store.best_config_path(plan.dataset),
                                                    store.report_path(plan.dataset), store.figures_dir(plan.dataset)])
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
