"""`tune/confirm.py`: re-train the best configurations and the baseline over fresh seeds.

A single lucky trial is not a finding: a small dev split and the seed each move a score by
about as much as the hoped-for gain. Confirmation re-trains the top-K configurations of a
search by best dev F1, and the user's baseline, with S new seeds each (never the search's
seed), as parallel Ray trials, and reports per configuration the mean, std and 95% confidence
interval (t distribution) of the best dev weighted F1, and the paired difference to the
baseline (same seeds). The confirmed winner is the highest mean dev F1, the baseline included.

    python tune/confirm.py --dataset meld_text --confirm-top 1 --confirm-seeds 3

reads results/studies/<dataset>.json and results/best_configs/<dataset>.json of a finished
search, runs the confirmation, and updates the best config (`confirmation`, and `config` set to
the confirmed winner at its median seed) through `ResultStore.update_confirmation`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __name__ == "__main__" and not __package__:
    # Run as a script: import the project from the repo root, not from tune/ itself.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from joyful.config import JoyfulConfig, field_default, upgrade_config_values
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import portable_path
from tune.confirmation import (
    BASELINE_LABEL,
    ConfigRuns,
    ConfirmationResult,
    SeedRun,
    choose_confirmed_winner,
    print_confirmation,
)
from tune.space import SearchSpace, load_space

__all__ = ["DEFAULT_CONFIRM_SEEDS", "DEFAULT_CONFIRM_TOP", "apply_confirmation", "candidates_from_study", "confirm",
           "confirm_search", "confirmation_changes", "confirmation_seeds", "main", "print_confirmation"]

log = logging.getLogger("joyful.tune")
REPO = Path(__file__).resolve().parents[1]
SEED_OFFSET = 1000  # confirmation seeds are base seed + 1000 + i: never the search's own seed
DEFAULT_CONFIRM_TOP = 2
DEFAULT_CONFIRM_SEEDS = 3
ELIGIBLE_STATUSES = ("TERMINATED", "EARLY_STOPPED")


def confirmation_seeds(base_seed: int, count: int) -> list[int]:
    """`count` seeds for confirmation runs, all different from the search's `base_seed`."""
    if count < 2:
        raise UserError(f"--confirm-seeds is {count}, but must be >= 2 (a spread and a CI need two seeds)")
    return [base_seed + SEED_OFFSET + i for i in range(count)]


# --- running ------------------------------------------------------------------------------


def confirm_trial(params: dict[str, Any], *, configs: list[dict[str, Any]], data: DialogueData) -> None:
    """Ray Tune entry point: train configuration `config_index` with `seed`; report the whole run once."""
    from ray import tune

    from joyful.coach import NonFiniteLossError
    from joyful.run import build_coach
    from tune.trainable import trial_device

    config = JoyfulConfig.from_dict({**configs[params["config_index"]], "seed": params["seed"]},
                                    source="confirmation config")
    coach = build_coach(config, data, trial_device(), keep_best_state=True)
    try:
        summary = coach.fit(evaluate_test=True)
    except NonFiniteLossError as exc:  # a failed run, reported as such; retrying would fail the same way
        tune.report({"failed": str(exc)})
        return
    history = summary["history"]
    tune.report({
        "best_dev_weighted_f1": summary["best_dev_weighted_f1"], "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"], "test_weighted_f1": summary["test"]["weighted_f1"],
        "test_accuracy": summary["test"]["accuracy"],
        "curve": {"dev_weighted_f1": [r["dev_weighted_f1"] for r in history],
                  "train_loss": [r["train_loss"]["total"] for r in history],
                  "train_nll": [r["train_loss"]["nll"] for r in history]},
    })


