"""The record of a confirmation: every configuration's runs, one per seed, their means and
intervals, the measured expected effects and the confirmed winner, as a best config stores them."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from tune.records._base import Finite
from tune.records._parts import Part
from tune.records._scores import EnsembleScores, PairedDifference, Summary

__all__ = [
    "CONFIRMATION_KIND",
    "ConfigurationRecord",
    "Confirmation",
    "EffectRow",
    "Effects",
    "RunRecord",
    "Verdict",
]

CONFIRMATION_KIND = "joyful-tune confirmation"


class RunRecord(Part):
    """One confirmation run: a configuration trained with one seed (on one fold with
    cross-validation), test evaluated once with the model it keeps."""

    seed: int
    fold: int | None = None  # with cross-validation: the fold held out as its dev split
    best_dev_weighted_f1: Finite | None  # None when the run failed
    best_epoch: int | None = None
    epochs_run: int = 0
    test_weighted_f1: Finite | None = None
    test_accuracy: Finite | None = None
    error: str = ""
    precision: str | None = None  # what it trained at (fp32 or bf16)
    # Per epoch, epoch 1 first.
    dev_weighted_f1: list[Finite] = Field(default_factory=list)
    train_loss: list[Finite] = Field(default_factory=list)
    train_nll: list[Finite] = Field(default_factory=list)
    # With --weight_averaging: the raw (not averaged) weights at their own best dev epoch, tested
    # once.
    raw_test_weighted_f1: Finite | None = None
    raw_best_dev_weighted_f1: Finite | None = None
    wall_seconds: Finite | None = None  # the run's own time, as Ray measured it
    # Trained on all of train + dev for the chosen epoch count (the published model of a
    # cross-validated search): no dev split, so no dev score; its test score says it finished.
    refit: bool = False

    @property
    def ok(self) -> bool:
        if self.refit:
            return self.test_weighted_f1 is not None and not self.error
        return self.best_dev_weighted_f1 is not None and math.isfinite(self.best_dev_weighted_f1)

    @property
    def key(self) -> tuple[int, int]:
        """What pairs runs of two configurations: the seed, and the fold."""
        return self.seed, self.fold or 0

    @property
    def label(self) -> str:
        return f"seed {self.seed}" + (f", fold {self.fold}" if self.fold else "")


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


class EffectRow(Part):
    """One expected effect, measured: both groups' values, the change, the hoped-for range and the
    verdict."""

    effect: str
    measure: str
    description: str
    baseline: Finite | None = None
    winner: Finite | None = None
    change: Finite | None = None  # in `change_unit`; positive is the hoped-for direction
    change_unit: str = "%"  # "%" or "points"
    expected: str = ""
    seeds_better: str | None = None  # "2/3": seeds where the compared run beats the baseline's
    verdict: Verdict = Field(strict=False)
    diff_ci95: list[Finite] | None = None


class Effects(Part):
    """The expected effects, measured for the baseline against one configuration over the seeds both
    ran."""

    baseline: str
    compared: str
    compared_is_winner: bool = False
    proposal: dict[str, Any] = Field(default_factory=dict)
    runs: list[str] = Field(
        default_factory=list
    )  # the runs both configurations have (seed, and fold)
    rows: list[EffectRow]


class ConfigurationRecord(Part):
    """One confirmed configuration (the baseline or a candidate): its config, runs and their
    statistics."""

    label: str
    config: dict[str, Any]  # JoyfulConfig.to_dict()
    searched: dict[str, Any] = Field(
        default_factory=dict
    )  # the settings that differ from the baseline's
    dev_weighted_f1: Summary  # best dev wF1 over the seeds
    test_weighted_f1: Summary
    raw_test_weighted_f1: Summary | None = None
    ensemble: EnsembleScores | None = None  # its runs' mean probabilities
    paired_diff_to_baseline: PairedDifference | None = None  # None for the baseline
    runs: list[RunRecord]

    def run_at(self, seed: int, fold: int | None = None) -> RunRecord | None:
        return next((r for r in self.runs if r.key == (seed, fold or 0)), None)


class Confirmation(Part):
    """The confirmation of a search, as its best config records it
    (`ConfirmationResult.to_record`)."""

    kind: str = CONFIRMATION_KIND
    metric: str
    seeds: list[int]
    winner: str  # the published configuration's label
    winner_seed: int  # the seed of its median run: the one the best config's `config` reproduces
    winner_fold: int | None = None  # ... and its fold, with cross-validation
    selection: str
    resampling: str = (
        "holdout"  # what each run's dev split was: the data's, or a fold (cv: K folds)
    )
    tie: str | None = (
        None  # why the baseline is published although another configuration scored higher
    )
    configurations: list[ConfigurationRecord]  # the baseline first
    effects: Effects | None = None
    # Every confirmed run, all configurations together: what a larger ensemble would add.
    ensemble_all: EnsembleScores | None = None
    wall_seconds: Finite
    experiment: str
    finished_at: str
    command: str | None = None  # the command that ran it (tune/confirm.py), None inside a search

    @model_validator(mode="after")
    def _winner_is_a_configuration(self) -> Confirmation:
        if self.winner_entry is None:
            raise ValueError(f"'confirmation.winner' {self.winner!r} is none of the configurations")
        return self

    def entry(self, label: str) -> ConfigurationRecord | None:
        return next((c for c in self.configurations if c.label == label), None)

    @property
    def winner_entry(self) -> ConfigurationRecord | None:
        return self.entry(self.winner)

    @property
    def winner_run(self) -> RunRecord | None:
        """The winner's run the best config holds (at `winner_seed`)."""
        entry = self.winner_entry
        return entry.run_at(self.winner_seed, self.winner_fold) if entry is not None else None
