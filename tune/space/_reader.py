"""Reading a search-space file: YAML in, a validated SearchSpace out, every mistake named with file
and key.

Each Parameter checks its own rules (range, log, step, choices, `when` shape); the reader translates
the YAML into Parameter(...), puts the file in front of its errors, and adds what only the file
knows: the JoyfulConfig settings, the fixed values, the other parameters, the baseline and the
proposal.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

from joyful.config import JoyfulConfig, coerce_value, field_names, field_type
from joyful.errors import UserError
from joyful.io import display_path
from tune.space._budget import Budget
from tune.space._conditions import active_parameters, when_order
from tune.space._parameter import Parameter, is_plain, misfit
from tune.space._references import parse_references
from tune.space._resampling import DEFAULT_ENSEMBLE, ENSEMBLE_KINDS, TIE_RULES, Resampling
from tune.space._shipped import DEFAULT_SPACE_PATH
from tune.space._space import SearchSpace
from tune.space._strategy import Strategy
from tune.space._yaml import check_keys, mapping, read_yaml

__all__ = ["METRIC_MODES", "load_space"]

METRIC_MODES = {"dev_weighted_f1": "max", "dev_accuracy": "max", "dev_loss": "min"}
TOP_LEVEL_KEYS = (
    "dataset",
    "metric",
    "mode",
    "budget",
    "strategy",
    "references",
    "resampling",
    "on_tie",
    "ensemble",
    "fixed",
    "parameters",
    "baseline",
    "proposal",
)
PARAMETER_KEYS = ("type", "low", "high", "log", "step", "choices", "when", "role")
# Settings the file sets elsewhere; searching or fixing them would contradict that key.
RESERVED = {
    "dataset": "set it with the top-level 'dataset' key",
    "epochs": "set it with budget.max_epochs",
    "cv_folds": "set it with the top-level 'resampling' key",
    "cv_fold": "the search runs every fold",
    "select_epoch": "the search sets it from 'resampling'",
}


def load_space(
    path: str | Path, dataset: str | None = None, *, template: bool = False
) -> SearchSpace:
    """Read and validate a search-space file; `dataset`, when given, must match the file's.

    With `template`, the file is the default space and its `dataset` key becomes `dataset`.
    """
    path = Path(path)
    where = display_path(path)
    doc, sha256 = read_yaml(path, where)
    if not isinstance(doc, dict):
        raise UserError(
            f"{where}: the top level must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}"
        )
    check_keys(doc, TOP_LEVEL_KEYS, where, "top level")
    if (template or path.resolve() == DEFAULT_SPACE_PATH) and dataset is not None:
        doc["dataset"] = dataset
    name = doc.get("dataset")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: dataset: missing or not a string; add e.g. 'dataset: iemocap_4'")
    problem = _config_problem("dataset", name, {})
    if problem:
        raise UserError(f"{where}: dataset: {problem}")
    if dataset is not None and name != dataset:
        raise UserError(
            f"{where} is for {name!r}, not {dataset!r}; use the space file of {dataset!r}"
        )
    metric, mode = _metric_mode(doc, where)
    budget = _parse_budget(mapping(doc.get("budget"), where, "budget"), where)
    strategy = _parse_section(
        Strategy, mapping(doc.get("strategy"), where, "strategy"), where, "strategy"
    )
    fixed = _parse_fixed(mapping(doc.get("fixed"), where, "fixed"), where)
    raw_params = mapping(doc.get("parameters"), where, "parameters")
    if not raw_params:
        raise UserError(
            f"{where}: parameters: missing or empty; list at least one setting to search"
        )
    params = tuple(_parse_parameter(n, raw, where, fixed) for n, raw in raw_params.items())
    _check_conditions(params, where, fixed)
    baseline = _parse_baseline(mapping(doc.get("baseline"), where, "baseline"), params, where)
    proposal = _parse_baseline(
        mapping(doc.get("proposal"), where, "proposal"), params, where, key="proposal"
    )
    resampling = _parse_resampling(doc.get("resampling", "auto"), where)
    on_tie = doc.get("on_tie", "baseline")
    if on_tie not in TIE_RULES:
        raise UserError(
            f"{where}: on_tie is {on_tie!r}, but must be one of: {', '.join(TIE_RULES)} (what a "
            "tie between the confirmed winner and the baseline publishes)"
        )
    ensemble = doc.get("ensemble", DEFAULT_ENSEMBLE)
    if ensemble not in ENSEMBLE_KINDS:
        raise UserError(
            f"{where}: ensemble is {ensemble!r}, but must be one of: {', '.join(ENSEMBLE_KINDS)} "
            "(what a cross-validated search publishes: its winner refit on all of train + dev, or "
            "its fold models)"
        )
    references = parse_references(mapping(doc.get("references"), where, "references"), where)
    return SearchSpace(
        name,
        params,
        fixed,
        baseline,
        budget,
        metric,
        mode,
        str(path.resolve()),
        sha256,
        proposal,
        resampling,
        on_tie,
        strategy,
        references,
        ensemble,
    )


def _parse_resampling(raw: Any, where: str) -> Resampling:
    """`auto`, `holdout`, `cv`, or a mapping {kind: cv, folds: K}."""
    if isinstance(raw, str):
        raw = {"kind": raw}
    raw = mapping(raw, where, "resampling")
    check_keys(raw, ("kind", "folds"), where, "resampling")
    try:
        return Resampling(**raw)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


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
        raise UserError(
            f"{where}: mode: {metric} must be optimised with mode {METRIC_MODES[metric]}, not "
            f"{mode}"
        )
    return metric, mode


def _parse_budget(raw: dict, where: str) -> Budget:
    return _parse_section(Budget, raw, where, "budget")


def _parse_section(kind: type, raw: dict, where: str, key: str) -> Any:
    """A section whose keys are the fields of dataclass `kind` (Budget, Strategy), checked by its
    `check`."""
    check_keys(raw, tuple(f.name for f in dataclasses.fields(kind)), where, key)
    return kind(**raw).check(where)


def _check_setting_name(name: str, where: str, key: str) -> None:
    if name in RESERVED:
        raise UserError(
            f"{where}: {key}: {name!r} cannot be fixed or searched here; {RESERVED[name]}"
        )
    if name not in field_names():
        close = difflib.get_close_matches(name, field_names(), n=3)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "see the train.py flags (joyful/config.py)"
        )
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
    """The Parameter that `raw` (the YAML mapping under ``parameters.<name>``) describes, checked
    against the JoyfulConfig setting it searches (its type, and each bound or choice a valid value
    with `fixed`)."""
    key = f"parameters.{name}"
    _check_setting_name(name, where, key)
    if name in fixed:
        raise UserError(
            f"{where}: {key}: {name!r} is both fixed and searched; remove it from one of them"
        )
    if not isinstance(raw, dict):
        raise UserError(
            f"{where}: {key}: must be a mapping like {{type: float, low: 0.01, high: 0.1}}"
        )
    check_keys(raw, PARAMETER_KEYS, where, key)
    choices = raw.get("choices")
    if raw.get("type") == "categorical" and isinstance(choices, list):
        # A choice takes the setting's type first (an int 1 for a float setting is 1.0), so
        # duplicates are judged as the config sees them; a nested value is left for Parameter to
        # refuse.
        choices = [
            coerce_value(name, v, source=f"{where}: {key}.choices") if is_plain(v) else v
            for v in choices
        ]
    try:
        p = Parameter(
            name,
            raw.get("type"),
            raw.get("low"),
            raw.get("high"),
            raw.get("log", False),
            raw.get("step"),
            choices,
            raw.get("when"),
            raw.get("role", "scientific"),
        )
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    rule = misfit(
        p.type, tuple(raw)
    )  # a key written with its default value (log: false) is still wrong here
    if rule:
        raise UserError(f"{where}: {key}: {rule}")
    if p.type == "categorical":
        for value in p.choices:
            problem = _config_problem(name, value, fixed)
            if problem:
                raise UserError(
                    f"{where}: {key}.choices: {value!r} is not a valid value ({problem})"
                )
        return p
    setting_kind = field_type(name)
    if setting_kind not in (int, float):
        raise UserError(
            f"{where}: {key}: setting {name!r} is a {setting_kind.__name__}; use type: categorical"
        )
    if p.type == "float" and setting_kind is int:
        raise UserError(f"{where}: {key}: setting {name!r} is an integer; use type: int")
    for bound in ("low", "high"):
        problem = _config_problem(name, getattr(p, bound), fixed)
        if problem:
            raise UserError(
                f"{where}: {key}.{bound}: {raw[bound]} is not a valid value ({problem})"
            )
    return p


def _check_conditions(params: tuple[Parameter, ...], where: str, fixed: dict) -> None:
    """Each `when` names another searched parameter, not a float one, and only values it can take;
    no cycle."""
    by_name = {p.name: p for p in params}
    for p in params:
        for parent, allowed in (p.when or {}).items():
            key = f"parameters.{p.name}.when.{parent}"
            if parent in fixed:
                raise UserError(
                    f"{where}: {key}: {parent!r} is fixed, not searched, so the condition never "
                    "varies; drop the 'when'"
                )
            if parent not in by_name:
                raise UserError(
                    f"{where}: {key}: {parent!r} is not a searched parameter; searched: "
                    f"{', '.join(by_name)}"
                )
            q = by_name[parent]
            if q.type == "float":
                raise UserError(
                    f"{where}: {key}: conditions on a float parameter never match; "
                    "condition on a categorical or int parameter"
                )
            for value in allowed:
                problem = q.value_problem(value)
                if problem:
                    raise UserError(f"{where}: {key}: {parent} cannot take {value!r} ({problem})")
    try:
        when_order(params)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _parse_baseline(
    raw: dict, params: tuple[Parameter, ...], where: str, key: str = "baseline"
) -> dict[str, Any]:
    """The baseline (or the proposal): values of searched parameters, each inside the space and
    active."""
    by_name = {p.name: p for p in params}
    baseline = {}
    for name, value in raw.items():
        if name not in by_name:
            raise UserError(
                f"{where}: {key}.{name}: not a searched parameter; the {key} lists searched "
                f"parameters only ({', '.join(by_name)})"
            )
        problem = by_name[name].value_problem(value)
        if problem:
            raise UserError(f"{where}: {key}.{name}: {value!r} is outside the space ({problem})")
        baseline[name] = float(value) if by_name[name].type == "float" else value
    active = {p.name for p in active_parameters(params, baseline)}
    for p in when_order(params):
        if p.name in baseline and p.name not in active:
            rule = " and ".join(f"{k} in ({', '.join(map(str, v))})" for k, v in p.when.items())
            raise UserError(
                f"{where}: {key}.{p.name}: inactive in the {key}, as it is searched only when "
                f"{rule}; remove it or set that in the {key}"
            )
    return baseline
