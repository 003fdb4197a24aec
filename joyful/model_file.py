"""A trained model as one file: the selected weights and everything needed to use them on new data.

Written by `train.py --save-model`, by confirmation for every member of a published ensemble, and
read by `python -m joyful.predict`. Unlike a checkpoint (joyful/checkpoint.py: optimizer, RNG, the
whole training state, to continue a run), a model file holds only what prediction needs:

* the resolved config (it rebuilds the architecture) and the selected weights (the averaged copy
  with `--weight_averaging`, at its best dev epoch);
* the feature-scaling statistics fitted on the training data (new data is scaled with them, never
  refitted);
* the data facts a compatible file must share: label names, speaker count, modality widths, and
  the training file's sha256;
* the run's scores (dev at the selected epoch, test when it was evaluated).

Tensors, strings and numbers only: it loads with ``weights_only=True`` and cannot run code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from joyful.checkpoint import safe_load
from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData
from joyful.data.scaling import FeatureScaler
from joyful.datasets import DatasetSpec
from joyful.errors import UserError
from joyful.io import atomic_write
from joyful.model import JOYFUL, build_model

__all__ = ["MODEL_FILE_KIND", "ModelFile", "load_model_file", "save_model_file"]

MODEL_FILE_KIND = "joyful-tune model"
MODEL_FILE_VERSION = 1


@dataclass(frozen=True)
class ModelFile:
    config: JoyfulConfig
    state: dict[str, torch.Tensor]
    scaler: FeatureScaler
    label_names: tuple[str, ...]
    n_speakers: int
    modality_dims: dict[
        str, int
    ]  # width of each modality the model reads, in config.modalities order
    data_sha256: str  # the file it was trained on
    scores: dict[
        str, Any
    ]  # best_epoch, dev_weighted_f1, test_weighted_f1 (None when test was not evaluated)

    @property
    def spec(self) -> DatasetSpec:
        return DatasetSpec(self.config.dataset, self.label_names, self.n_speakers)

    def build(self, device: torch.device | str = "cpu") -> JOYFUL:
        """The model with its weights, in eval mode on `device`."""
        model = build_model(self.config, self.modality_dims, self.spec)
        model.load_state_dict(self.state)
        return model.to(device).eval()


def save_model_file(
    path: str | Path,
    config: JoyfulConfig,
    state: dict[str, torch.Tensor],
    scaler: FeatureScaler,
    data: DialogueData,
    scores: dict[str, Any],
) -> Path:
    payload = {
        "kind": MODEL_FILE_KIND,
        "version": MODEL_FILE_VERSION,
        "config": config.to_dict(),
        "state": {k: v.detach().cpu() for k, v in state.items()},
        "feature_scaler": scaler.state_dict(),
        "label_names": list(data.spec.label_names),
        "n_speakers": data.spec.n_speakers,
        "modality_dims": data.check_modalities(config.modalities),
        "data_sha256": data.sha256,
        "scores": dict(scores),
    }
    return atomic_write(path, lambda out: torch.save(payload, out), binary=True)


def load_model_file(path: str | Path) -> ModelFile:
    path = Path(path)
    payload = safe_load(path, "model file")
    if not isinstance(payload, dict) or payload.get("kind") != MODEL_FILE_KIND:
        raise UserError(
            f"{path} is not a joyful-tune model file (train.py --save-model writes one)"
        )
    if payload.get("version") != MODEL_FILE_VERSION:
        raise UserError(
            f"model file {path} has version {payload.get('version')!r}; this joyful-tune reads "
            f"version {MODEL_FILE_VERSION}"
        )
    return ModelFile(
        config=JoyfulConfig.from_dict(payload["config"], source=f"model file {path}"),
        state=payload["state"],
        scaler=FeatureScaler.from_state(payload["feature_scaler"]),
        label_names=tuple(payload["label_names"]),
        n_speakers=int(payload["n_speakers"]),
        modality_dims={k: int(v) for k, v in payload["modality_dims"].items()},
        data_sha256=str(payload["data_sha256"]),
        scores=dict(payload["scores"]),
    )
