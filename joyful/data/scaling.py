"""Feature scaling fitted on the train split: `--feature_norm none | standardize | scale`.

Real feature files mix scales that differ by hundreds of times: MELD's timing vector
(characters per second, mean 14.8) beside unit-norm MiniLM text entries (about 0.05),
IEMOCAP's and MOSEI's acoustic and visual descriptors likewise. Unscaled, the large
modality dominates the fused vector and the reconstruction loss, and training sits at
"always the majority class" for many epochs (docs/MEASURED.md).

* ``none``: the features as stored (the original code; for reproducing published numbers).
* ``standardize``: per dimension, subtract the train mean and divide by the train s.d.;
  a constant dimension (s.d. 0) is only centred.
* ``scale``: per modality, divide by the mean L2 norm of its train vectors: one number,
  so a modality keeps its geometry (angles, relative dimension sizes).

Statistics come from the train split only, in float64, so the same data give bit-identical
statistics on every run; they are saved in checkpoints and checked on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from joyful.config import FEATURE_NORMS
from joyful.errors import UserError

# A train s.d. below this is a constant dimension: dividing by it would blow up noise in dev/test.
CONSTANT_STD = 1e-8


@dataclass(frozen=True)
class FeatureScaler:
    """x -> (x - shift) * factor per modality; float64 statistics, float32 output."""

    method: str
    shift: dict[str, np.ndarray]  # letter -> (d,) float64
    factor: dict[str, np.ndarray]  # letter -> (d,) float64

    @classmethod
    def fit(cls, train: Sequence[Any], modalities: str, method: str) -> FeatureScaler:
        """Statistics of `train` (dialogues with a `features` dict) for each letter in
        `modalities`."""
        if method not in FEATURE_NORMS:
            raise UserError(
                f"--feature_norm is {method!r}, but must be one of: {', '.join(FEATURE_NORMS)}"
            )
        shift, factor = {}, {}
        for letter in modalities:
            rows = np.concatenate([d.features[letter] for d in train]).astype(np.float64)
            width = rows.shape[1]
            if method == "standardize":
                mean, std = rows.mean(axis=0), rows.std(axis=0)
                shift[letter] = mean
                factor[letter] = np.where(
                    std > CONSTANT_STD, 1.0 / np.maximum(std, CONSTANT_STD), 1.0
                )
            elif method == "scale":
                mean_norm = float(np.linalg.norm(rows, axis=1).mean())
                shift[letter] = np.zeros(width)
                factor[letter] = np.full(
                    width, 1.0 / mean_norm if mean_norm > CONSTANT_STD else 1.0
                )
            else:
                shift[letter], factor[letter] = np.zeros(width), np.ones(width)
        return cls(method, shift, factor)

    @property
    def is_identity(self) -> bool:
        return self.method == "none"

    def transform(self, letter: str, matrix: np.ndarray) -> np.ndarray:
        """One dialogue's (L, d) features, scaled as a whole (no per-utterance loop)."""
        if self.is_identity:
            return matrix
        return ((matrix.astype(np.float64) - self.shift[letter]) * self.factor[letter]).astype(
            np.float32
        )

    # --- checkpoints ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors and strings only, so checkpoints still load with ``weights_only=True``."""
        return {
            "method": self.method,
            "shift": {k: torch.from_numpy(v.copy()) for k, v in self.shift.items()},
            "factor": {k: torch.from_numpy(v.copy()) for k, v in self.factor.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureScaler:
        """The scaler `state_dict` saved (a model file applies its training statistics to new
        data)."""
        return cls(
            state["method"],
            {k: v.numpy().astype(np.float64) for k, v in state["shift"].items()},
            {k: v.numpy().astype(np.float64) for k, v in state["factor"].items()},
        )

    def check_state(self, state: dict[str, Any] | None, where: str) -> None:
        """Refuse to continue from a checkpoint whose statistics are not this data's."""
        if (
            state is None
        ):  # a checkpoint written before feature scaling existed: only 'none' matches it
            if not self.is_identity:
                raise UserError(
                    f"{where} has no feature statistics but --feature_norm is {self.method}; "
                    "pass --from_begin or --feature_norm none"
                )
            return
        same = (
            state["method"] == self.method
            and set(state["shift"]) == set(self.shift)
            and all(
                np.array_equal(state["shift"][k].numpy(), self.shift[k])
                and np.array_equal(state["factor"][k].numpy(), self.factor[k])
                for k in self.shift
            )
        )
        if not same:
            raise UserError(
                f"{where} was trained with other feature statistics (--feature_norm "
                f"{state['method']} on other train data); pass --from_begin to start over"
            )

    def summary(self) -> dict[str, Any]:
        """What a metrics file records: the method and, per modality, the scale it applied."""
        return {
            "method": self.method,
            "modalities": {
                k: {
                    "mean_shift": float(np.abs(self.shift[k]).mean()),
                    "mean_factor": float(self.factor[k].mean()),
                }
                for k in self.shift
            },
        }
