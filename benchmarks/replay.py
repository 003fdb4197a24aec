"""Replays of whole searches on real JOYFUL learning curves: which sampler and scheduler publish the best model for
their compute.

The learning-curve table (benchmarks/curves.py) holds, for a space-filling sample of the MELD space on an
IEMOCAP-sized draw of MELD, every configuration's held-out score, test score and seconds at every epoch of every
cross-validation fold. A surrogate fitted on it (`Surrogate`: per arm of the scientific parameter, a random
forest from the configuration to its mean curves over the folds, and a fold's deviation from that mean taken from
the nearest configuration of the table) turns any configuration a sampler proposes into fold curves. A replay
(`replay`) runs the service's own code on them in simulated time: the arm samplers (`tune.sampling`), the
scheduler (`tune.runner.scheduler.PatientHalving`, as patient or plain ASHA, or none), the trainable's fold score
(`tune.runner.trainable.cv_score`) and the one ranking (`tune.records.choose_winner`), with the search's real
concurrency; a trial's epochs take the seconds the table measured. What the search would publish after each
finished trial is scored by the surrogate's noise-free test curve, as regret to the best configuration of the
table.

    python -m benchmarks --sections searchers        # every arm x budget x 30 seeds, a few minutes
    python -m benchmarks.replay --seeds 3 --budgets 1  # a quick look
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TABLE = Path(__file__).resolve().parent / "curves" / "meld_draw0.jsonl"
# (name, sampler, separate arms, start-up: None sized to the budget, "concurrency" as the service before)
SAMPLER_ARMS = (
    ("random", "random", True, None),
    ("tpe-shared", "tpe", False, "concurrency"),
    ("tpe", "tpe", True, None),
    ("gp", "gp", True, None),
)
SCHEDULER_ARMS = ("fifo", "asha", "patient")
TRIAL_OVERHEAD_S = 3.0  # a trial's start-up beyond its epochs (tune.forecast's default)


# --- the table -----------------------------------------------------------------------------------------


@dataclass
class CurveTable:
    """The learning-curve table: its settings, the space it sampled, the draw's facts, and per configuration its
    parameters and the (folds x epochs) curves of held-out score, test score and seconds."""

    header: dict[str, Any]
    space: Any
    facts: dict[str, Any]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    dev: dict[str, np.ndarray] = field(default_factory=dict)
    test: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = TABLE) -> CurveTable:
        from benchmarks.curves import companion
        from tune.space import load_space

        lines = path.read_text().splitlines()
        header = json.loads(lines[0])
        table = cls(
            header,
            load_space(companion(path, "space"), "meld_text"),
            json.loads(companion(path, "facts").read_text()),
        )
        runs: dict[str, dict[int, dict[str, Any]]] = {}
        for line in lines[1:]:
            row = json.loads(line)
            if not row["failed"] and len(row["dev"]) == header["epochs"]:
                runs.setdefault(row["id"], {})[row["fold"]] = row
        for config_id, folds in runs.items():
            if len(folds) < header["folds"]:
                continue  # a configuration still being trained (or one that failed a fold)
            ordered = [folds[f] for f in sorted(folds)]
            table.params[config_id] = ordered[0]["params"]
            for name in ("dev", "test", "seconds"):
                getattr(table, name)[config_id] = np.array(
                    [r[name] for r in ordered], dtype=np.float64
                )
        return table

    @property
    def epochs(self) -> int:
        return int(self.header["epochs"])

    @property
    def folds(self) -> int:
        return int(self.header["folds"])

    def arm_of(self, params: dict[str, Any]) -> str:
        from tune.sampling import arm_key

        return arm_key({k: params[k] for k in self.space.scientific_names()})

    def ids(self, arm: str | None = None) -> list[str]:
        return [c for c in self.params if arm is None or self.arm_of(self.params[c]) == arm]

    def real_best(self, config_id: str) -> tuple[float, int]:
        """A configuration's real score as a full search trial gets it: the best epoch of its mean curve."""
        mean = self.dev[config_id].mean(axis=0)
        return float(mean.max()), int(mean.argmax()) + 1


# --- the surrogate -------------------------------------------------------------------------------------


