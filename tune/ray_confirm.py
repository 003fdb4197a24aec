"""The part of a confirmation that talks to Ray: every (configuration, seed) as a parallel Ray trial.

Each run trains for its config's `epochs`, selects on dev and evaluates test once at its best dev
epoch; `tune/confirm_stats.py` turns the runs into statistics and the confirmed winner.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.errors import UserError
from joyful.io import portable_path
from tune.candidates import candidates_from_study, confirmation_seeds, same_setup, tuned_baseline
from tune.confirm_stats import BASELINE_LABEL, ConfigRuns, ConfirmationResult, SeedRun, choose_confirmed_winner
from tune.records import StudyRecord
from tune.space import SearchSpace

__all__ = ["confirm", "confirm_search", "confirm_trial"]

log = logging.getLogger("joyful.tune")


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
        if any(same_setup(config, e.config) for e in entries):
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


def confirm_search(study: StudyRecord, space: SearchSpace, data: DialogueData, *, top: int, seeds: int,
                   cpus_per_trial: float, gpus_per_trial: float, storage_path: str, name: str,
                   verbose: int = 0) -> ConfirmationResult:
    """Confirm a finished search: its `top` best configurations and the space's baseline (both at tuned
    settings, see `tune/candidates.py`), with `seeds` fresh seeds each."""
    base = study.base()
    return confirm(candidates_from_study(study.trials, space, base, top), tuned_baseline(study.trials, space, base),
                   confirmation_seeds(base.seed, seeds), data=data, cpus_per_trial=cpus_per_trial,
                   gpus_per_trial=gpus_per_trial, storage_path=storage_path, name=name, verbose=verbose,
                   proposal=space.proposal)


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
