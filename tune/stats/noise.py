"""How much of a difference between two trials' scores is noise, measured from the data (no
training).

A trial's dev weighted F1 would move if the dev split's dialogues were drawn again; a difference
smaller than that movement is no evidence. It is measured once per search, on a model that needs no
tuning: the logistic regression of the references (tune/stats/references.py), whose dev predictions
are resampled by dialogue (`tune.stats.bootstrap.standard_error`). With cross-validation a trial's
score after f folds is a mean over f held-out folds of about (train + dev) / K dialogues each, so
its noise is the dev split's scaled to a fold's size and divided by the square root of f.

The scheduler (tune/runner/scheduler.py) stops a trial only when it trails the rung's cutoff by more
than this, and only when the cutoff clears the always-majority level by more than this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from joyful.data.dialogues import DialogueData
from tune.stats.bootstrap import Predictions, standard_error

__all__ = ["SplitNoise", "split_noise"]


@dataclass(frozen=True)
class SplitNoise:
    """The standard error of a search's score at each budget (picklable: the scheduler keeps it)."""

    dev_se: float  # of one dev weighted F1 on the data's dev split
    dev_dialogues: int
    folds: int = 0  # 0: the data's dev split; K: K-fold cross-validation over train + dev
    pool_dialogues: int = 0  # train + dev

    def __call__(self, budget: int) -> float:
        """The noise of a score at `budget` (epochs on the dev split; folds run with
        cross-validation)."""
        if not self.folds:
            return self.dev_se
        fold_dialogues = self.pool_dialogues / self.folds
        return (
            self.dev_se * math.sqrt(self.dev_dialogues / fold_dialogues) / math.sqrt(max(1, budget))
        )


def split_noise(data: DialogueData, reference_dev: Predictions, folds: int = 0) -> SplitNoise:
    """The noise of `data`'s dev split, from the reference model's dev predictions
    (`reference_dev`)."""
    se = standard_error(reference_dev, n_classes=data.spec.n_classes)
    return SplitNoise(
        dev_se=se,
        dev_dialogues=len(data.splits["dev"]),
        folds=folds,
        pool_dialogues=len(data.splits["train"]) + len(data.splits["dev"]),
    )
