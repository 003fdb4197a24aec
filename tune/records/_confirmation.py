"""The record of a confirmation: every configuration's runs, one per seed, their means and intervals, the
measured expected effects and the confirmed winner, as a best config stores them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tune.records._document import DOCUMENT, Part
from tune.records._scores import EnsembleScores, PairedDifference, Summary

__all__ = ["CONFIRMATION_KIND", "ConfigurationRecord", "Confirmation", "EffectRow", "Effects", "RunRecord", "Verdict"]

CONFIRMATION_KIND = "joyful-tune confirmation"
_NUMBER = (int, float, type(None))


@dataclass(frozen=True, kw_only=True)
class RunRecord(Part):
    """One confirmation run: a configuration trained with one seed, test evaluated once at the best dev epoch."""

    KEY = "confirmation.configurations[].runs[]"
    REQUIRED = ("seed", "best_dev_weighted_f1")
    TYPES = {"seed": int, "best_dev_weighted_f1": _NUMBER, "best_epoch": (int, type(None)), "epochs_run": int,
             "test_weighted_f1": _NUMBER, "test_accuracy": _NUMBER, "error": str, "dev_weighted_f1": list,
             "train_loss": list, "train_nll": list, "raw_test_weighted_f1": _NUMBER,
             "raw_best_dev_weighted_f1": _NUMBER}

    seed: int
    best_dev_weighted_f1: float | None  # None when the run failed
    best_epoch: int | None = None
    epochs_run: int = 0
    test_weighted_f1: float | None = None
    test_accuracy: float | None = None
    error: str = ""
    # Per epoch, epoch 1 first.
    dev_weighted_f1: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_nll: list[float] = field(default_factory=list)
    # With --weight_averaging: the raw (not averaged) weights at their own best dev epoch, tested once.
    raw_test_weighted_f1: float | None = None
    raw_best_dev_weighted_f1: float | None = None

    @property
    def ok(self) -> bool:
        return self.best_dev_weighted_f1 is not None and math.isfinite(self.best_dev_weighted_f1)


class Verdict(StrEnum):
    """Whether an expected effect held, as the effects table writes it."""

    HELD = "held"
    HELD_BEYOND = "held (beyond the expected range)"
    WEAKER = "weaker than expected"
    NOT_HELD = "did not hold"
    NOT_MEASURABLE = "not measurable"

    @property
    def held(self) -> bool:
        return self in (Verdict.HELD, Verdict.HELD_BEYOND)


@dataclass(frozen=True, kw_only=True)
class EffectRow(Part):
    """One expected effect, measured: both groups' values, the change, the hoped-for range and the verdict."""

    KEY = "confirmation.effects.rows[]"
    REQUIRED = ("effect", "measure", "description", "verdict")
    TYPES = {"effect": str, "measure": str, "description": str, "baseline": _NUMBER, "winner": _NUMBER,
             "change": _NUMBER, "change_unit": str, "expected": str, "seeds_better": (str, type(None)),
             "diff_ci95": (list, type(None))}

    effect: str
    measure: str
    description: str
    baseline: float | None = None
    winner: float | None = None
    change: float | None = None  # in `change_unit`; positive is the hoped-for direction
    change_unit: str = "%"  # "%" or "points"
    expected: str = ""
    seeds_better: str | None = None  # "2/3": seeds where the compared run beats the baseline's
    verdict: Verdict
    diff_ci95: list[float] | None = None

    def check(self) -> None:
        try:
            object.__setattr__(self, "verdict", Verdict(self.verdict))  # a stored string becomes its member
        except ValueError:
            raise ValueError(f"{DOCUMENT}: '{self.KEY}.verdict' is {self.verdict!r}, but must be one of: "
                             + ", ".join(v.value for v in Verdict)) from None


