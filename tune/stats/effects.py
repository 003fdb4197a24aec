"""The expected effects of the proposed fusion settings, measured on re-trained runs.

Pure functions over per-seed curves (no training, no Ray). Expected from the gated hierarchical
fusion and its loss settings, against the original AutoFusion:

    convergence     +15-25% faster   epochs until dev weighted F1 first reaches 95% of the best
    stability       +30-40%          std across seeds of the best dev weighted F1, and std of dev
                                     weighted F1 over a run's last 10 epochs (all if fewer)
    training loss   -10-20%          the last epoch's training loss
    weighted F1     +1-2 points      best dev weighted F1 and test weighted F1 (at the best epoch)

"+1-2%" on F1 is read as percentage points (0.01-0.02 weighted F1): the usual meaning for a
score in [0, 1]. Every standard deviation here is the sample one (n - 1 in the denominator).
The verdict of each row is computed from the numbers, never written by hand.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from tune.records import EffectRow, Verdict

__all__ = [
    "EXPECTATIONS",
    "Expectation",
    "GroupEffects",
    "RunCurve",
    "compare_effects",
    "epochs_to_reach",
    "mean_ci95",
    "summarise_runs",
    "tail_std",
    "verdict",
]

CONVERGENCE_FRACTION = 0.95
TAIL_EPOCHS = 10
# A spread across seeds is judged from at least this many seeds: from two values the true s.d. is
# known only within 0.45x to 32x of the estimate (95%), far too loose for "30-40% lower".
MIN_SPREAD_SEEDS = 3
_EDGE = 1e-9


@dataclass(frozen=True)
class RunCurve:
    """One training run: per-epoch dev weighted F1 and training loss (epoch 1 first), and its test
    score."""

    dev_weighted_f1: Sequence[float]
    train_loss: Sequence[float]  # total training loss, mean over the epoch's batches
    train_nll: Sequence[float] | None = None  # its classification (NLL) part
    test_weighted_f1: float | None = None

    def __post_init__(self) -> None:
        if not self.dev_weighted_f1:
            raise ValueError("a RunCurve needs at least one epoch of dev_weighted_f1")
        if len(self.train_loss) != len(self.dev_weighted_f1):
            raise ValueError(
                f"train_loss has {len(self.train_loss)} epochs, but dev_weighted_f1 has "
                f"{len(self.dev_weighted_f1)}; they must match"
            )


def epochs_to_reach(
    dev_weighted_f1: Sequence[float], fraction: float = CONVERGENCE_FRACTION
) -> int:
    """The first epoch (1-based) whose dev F1 is >= `fraction` of the run's best dev F1."""
    if not dev_weighted_f1:
        raise ValueError("dev_weighted_f1 is empty; a run needs at least one epoch")
    if not 0 < fraction <= 1:
        raise ValueError(f"The value of `fraction` is {fraction}, but must be in (0, 1]")
    target = fraction * max(dev_weighted_f1)
    return next(epoch for epoch, value in enumerate(dev_weighted_f1, start=1) if value >= target)


def tail_std(values: Sequence[float], last: int = TAIL_EPOCHS) -> float:
    """Sample std of the last `last` values (all of them if fewer); NaN with fewer than two."""
    if last < 2:
        raise ValueError(f"The value of `last` is {last}, but must be >= 2")
    tail = list(values)[-last:]
    return statistics.stdev(tail) if len(tail) >= 2 else math.nan


def _mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(present) if present else math.nan


def _std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) >= 2 else math.nan


@dataclass(frozen=True)
class GroupEffects:
    """The measures of one configuration over its seeds (means over seeds unless stated)."""

    seeds: int
    epochs_to_95: float
    best_dev_std: float  # std across seeds of the best dev F1
    spread_seeds: int  # the seeds behind best_dev_std
    tail_dev_std: float  # mean over seeds of the std of dev F1 over the last epochs
    final_train_loss: float
    final_train_nll: float
    dev_weighted_f1: float  # mean best dev F1
    test_weighted_f1: float

    # Per-seed values of the measures that have one, in the order of the runs (for paired counts).
    per_seed: dict[str, list[float]]


