"""How a search chooses and stops its trials: the sampler, its start-up, and the scheduler; checks
itself.

A space file's ``strategy`` section (every key optional) and the flags of the same names
(``--sampler``, ``--startup-trials``, ``--scheduler``) set it. The samplers themselves live in
`tune.sampling`, the schedulers in `tune.runner.scheduler`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from joyful.errors import UserError

__all__ = ["SAMPLERS", "SCHEDULERS", "Strategy"]

# gp: Optuna's Gaussian-process sampler; tpe: Optuna's TPE (multivariate, grouped); random: uniform
# draws.
SAMPLERS = ("gp", "tpe", "random")
# fifo: every trial runs its whole budget; patient: successive halving that stops a trial only on
# evidence (tune/runner/scheduler.py); asha: plain asynchronous successive halving.
SCHEDULERS = ("fifo", "patient", "asha")


def _setting(default: object, help: str, **metadata: object) -> object:
    return field(default=default, metadata={"help": help, **metadata})


@dataclass(frozen=True)
class Strategy:
    """The sampler (with its random start-up, per arm of the scientific parameter) and the
    scheduler."""

    # The defaults are what replayed searches on real MELD learning curves found best at the
    # default budget (benchmarks/replay.py, docs/TUNING.md "Samplers measured on real learning
    # curves"): the GP without early stopping.
    sampler: str = _setting(
        "gp", "how trials are proposed: " + ", ".join(SAMPLERS), choices=SAMPLERS
    )
    startup_trials: int = _setting(
        0,
        "random trials per arm before the sampler's model proposes (0: sized to the budget)",
        type=int,
    )
    scheduler: str = _setting(
        "fifo", "how trials are stopped early: " + ", ".join(SCHEDULERS), choices=SCHEDULERS
    )

    def check(self, where: str = "", *, flags: bool = False) -> Strategy:
        """This strategy, or UserError naming the first bad value as the space-file key or the
        flag."""
        for f in dataclasses.fields(self):
            key = f"--{f.name.replace('_', '-')}" if flags else f"strategy.{f.name}"
            key = f"{where}: {key}" if where and not flags else key
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise UserError(f"{key} is {value!r}, but must be one of: {', '.join(choices)}")
            if f.name == "startup_trials" and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise UserError(
                    f"{key} is {value!r}, but must be an integer >= 0 (0: sized to the budget)"
                )
        return self
