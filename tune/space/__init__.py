"""Search spaces of the tuning service: one YAML file per data set, checked against JoyfulConfig.

File format (``search_spaces/<dataset>.yaml``)::

    dataset: iemocap_4                  # must match --dataset
    metric: dev_weighted_f1             # dev_weighted_f1 | dev_accuracy (mode max) | dev_loss (mode min)
    mode: max                           # optional; defaults to the metric's direction
    budget: {num_samples: 32, max_epochs: 50, grace_period: 5, reduction_factor: 3,
             cpus_per_trial: 2, gpus_per_trial: 0.25, max_concurrent: 0}   # every key optional
    fixed: {modalities: atv}            # JoyfulConfig settings applied to every trial
    parameters:                         # searched JoyfulConfig settings, suggested in `when` order
      fusion: {type: categorical, choices: [autofusion, hierarchical]}
      encoder_loss_weight: {type: float, low: 0.01, high: 0.1, log: true}
      gate_reg_weight: {type: float, low: 1.0e-4, high: 0.1, log: true, when: {fusion: hierarchical}}
      reconstruction_loss: {type: categorical, choices: [mse, smooth_l1], when: {fusion: hierarchical}}
    baseline: {fusion: autofusion, encoder_loss_weight: 0.03}   # evaluated first
    proposal: {fusion: hierarchical, reconstruction_loss: smooth_l1}   # optional: measured against the baseline

A parameter takes ``type`` (float | int | categorical); ``low``/``high`` (low < high) with
optional ``log`` and ``step`` for numbers; ``choices`` for categoricals; ``when``
``{parameter: value or [values]}`` to search it only under that condition; and ``role``
(scientific | nuisance, the tuning-playbook label). Confirmation re-trains the baseline at the
nuisance values it does not set taken from the best trial that shares its scientific values, so
the baseline too runs at tuned settings; ``proposal`` names the user's proposed setting whose
expected effects confirmation measures against that baseline (its best trial is confirmed too). ``epochs`` is
``budget.max_epochs`` and ``dataset`` is the top-level key, so neither may be fixed or searched.
Every mistake raises :class:`UserError` naming the file, the key and the rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from joyful.config import JoyfulConfig, coerce_value, field_names, field_type
from joyful.errors import UserError
from joyful.io import display_path

if TYPE_CHECKING:
    import optuna

__all__ = ["DEFAULT_SPACE_PATH", "PARAMETER_TYPES", "Budget", "DefineByRun", "Parameter", "SearchSpace",
           "default_space_path", "load_space", "resolve_space", "write_default_space"]

PARAMETER_TYPES = ("float", "int", "categorical")
ROLES = ("scientific", "nuisance")
METRIC_MODES = {"dev_weighted_f1": "max", "dev_accuracy": "max", "dev_loss": "min"}
TOP_LEVEL_KEYS = ("dataset", "metric", "mode", "budget", "fixed", "parameters", "baseline", "proposal")
PARAMETER_KEYS = ("type", "low", "high", "log", "step", "choices", "when", "role")
# Settings the file sets elsewhere; searching or fixing them would contradict that key.
RESERVED = {"dataset": "set it with the top-level 'dataset' key", "epochs": "set it with budget.max_epochs"}


@dataclass(frozen=True)
class Parameter:
    """One searched JoyfulConfig setting; ``when`` maps another parameter to its allowed values."""

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
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.when is not None:
            when = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in self.when.items()}
            object.__setattr__(self, "when", when)

    def is_active(self, values: dict) -> bool:
        """Whether every ``when`` parent is in `values` with an allowed value."""
        return all(parent in values and values[parent] in allowed for parent, allowed in (self.when or {}).items())

    def at_edge(self, value: Any, rel: float = 0.05) -> bool:
        """Whether a number lies within `rel` of the range width of low or high (log-space when log)."""
        if self.type == "categorical" or value is None:
            return False
        low, high, v = float(self.low), float(self.high), float(value)
        if self.log:
            if v <= 0:
                return True
            low, high, v = math.log(low), math.log(high), math.log(v)
        margin = rel * (high - low)
        return v <= low + margin or v >= high - margin


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
            if not _is_number(value) or not math.isfinite(value):
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


@dataclass
class SearchSpace:
    """A validated search-space file; `path` and `sha256` identify it in result records."""

    dataset: str
    parameters: tuple[Parameter, ...]
    fixed: dict[str, Any]
    baseline: dict[str, Any]
    budget: Budget
    metric: str = "dev_weighted_f1"
    mode: str = "max"
    path: str = ""
    sha256: str = ""
    # The user's proposed setting (e.g. hierarchical fusion + SmoothL1) whose expected effects
    # confirmation measures against the baseline; empty = compare the confirmed winner.
    proposal: dict[str, Any] = dataclasses.field(default_factory=dict)

    def define_by_run(self) -> DefineByRun:
        return DefineByRun(self.parameters)

    def tuned_names(self, point: dict | None = None) -> list[str]:
        """Nuisance parameters `point` (default: the baseline) leaves open: confirmation gives them tuned values."""
        point = self.baseline if point is None else point
        return [p.name for p in self.parameters if p.role == "nuisance" and p.name not in point]

    def scientific_names(self) -> list[str]:
        return [p.name for p in self.parameters if p.role == "scientific"]

    def baseline_point(self) -> dict:
        """The baseline restricted to the parameters active under it (for points_to_evaluate)."""
        point: dict = {}
        for p in DefineByRun(self.parameters).parameters:
            if p.name in self.baseline and p.is_active(point):
                point[p.name] = self.baseline[p.name]
        return point

    def strata(self) -> list[dict]:
        """Every combination of the scientific categorical parameters that no `when` condition hides
        (e.g. [{fusion: autofusion}, {fusion: hierarchical}]); [] when there are none."""
        combos: list[dict] = [{}]
        for p in self.parameters:
            if p.role == "scientific" and p.type == "categorical" and not p.when:
                combos = [{**c, p.name: choice} for c in combos for choice in p.choices]
        return combos if len(combos) > 1 else []

    def stratified_points(self, count: int, first: list[dict]) -> list[dict]:
        """`count` partial points that spread the trials evenly over the scientific strata, counting the
        points that run `first` (the baseline, earlier winners). Optuna samples every other parameter of
        such a point, so TPE tunes the nuisance settings within each stratum and each scientific value
        gets its share of the search (tuning playbook: compare scientific values at tuned nuisance
        settings)."""
        strata = self.strata()
        if not strata or count <= 0:
            return []
        counts = [sum(all(point.get(k) == v for k, v in stratum.items()) for point in first) for stratum in strata]
        points = []
        for _ in range(count):
            least = min(range(len(strata)), key=lambda i: (counts[i], i))  # the least-covered stratum, in file order
            counts[least] += 1
            points.append(dict(strata[least]))
        return points

    def trial_config(self, base: JoyfulConfig, sampled: dict) -> JoyfulConfig:
        """`base`, overridden by `fixed`, overridden by the `sampled` values; validated."""
        values = {**base.to_dict(), **self.fixed, **sampled}
        return JoyfulConfig.from_dict(values, source=f"{self.path or 'search space'}: trial config")

    def param_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def point_from(self, values: dict) -> dict | None:
        """The values of the parameters active under `values` (e.g. an earlier winner's config), or None
        when one is missing or lies outside this space: a point this space could have sampled."""
        point: dict = {}
        for p in DefineByRun(self.parameters).parameters:
            if not p.is_active(point):
                continue
            if p.name not in values or _value_problem(p, values[p.name]) is not None:
                return None
            point[p.name] = float(values[p.name]) if p.type == "float" else values[p.name]
        return point


class DefineByRun:
    """Picklable define-by-run function for ``OptunaSearch(space=...)`` (Ray pickles it; no lambdas)."""

    def __init__(self, parameters: tuple[Parameter, ...]):
        order, cycle = _dependency_order(parameters)
        if cycle:
            raise UserError(f"parameters: 'when' conditions form a cycle: {' -> '.join(cycle)}")
        self.parameters = tuple(order)

    def __call__(self, trial: optuna.trial.Trial) -> None:
        values: dict[str, Any] = {}
        for p in self.parameters:
            if not p.is_active(values):
                continue
            if p.type == "categorical":
                values[p.name] = trial.suggest_categorical(p.name, p.choices)
            elif p.type == "int":
                values[p.name] = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
            else:
                values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        return None


SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
# Used when a data set has no space file of its own; its `dataset: default` becomes the data set's name.
DEFAULT_SPACE_PATH = SPACES_DIR / "default.yaml"
DEFAULT_SPACE_NAME = "default"


def default_space_path(dataset: str) -> Path:
    return SPACES_DIR / f"{dataset}.yaml"


def resolve_space(dataset: str, path: str | Path | None = None) -> tuple[SearchSpace, str | None]:
    """The space of `dataset`: `path`, else search_spaces/<dataset>.yaml, else the default space.

    Returns the space and, when the default space was used, the one line that says so.
    """
    if path is not None:
        return load_space(path, dataset), None
    own = default_space_path(dataset)
    if own.exists():
        return load_space(own, dataset), None
    note = (f"no {display_path(own)}: using the default space {display_path(DEFAULT_SPACE_PATH)} (the user's parameters + "
            f"learning rate, dropout, weight decay, class weighting, feature scaling); to edit it: "
            f"tune/search.py --dataset {dataset} --write-space {display_path(own)}")
    return load_space(DEFAULT_SPACE_PATH, dataset, template=True), note


def write_default_space(dataset: str, out: str | Path) -> Path:
    """Write the default space for `dataset` to `out` (never over an existing file), comments kept."""
    out = Path(out)
    if out.exists():
        raise UserError(f"--write-space {out}: the file exists; remove it or pick another path")
    text = DEFAULT_SPACE_PATH.read_text()
    marker = f"\ndataset: {DEFAULT_SPACE_NAME}\n"
    if marker not in text:
        raise UserError(f"{display_path(DEFAULT_SPACE_PATH)} has no 'dataset: {DEFAULT_SPACE_NAME}' line")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "x") as handle:  # exclusive: a file created meanwhile is not overwritten
            handle.write(text.replace(marker, f"\ndataset: {dataset}\n", 1))
    except OSError as exc:
        raise UserError(f"--write-space {out}: cannot write it ({exc.strerror})") from None
    load_space(out, dataset)  # what was written is a valid space for this data set
    return out


def load_space(path: str | Path, dataset: str | None = None, *, template: bool = False) -> SearchSpace:
    """Read and validate a search-space file; `dataset`, when given, must match the file's.

    With `template`, the file is the default space and its `dataset` key becomes `dataset`.
    """
    path = Path(path)
    where = display_path(path)
    doc, sha256 = _read_yaml(path, where)
    if not isinstance(doc, dict):
        raise UserError(f"{where}: the top level must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    _check_keys(doc, TOP_LEVEL_KEYS, where, "top level")
    if (template or path.resolve() == DEFAULT_SPACE_PATH) and dataset is not None:
        doc["dataset"] = dataset
    name = doc.get("dataset")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: dataset: missing or not a string; add e.g. 'dataset: iemocap_4'")
    problem = _config_problem("dataset", name, {})
    if problem:
        raise UserError(f"{where}: dataset: {problem}")
    if dataset is not None and name != dataset:
        raise UserError(f"{where} is for {name!r}, not {dataset!r}; use the space file of {dataset!r}")
    metric, mode = _metric_mode(doc, where)
    budget = _parse_budget(_mapping(doc.get("budget"), where, "budget"), where)
    fixed = _parse_fixed(_mapping(doc.get("fixed"), where, "fixed"), where)
    raw_params = _mapping(doc.get("parameters"), where, "parameters")
    if not raw_params:
        raise UserError(f"{where}: parameters: missing or empty; list at least one setting to search")
    params = tuple(_parse_parameter(n, raw, where, fixed) for n, raw in raw_params.items())
    _check_conditions(params, where, fixed)
    baseline = _parse_baseline(_mapping(doc.get("baseline"), where, "baseline"), params, where)
    proposal = _parse_baseline(_mapping(doc.get("proposal"), where, "proposal"), params, where, key="proposal")
    return SearchSpace(name, params, fixed, baseline, budget, metric, mode, str(path.resolve()), sha256, proposal)


# --- reading ------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not _is_scalar(key):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads `1e-4` (no dot) as a string; accept it as the float everyone means.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789")
)


def _read_yaml(path: Path, where: str) -> tuple[Any, str]:
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        shipped = sorted(p.stem for p in default_space_path("x").parent.glob("*.yaml"))
        raise UserError(f"{where}: file not found (shipped spaces: {', '.join(shipped)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read it ({exc})") from None
    try:
        doc = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: {line}invalid YAML ({problem})") from None
    return doc, hashlib.sha256(data).hexdigest()


# --- validation helpers -------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _mapping(raw: Any, where: str, key: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise UserError(f"{where}: {key}: must be a mapping with string keys, got {raw!r}")
    return raw


def _check_keys(raw: dict, valid: tuple[str, ...], where: str, key: str) -> None:
    for k in raw:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"{where}: {key}: unknown key {k!r}; {hint}valid keys: {', '.join(valid)}")


def _config_problem(name: str, value: Any, fixed: dict) -> str | None:
    """The JoyfulConfig rule `value` breaks for setting `name` (with `fixed` applied), or None."""
    try:
        JoyfulConfig(**{**fixed, name: value}).validate()
    except UserError as exc:
        return str(exc)
    return None


def _metric_mode(doc: dict, where: str) -> tuple[str, str]:
    metric = doc.get("metric", "dev_weighted_f1")
    if metric not in METRIC_MODES:
        raise UserError(f"{where}: metric: {metric!r} is not one of {', '.join(METRIC_MODES)}")
    mode = doc.get("mode", METRIC_MODES[metric])
    if mode not in ("max", "min"):
        raise UserError(f"{where}: mode: {mode!r} must be max or min")
    if mode != METRIC_MODES[metric]:
        raise UserError(f"{where}: mode: {metric} must be optimised with mode {METRIC_MODES[metric]}, not {mode}")
    return metric, mode


def _parse_budget(raw: dict, where: str) -> Budget:
    names = tuple(f.name for f in dataclasses.fields(Budget))
    _check_keys(raw, names, where, "budget")
    return Budget(**raw).check(where)


def _check_setting_name(name: str, where: str, key: str) -> None:
    if name in RESERVED:
        raise UserError(f"{where}: {key}: {name!r} cannot be fixed or searched here; {RESERVED[name]}")
    if name not in field_names():
        close = difflib.get_close_matches(name, field_names(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see the train.py flags (joyful/config.py)"
        raise UserError(f"{where}: {key}: {name!r} is not a JoyfulConfig setting; {hint}")


def _parse_fixed(raw: dict, where: str) -> dict[str, Any]:
    fixed = {}
    for name, value in raw.items():
        _check_setting_name(name, where, f"fixed.{name}")
        fixed[name] = coerce_value(name, value, source=f"{where}: fixed.{name}")
        problem = _config_problem(name, fixed[name], {})
        if problem:
            raise UserError(f"{where}: fixed.{name}: {problem}")
    try:
        JoyfulConfig(**fixed).validate()
    except UserError as exc:
        raise UserError(f"{where}: fixed: {exc}") from None
    return fixed


def _parse_parameter(name: str, raw: Any, where: str, fixed: dict) -> Parameter:
    key = f"parameters.{name}"
    _check_setting_name(name, where, key)
    if name in fixed:
        raise UserError(f"{where}: {key}: {name!r} is both fixed and searched; remove it from one of them")
    if not isinstance(raw, dict):
        raise UserError(f"{where}: {key}: must be a mapping like {{type: float, low: 0.01, high: 0.1}}")
    _check_keys(raw, PARAMETER_KEYS, where, key)
    kind = raw.get("type")
    if kind not in PARAMETER_TYPES:
        got = "missing; use" if kind is None else f"{kind!r} is not"
        raise UserError(f"{where}: {key}.type: {got} one of {', '.join(PARAMETER_TYPES)}")
    role = raw.get("role", "scientific")
    if role not in ROLES:
        raise UserError(f"{where}: {key}.role: {role!r} is not one of {', '.join(ROLES)}")
    when = _parse_when(raw.get("when"), where, key)
    if kind == "categorical":
        extra = [k for k in ("low", "high", "log", "step") if k in raw]
        if extra:
            raise UserError(f"{where}: {key}: {', '.join(extra)} does not apply to a categorical parameter")
        choices = _parse_choices(name, raw.get("choices"), where, key, fixed)
        return Parameter(name, kind, choices=choices, when=when, role=role)
    if "choices" in raw:
        raise UserError(f"{where}: {key}: choices applies only to type categorical")
    setting_kind = field_type(name)
    if setting_kind not in (int, float):
        raise UserError(f"{where}: {key}: setting {name!r} is a {setting_kind.__name__}; use type: categorical")
    if kind == "float" and setting_kind is int:
        raise UserError(f"{where}: {key}: setting {name!r} is an integer; use type: int")
    bounds = {}
    for bound in ("low", "high"):
        value = raw.get(bound)
        if value is None:
            raise UserError(f"{where}: {key}: a {kind} parameter needs both low and high")
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = _is_number(value) and math.isfinite(value)
        if not ok:
            raise UserError(
                f"{where}: {key}.{bound}: {value!r} must be {'an integer' if kind == 'int' else 'a number'}"
            )
        bounds[bound] = value if kind == "int" else float(value)
        problem = _config_problem(name, bounds[bound], fixed)
        if problem:
            raise UserError(f"{where}: {key}.{bound}: {value} is not a valid value ({problem})")
    low, high = bounds["low"], bounds["high"]
    if low >= high:
        rule = (
            f"low {low} > high {high}" if low > high else f"low == high == {low}; to keep it constant, move it to fixed"
        )
        raise UserError(f"{where}: {key}: {rule}")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: {key}.log: {log!r} must be true or false")
    if log and low <= 0:
        raise UserError(f"{where}: {key}: log: true needs low > 0, got low {low}")
    step = _parse_step(raw.get("step"), kind, log, low, high, where, key)
    return Parameter(name, kind, low, high, log, step, when=when, role=role)


def _parse_step(step: Any, kind: str, log: bool, low: float, high: float, where: str, key: str) -> float | int | None:
    if step is None:
        return None
    ok = _is_number(step) and math.isfinite(step) and (kind == "float" or isinstance(step, int))
    if not ok or step <= 0:
        raise UserError(f"{where}: {key}.step: {step!r} must be a positive {'integer' if kind == 'int' else 'number'}")
    if log and (kind == "float" or step != 1):
        raise UserError(f"{where}: {key}: step and log: true cannot be combined (Optuna); drop one")
    steps = (high - low) / step
    if not math.isclose(steps, round(steps), abs_tol=1e-9):
        raise UserError(f"{where}: {key}: high - low ({high - low}) must be a multiple of step {step}")
    return step if kind == "int" else float(step)


def _parse_choices(name: str, raw: Any, where: str, key: str, fixed: dict) -> tuple:
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{where}: {key}.choices: a categorical parameter needs a non-empty list of choices")
    choices = []
    for value in raw:
        if not _is_scalar(value):
            raise UserError(f"{where}: {key}.choices: {value!r} must be a plain value (string, number, boolean)")
        value = coerce_value(name, value, source=f"{where}: {key}.choices")
        if value in choices:
            raise UserError(f"{where}: {key}.choices: duplicate choice {value!r}")
        problem = _config_problem(name, value, fixed)
        if problem:
            raise UserError(f"{where}: {key}.choices: {value!r} is not a valid value ({problem})")
        choices.append(value)
    return tuple(choices)


def _parse_when(raw: Any, where: str, key: str) -> dict[str, tuple] | None:
    if raw is None:
        return None
    when = {}
    for parent, allowed in _mapping(raw, where, f"{key}.when").items():
        allowed = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if not allowed or not all(_is_scalar(v) for v in allowed):
            raise UserError(f"{where}: {key}.when.{parent}: needs a value or a non-empty list of plain values")
        when[parent] = allowed
    return when or None


def _check_conditions(params: tuple[Parameter, ...], where: str, fixed: dict) -> None:
    by_name = {p.name: p for p in params}
    for p in params:
        for parent, allowed in (p.when or {}).items():
            key = f"parameters.{p.name}.when.{parent}"
            if parent == p.name:
                raise UserError(f"{where}: {key}: a parameter cannot depend on itself")
            if parent in fixed:
                raise UserError(
                    f"{where}: {key}: {parent!r} is fixed, not searched, so the condition never varies; drop the 'when'"
                )
            if parent not in by_name:
                raise UserError(
                    f"{where}: {key}: {parent!r} is not a searched parameter; searched: {', '.join(by_name)}"
                )
            q = by_name[parent]
            if q.type == "float":
                raise UserError(
                    f"{where}: {key}: conditions on a float parameter never match; "
                    "condition on a categorical or int parameter"
                )
            for value in allowed:
                problem = _value_problem(q, value)
                if problem:
                    raise UserError(f"{where}: {key}: {parent} cannot take {value!r} ({problem})")
    _, cycle = _dependency_order(params)
    if cycle:
        raise UserError(f"{where}: parameters: 'when' conditions form a cycle: {' -> '.join(cycle)}")


def _value_problem(p: Parameter, value: Any) -> str | None:
    """Why `p` can never take `value`, or None."""
    if p.type == "categorical":
        return None if value in p.choices else f"choices are {', '.join(map(str, p.choices))}"
    if not _is_number(value) or (p.type == "int" and not isinstance(value, int)):
        return f"must be {'an integer' if p.type == 'int' else 'a number'}"
    if not p.low <= value <= p.high:
        return f"range is [{p.low}, {p.high}]"
    if p.step and not math.isclose((value - p.low) / p.step, round((value - p.low) / p.step), abs_tol=1e-9):
        return f"not on the grid low + k * {p.step}"
    return None


def _parse_baseline(raw: dict, params: tuple[Parameter, ...], where: str, key: str = "baseline") -> dict[str, Any]:
    """The baseline (or the proposal): values of searched parameters, each inside the space and active."""
    by_name = {p.name: p for p in params}
    baseline = {}
    for name, value in raw.items():
        if name not in by_name:
            raise UserError(
                f"{where}: {key}.{name}: not a searched parameter; the {key} lists searched "
                f"parameters only ({', '.join(by_name)})"
            )
        problem = _value_problem(by_name[name], value)
        if problem:
            raise UserError(f"{where}: {key}.{name}: {value!r} is outside the space ({problem})")
        baseline[name] = float(value) if by_name[name].type == "float" else value
    for p in DefineByRun(params).parameters:
        if p.name in baseline and not p.is_active(baseline):
            rule = " and ".join(f"{k} in ({', '.join(map(str, v))})" for k, v in p.when.items())
            raise UserError(
                f"{where}: {key}.{p.name}: inactive in the {key}, as it is searched only when "
                f"{rule}; remove it or set that in the {key}"
            )
    return baseline


def _dependency_order(params: tuple[Parameter, ...]) -> tuple[list[Parameter], list[str] | None]:
    """Parameters with every ``when`` parent before its children (file order otherwise), and a cycle if any."""
    by_name = {p.name: p for p in params}
    order: list[Parameter] = []
    done: set[str] = set()
    stack: list[str] = []

    def visit(p: Parameter) -> list[str] | None:
        if p.name in done:
            return None
        if p.name in stack:
            return stack[stack.index(p.name) :] + [p.name]
        stack.append(p.name)
        for parent in p.when or {}:
            if parent in by_name:
                cycle = visit(by_name[parent])
                if cycle:
                    return cycle
        stack.pop()
        done.add(p.name)
        order.append(p)
        return None

    for p in params:
        cycle = visit(p)
        if cycle:
            return order, cycle
    return order, None