def summarise_runs(runs: Sequence[RunCurve], seeds: Sequence[int] | None = None) -> GroupEffects:
    """The effect measures of one configuration's runs (one run per seed, or with `seeds` the seed
    of each run: under cross-validation several folds share a seed, and the spread across seeds is
    that of each seed's mean over its folds, never the spread across folds)."""
    if not runs:
        raise ValueError("summarise_runs needs at least one run")
    per_seed = {
        "epochs_to_95": [float(epochs_to_reach(r.dev_weighted_f1)) for r in runs],
        "tail_dev_std": [tail_std(r.dev_weighted_f1) for r in runs],
        "final_train_loss": [float(r.train_loss[-1]) for r in runs],
        "final_train_nll": [float(r.train_nll[-1]) if r.train_nll else math.nan for r in runs],
        "dev_weighted_f1": [float(max(r.dev_weighted_f1)) for r in runs],
        "test_weighted_f1": [
            math.nan if r.test_weighted_f1 is None else float(r.test_weighted_f1) for r in runs
        ],
    }
    seed_means = _seed_means(per_seed["dev_weighted_f1"], seeds)
    return GroupEffects(
        seeds=len(runs),
        epochs_to_95=_mean(per_seed["epochs_to_95"]),
        best_dev_std=_std(seed_means),
        spread_seeds=len(seed_means),
        tail_dev_std=_mean(per_seed["tail_dev_std"]),
        final_train_loss=_mean(per_seed["final_train_loss"]),
        final_train_nll=_mean(per_seed["final_train_nll"]),
        dev_weighted_f1=_mean(per_seed["dev_weighted_f1"]),
        test_weighted_f1=_mean(per_seed["test_weighted_f1"]),
        per_seed=per_seed,
    )


def _seed_means(values: Sequence[float], seeds: Sequence[int] | None) -> list[float]:
    """Each seed's mean of `values` (one per run, in the order of `seeds`); else `values`."""
    if seeds is None:
        return list(values)
    grouped: dict[int, list[float]] = {}
    for seed, value in zip(seeds, values, strict=True):
        grouped.setdefault(seed, []).append(value)
    return [statistics.fmean(group) for group in grouped.values()]


@dataclass(frozen=True)
class Expectation:
    """One expected effect: the measure, how a change is expressed, and the hoped-for range."""

    effect: str
    measure: str  # a GroupEffects field
    description: str
    change: (
        str  # "reduction": (baseline - winner) / baseline; "gain_points": (winner - baseline) * 100
    )
    low: float  # hoped-for range of the change, in the change's unit (fraction or points)
    high: float
    expected: str  # as the user wrote it


EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        "convergence",
        "epochs_to_95",
        "epochs to 95% of the run's best dev wF1",
        "reduction",
        0.15,
        0.25,
        "15-25% faster",
    ),
    Expectation(
        "stability",
        "best_dev_std",
        "std across seeds of best dev wF1",
        "reduction",
        0.30,
        0.40,
        "30-40% lower",
    ),
    Expectation(
        "stability",
        "tail_dev_std",
        f"std of dev wF1 over the last {TAIL_EPOCHS} epochs or all if fewer (mean over seeds)",
        "reduction",
        0.30,
        0.40,
        "30-40% lower",
    ),
    Expectation(
        "training loss",
        "final_train_loss",
        "final training loss (total)",
        "reduction",
        0.10,
        0.20,
        "10-20% lower",
    ),
    Expectation(
        "training loss",
        "final_train_nll",
        "final training NLL (classification part only)",
        "reduction",
        0.10,
        0.20,
        "10-20% lower",
    ),
    Expectation(
        "F1",
        "dev_weighted_f1",
        "best dev wF1 (mean over seeds)",
        "gain_points",
        1.0,
        2.0,
        "+1-2 points",
    ),
    Expectation(
        "F1",
        "test_weighted_f1",
        "test wF1 at the best dev epoch (mean over seeds)",
        "gain_points",
        1.0,
        2.0,
        "+1-2 points",
    ),
)
# For these measures lower is better; for the others (F1) higher is.
_LOWER_IS_BETTER = {
    "epochs_to_95",
    "tail_dev_std",
    "final_train_loss",
    "final_train_nll",
    "best_dev_std",
}


