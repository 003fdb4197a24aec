"""The budget of one search: trial count, successive-halving settings (in epochs), per-trial
resources and an optional wall-time limit; checks itself."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from joyful.errors import UserError
from tune.common import finite

__all__ = ["Budget", "duration", "rungs", "words_of_duration"]

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0}


def duration(value: Any, name: str = "--time-budget") -> float:
    """Seconds of a duration written as a number of seconds or as `90m`, `1h30m`, `45s`, `2h`
    (UserError naming `name` otherwise)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(
            r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text
        )
        if not text or parts is None or not any(parts.groups()):
            raise UserError(
                f"{name} is {value!r}, but must be a duration such as 90m, 1h30m, 45s or a number "
                "of seconds"
            )
        seconds = sum(
            float(number) * unit
            for number, unit in zip(parts.groups(), _UNITS.values(), strict=True)
            if number
        )
    if not finite(seconds) or seconds < 0:
        raise UserError(f"{name} is {value!r}, but must be a duration >= 0 (0: no time limit)")
    return seconds


def words_of_duration(seconds: float) -> str:
    """`seconds` as a person writes a duration: 45 s, 12 min, 1 h 30 min."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds / 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def _setting(default: Any, help: str, **metadata: Any) -> Any:
    """A budget field: its default, and the help and parsing of the flag of the same name
    (tune/options.py)."""
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def rungs(grace_period: int, reduction_factor: int, max_t: int) -> list[int]:
    """The budgets at which successive halving compares trials: grace_period x reduction_factor^k,
    below max_t."""
    found, budget = [], grace_period
    while budget < max_t:
        found.append(budget)
        budget *= reduction_factor
    return found


@dataclass(frozen=True)
class Budget:
    """Trial count, ASHA settings (in epochs) and per-trial resources of one search."""

    num_samples: int = _setting(
        16, "trials per data set (an upper bound with --time-budget)", type=int
    )
    max_epochs: int = _setting(
        50, "epochs of a full trial (with cross-validation: on each fold)", type=int
    )
    grace_period: int = _setting(
        5,
        "epochs before a trial may be stopped (with cross-validation the first "
        "decision comes after fold 1)",
        type=int,
    )
    reduction_factor: int = _setting(
        3, "successive halving keeps 1/reduction_factor of the trials at each rung", type=int
    )
    cpus_per_trial: float = _setting(1.0, "CPUs per trial (also torch's thread count)", type=float)
    gpus_per_trial: float = _setting(
        0.0, "GPUs per trial; fractions pack trials on one GPU (0.25 = 4 per GPU)", type=float
    )
    max_concurrent: int = _setting(
        0,
        "trials at once (0: as many as resources allow, and as let the sampler "
        "learn from finished trials)",
        type=int,
    )
    # A retried or resumed trial replays at most N-1 epochs (exactly: the RNG state is saved too);
    # large models checkpoint less often, because each save of weights + Adam state costs seconds.
    checkpoint_every: int = _setting(
        1,
        "checkpoint a trial every N epochs and at its last (a retry replays up to N-1 epochs)",
        type=int,
    )
    # The search starts no trial that would not end in time, and confirms within what is left.
    time_budget: float = _setting(
        0.0,
        "wall time of the whole search, trials and confirmation (90m, 1h30m, seconds; 0: none)",
        type=duration,
        metavar="DURATION",
    )

    # The rules of a budget, in one place: the space file, the command-line overrides, a study
    # record and confirmation all check theirs with `check`.
    _INTEGERS: ClassVar[tuple[str, ...]] = (
        "num_samples",
        "max_epochs",
        "grace_period",
        "reduction_factor",
        "max_concurrent",
        "checkpoint_every",
    )
    _MINIMUM: ClassVar[dict[str, int]] = {
        "num_samples": 1,
        "max_epochs": 1,
        "grace_period": 1,
        "reduction_factor": 2,
        "max_concurrent": 0,
        "checkpoint_every": 1,
        "gpus_per_trial": 0,
        "time_budget": 0,
    }

    def check(self, where: str = "", *, flags: bool = False) -> Budget:
        """This budget with float resources, or UserError naming the first bad value: as the space
        file's key (`budget.max_epochs`, after `where: `) or, with `flags`, as the command-line flag
        (`--max-epochs`)."""

        def name_of(name: str, first: bool = True) -> str:
            key = f"--{name.replace('_', '-')}" if flags else f"budget.{name}"
            return f"{where}: {key}" if where and first else key

        if isinstance(self.time_budget, str):  # "90m" in a space file
            self = dataclasses.replace(
                self, time_budget=duration(self.time_budget, name_of("time_budget"))
            )
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self._INTEGERS and not (
                isinstance(value, int) and not isinstance(value, bool)
            ):
                raise UserError(f"{name_of(f.name)} is {value!r}, but must be an integer")
            if not finite(value):
                raise UserError(f"{name_of(f.name)} is {value!r}, but must be a number")
            if f.name in self._MINIMUM and value < self._MINIMUM[f.name]:
                raise UserError(
                    f"{name_of(f.name)} is {value}, but must be >= {self._MINIMUM[f.name]}"
                )
        if self.grace_period > self.max_epochs:
            raise UserError(
                f"{name_of('grace_period')} is {self.grace_period}, but must be <= "
                f"{name_of('max_epochs', first=False)} ({self.max_epochs})"
            )
        if self.cpus_per_trial <= 0:
            raise UserError(
                f"{name_of('cpus_per_trial')} is {self.cpus_per_trial}, but must be > 0"
            )
        return dataclasses.replace(
            self,
            cpus_per_trial=float(self.cpus_per_trial),
            gpus_per_trial=float(self.gpus_per_trial),
            time_budget=float(self.time_budget),
        )