@dataclass(frozen=True, kw_only=True)
class Effects(Part):
    """The expected effects, measured for the baseline against one configuration over the seeds both ran."""

    KEY = "confirmation.effects"
    REQUIRED = ("baseline", "compared", "rows")
    LISTS = {"rows": EffectRow}
    TYPES = {"baseline": str, "compared": str, "compared_is_winner": bool, "proposal": dict, "seeds": list}

    baseline: str
    compared: str
    compared_is_winner: bool = False
    proposal: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=list)
    rows: list[EffectRow]


@dataclass(frozen=True, kw_only=True)
class ConfigurationRecord(Part):
    """One confirmed configuration (the baseline or a candidate): its config, runs and their statistics."""

    KEY = "confirmation.configurations[]"
    REQUIRED = ("label", "config", "dev_weighted_f1", "test_weighted_f1", "runs")
    PARTS = {"dev_weighted_f1": Summary, "test_weighted_f1": Summary, "raw_test_weighted_f1": Summary,
             "ensemble": EnsembleScores, "paired_diff_to_baseline": PairedDifference}
    LISTS = {"runs": RunRecord}
    TYPES = {"label": str, "config": dict, "searched": dict}

    label: str
    config: dict[str, Any]  # JoyfulConfig.to_dict()
    searched: dict[str, Any] = field(default_factory=dict)  # the settings that differ from the baseline's
    dev_weighted_f1: Summary  # best dev wF1 over the seeds
    test_weighted_f1: Summary
    raw_test_weighted_f1: Summary | None = None
    ensemble: EnsembleScores | None = None  # its runs' mean probabilities
    paired_diff_to_baseline: PairedDifference | None = None  # None for the baseline
    runs: list[RunRecord]

    def run_at(self, seed: int) -> RunRecord | None:
        return next((r for r in self.runs if r.seed == seed), None)


@dataclass(frozen=True, kw_only=True)
class Confirmation(Part):
    """The confirmation of a search, as its best config records it.

    Written by `ConfirmationResult.to_record` (kind "joyful-tune confirmation", every key set). A document
    of another kind (hand-written, older) is kept as it is, with the keys it has.
    """

    KEY = "confirmation"
    PARTS = {"effects": Effects, "ensemble_all": EnsembleScores}
    LISTS = {"configurations": ConfigurationRecord}
    TYPES = {"kind": str, "metric": str, "seeds": list, "winner": str, "winner_seed": int, "selection": str,
             "wall_seconds": (int, float), "experiment": str, "finished_at": str, "command": str}
    OMIT_NONE = ("command",)

    kind: str | None = None
    metric: str | None = None
    seeds: list[int] | None = None
    winner: str | None = None  # the winning configuration's label
    winner_seed: int | None = None  # the seed of its median run: the one the best config's `config` reproduces
    selection: str | None = None
    configurations: list[ConfigurationRecord] | None = None  # the baseline first
    effects: Effects | None = None
    # Every confirmed run, all configurations together: what a larger ensemble would add.
    ensemble_all: EnsembleScores | None = None
    wall_seconds: float | None = None
    experiment: str | None = None
    finished_at: str | None = None
    command: str | None = None  # the command that ran it

    def check(self) -> None:
        if self.kind == CONFIRMATION_KIND:
            for name in ("seeds", "winner", "configurations"):
                if getattr(self, name) is None:
                    raise ValueError(f"{DOCUMENT}: missing key 'confirmation.{name}'")
            if self.winner_entry is None:
                raise ValueError(f"{DOCUMENT}: 'confirmation.winner' {self.winner!r} is none of the configurations")

    def entry(self, label: str) -> ConfigurationRecord | None:
        return next((c for c in self.configurations or () if c.label == label), None)

    @property
    def winner_entry(self) -> ConfigurationRecord | None:
        """The confirmed winner's configuration; None for a confirmation without configurations."""
        return self.entry(self.winner) if self.winner is not None else None

    @property
    def winner_run(self) -> RunRecord | None:
        """The winner's run the best config holds (at `winner_seed`)."""
        entry = self.winner_entry
        return entry.run_at(self.winner_seed) if entry is not None and self.winner_seed is not None else None