class Surrogate:
    """Per arm, configuration -> mean curves (held-out, test) and seconds per epoch, from a random forest on the
    parameters put on [0, 1]; fold curves add the fold deviations of the nearest table configuration."""

    def __init__(self, table: CurveTable, *, seed: int = 0, trees: int = 200) -> None:
        self.table, self.seed, self.trees = table, seed, trees
        self.arms = sorted({table.arm_of(p) for p in table.params.values()})
        self.models: dict[str, Any] = {}
        self.features: dict[str, np.ndarray] = {}
        self.members: dict[str, list[str]] = {}
        for arm in self.arms:
            ids = table.ids(arm)
            self.members[arm] = ids
            self.features[arm] = np.array([self.encode(table.params[c]) for c in ids])
            self.models[arm] = self._fit(
                self.features[arm], np.array([self._targets(c) for c in ids])
            )

    def names(self, arm: str) -> list[str]:
        """The parameters a configuration of `arm` has, besides the scientific one."""
        scientific = set(self.table.space.scientific_names())
        example = self.table.params[self.table.ids(arm)[0]]
        return [
            p.name
            for p in self.table.space.parameters
            if p.name in example and p.name not in scientific
        ]

    def encode(self, params: dict[str, Any]) -> list[float]:
        by_name = {p.name: p for p in self.table.space.parameters}
        return [
            by_name[name].to_unit(params[name]) for name in self.names(self.table.arm_of(params))
        ]

    def _targets(self, config_id: str) -> np.ndarray:
        return np.concatenate(
            [
                self.table.dev[config_id].mean(axis=0),
                self.table.test[config_id].mean(axis=0),
                [self.table.seconds[config_id][:, 1:].mean()],
            ]
        )

    def _fit(self, x: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.trees, min_samples_leaf=2, random_state=self.seed, n_jobs=1
        ).fit(x, y)

    def truth(self, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float]:
        """The noise-free mean curves (held-out, test) and the seconds of an epoch of `params`."""
        arm = self.table.arm_of(params)
        out = self.models[arm].predict(np.array([self.encode(params)]))[0]
        epochs = self.table.epochs
        return out[:epochs], out[epochs : 2 * epochs], float(out[-1])

    def folds(self, params: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, float]:
        """Fold curves (folds x epochs) of one simulated trial of `params`, and its seconds per epoch."""
        arm = self.table.arm_of(params)
        mean, _, seconds = self.truth(params)
        distance = np.linalg.norm(self.features[arm] - np.array(self.encode(params)), axis=1)
        near = np.argsort(distance)[:3]
        donor = self.members[arm][int(rng.choice(near))]
        deviation = self.table.dev[donor] - self.table.dev[donor].mean(axis=0)
        return np.clip(mean + deviation, 0.0, 1.0), seconds

    def fidelity(self, folds: int = 5) -> dict[str, Any]:
        """Held-out fidelity: per arm, the Spearman rank correlation and the mean absolute error between the
        predicted and the real best score of configurations the forest was not fitted on (k-fold over
        configurations)."""
        from scipy.stats import spearmanr

        found = {}
        for arm in self.arms:
            ids, x = self.members[arm], self.features[arm]
            y = np.array([self._targets(c) for c in ids])
            order = np.random.default_rng(self.seed).permutation(len(ids))
            predicted = np.zeros(len(ids))
            for part in np.array_split(order, folds):
                rest = np.setdiff1d(order, part)
                model = self._fit(x[rest], y[rest])
                predicted[part] = model.predict(x[part])[:, : self.table.epochs].max(axis=1)
            real = np.array([self.table.real_best(c)[0] for c in ids])
            found[arm] = {
                "configurations": len(ids),
                "spearman": float(spearmanr(predicted, real).statistic),
                "mean_absolute_error": float(np.mean(np.abs(predicted - real))),
            }
        return found

    def best_in_table(self) -> float:
        """The best test score the surrogate gives a configuration of the table, at the epoch a full trial of it
        would choose: what the regret is measured to."""
        best = -math.inf
        for params in self.table.params.values():
            dev, test, _ = self.truth(params)
            best = max(best, float(test[int(dev.argmax())]))
        return best


# --- one replay ----------------------------------------------------------------------------------------


@dataclass
class Replay:
    """What one simulated search did: after each finished trial, the compute spent (fold-epochs), the simulated
    seconds and what it would publish (test wF1 and regret); how its trials were proposed; its fusion verdict."""

    points: list[tuple[int, float, float, float]]  # (fold-epochs, seconds, test wF1, regret)
    counts: dict[str, Any]
    verdict: str | None  # the arm whose best trial ranks first
    trials: int
    concurrency: int  # trials at once

    def at(self, effort: float) -> tuple[float, float] | None:
        """(test, regret) of what it would publish once `effort` fold-epochs were spent; None before its first
        trial finished."""
        found = None
        for spent, _, test, regret in self.points:
            if spent > effort + 1e-9:
                break
            found = (test, regret)
        return found


