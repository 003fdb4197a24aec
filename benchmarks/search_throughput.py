"""Search throughput: trials per hour and where a search's wall time goes, at 1, 2 and 4 concurrent trials.

Every trial trains the shipped `search_spaces/synthetic.yaml` configuration on
small synthetic data for a fixed number of epochs (ASHA made inert), so all
trials are alike. Wall time is `Tuner.fit`; training time is the sum of the
`train_seconds` the trials report. Dev evaluation is not reported by the
trainable, so it is taken from the same baseline trial run outside Ray
(`standalone_trial_worker`). Ray/Optuna overhead is the rest of the trial
slots' time (`concurrency x wall`): actor start and imports, data transfer,
checkpoints and reports, scheduling, Optuna, idle slots.

The IEMOCAP-size overhead comes from one real 2-CPU Ray trial of the default
model on IEMOCAP-4-size data, checkpointing as `search_spaces/iemocap_4.yaml`
does (`checkpoint_every`), against the same trial outside Ray, and is then
extrapolated to the epochs of a real search (labelled as such).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mib, run_worker
from benchmarks.searches import SHIPPED_SPACE, SPACES, baseline_trial_config, run_search, start_ray

IEMOCAP_SPACE = SPACES / "iemocap_size.yaml"


def shipped_iemocap_budget() -> Any:
    """The budget of `search_spaces/iemocap_4.yaml`: its max_epochs and checkpoint_every size the figure."""
    from tune.space import default_space_path, load_space

    return load_space(default_space_path("iemocap_4"), "iemocap_4").budget


def standalone_trial_worker(params: dict[str, Any]) -> dict[str, Any]:
    """One trial's config trained outside Ray (data load, build, fit), plus the time of one checkpoint save."""
    import torch

    from joyful.checkpoint import save_checkpoint
    from joyful.config import JoyfulConfig
    from joyful.run import build_coach, load_data

    config = JoyfulConfig.from_dict(params["config"], source="benchmark trial config")
    started = time.perf_counter()
    coach = build_coach(config, load_data(config), torch.device("cpu"), keep_best_state=False)
    built = time.perf_counter()
    coach.fit(evaluate_test=False)
    finished = time.perf_counter()
    train = sum(r["train_seconds"] for r in coach.history)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coach.pt"
        checkpoint_started = time.perf_counter()
        save_checkpoint(
            path, config, coach.state_dict()
        )  # what the trainable does after every epoch
        checkpoint_seconds = time.perf_counter() - checkpoint_started
        checkpoint_mib = path.stat().st_size / 2**20
    epochs = len(coach.history)
    return {
        "epochs": epochs,
        "build_seconds": built - started,
        "fit_seconds": finished - built,
        "train_seconds": train,
        "eval_seconds_per_epoch": (finished - built - train) / epochs,
        "epoch_seconds": (finished - built) / epochs,
        "checkpoint_seconds": checkpoint_seconds,
        "checkpoint_mib": checkpoint_mib,
        "peak_rss_mib": peak_rss_mib(),
        "threads": torch.get_num_threads(),
    }


def _trial_work(standalone: dict[str, Any]) -> float:
    """A trial's own work outside Ray: load the data, build the model, train and evaluate (no imports)."""
    return standalone["build_seconds"] + standalone["fit_seconds"]


