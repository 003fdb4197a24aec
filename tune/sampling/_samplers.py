"""The samplers a search may use, by name, and the random start-up each needs before its model
proposes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from joyful.errors import UserError
from tune.space import SAMPLERS

__all__ = ["build_sampler", "default_startup", "learns_from"]

# At most this many start-up trials per arm, whatever the budget (Optuna's own default for TPE and
# GP).
MAX_STARTUP = 10


def _tpe(seed: int, startup: int) -> Any:
    import warnings

    import optuna

    # Multivariate and grouped: the parameters that appear together are modelled jointly; the
    # constant liar keeps concurrent proposals apart. (Optuna calls `group` experimental; it has
    # been since 2.8.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup, multivariate=True, group=True, constant_liar=True
        )


def _gp(seed: int, startup: int) -> Any:
    import optuna

    return optuna.samplers.GPSampler(
        seed=seed, n_startup_trials=startup, warn_independent_sampling=False
    )


def _random(seed: int, startup: int) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


_BUILDERS: dict[str, Callable[[int, int], Any]] = {"gp": _gp, "tpe": _tpe, "random": _random}
assert tuple(_BUILDERS) == SAMPLERS


def build_sampler(kind: str, *, seed: int, startup: int) -> Any:
    """The Optuna sampler `kind` (one of SAMPLERS), seeded, with `startup` random trials before its
    model."""
    if kind not in _BUILDERS:
        raise UserError(f"sampler {kind!r} is not one of: {', '.join(SAMPLERS)}")
    return _BUILDERS[kind](seed, startup)


def learns_from(kind: str) -> tuple[str, ...]:
    """The trial states whose results the sampler's model uses, and which count towards its
    start-up: TPE models stopped (pruned) trials by how far they got, Optuna's GP only finished
    ones, random search none."""
    return {"tpe": ("COMPLETE", "PRUNED"), "gp": ("COMPLETE",), "random": ()}[kind]


def default_startup(kind: str, trials_per_arm: float) -> int:
    """Random trials per arm before the model proposes, sized to the arm's share of the budget (not
    to the concurrency): a quarter of it, at least 2 (a model needs two results to tell better from
    worse), at most MAX_STARTUP."""
    if kind == "random":
        return 0
    return int(min(MAX_STARTUP, max(2, trials_per_arm // 4)))
