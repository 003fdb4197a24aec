"""The budget of one search: trial count, ASHA settings (in epochs) and per-trial resources; checks itself."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from joyful.errors import UserError
from tune.common import finite

__all__ = ["Budget", "rungs"]


def rungs(grace_period: int, reduction_factor: int, max_t: int) -> list[int]:
    """The budgets at which successive halving compares trials: grace_period x reduction_factor^k, below max_t."""
    found, budget = [], grace_period
    while budget < max_t:
        found.append(budget)
        budget *= reduction_factor
    return found


@dataclass(frozen=True)
class Budget:
    """Trial count, ASHA settings (in epochs) and per-trial resources of one search."""

    num_samples: int = 16
    max_epochs: int = 50
    grace_period: int = 5
    reduction_factor: int = 3
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0  # 0 = as many as resources allow
    # Save the trial state every N epochs (and at the last one). A retried or resumed trial replays
    # at most N-1 epochs (exactly: the RNG state is saved too); large models checkpoint less often,
    # because each save of weights + Adam state costs seconds.
    checkpoint_every: int = 1

    # The rules of a budget, in one place: the space file, the command-line overrides, a study record
    # and confirmation all check theirs with `check`.
    _INTEGERS: ClassVar[tuple[str, ...]] = ("num_samples", "max_epochs", "grace_period", "reduction_factor",
                                            "max_concurrent", "checkpoint_every")
    _MINIMUM: ClassVar[dict[str, int]] = {"num_samples": 1, "max_epochs": 1, "grace_period": 1, "reduction_factor": 2,
                                          "max_concurrent": 0, "checkpoint_every": 1, "gpus_per_trial": 0}

    def check(self, where: str = "", *, flags: bool = False) -> Budget:
        """This budget with float resources, or UserError naming the first bad value: as the space file's key
        (`budget.max_epochs`, after `where: `) or, with `flags`, as the command-line flag (`--max-epochs`)."""

        def name_of(name: str, first: bool = True) -> str:
            key = f"--{name.replace('_', '-')}" if flags else f"budget.{name}"
            return f"{where}: {key}" if where and first else key

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._INTEGERS and not (isinstance(value, int) and not isinstance(value, bool)):
                raise UserError(f"{name_of(f.name)} is {value!r}, but must be an integer")
            if not finite(value):
                raise UserError(f"{name_of(f.name)} is {value!r}, but must be a number")
            if f.name in self._MINIMUM and value < self._MINIMUM[f.name]:
                raise UserError(f"{name_of(f.name)} is {value}, but must be >= {self._MINIMUM[f.name]}")
        if self.grace_period > self.max_epochs:
            raise UserError(f"{name_of('grace_period')} is {self.grace_period}, but must be <= "
                            f"{name_of('max_epochs', first=False)} ({self.max_epochs})")
        if self.cpus_per_trial <= 0:
            raise UserError(f"{name_of('cpus_per_trial')} is {self.cpus_per_trial}, but must be > 0")
        return dataclasses.replace(self, cpus_per_trial=float(self.cpus_per_trial),
                                   gpus_per_trial=float(self.gpus_per_trial))
