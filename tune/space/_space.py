"""A validated search space, and how Optuna samples it define-by-run (`SearchSpace.suggest`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joyful.config import JoyfulConfig
from tune.space._budget import Budget
from tune.space._conditions import active_parameters
from tune.space._parameter import Parameter
from tune.space._references import ReferenceRuns
from tune.space._resampling import DEFAULT_ENSEMBLE, Resampling
from tune.space._strategy import Strategy

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchSpace"]


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
    # The proposed setting (e.g. hierarchical fusion + SmoothL1) whose expected effects
    # confirmation measures against the baseline; empty = compare the confirmed winner.
    proposal: dict[str, Any] = dataclasses.field(default_factory=dict)
    resampling: Resampling = dataclasses.field(default_factory=Resampling)
    on_tie: str = "baseline"  # what a tie between the confirmed winner and the baseline publishes
    strategy: Strategy = dataclasses.field(default_factory=Strategy)  # sampler and scheduler
    # the defaults as train.py runs them and a strong untuned setting: what the search must beat
    references: ReferenceRuns = dataclasses.field(default_factory=ReferenceRuns)
    # what a cross-validated search publishes: its winner refit on all of train + dev, or its folds
    ensemble: str = DEFAULT_ENSEMBLE

    def tuned_names(self, point: dict | None = None) -> list[str]:
        """Nuisance parameters `point` (default: the baseline) leaves open: confirmation gives them
        tuned values."""
        point = self.baseline if point is None else point
        return [p.name for p in self.parameters if p.role == "nuisance" and p.name not in point]

    def scientific_names(self) -> list[str]:
        return [p.name for p in self.parameters if p.role == "scientific"]

    def baseline_point(self) -> dict:
        """The baseline restricted to the parameters active under it (for points_to_evaluate)."""
        return self.active_point(self.baseline)

    def strata(self) -> list[dict]:
        """Every combination of the scientific categorical parameters that no `when` condition hides
        (e.g. [{fusion: autofusion}, {fusion: hierarchical}]); [] when there are none."""
        combos: list[dict] = [{}]
        for p in self.parameters:
            if p.role == "scientific" and p.type == "categorical" and not p.when:
                combos = [{**c, p.name: choice} for c in combos for choice in p.choices]
        return combos if len(combos) > 1 else []

    def trial_config(self, base: JoyfulConfig, sampled: dict) -> JoyfulConfig:
        """`base`, overridden by `fixed`, overridden by the `sampled` values; validated."""
        values = {**base.to_dict(), **self.fixed, **sampled}
        return JoyfulConfig.from_dict(values, source=f"{self.path or 'search space'}: trial config")

    def param_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def point_from(self, values: dict) -> dict | None:
        """The values of the parameters active under `values` (e.g. an earlier winner's config), or
        None when one is missing or lies outside this space: a point this space could have sampled.
        """
        point: dict = {}
        for p in self.active_parameters(values):
            if p.name not in values or p.value_problem(values[p.name]) is not None:
                return None
            point[p.name] = float(values[p.name]) if p.type == "float" else values[p.name]
        return point

    def active_parameters(self, values: dict) -> list[Parameter]:
        """The parameters active under `values`, parents first (the walk Optuna's sampling
        follows)."""
        return list(active_parameters(self.parameters, values))

    def suggest(self, trial: optuna.trial.Trial, given: dict | None = None) -> dict:
        """Sample the parameters active under `given` (e.g. an arm's scientific values) and the
        values drawn so far, parents first, with `trial`'s sampler; returns `given` with the sampled
        values (define-by-run)."""
        values: dict[str, Any] = dict(given or {})
        for p in active_parameters(self.parameters, values):  # reads each value as it is suggested
            if p.name not in values:
                values[p.name] = p.suggest(trial)
        return values

    def arms(self) -> list[dict]:
        """The arms the search tunes separately: the strata of its scientific parameter ([{}]: one
        arm)."""
        return self.strata() or [{}]

    def active_point(self, values: dict) -> dict:
        """The values of the parameters active under `values` (e.g. a full config's searched
        settings)."""
        return {
            p.name: values[p.name]
            for p in active_parameters(self.parameters, values)
            if p.name in values
        }