def change_of(expectation: Expectation, baseline: float, winner: float) -> float:
    """The change in the expectation's unit; positive means the hoped-for direction. NaN when
    undefined."""
    if not (math.isfinite(baseline) and math.isfinite(winner)):
        return math.nan
    if expectation.change == "gain_points":
        return (winner - baseline) * 100.0
    return (baseline - winner) / baseline if baseline > 0 else math.nan


def verdict(change: float, low: float, high: float) -> Verdict:
    """Whether a change in the hoped-for direction reached the expected range [low, high] (see
    `Verdict`)."""
    if not math.isfinite(change):
        return Verdict.NOT_MEASURABLE
    # A change on the edge of the range (e.g. exactly 2 points, computed as 2.0000000000000018) is
    # inside it.
    if change > high + _EDGE:
        return Verdict.HELD_BEYOND
    if change >= low - _EDGE:
        return Verdict.HELD
    if change > 0:
        return Verdict.WEAKER
    return Verdict.NOT_HELD


def compare_effects(baseline: GroupEffects, winner: GroupEffects) -> list[EffectRow]:
    """One row per expectation: both values, the change, the hoped-for range and the verdict.

    `seeds_better` counts the seeds where the winner's run beats the baseline's run of the same
    seed (runs are paired by position); None for a measure taken across seeds.
    """
    rows = []
    for e in EXPECTATIONS:
        b, w = getattr(baseline, e.measure), getattr(winner, e.measure)
        change, description = change_of(e, b, w), e.description
        few = min(baseline.spread_seeds, winner.spread_seeds)
        if e.measure == "best_dev_std" and few < MIN_SPREAD_SEEDS:
            change = math.nan  # shown, not judged
            description += f" ({few} seeds: too few to judge a spread, needs {MIN_SPREAD_SEEDS})"
        better = None
        if e.measure in baseline.per_seed and e.measure in winner.per_seed:
            pairs = [
                (x, y)
                for x, y in zip(
                    baseline.per_seed[e.measure], winner.per_seed[e.measure], strict=True
                )
                if math.isfinite(x) and math.isfinite(y)
            ]
            if pairs:
                wins = sum((y < x) if e.measure in _LOWER_IS_BETTER else (y > x) for x, y in pairs)
                better = f"{wins}/{len(pairs)}"
        rows.append(
            EffectRow(
                effect=e.effect,
                measure=e.measure,
                description=description,
                baseline=_finite_or_none(b),
                winner=_finite_or_none(w),
                change=_finite_or_none(change),
                change_unit="points" if e.change == "gain_points" else "%",
                expected=e.expected,
                seeds_better=better,
                verdict=verdict(change, e.low, e.high),
                diff_ci95=_paired_interval(e.measure, baseline, winner),
            )
        )
    return rows


def mean_ci95(values: list[float]) -> dict:
    """n, mean, sample std and the 95% t-interval of the mean (std and interval None when n < 2)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = statistics.fmean(values)
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = statistics.stdev(values)
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


def _paired_interval(
    measure: str, baseline: GroupEffects, winner: GroupEffects
) -> list[float] | None:
    """95% t-interval of the per-seed difference (compared - baseline) in the measure's own unit."""
    if measure not in baseline.per_seed or measure not in winner.per_seed:
        return None
    diffs = [
        y - x
        for x, y in zip(baseline.per_seed[measure], winner.per_seed[measure], strict=True)
        if math.isfinite(x) and math.isfinite(y)
    ]
    return mean_ci95(diffs)["ci95"]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
