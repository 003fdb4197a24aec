"""One searched JoyfulConfig setting: its type, range or choices, `when` condition and role; checks
itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joyful.errors import UserError
from tune.common import finite

if TYPE_CHECKING:
    import optuna

__all__ = ["PARAMETER_TYPES", "ROLES", "Parameter", "is_plain", "misfit"]

PARAMETER_TYPES = ("float", "int", "categorical")
ROLES = ("scientific", "nuisance")
NUMERIC_FIELDS = ("low", "high", "log", "step")


def is_plain(value: Any) -> bool:
    """Whether `value` is a plain YAML scalar (string, number, boolean or null): a choice or a
    `when` value."""
    return value is None or isinstance(value, (str, int, float, bool))


def misfit(kind: str, given: list[str] | tuple[str, ...]) -> str | None:
    """The rule broken when the fields `given` are set on a parameter of type `kind`, or None.

    The space file passes the keys it wrote (so ``log: false`` on a categorical counts); `Parameter`
    passes the fields that differ from their defaults.
    """
    if kind == "categorical":
        extra = [k for k in NUMERIC_FIELDS if k in given]
        return f"{', '.join(extra)} does not apply to a categorical parameter" if extra else None
    return "choices applies only to type categorical" if "choices" in given else None


@dataclass(frozen=True)
class Parameter:
    """One searched JoyfulConfig setting; ``when`` maps another parameter to its allowed values.

    Every mistake raises UserError naming the space-file key (``parameters.<name>[.field]``) and the
    rule; the file reader puts the file in front. Bounds and step of a float parameter are stored as
    floats.
    """

    name: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple | None = None
    when: dict[str, tuple] | None = None
    role: str = "scientific"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise UserError(f"parameters: {self.name!r} is not a setting name")
        key = f"parameters.{self.name}"
        if self.type not in PARAMETER_TYPES:
            got = "missing; use" if self.type is None else f"{self.type!r} is not"
            raise UserError(f"{key}.type: {got} one of {', '.join(PARAMETER_TYPES)}")
        if self.role not in ROLES:
            raise UserError(f"{key}.role: {self.role!r} is not one of {', '.join(ROLES)}")
        object.__setattr__(self, "when", self._checked_when(key))
        # A field counts as set when it is not its default (by identity: log=0 is not "no log").
        defaults = {"low": None, "high": None, "log": False, "step": None, "choices": None}
        rule = misfit(self.type, [k for k, v in defaults.items() if getattr(self, k) is not v])
        if rule:
            raise UserError(f"{key}: {rule}")
        if self.type == "categorical":
            object.__setattr__(self, "choices", self._checked_choices(key))
        else:
            self._check_range(key)

    def _checked_when(self, key: str) -> dict[str, tuple] | None:
        """`when` with each allowed value as a tuple (a scalar is a one-value list); None when
        empty."""
        if self.when is None:
            return None
        if not isinstance(self.when, dict) or not all(isinstance(k, str) for k in self.when):
            raise UserError(f"{key}.when: must be a mapping with string keys, got {self.when!r}")
        when = {}
        for parent, allowed in self.when.items():
            allowed = tuple(allowed) if isinstance(allowed, (list, tuple)) else (allowed,)
            if not allowed or not all(is_plain(v) for v in allowed):
                raise UserError(
                    f"{key}.when.{parent}: needs a value or a non-empty list of plain values"
                )
            if parent == self.name:
                raise UserError(f"{key}.when.{parent}: a parameter cannot depend on itself")
            when[parent] = allowed
        return when or None

    def _checked_choices(self, key: str) -> tuple:
        if not isinstance(self.choices, (list, tuple)) or not self.choices:
            raise UserError(
                f"{key}.choices: a categorical parameter needs a non-empty list of choices"
            )
        choices: list = []
        for value in self.choices:
            if not is_plain(value):
                raise UserError(
                    f"{key}.choices: {value!r} must be a plain value (string, number, boolean)"
                )
            if value in choices:  # by ==, as Optuna compares choices: 1 and 1.0 are one choice
                raise UserError(f"{key}.choices: duplicate choice {value!r}")
            choices.append(value)
        return tuple(choices)

    def _check_range(self, key: str) -> None:
        """Bounds, log and step of a number; the bounds (and step) of a float become floats."""
        integer = self.type == "int"
        for bound in ("low", "high"):
            value = getattr(self, bound)
            if value is None:
                raise UserError(f"{key}: a {self.type} parameter needs both low and high")
            ok = (
                isinstance(value, int) and not isinstance(value, bool) if integer else finite(value)
            )
            if not ok:
                raise UserError(
                    f"{key}.{bound}: {value!r} must be {'an integer' if integer else 'a number'}"
                )
            if not integer:
                object.__setattr__(self, bound, float(value))
        low, high = self.low, self.high
        if low >= high:
            if low > high:
                raise UserError(f"{key}: low {low} > high {high}")
            raise UserError(f"{key}: low == high == {low}; to keep it constant, move it to fixed")
        if not isinstance(self.log, bool):
            raise UserError(f"{key}.log: {self.log!r} must be true or false")
        if self.log and low <= 0:
            raise UserError(f"{key}: log: true needs low > 0, got low {low}")
        step = self.step
        if step is None:
            return
        if not (finite(step) and (not integer or isinstance(step, int))) or step <= 0:
            raise UserError(
                f"{key}.step: {step!r} must be a positive {'integer' if integer else 'number'}"
            )
        if self.log and (not integer or step != 1):  # Optuna samples a log range without a grid
            raise UserError(f"{key}: step and log: true cannot be combined (Optuna); drop one")
        steps = (high - low) / step
        if not math.isclose(
            steps, round(steps), abs_tol=1e-9
        ):  # Optuna would silently lower high instead
            raise UserError(f"{key}: high - low ({high - low}) must be a multiple of step {step}")
        if not integer:
            object.__setattr__(self, "step", float(step))

    def is_active(self, values: dict) -> bool:
        """Whether every ``when`` parent is in `values` with an allowed value (see
        `active_parameters` for the walk that also requires each parent to be active itself)."""
        return all(
            parent in values and values[parent] in allowed
            for parent, allowed in (self.when or {}).items()
        )

    def value_problem(self, value: Any) -> str | None:
        """Why this parameter can never take `value` (e.g. ``range is [0.01, 0.1]``), or None."""
        if self.type == "categorical":
            return (
                None
                if value in self.choices
                else f"choices are {', '.join(map(str, self.choices))}"
            )
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (self.type == "int" and not isinstance(value, int)):
            return f"must be {'an integer' if self.type == 'int' else 'a number'}"
        if not self.low <= value <= self.high:
            return f"range is [{self.low}, {self.high}]"
        if self.step:
            steps = (value - self.low) / self.step
            if not math.isclose(steps, round(steps), abs_tol=1e-9):
                return f"not on the grid low + k * {self.step}"
        return None

    def suggest(self, trial: optuna.trial.Trial) -> Any:
        """This parameter's value for `trial`, drawn from the matching Optuna distribution."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.type == "int":
            return trial.suggest_int(
                self.name, self.low, self.high, step=self.step or 1, log=self.log
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def from_unit(self, u: float) -> Any:
        """The value at position `u` in [0, 1) of this parameter's range (log-scaled when log, on
        the step grid when it has one) or of its choices: how a space-filling sample (Sobol) becomes
        values."""
        u = min(max(float(u), 0.0), math.nextafter(1.0, 0.0))
        if self.type == "categorical":
            return self.choices[int(u * len(self.choices))]
        low, high = float(self.low), float(self.high)
        if self.log:
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        else:
            value = low + u * (high - low)
        if self.type == "int":
            step = self.step or 1
            return int(min(self.high, self.low + step * math.floor((value - low) / step + 0.5)))
        if self.step:
            value = low + self.step * round((value - low) / self.step)
        return min(max(value, low), high)

    def to_unit(self, value: Any) -> float:
        """Where `value` lies in this parameter's range, in [0, 1] (log-scaled when log); a choice's
        index over the number of choices. The inverse of `from_unit` up to rounding."""
        if self.type == "categorical":
            return (self.choices.index(value) + 0.5) / len(self.choices)
        low, high, v = float(self.low), float(self.high), float(value)
        if self.log:
            low, high, v = math.log(low), math.log(high), math.log(v)
        return (v - low) / (high - low)

    def at_edge(self, value: Any, rel: float = 0.05) -> bool:
        """Whether a number lies within `rel` of the range width of low or high (log-space when
        log)."""
        if self.type == "categorical" or value is None:
            return False
        low, high, v = float(self.low), float(self.high), float(value)
        if self.log:
            if v <= 0:
                return True
            low, high, v = math.log(low), math.log(high), math.log(v)
        margin = rel * (high - low)
        return v <= low + margin or v >= high - margin