def replay(
    table: CurveTable,
    surrogate: Surrogate,
    *,
    sampler: str,
    separate_arms: bool,
    startup: int | None,
    scheduler: str,
    trials: int,
    concurrency: int,
    seed: int,
    best: float,
) -> Replay:
    """One search of `trials` trials, `concurrency` at a time, in simulated time (module docstring)."""
    import optuna

    from tune.records import Outcome, TrialRecord, choose_winner, classify
    from tune.runner.scheduler import PatientHalving
    from tune.runner.trainable import cv_score
    from tune.sampling import ArmedSampler
    from tune.space import Strategy
    from tune.stats.noise import SplitNoise

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space, folds, epochs = table.space, table.folds, table.epochs
    strategy = Strategy(sampler=sampler, startup_trials=startup or 0)
    core = ArmedSampler(
        optuna.create_study(direction="maximize"),
        space,
        strategy,
        seed=seed,
        trials=trials,
        queued=[space.baseline_point()],
        separate_arms=separate_arms,
        stopped_scored=True,  # as the service's searcher does with cross-validation
    )
    halving = (
        None
        if scheduler == "fifo"
        else PatientHalving(
            time_attr="fold",
            max_t=folds,
            grace_period=1,
            reduction_factor=space.budget.reduction_factor,
            floor=table.facts["majority_weighted_f1"],
            noise=SplitNoise(**table.facts["noise"]),
            metric="search_score",
            mode="max",
            patient=scheduler == "patient",
        )
    )
    rng = np.random.default_rng(seed)
    events: list[tuple[float, int, str]] = []  # (simulated time, order, trial): its next epoch ends
    state: dict[str, dict[str, Any]] = {}
    records: list[Any] = []
    points: list[tuple[int, float, float, float]] = []
    spent, started = 0, 0
    order = itertools.count()  # breaks ties between events at the same simulated time

    def start(now: float) -> None:
        nonlocal started
        proposal = core.ask()
        curves, seconds = surrogate.folds(proposal.params, rng)
        trial_id = f"t{started}"
        started += 1
        state[trial_id] = {
            "proposal": proposal,
            "curves": curves,
            "seconds": seconds,
            "fold": 0,
            "epoch": 0,
            "done": [],
            "result": {"fold": 0, "search_score": math.nan},
        }
        heapq.heappush(events, (now + TRIAL_OVERHEAD_S + seconds, next(order), trial_id))

    def finish(trial_id: str, result: dict[str, Any], now: float) -> None:
        trial = state.pop(trial_id)
        outcome = classify(result, False, folds, "fold")
        number, score = trial["proposal"].number, result.get("search_score", math.nan)
        core.finish(
            number,
            "COMPLETE" if outcome is Outcome.COMPLETE else outcome.optuna_state,
            score if outcome is Outcome.COMPLETE else None,
        )
        ok = bool(trial["done"]) and math.isfinite(score)
        records.append(
            TrialRecord(
                trial_id=trial_id,
                params=trial["proposal"].params,
                outcome=outcome,
                epochs_run=epochs,
                folds_run=len(trial["done"]),
                best_dev_weighted_f1=score if ok else None,
                best_epoch=result.get("best_epoch") if ok else None,
            )
        )
        winner = choose_winner(records)
        if winner is not None:
            _, test, _ = surrogate.truth(winner.params)
            value = float(test[winner.best_epoch - 1])
            points.append((spent, now, value, best - value))

    for _ in range(min(concurrency, trials)):
        start(0.0)
    while events:
        now, _, trial_id = heapq.heappop(events)
        trial = state[trial_id]
        spent += 1
        trial["epoch"] += 1
        result = dict(trial["result"])
        if trial["epoch"] == epochs:  # a fold ends: its score joins the trial's
            trial["done"].append(list(trial["curves"][trial["fold"]]))
            score, best_epoch, _ = cv_score(trial["done"])
            trial["fold"] += 1
            trial["epoch"] = 0
            result = trial["result"] = {
                "fold": trial["fold"],
                "search_score": score,
                "best_epoch": best_epoch,
            }
            core.report(trial["proposal"].number, trial["fold"], score)
        decision = halving.decide(trial_id, result) if halving is not None else "CONTINUE"
        if trial["fold"] == folds or decision == "STOP":
            finish(trial_id, result, now)
            if started < trials:
                start(now)
        else:
            heapq.heappush(events, (now + trial["seconds"], next(order), trial_id))
    by_arm: dict[str, Any] = {}
    for record in records:
        arm = table.arm_of(record.params)
        if (
            arm not in by_arm
            and choose_winner([r for r in records if table.arm_of(r.params) == arm]) is not None
        ):
            by_arm[arm] = choose_winner([r for r in records if table.arm_of(r.params) == arm])
    verdict = (
        max(by_arm, key=lambda a: (by_arm[a].folds_run or 0, by_arm[a].best_dev_weighted_f1))
        if len(by_arm) > 1
        else None
    )
    return Replay(points, core.counts(), verdict, started, concurrency)


