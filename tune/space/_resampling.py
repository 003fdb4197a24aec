"""How a search scores a trial: on the data's dev split (holdout) or by K-fold cross-validation by
dialogue over train + dev (cv), and what a tie between the confirmed winner and the baseline
publishes."""

from __future__ import annotations

from dataclasses import dataclass

from joyful.errors import UserError

__all__ = [
    "DEFAULT_ENSEMBLE",
    "ENSEMBLE_KINDS",
    "NOISE_THRESHOLD",
    "RESAMPLING_KINDS",
    "TIE_RULES",
    "Resampling",
]

RESAMPLING_KINDS = ("auto", "holdout", "cv")
TIE_RULES = ("baseline", "winner")
# What a cross-validated search publishes: its winner refit on all of train + dev (one run per fold
# count, each its own seed), or the winner's fold models (bagging). Refit is the default: on dev
# evidence (MELD and five IEMOCAP-sized draws of it) it scored above the fold models every time,
# though within the intervals (scripts/refit_check.py, docs/TUNING.md "Publishing").
ENSEMBLE_KINDS = ("refit", "folds")
DEFAULT_ENSEMBLE = "refit"
DEFAULT_FOLDS = 5
# `auto` cross-validates when one dev weighted F1 is uncertain by more than this (its standard error
# over redrawn dev dialogues, tune/stats/noise.py): the effects the user hopes for are +1-2 points
# of weighted F1, and a split that moves a score by more than a point cannot resolve them (MELD's
# 114 dev dialogues: 0.020).
NOISE_THRESHOLD = 0.01


@dataclass(frozen=True)
class Resampling:
    """`kind` holdout, cv (with `folds`) or auto (decided from the data: `resolve`)."""

    kind: str = "auto"
    folds: int = DEFAULT_FOLDS

    def __post_init__(self) -> None:
        if self.kind not in RESAMPLING_KINDS:
            raise UserError(
                f"resampling.kind is {self.kind!r}, but must be one of: "
                f"{', '.join(RESAMPLING_KINDS)}"
            )
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 2:
            raise UserError(f"resampling.folds is {self.folds!r}, but must be an integer >= 2")

    @property
    def cv(self) -> bool:
        return self.kind == "cv"

    def resolve(self, dev_noise: float) -> tuple[Resampling, str]:
        """The kind to use on data whose dev split has standard error `dev_noise`, and why."""
        if self.kind != "auto":
            return self, f"resampling: {self.kind} (the space file's choice)"
        if dev_noise > NOISE_THRESHOLD:
            return Resampling("cv", self.folds), (
                f"resampling auto: {self.folds}-fold cross-validation, since one dev weighted F1 "
                "is uncertain by "
                f"{dev_noise:.3f} (its standard error over redrawn dev dialogues) > "
                f"{NOISE_THRESHOLD}"
            )
        return Resampling("holdout", self.folds), (
            "resampling auto: the dev split, since its weighted F1 is uncertain by only "
            f"{dev_noise:.3f} <= {NOISE_THRESHOLD}"
        )
