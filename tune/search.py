"""`tune/search.py` / `joyful-search`: find the best JOYFUL settings per data set.

Ray Tune runs the trials (packed onto CPUs/GPUs, on a laptop or a cluster),
Optuna's TPE proposes them (define-by-run, seeded, the user's baseline first),
ASHA stops weak ones early, and the winner of each data set is re-trained
through the training code path and written to results/best_configs/<dataset>.json.

    python tune/search.py --dataset synthetic --data data/synthetic/data_synthetic.pkl
    python tune/search.py --dataset iemocap_4 --dataset meld --address auto --storage-path /shared/ray_results
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.datasets import check_dataset_name, resolve_dataset
from joyful.errors import UserError
from joyful.io import atomic_write_json, portable_path
from joyful.run import RunOptions, load_data, train
from tune.cluster import GracefulStop
from tune.collect import STATUS_LABELS, TrialRecord, choose_winner, export_study, outcome_counts, record_from_result
from tune.confirm import (
    DEFAULT_CONFIRM_SEEDS,
    DEFAULT_CONFIRM_TOP,
    apply_confirmation,
    confirm_search,
    print_confirmation,
)
from tune.references import judge, reference_scores, winner_test
from tune.results import BEST_CONFIG_SCHEMA_VERSION, ResultStore
from tune.space import Budget, SearchSpace, resolve_space, write_default_space
from tune.tracking import add_tracking_arguments, check_tracking, tracking_callbacks

log = logging.getLogger("joyful.tune")
REPO = Path(__file__).resolve().parents[1]
INTERRUPTED_EXIT = 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tune/search.py", description=__doc__.split("\n\n")[0],
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
    run.add_argument("--storage-path", default="ray_results",
                     help="experiment storage: local folder, shared file system or pyarrow URI (s3://, gs://); "
                          "must be shared by all nodes of a cluster (default: ./ray_results)")
    run.add_argument("--name", help="experiment name (default: search-<UTC time>); reuse it with --resume")
    run.add_argument("--resume", action="store_true", help="continue the experiment --name in --storage-path")
    run.add_argument("--results-dir", default=str(REPO / "results"), help="where best configs, trial tables and reports go")
    run.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")
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
    run.add_argument("--quiet", action="store_true", help="no Ray progress tables")
    add_tracking_arguments(p)
    p.add_argument("--write-space", metavar="FILE",
                   help="write the default search space for --dataset to FILE (a starting file to edit) and exit")
    return p


@dataclass
class DatasetPlan:
    """Everything checked before Ray starts."""

    dataset: str
    space: SearchSpace
    budget: Budget
    base_config: JoyfulConfig
    data: DialogueData


def _per_dataset(values: list[str], datasets: list[str], flag: str) -> list[str | None]:
    if not values:
        return [None] * len(datasets)
    if len(values) != len(datasets):
        raise UserError(f"{flag} given {len(values)} time(s) for {len(datasets)} --dataset; give it once per data set")
    return list(values)


def resolve_budget(space: SearchSpace, args: argparse.Namespace) -> Budget:
    overrides = {name: getattr(args, name) for name in ("num_samples", "max_epochs", "grace_period",
                                                          "reduction_factor", "cpus_per_trial", "gpus_per_trial",
                                                          "max_concurrent", "checkpoint_every")
                 if getattr(args, name) is not None}
    budget = replace(space.budget, **overrides)
    rules = [(budget.num_samples >= 1, f"--num-samples is {budget.num_samples}, but must be >= 1"),
             (budget.max_epochs >= 1, f"--max-epochs is {budget.max_epochs}, but must be >= 1"),
             (1 <= budget.grace_period <= budget.max_epochs,
              f"--grace-period is {budget.grace_period}, but must be in 1..max epochs ({budget.max_epochs})"),
             (budget.reduction_factor >= 2, f"--reduction-factor is {budget.reduction_factor}, but must be >= 2"),
             (budget.cpus_per_trial > 0, f"--cpus-per-trial is {budget.cpus_per_trial}, but must be > 0"),
             (budget.gpus_per_trial >= 0, f"--gpus-per-trial is {budget.gpus_per_trial}, but must be >= 0"),
             (budget.max_concurrent >= 0, f"--max-concurrent is {budget.max_concurrent}, but must be >= 0"),
             (budget.checkpoint_every >= 1, f"--checkpoint-every is {budget.checkpoint_every}, but must be >= 1")]
    for ok, message in rules:
        if not ok:
            raise UserError(message)
    return budget


def plan_dataset(dataset: str, data_path: str | None, space_path: str | None, args: argparse.Namespace) -> DatasetPlan:
    check_dataset_name(dataset)
    resolve_dataset(dataset, args.dataset_spec)
    space, note = resolve_space(dataset, space_path)
    if note:
        print(f"{dataset}: {note}")
    budget = resolve_budget(space, args)
    values = {**JoyfulConfig(dataset=dataset).to_dict(), **space.fixed, "dataset": dataset,
              "epochs": budget.max_epochs, "num_threads": max(1, int(budget.cpus_per_trial))}
    if data_path:
        values["data"] = portable_path(data_path)  # as result files record it; errors name the path as given
    base = JoyfulConfig.from_dict(values, source=f"search space {space.path}")
    where = base.replace(data=str(Path(data_path).resolve())) if data_path else base
    data = load_data(where, args.dataset_spec, check_modalities="modalities" in space.fixed)
    if "modalities" not in space.fixed:  # the space leaves them open: every modality the file has
        base = base.replace(modalities="".join(m for m in "atv" if m in data.modality_dims))
    if not base.data:
        base = base.replace(data=portable_path(data.source))
    return DatasetPlan(dataset, space, budget, base, data)


# --- the search -------------------------------------------------------------------


def experiment_path(storage: str, name: str, dataset: str) -> str:
    return f"{storage.rstrip('/')}/{name}/{dataset}"


def experiments_to_resume(datasets: list[str], storage: str, name: str) -> dict[str, bool]:
    """With --resume: which data sets continue their experiment (True) and which start now (False).

    A search runs its data sets in order and an interruption stops it, so the experiments that
    exist are the first data sets' ones; the later ones had not started and start now. Anything
    else (none exists, or a gap) means a wrong --name, --storage-path or --dataset list.
    """
    from ray.tune import Tuner

    exists = [Tuner.can_restore(experiment_path(storage, name, d)) for d in datasets]
    if not any(exists):
        raise UserError(f"--resume: no experiment to resume at {experiment_path(storage, name, datasets[0])}; "
                        "check --name and --storage-path")
    started = exists.index(False) if False in exists else len(exists)
    if any(exists[started:]):
        later = datasets[started + exists[started:].index(True)]
        raise UserError(f"--resume: {later}'s experiment exists but {datasets[started]}'s, earlier in the --dataset "
                        "order, does not; list the data sets in the order of the interrupted search")
    return dict(zip(datasets, exists, strict=True))


def build_tuner(plan: DatasetPlan, args: argparse.Namespace, storage: str, name: str, resume: bool) -> Any:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter

    from tune.optuna_searcher import TruthfulOptunaSearch
    from tune.trainable import train_trial

    budget = plan.budget
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, base_config=plan.base_config.to_dict(), data=plan.data,
                             checkpoint_every=budget.checkpoint_every),
        {"cpu": budget.cpus_per_trial, "gpu": budget.gpus_per_trial})
    experiment = experiment_path(storage, name, plan.dataset)
    if resume:
        from ray.tune import Tuner

        return Tuner.restore(experiment, trainable, resume_unfinished=True, resume_errored=True), experiment
    concurrency = budget.max_concurrent or max(1, int(_cluster_cpus() // budget.cpus_per_trial))
    # TPE's random start-up phase is sized to the concurrency (ray#52535): with more trials in
    # flight than start-up trials, TPE would otherwise model from almost nothing.
    sampler = optuna.samplers.TPESampler(seed=args.seed, n_startup_trials=max(10, concurrency))
    # With a define-by-run space Ray never forwards TuneConfig's metric/mode to the searcher
    # (OptunaSearch.set_search_properties returns early), so it gets them here as well.
    searcher = TruthfulOptunaSearch(space=plan.space.define_by_run(), metric=plan.space.metric, mode=plan.space.mode,
                                    points_to_evaluate=[plan.space.baseline_point()], sampler=sampler,
                                    max_epochs=budget.max_epochs)
    if budget.max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=budget.max_concurrent)
    scheduler = ASHAScheduler(time_attr="epoch", max_t=budget.max_epochs, grace_period=budget.grace_period,
                              reduction_factor=budget.reduction_factor)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(metric=plan.space.metric, mode=plan.space.mode, search_alg=searcher,
                                    scheduler=scheduler, num_samples=budget.num_samples,
                                    # Reused actors let a stopped trial's thread unwind before the next starts;
                                    # killing the actor mid-unwind aborted the process (noisy, harmless)
                                    # and actor start-up was most of the per-trial overhead.
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=plan.dataset, storage_path=f"{storage.rstrip('/')}/{name}",
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=tracking_callbacks(args, plan.dataset, name),
            verbose=0 if args.quiet else 1),
    )
    return tuner, experiment


def _cluster_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 1.0)


def searcher_study(tuner: Any, experiment: str) -> Any:
    """The Optuna study the search used (restored from the experiment folder after a resume)."""
    from tune.optuna_searcher import TruthfulOptunaSearch

    searcher = TruthfulOptunaSearch(max_epochs=1)
    try:
        searcher.restore_from_dir(experiment)
    except Exception as exc:  # a search that never saved its searcher state
        log.warning("could not read the Optuna study from %s: %s", experiment, exc)
        return None
    return searcher._ot_study


def run_dataset(plan: DatasetPlan, args: argparse.Namespace, storage: str, name: str,
                store: ResultStore, resume: bool) -> int:
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    if args.resume and not resume:
        print(f"\n== {plan.dataset}: the interrupted search had not started it; starting it now")
    tuner, experiment = build_tuner(plan, args, storage, name, resume)
    print(f"\n== {plan.dataset}: {plan.budget.num_samples} trials x up to {plan.budget.max_epochs} epochs "
          f"({plan.budget.cpus_per_trial:g} CPU, {plan.budget.gpus_per_trial:g} GPU per trial) -> {experiment}")
    with GracefulStop() as stop:  # Ctrl-C: Tune saves the state and fit() returns; stop says it was stopped
        grid = tuner.fit()
    records = [record_from_result(result, plan.budget.max_epochs) for result in grid]
    finished = grid.num_terminated + grid.num_errors
    if stop.requested or finished < len(grid):
        print(f"\nsearch interrupted; state saved in {experiment}\n"
              f"resume with:\n  {resume_command(args, name)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    search_seconds = time.perf_counter() - started
    winner = choose_winner(records)
    store.write_trials_csv(plan.dataset, [r.csv_row() for r in records])
    study = searcher_study(tuner, experiment)
    atomic_write_json(Path(args.results_dir) / "studies" / f"{plan.dataset}.json", {
        "dataset": plan.dataset, "metric": plan.space.metric, "mode": plan.space.mode,
        "space_file": portable_path(plan.space.path), "max_epochs": plan.budget.max_epochs,
        "grace_period": plan.budget.grace_period, "reduction_factor": plan.budget.reduction_factor,
        "optuna_trials": export_study(study),
        "ray_trials": [{**r.csv_row(), "curve": r.curve, "checkpoint": portable_path(r.checkpoint)} for r in records],
    })
    print_summary(plan.dataset, records, winner)
    if winner is None:
        print(f"{plan.dataset}: no trial finished with a finite score; nothing published", file=sys.stderr)
        return 1
    document = best_document(plan, args, winner, records, experiment, name, started_at, search_seconds, store)
    if args.confirm_top > 0:
        print(f"confirming the top {args.confirm_top} configuration(s) and the baseline over {args.confirm_seeds} seeds ...")
        result = confirm_search([r.csv_row() for r in records], plan.space, plan.base_config, plan.data,
                                top=args.confirm_top, seeds=args.confirm_seeds,
                                cpus_per_trial=plan.budget.cpus_per_trial, gpus_per_trial=plan.budget.gpus_per_trial,
                                storage_path=f"{storage.rstrip('/')}/{name}",
                                name=f"{plan.dataset}-confirm-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}",
                                verbose=0 if args.quiet else 1)
        document = apply_confirmation(document, result)
        print_confirmation(document["confirmation"])
    document["references"] = reference_scores(plan.data, plan.base_config.modalities)
    verdict = judge(winner_test(document), document["references"])
    if verdict:
        print(f"{plan.dataset}: {verdict}")
    outcome = store.publish_best(plan.dataset, document, overwrite=args.overwrite)
    where = store.best_config_path(plan.dataset)
    print(f"{plan.dataset}: {'wrote' if outcome.written else 'kept'} {where} ({outcome.reason})")
    print(f"re-run the winner with:\n  {document['rerun_command']}")
    return 0


def best_document(plan: DatasetPlan, args: argparse.Namespace, winner: TrialRecord, records: list[TrialRecord],
                  experiment: str, name: str, started_at: str, search_seconds: float, store: ResultStore) -> dict:
    # An ASHA-stopped winner is re-run for exactly the epochs it trained, so the re-run reproduces it.
    config = plan.space.trial_config(plan.base_config, winner.params).replace(epochs=winner.epochs_run)
    rerun: dict[str, Any] = {"ran": False}
    test = None
    if not args.no_rerun:
        print(f"re-training the winner ({winner.trial_id}) through the training code path ...")
        # The same device type as the trials: exact reproduction holds on the same kind of device.
        device = "cuda" if plan.budget.gpus_per_trial > 0 and _cuda() else "cpu"
        metrics = train(config, RunOptions(device=device, dataset_spec=args.dataset_spec), log=lambda message: None)
        reproduced = metrics["best_dev_weighted_f1"] == winner.best_dev_weighted_f1
        rerun = {"ran": True, "best_dev_weighted_f1": metrics["best_dev_weighted_f1"],
                 "best_epoch": metrics["best_epoch"], "reproduced": reproduced, "device": metrics["device"],
                 "wall_seconds": metrics["wall_seconds"]}
        test = {"weighted_f1": metrics["test"]["weighted_f1"], "accuracy": metrics["test"]["accuracy"]}
        print(f"re-run: best dev wF1 {metrics['best_dev_weighted_f1']:.4f} (trial: {winner.best_dev_weighted_f1:.4f}, "
              f"{'reproduced exactly' if reproduced else 'DIFFERS'}); test wF1 {test['weighted_f1']:.4f}")
    best_path = store.best_config_path(plan.dataset)
    searched = {k: v for k, v in winner.params.items()}
    return {
        "schema_version": BEST_CONFIG_SCHEMA_VERSION,
        "kind": "joyful-tune best config",
        "dataset": plan.dataset,
        "modalities": config.modalities,
        "data": {"path": portable_path(plan.data.source), "sha256": plan.data.sha256},
        "config": config.to_dict(),
        "searched": searched,
        "metric": {"name": plan.space.metric, "mode": plan.space.mode, "value": winner.best_dev_weighted_f1,
                   "best_epoch": winner.best_epoch},
        "test": test,
        "rerun": rerun,
        "single_trial_best": {"trial_id": winner.trial_id, "config": config.to_dict(), "searched": searched,
                              "value": winner.best_dev_weighted_f1, "best_epoch": winner.best_epoch,
                              "checkpoint": portable_path(winner.checkpoint)},
        "confirmation": None,
        "study": {
            "name": name, "experiment": portable_path(experiment), "space_file": portable_path(plan.space.path),
            "space_sha256": plan.space.sha256,
            "num_samples": plan.budget.num_samples,
            "searcher": {"kind": "optuna-tpe", "seed": args.seed, "baseline_first": plan.space.baseline_point()},
            "scheduler": {"kind": "asha", "time_attr": "epoch", "max_t": plan.budget.max_epochs,
                          "grace_period": plan.budget.grace_period, "reduction_factor": plan.budget.reduction_factor},
            "resources": {"cpus_per_trial": plan.budget.cpus_per_trial, "gpus_per_trial": plan.budget.gpus_per_trial,
                          "max_concurrent": plan.budget.max_concurrent},
            "trials": outcome_counts(records),
            "started_at": started_at, "ended_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "search_seconds": round(search_seconds, 1), "storage_path": portable_path(experiment.rsplit("/", 2)[0]),
        },
        "versions": versions(),
        "rerun_command": f"python train.py --config {shlex.quote(_display(best_path))}",
        "checkpoint": portable_path(winner.checkpoint),
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def versions() -> dict[str, str]:
    import platform

    import optuna
    import ray
    import torch

    import joyful

    return {"python": platform.python_version(), "torch": torch.__version__, "ray": ray.__version__,
            "optuna": optuna.__version__, "joyful_tune": joyful.__version__}


def print_summary(dataset: str, records: list[TrialRecord], winner: TrialRecord | None, top: int = 10) -> None:
    counts = outcome_counts(records)
    print(f"\n{dataset}: {len(records)} trials - " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    ranked = sorted(records, key=lambda r: -(r.best_dev_weighted_f1 if r.best_dev_weighted_f1 is not None else -1))
    print(f"{'trial':<18}{'status':<15}{'epochs':>7}{'best dev wF1':>14}  params")
    for r in ranked[:top]:
        score = f"{r.best_dev_weighted_f1:.4f}" if r.best_dev_weighted_f1 is not None else "-"
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(r.params.items()))
        mark = " <- best" if winner is not None and r.trial_id == winner.trial_id else ""
        print(f"{r.trial_id:<18}{STATUS_LABELS[r.outcome]:<15}{r.epochs_run:>7}{score:>14}  {params}{mark}")
        if r.error:
            print(f"{'':<18}error: {r.error}")


def resume_command(args: argparse.Namespace, name: str) -> str:
    """The exact command that continues this search."""
    parts = [sys.executable, "tune/search.py"]
    for index, dataset in enumerate(args.dataset):
        parts += ["--dataset", dataset]
        if args.data:
            parts += ["--data", args.data[index]]
        if args.space:
            parts += ["--space", args.space[index]]
    for flag in ("num_samples", "max_epochs", "grace_period", "reduction_factor", "cpus_per_trial", "gpus_per_trial",
                 "max_concurrent", "checkpoint_every", "address", "dataset_spec", "mlflow_uri", "wandb_project"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    parts += ["--storage-path", args.storage_path, "--name", name, "--results-dir", args.results_dir,
              "--seed", str(args.seed), "--max-failures", str(args.max_failures),
              "--confirm-top", str(args.confirm_top), "--confirm-seeds", str(args.confirm_seeds)]
    if args.dashboard_host != "127.0.0.1":
        parts += ["--dashboard-host", args.dashboard_host]
    if args.wandb_project and args.wandb_mode != "online":
        parts += ["--wandb-mode", args.wandb_mode]
    parts += [f"--{flag.replace('_', '-')}" for flag in ("overwrite", "no_rerun", "quiet", "mlflow") if getattr(args, flag)]
    return shlex.join([*parts, "--resume"])


class CreatedFolders:
    """The storage and results folders a search is about to create: removed again, when they hold no file,
    if the search is refused before any trial ran (a refused search leaves nothing behind)."""

    def __init__(self, *paths: str) -> None:
        self.new = [self._topmost_missing(Path(p).resolve()) for p in paths if "://" not in p and not Path(p).exists()]

    @staticmethod
    def _topmost_missing(path: Path) -> Path:
        """The highest folder of `path` that does not exist yet (mkdir(parents=True) creates it too)."""
        while not path.parent.exists():
            path = path.parent
        return path

    def remove_empty(self) -> None:
        for root in self.new:
            if root.is_dir() and not any(path.is_file() for path in root.rglob("*")):
                shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    # Small trials checkpoint every epoch (exact resume, `budget.checkpoint_every`); Ray's warning
    # about frequent experiment snapshots would then repeat every few seconds.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    created = CreatedFolders(args.storage_path, args.results_dir)
    try:
        if len(set(args.dataset)) != len(args.dataset):
            raise UserError("--dataset lists a data set twice")
        if args.write_space:
            if len(args.dataset) != 1:
                raise UserError("--write-space writes the space of one --dataset; give exactly one")
            check_dataset_name(args.dataset[0])
            print(f"wrote {write_default_space(args.dataset[0], args.write_space)}: the default search space "
                  f"for {args.dataset[0]}; edit it, then pass --space {args.write_space} (or keep it as "
                  f"search_spaces/{args.dataset[0]}.yaml)")
            return 0
        if args.max_failures < -1:
            raise UserError(f"--max-failures is {args.max_failures}, but must be >= -1 (-1 = retry forever)")
        if args.confirm_top < 0 or (args.confirm_top > 0 and args.confirm_seeds < 2):
            raise UserError(f"--confirm-top is {args.confirm_top} and --confirm-seeds {args.confirm_seeds}, but "
                            "they must be >= 0 and >= 2 (--confirm-top 0 turns confirmation off)")
        check_tracking(args)
        data_paths = _per_dataset(args.data, args.dataset, "--data")
        space_paths = _per_dataset(args.space, args.dataset, "--space")
        plans = [plan_dataset(d, dp, sp, args) for d, dp, sp in zip(args.dataset, data_paths, space_paths, strict=True)]
        from tune.cluster import check_storage_path

        # Storage and name first: refusing them must not leave empty result folders behind.
        storage = check_storage_path(args.storage_path)
        name = args.name or f"search-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
        check_dataset_name(name)
        if args.resume:
            resume = experiments_to_resume(args.dataset, storage, name)
        else:
            resume = dict.fromkeys(args.dataset, False)
            for plan in plans:
                existing = Path(experiment_path(storage, name, plan.dataset))
                if "://" not in storage and existing.exists():
                    raise UserError(f"experiment {existing} exists; pass --resume to continue it or another --name")
        store = ResultStore(args.results_dir)
        store.check_writable()
    except UserError as exc:
        created.remove_empty()
        print(f"search.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_all(plans, args, storage, name, store, resume, created)


def run_all(plans: list[DatasetPlan], args: argparse.Namespace, storage: str, name: str, store: ResultStore,
            resume: dict[str, bool], created: CreatedFolders | None = None) -> int:
    import ray

    from tune.cluster import check_shared_storage, check_trial_fits, start_ray

    try:
        info = start_ray(args.address, args.dashboard_host)
        print(f"Ray: {info['address']} with {info['nodes']} node(s); storage {storage}; experiment {name}")
        for plan in plans:
            check_trial_fits(plan.budget.cpus_per_trial, plan.budget.gpus_per_trial)
        check_shared_storage(storage)
        status = 0
        for plan in plans:
            code = run_dataset(plan, args, storage, name, store, resume[plan.dataset])
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
        print(f"\nsearch interrupted; resume with:\n  {resume_command(args, name)}", file=sys.stderr)
        return INTERRUPTED_EXIT
    finally:
        if ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