# --- the comparison ---------------------------------------------------------------------------------------


def _mean_ci(
    values: list[float], rng: np.random.Generator, replicates: int = 2000
) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    means = rng.choice(array, size=(replicates, len(array)), replace=True).mean(axis=1)
    return {
        "mean": float(array.mean()),
        "ci95": [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))],
    }


def _paired_difference(
    first: list[float], second: list[float], rng: np.random.Generator, replicates: int = 2000
) -> dict[str, Any]:
    diff = np.asarray(first) - np.asarray(second)
    picks = rng.integers(0, len(diff), size=(replicates, len(diff)))
    means = diff[picks].mean(axis=1)
    low, high = float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
    return {"mean": float(diff.mean()), "ci95": [low, high], "excludes_zero": low > 0 or high < 0}


_WORKER: dict[str, Any] = {}


def _start_worker(table: CurveTable, surrogate: Surrogate, best: float) -> None:
    import torch  # Optuna's GP sampler computes with torch: one thread per worker process

    torch.set_num_threads(1)
    _WORKER.update(table=table, surrogate=surrogate, best=best)


def _replay_job(job: dict[str, Any]) -> Replay:
    return replay(_WORKER["table"], _WORKER["surrogate"], best=_WORKER["best"], **job)


def service_concurrency(sampler: str, separate: bool, trials: int, slots: int, arms: int) -> int:
    """Trials at once the service runs on `slots` free trial slots (`SearchPlan.concurrency` with no
    `max_concurrent`): all of them for random search, else at most as many as leave half of the
    trials to the sampler's model (`tune.plan.learning_concurrency`)."""
    from tune.plan import learning_concurrency
    from tune.sampling import default_startup

    if sampler == "random":
        return slots
    arms = arms if separate else 1
    startup = default_startup(sampler, trials / arms)
    return min(slots, learning_concurrency(trials, arms, startup))