def confirm(candidates: list[tuple[str, JoyfulConfig]], baseline: JoyfulConfig, seeds: list[int], *,
            data: DialogueData, cpus_per_trial: float, gpus_per_trial: float, storage_path: str, name: str,
            max_failures: int = 1, verbose: int = 0, proposal: dict[str, Any] | None = None) -> ConfirmationResult:
    """Train the baseline and every candidate with every seed as parallel Ray trials; summarise them.

    Each run trains for its config's `epochs` and evaluates test once at its best dev epoch.
    A candidate identical to the baseline (seed aside) is dropped. The Ray experiment is
    `<storage_path>/<name>`; Ray is started locally if it is not running yet.
    """
    from ray import tune

    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"confirmation seeds {seeds} must be a non-empty list without repeats")
    entries = [ConfigRuns(BASELINE_LABEL, baseline, [])]
    for label, config in candidates:
        if label in {e.label for e in entries}:
            raise UserError(f"confirmation label {label!r} is used twice")
        if any(_same_setup(config, e.config) for e in entries):
            log.warning("confirmation: %s has the same settings as an earlier entry; dropped", label)
            continue
        entries.append(ConfigRuns(label, config, []))
    started = time.perf_counter()
    trainable = tune.with_resources(
        tune.with_parameters(confirm_trial, configs=[e.config.to_dict() for e in entries], data=data),
        {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space={"config_index": tune.grid_search(list(range(len(entries)))), "seed": tune.grid_search(seeds)},
        # Reusing a worker between runs saves its start-up (seconds each); every run seeds itself afresh.
        tune_config=tune.TuneConfig(num_samples=1, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=storage_path, verbose=verbose,
                                  failure_config=tune.FailureConfig(max_failures=max_failures)),
    )
    grid = tuner.fit()
    for result in grid:
        entry = entries[result.config["config_index"]]
        entry.runs.append(_seed_run(result))
    for entry in entries:
        entry.runs.sort(key=lambda r: r.seed)
    return ConfirmationResult(seeds=list(seeds), entries=entries, winner_label=choose_confirmed_winner(entries),
                              wall_seconds=time.perf_counter() - started,
                              experiment=portable_path(f"{storage_path.rstrip('/')}/{name}"),
                              proposal=dict(proposal or {}))


def confirm_search(trials: list[dict[str, Any]], space: SearchSpace, base: JoyfulConfig, data: DialogueData, *,
                   top: int, seeds: int, cpus_per_trial: float, gpus_per_trial: float, storage_path: str, name: str,
                   verbose: int = 0) -> ConfirmationResult:
    """Confirm a finished search: its `top` best configurations (`trials` as rows with `status`, scores and
    params, e.g. `TrialRecord.csv_row()`) and the space's baseline on `base`, with `seeds` fresh seeds."""
    candidates = candidates_from_study(trials, space, base, top)
    baseline = tuned_baseline(trials, space, base)
    return confirm(candidates, baseline, confirmation_seeds(base.seed, seeds), data=data,
                   cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, storage_path=storage_path,
                   name=name, verbose=verbose, proposal=space.proposal)


def _same_setup(a: JoyfulConfig, b: JoyfulConfig) -> bool:
    return a.replace(seed=0) == b.replace(seed=0)


def _seed_run(result: Any) -> SeedRun:
    seed = int(result.config["seed"])
    metrics = result.metrics or {}
    if result.error or "best_dev_weighted_f1" not in metrics:
        error = str(result.error).strip().splitlines()[-1][:300] if result.error else metrics.get(
            "failed", "no result reported")
        return SeedRun(seed=seed, best_dev_weighted_f1=None, error=error)
    curve = metrics["curve"]
    best = float(metrics["best_dev_weighted_f1"])
    return SeedRun(seed=seed, best_dev_weighted_f1=best if math.isfinite(best) else None,
                   best_epoch=int(metrics["best_epoch"]), epochs_run=int(metrics["epochs_run"]),
                   test_weighted_f1=float(metrics["test_weighted_f1"]), test_accuracy=float(metrics["test_accuracy"]),
                   dev_weighted_f1=[float(v) for v in curve["dev_weighted_f1"]],
                   train_loss=[float(v) for v in curve["train_loss"]],
                   train_nll=[float(v) for v in curve["train_nll"]])


# --- from a finished search -------------------------------------------------------------


def search_base_config(config: JoyfulConfig, space: SearchSpace, max_epochs: int) -> JoyfulConfig:
    """The search's base config, recovered from one of its trial configs: searched settings back to
    their defaults (as the search left them before sampling) and the full epoch budget."""
    reset = {name: field_default(name) for name in space.param_names()}
    return config.replace(**reset, epochs=max_epochs)


def _ranked(ray_trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eligible trials, ranked as the search ranks its winner: best dev F1, earlier best epoch, trial id."""
    eligible = [t for t in ray_trials if t.get("status") in ELIGIBLE_STATUSES
                and isinstance(t.get("best_dev_weighted_f1"), (int, float))
                and math.isfinite(t["best_dev_weighted_f1"])]
    return sorted(eligible, key=lambda t: (-t["best_dev_weighted_f1"], t.get("best_epoch") or 0, str(t["trial_id"])))


def _params(trial: dict[str, Any], space: SearchSpace) -> dict[str, Any]:
    return {k: trial[k] for k in space.param_names() if k in trial and _present(trial[k])}


def tuned_point(ray_trials: list[dict[str, Any]], space: SearchSpace, base: JoyfulConfig,
                point: dict[str, Any]) -> tuple[JoyfulConfig, str | None]:
    """`point` (the baseline or the proposal) at tuned nuisance settings: its own values, and for the
    nuisance parameters it leaves open the values of the best trial that shares its scientific values
    (for the baseline, the best AutoFusion trial's learning rate etc.; for the proposal, the best
    hierarchical trial's). Returns the config and that trial's id; without such a trial, `point` as
    written and None."""
    scientific = {k: v for k, v in point.items() if k in space.scientific_names()}
    for trial in _ranked(ray_trials):
        params = _params(trial, space)
        if all(params.get(k) == v for k, v in scientific.items()):
            tuned = {k: params[k] for k in space.tuned_names(point) if k in params}
            values = {**tuned, **point}
            active = {p.name for p in space.define_by_run().parameters if p.is_active(values)}
            return space.trial_config(base, {k: v for k, v in values.items() if k in active}), str(trial["trial_id"])
    return space.trial_config(base, point), None


def tuned_baseline(ray_trials: list[dict[str, Any]], space: SearchSpace, base: JoyfulConfig) -> JoyfulConfig:
    """The baseline at tuned nuisance settings (see `tuned_point`)."""
    return tuned_point(ray_trials, space, base, space.baseline_point())[0]


def candidates_from_study(ray_trials: list[dict[str, Any]], space: SearchSpace, base: JoyfulConfig,
                          top: int) -> list[tuple[str, JoyfulConfig]]:
    """The `top` best distinct configurations of a search by best dev F1, the (tuned) baseline's excluded,
    and the space's `proposal` at tuned nuisance settings (`tuned_point`) when none of those is one.

    Each keeps the full epoch budget of `base`, also when ASHA stopped its trial early.
    """
    if top < 0:
        raise UserError(f"--confirm-top is {top}, but must be >= 0")
    ranked = _ranked(ray_trials)
    baseline = tuned_baseline(ray_trials, space, base)
    chosen: list[tuple[str, JoyfulConfig]] = []

    def distinct(config: JoyfulConfig) -> bool:
        return not _same_setup(config, baseline) and not any(_same_setup(config, c) for _, c in chosen)

    for rank, trial in enumerate(ranked, start=1):
        if len(chosen) >= top:
            break
        config = space.trial_config(base, _params(trial, space))
        if distinct(config):
            chosen.append((f"rank {rank}: trial {trial['trial_id']}", config))
    if top > 0 and space.proposal and not any(_matches(c, space.proposal) for _, c in chosen):
        # Tuned by the baseline's rule, so that the two differ in what the user proposes, not in how
        # often the search happened to sample the proposal's corner of the space.
        config, source = tuned_point(ray_trials, space, base, space.proposal)
        if distinct(config):
            chosen.append((f"proposal, tuned from trial {source}" if source else "proposal, untuned", config))
    return chosen


def _matches(config: JoyfulConfig, values: dict[str, Any]) -> bool:
    return all(getattr(config, k) == v for k, v in values.items())


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def confirmation_changes(document: dict[str, Any], result: ConfirmationResult) -> dict[str, Any]:
    """The best-config keys a confirmation replaces: `config` (the confirmed winner at its median-seed run),
    `searched`, `metric` and `test` of that run, and `checkpoint` (none is kept); `confirmation` itself apart."""
    run = result.winner_run
    config = result.winner_config
    searched = {k: config.to_dict()[k] for k in _active_names(document, config)}
    return {"config": config.to_dict(), "searched": searched,
            "metric": {**document["metric"], "value": run.best_dev_weighted_f1, "best_epoch": run.best_epoch},
            "test": {"weighted_f1": run.test_weighted_f1, "accuracy": run.test_accuracy}, "checkpoint": None,
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def apply_confirmation(document: dict[str, Any], result: ConfirmationResult) -> dict[str, Any]:
    """A copy of best-config `document` with the confirmation recorded and the confirmed winner as `config`."""
    return {**document, **confirmation_changes(document, result), "confirmation": result.to_dict()}


def _active_names(document: dict[str, Any], config: JoyfulConfig) -> list[str]:
    """The searched settings active in `config` (a trial's params hold only those)."""
    try:
        space = load_space(document["study"]["space_file"], document["dataset"])
    except UserError:  # the space file moved since the search: fall back to the recorded names
        return list(document.get("searched") or {})
    values: dict[str, Any] = {}
    for p in space.define_by_run().parameters:
        if p.is_active(values):
            values[p.name] = getattr(config, p.name)
    return list(values)


# --- CLI --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tune/confirm.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="data set of a finished search")
    p.add_argument("--results-dir", default=str(REPO / "results"), help="results folder of the search")
    p.add_argument("--data", help="data pickle (default: the path recorded in the best config)")
    p.add_argument("--dataset-spec", help="JSON spec of a user-defined data set")
    p.add_argument("--confirm-top", type=int, default=DEFAULT_CONFIRM_TOP,
                   help="best configurations of the search to confirm besides the baseline")
    p.add_argument("--confirm-seeds", type=int, default=DEFAULT_CONFIRM_SEEDS,
                   help="seeds per configuration (base seed + 1000 + i; at least 2)")
    p.add_argument("--cpus-per-trial", type=float, help="CPUs per run (default: the search's)")
    p.add_argument("--gpus-per-trial", type=float, help="GPUs per run (default: the search's)")
    p.add_argument("--address", help="join this Ray cluster ('auto' = the local `ray start` one; also RAY_ADDRESS)")
    p.add_argument("--storage-path", default="ray_results", help="Ray experiment storage (shared by all nodes)")
    p.add_argument("--name", help="experiment name (default: confirm-<dataset>-<UTC time>)")
    p.add_argument("--quiet", action="store_true", help="no Ray progress tables")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command = shlex.join(["python", "tune/confirm.py", *argv])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan = plan_confirmation(args)
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    return run_confirmation(plan, args)


@dataclass
class ConfirmationPlan:
    document: dict[str, Any]
    candidates: list[tuple[str, JoyfulConfig]]
    baseline: JoyfulConfig
    seeds: list[int]
    data: DialogueData
    cpus_per_trial: float
    gpus_per_trial: float
    storage: str
    name: str


def plan_confirmation(args: argparse.Namespace) -> ConfirmationPlan:
    """Everything checked before Ray starts: the search's records, the data fingerprint, the budget."""
    from joyful.datasets import check_dataset_name
    from joyful.run import load_data
    from tune.cluster import check_storage_path
    from tune.results import ResultStore

    check_dataset_name(args.dataset)
    store = ResultStore(args.results_dir)
    document = store.read_best(args.dataset)
    if document is None:
        raise UserError(f"no best config at {store.best_config_path(args.dataset)}; run tune/search.py first")
    study_path = Path(args.results_dir) / "studies" / f"{args.dataset}.json"
    try:
        study = json.loads(study_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{study_path}: cannot read the search's study ({exc}); run tune/search.py first") from None
    if study.get("space_file") != document["study"]["space_file"]:
        raise UserError(f"{study_path} and the best config come from different searches "
                        f"(space {study.get('space_file')} vs {document['study']['space_file']}); re-run the search")
    space = load_space(document["study"]["space_file"], args.dataset)
    trial_config = JoyfulConfig.from_dict(upgrade_config_values(document["single_trial_best"].get("config")
                                                                or document["config"], document["schema_version"]),
                                          source=f"{store.best_config_path(args.dataset)} single_trial_best.config")
    base = search_base_config(trial_config, space, int(study["max_epochs"]))
    if args.data:
        base = base.replace(data=str(Path(args.data).resolve()))
    data = load_data(base, args.dataset_spec)
    if data.sha256 != document["data"]["sha256"]:
        raise UserError(f"{data.source} is not the data the search used (sha256 {data.sha256[:12]}… vs "
                        f"{document['data']['sha256'][:12]}…); pass --data with that file")
    baseline = tuned_baseline(study["ray_trials"], space, base)
    candidates = candidates_from_study(study["ray_trials"], space, base, args.confirm_top)
    resources = document["study"].get("resources") or {}
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else resources.get("cpus_per_trial",
                                                                                     space.budget.cpus_per_trial)
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else resources.get("gpus_per_trial",
                                                                                     space.budget.gpus_per_trial)
    if cpus <= 0 or gpus < 0:
        raise UserError(f"--cpus-per-trial {cpus} must be > 0 and --gpus-per-trial {gpus} >= 0")
    name = args.name or f"confirm-{args.dataset}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    check_dataset_name(name)
    storage = check_storage_path(args.storage_path)
    if "://" not in storage and (Path(storage) / name).exists():
        raise UserError(f"experiment {Path(storage) / name} exists; pass another --name")
    return ConfirmationPlan(document, candidates, baseline, confirmation_seeds(base.seed, args.confirm_seeds), data,
                            float(cpus), float(gpus), storage, name)


def run_confirmation(plan: ConfirmationPlan, args: argparse.Namespace) -> int:
    import ray

    from tune.cluster import check_shared_storage, check_trial_fits, start_ray
    from tune.references import judge, reference_scores, winner_test
    from tune.results import ResultStore

    try:
        start_ray(args.address)
        check_trial_fits(plan.cpus_per_trial, plan.gpus_per_trial)
        check_shared_storage(plan.storage)
        print(f"confirming {len(plan.candidates)} configuration(s) and the baseline with seeds "
              f"{', '.join(map(str, plan.seeds))} -> {plan.storage}/{plan.name}")
        result = confirm(plan.candidates, plan.baseline, plan.seeds, data=plan.data,
                         cpus_per_trial=plan.cpus_per_trial, gpus_per_trial=plan.gpus_per_trial,
                         storage_path=plan.storage, name=plan.name, verbose=0 if args.quiet else 1)
        confirmation = {**result.to_dict(), "command": args.command}
        print_confirmation(confirmation)
        changes = {**confirmation_changes(plan.document, result),
                   "references": reference_scores(plan.data, plan.baseline.modalities)}
        verdict = judge(winner_test({**plan.document, "confirmation": confirmation}), changes["references"])
        if verdict:
            print(f"{args.dataset}: {verdict}")
        outcome = ResultStore(args.results_dir).update_confirmation(
            args.dataset, confirmation, changes,
            data_sha256=plan.document["data"]["sha256"], study_name=plan.document["study"]["name"])
        print(f"{args.dataset}: {'updated' if outcome.written else 'kept'} {outcome.path} ({outcome.reason})")
        return 0 if outcome.written else 1
    except UserError as exc:
        print(f"confirm.py: error: {exc}", file=sys.stderr)
        return UserError.exit_code
    finally:
        if ray.is_initialized():
            ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