def measure_search_throughput(
    data_path: str,
    storage: Path,
    *,
    concurrencies: list[int],
    epochs: int,
    trials: Callable[[int], int],
    iemocap_data: str | None = None,
    iemocap_epochs: int | None = None,
    iemocap_cpus: int = 2,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    log("  search throughput: baseline trial outside Ray ...")
    standalone = run_worker(
        "standalone_trial",
        {"config": baseline_trial_config(data_path, SHIPPED_SPACE, storage, epochs)},
    )
    result: dict[str, Any] = {
        "epochs_per_trial": epochs,
        "standalone_trial": standalone,
        "runs": {},
    }
    start_ray(max(concurrencies))
    for concurrency in concurrencies:
        n = trials(concurrency)
        log(f"  search throughput: {n} trials, {concurrency} at a time ...")
        run = run_search(
            data_path,
            SHIPPED_SPACE,
            storage,
            f"throughput-c{concurrency}",
            num_samples=n,
            max_epochs=epochs,
            grace_period=epochs,
            reduction_factor=2,
            concurrency=concurrency,
            seed=0,
        )
        slots = concurrency * run.wall_seconds
        train = sum(t["train_seconds"] for t in run.trials)
        evaluation = standalone["eval_seconds_per_epoch"] * sum(t["epochs"] for t in run.trials)
        result["runs"][str(concurrency)] = {
            "trials": n,
            "wall_seconds": run.wall_seconds,
            "trials_per_hour": 3600 * n / run.wall_seconds,
            "training_share": train / slots,
            "dev_eval_share_estimated": evaluation / slots,
            "overhead_share": 1 - (train + evaluation) / slots,
            "overhead_seconds_per_trial": (slots - train - evaluation) / n,
            "inside_trainable_share": sum(t["trial_seconds"] for t in run.trials) / slots,
            "peak_trial_rss_mib": run.peak_trial_rss_mib,
        }
    single = result["runs"].get("1")
    if single:
        single["ray_seconds_per_trial_over_standalone"] = single["wall_seconds"] / single[
            "trials"
        ] - _trial_work(standalone)
    if iemocap_data:
        result["iemocap_trial"] = _iemocap_trial(
            iemocap_data, storage, iemocap_epochs, iemocap_cpus, log
        )
    return result


def _iemocap_trial(
    data_path: str, storage: Path, epochs: int | None, cpus: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """One real Ray trial (`cpus` CPUs and threads) of the default model on IEMOCAP-size data, and the same outside Ray.

    By default it runs `checkpoint_every` epochs of the shipped IEMOCAP space, so it saves exactly one
    checkpoint, as every block of that many epochs of a real trial does.
    """
    shipped = shipped_iemocap_budget()
    every = shipped.checkpoint_every
    epochs = epochs or every
    log(f"  search overhead at IEMOCAP size: one {epochs}-epoch trial outside Ray ...")
    config = baseline_trial_config(data_path, IEMOCAP_SPACE, storage, epochs, cpus_per_trial=cpus)
    standalone = run_worker("standalone_trial", {"config": config})
    log("  search overhead at IEMOCAP size: the same trial through Ray ...")
    start_ray(max(cpus, 2))
    run = run_search(
        data_path,
        IEMOCAP_SPACE,
        storage,
        "iemocap-trial",
        num_samples=1,
        max_epochs=epochs,
        grace_period=epochs,
        reduction_factor=2,
        concurrency=1,
        seed=0,
        cpus_per_trial=cpus,
        checkpoint_every=every,
    )
    overhead = run.wall_seconds - _trial_work(standalone)
    # Each checkpoint costs a save plus Ray's copy to storage; the rest of the overhead is per trial.
    saves = -(-epochs // every)  # every `every` epochs, and at the last one
    per_checkpoint = min(overhead / saves, 2 * standalone["checkpoint_seconds"])
    fixed = overhead - saves * per_checkpoint
    n = shipped.max_epochs
    full_trial = standalone["build_seconds"] + n * standalone["epoch_seconds"]
    full_overhead = fixed + -(-n // every) * per_checkpoint
    return {
        "epochs": epochs,
        "cpus": cpus,
        "checkpoint_every": every,
        "standalone": standalone,
        "ray_wall_seconds": run.wall_seconds,
        "overhead_seconds": overhead,
        "overhead_share_measured": overhead / run.wall_seconds,
        "peak_trial_rss_mib": run.peak_trial_rss_mib,
        "extrapolated_epochs": n,
        "overhead_per_checkpoint_seconds": per_checkpoint,
        "overhead_fixed_seconds": fixed,
        "overhead_share_extrapolated": full_overhead / (full_trial + full_overhead),
    }