def compare(
    table: CurveTable,
    *,
    seeds: int = 30,
    budgets: tuple[int, ...] = (1, 2, 4),
    concurrency: int | None = None,
    slots: int | None = None,
    arms: tuple = SAMPLER_ARMS,
    schedulers: tuple[str, ...] = SCHEDULER_ARMS,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every sampler x scheduler x budget (multiples of the space's trial budget) x `seeds`, on
    `workers` processes (default: every CPU); the anytime table. `concurrency` runs every arm at
    that many trials at once; `slots` instead gives each arm the concurrency the service would
    choose on that many free trial slots (`service_concurrency`): a larger machine or cluster."""
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    surrogate = Surrogate(table)
    best = surrogate.best_in_table()
    fidelity = surrogate.fidelity()
    log(
        "  replay: surrogate fidelity (held-out configurations): "
        + ", ".join(
            f"{arm} Spearman {f['spearman']:.2f}, MAE {f['mean_absolute_error']:.3f}"
            for arm, f in fidelity.items()
        )
    )
    space = table.space
    base_trials = space.budget.num_samples
    fixed = concurrency or (None if slots else space.budget.max_concurrent or 2)
    fusion_arms = len(space.arms())
    runs: dict[str, dict[str, list[Replay]]] = {}
    context = multiprocessing.get_context("fork")
    # Each worker holds the table and the surrogate; a replay is one seed of one arm and budget.
    with context.Pool(
        workers or 1, initializer=_start_worker, initargs=(table, surrogate, best)
    ) as pool:
        for multiple in budgets:
            trials = base_trials * multiple
            for name, sampler, separate, startup in arms:
                for scheduler in schedulers:
                    key = f"{name}+{scheduler}"
                    first = time.perf_counter()
                    at_once = fixed or service_concurrency(
                        sampler, separate, trials, slots, fusion_arms
                    )
                    job = dict(
                        sampler=sampler,
                        separate_arms=separate,
                        startup=max(10, at_once) if startup == "concurrency" else startup,
                        scheduler=scheduler,
                        trials=trials,
                        concurrency=at_once,
                    )
                    runs.setdefault(str(multiple), {})[key] = pool.map(
                        _replay_job, [{**job, "seed": seed} for seed in range(seeds)]
                    )
                    log(
                        f"  replay: {trials} trials, {key} ({at_once} at once): {seeds} seeds in "
                        f"{time.perf_counter() - first:.1f} s"
                    )
    return summarise(
        table,
        runs,
        fidelity=fidelity,
        best=best,
        seconds=time.perf_counter() - started,
        concurrency=fixed or f"the service's choice on {slots} slots",
        truth=_fusion_truth(table),
    )


def _fusion_truth(table: CurveTable) -> str:
    """The arm whose best configuration in the table scores higher (real curves, the best epoch of the mean)."""
    return max(
        {table.arm_of(p) for p in table.params.values()},
        key=lambda arm: max(table.real_best(c)[0] for c in table.ids(arm)),
    )


def summarise(
    table: CurveTable,
    runs: dict[str, dict[str, list[Replay]]],
    *,
    fidelity: dict[str, Any],
    best: float,
    seconds: float,
    concurrency: int | str,
    truth: str,
) -> dict[str, Any]:
    """Per budget and arm: the final regret and test with 95% intervals over seeds, the compute used, the share of
    trials the sampler's model proposed, how often the fusion verdict matches the table; the anytime curves on a
    grid of compute; and each arm against the best random search at the compute it used."""
    from tune.space import Strategy

    rng = np.random.default_rng(0)
    default = Strategy()
    out: dict[str, Any] = {
        "table": table.header,
        "fidelity": fidelity,
        "best_test_in_table": best,
        "concurrency": concurrency,
        "fusion_truth": truth,
        "seconds": round(seconds, 1),
        "default_arm": f"{default.sampler}+{default.scheduler}",
        "budgets": {},
    }
    for multiple, arms in runs.items():
        grid_top = max(p[0] for reps in arms.values() for r in reps for p in r.points)
        grid = [int(grid_top * k / 20) for k in range(1, 21)]
        rows = {}
        for key, reps in arms.items():
            final = [r.points[-1] for r in reps]
            shares = [r.counts["model"] / max(1, r.trials) for r in reps]
            anytime = []
            for effort in grid:
                values = [r.at(effort) for r in reps]
                if all(v is not None for v in values):
                    anytime.append({"fold_epochs": effort, **_mean_ci([v[1] for v in values], rng)})
            rows[key] = {
                "regret": _mean_ci([p[3] for p in final], rng),
                "test": _mean_ci([p[2] for p in final], rng),
                "fold_epochs": statistics.fmean(p[0] for p in final),
                "seconds": statistics.fmean(p[1] for p in final),
                "concurrency": reps[0].concurrency,
                "model_share": statistics.fmean(shares),
                "least_model_share": min(shares),
                "fusion_agrees": statistics.fmean(r.verdict == truth for r in reps),
                "anytime": anytime,
            }
        for key, reps in arms.items():
            effort = rows[key]["fold_epochs"]
            best_random = None
            for random_key in [k for k in arms if k.startswith("random+")]:
                values = [r.at(effort) for r in arms[random_key]]
                if any(v is None for v in values):
                    continue
                regret = statistics.fmean(v[1] for v in values)
                if best_random is None or regret < best_random[1]:
                    best_random = (random_key, regret, [v[1] for v in values])
            if best_random is not None and not key.startswith("random+"):
                ours = [r.at(effort)[1] for r in reps]
                rows[key]["vs_random"] = {
                    "random": best_random[0],
                    "random_regret": best_random[1],
                    "ratio": statistics.fmean(ours) / best_random[1] if best_random[1] else None,
                    "difference": _paired_difference(ours, best_random[2], rng),
                }
        out["budgets"][multiple] = {
            "trials": table.space.budget.num_samples * int(multiple),
            "arms": rows,
        }
    return out


def _at_once(summary: dict[str, Any]) -> str:
    concurrency = summary["concurrency"]
    return f"{concurrency} trials at a time" if isinstance(concurrency, int) else concurrency


def render(summary: dict[str, Any]) -> str:
    """The anytime table as text: per budget and arm, regret and test of what would be published (mean, CI95 over
    seeds), compute, the model-proposed share, the fusion verdict's agreement, and the ratio to random search."""
    lines = [
        f"regret = best test wF1 in the table ({summary['best_test_in_table']:.4f}) - test wF1 of what the "
        f"search would publish; {_at_once(summary)}; fusion truth: "
        f"{summary['fusion_truth']}"
    ]
    for multiple, budget in summary["budgets"].items():
        lines.append(f"\n{budget['trials']} trials ({multiple}x the space's budget)")
        lines.append(
            f"{'arm':<22}{'regret [CI95]':>26}{'test':>8}{'fold-epochs':>13}{'at once':>8}{'model':>7}"
            f"{'verdict':>9}{'vs best random at equal compute':>40}"
        )
        for key, row in sorted(budget["arms"].items(), key=lambda kv: kv[1]["regret"]["mean"]):
            regret = row["regret"]
            versus = row.get("vs_random")
            ratio = (
                (
                    f"{versus['ratio']:.2f}x {versus['random']} [{versus['difference']['ci95'][0]:+.4f}, "
                    f"{versus['difference']['ci95'][1]:+.4f}]"
                )
                if versus and versus["ratio"] is not None
                else "-"
            )
            lines.append(
                f"{key:<22}{regret['mean']:>9.4f} [{regret['ci95'][0]:.4f}, {regret['ci95'][1]:.4f}]"
                f"{row['test']['mean']:>8.4f}{row['fold_epochs']:>13.0f}{row['concurrency']:>8}"
                f"{row['model_share']:>7.0%}"
                f"{row['fusion_agrees']:>9.0%}{ratio:>40}"
            )
    return "\n".join(lines)


def plot_anytime(summary: dict[str, Any], path: Path, budget: str = "1") -> Path:
    """The anytime curves of one budget: regret of what each search would publish against the
    fold-epochs spent, mean and 95% interval over seeds, one panel per scheduler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = summary["budgets"][budget]["arms"]
    schedulers = sorted({key.split("+")[1] for key in arms}, key=SCHEDULER_ARMS.index)
    figure, axes = plt.subplots(
        1, len(schedulers), figsize=(4.2 * len(schedulers), 3.6), sharey=True
    )
    for ax, scheduler in zip(np.atleast_1d(axes), schedulers, strict=True):
        for key, row in sorted(arms.items()):
            name, kind = key.split("+")
            if kind != scheduler or not row["anytime"]:
                continue
            x = [p["fold_epochs"] for p in row["anytime"]]
            mean = [p["mean"] for p in row["anytime"]]
            low, high = zip(*(p["ci95"] for p in row["anytime"]), strict=True)
            (line,) = ax.plot(x, mean, label=name)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
        ax.set_title(f"scheduler: {scheduler}")
        ax.set_xlabel("fold-epochs spent")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("regret (test wF1 below the table's best)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    figure.suptitle(
        f"{summary['budgets'][budget]['trials']} trials, {_at_once(summary)}: mean "
        "and 95% interval over seeds",
        fontsize=10,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--budgets", default="1,2,4", help="multiples of the space's trial budget")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="trials at a time (default: the space's)"
    )
    parser.add_argument(
        "--slots",
        type=int,
        default=None,
        help="free trial slots: each arm at the concurrency the service chooses on them",
    )
    parser.add_argument("--arms", help="sampler arms to run, comma-separated (default: all)")
    parser.add_argument("--schedulers", help="schedulers to run, comma-separated (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: every CPU)")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--plot", type=Path, help="draw the default budget's anytime curves here")
    args = parser.parse_args(argv)
    summary = compare(
        CurveTable.load(args.table),
        seeds=args.seeds,
        budgets=tuple(int(b) for b in args.budgets.split(",")),
        concurrency=args.concurrency,
        slots=args.slots,
        arms=tuple(a for a in SAMPLER_ARMS if not args.arms or a[0] in args.arms.split(",")),
        schedulers=tuple(args.schedulers.split(",")) if args.schedulers else SCHEDULER_ARMS,
        workers=args.workers,
    )
    print(render(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    if args.plot:
        print(f"wrote {plot_anytime(summary, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
