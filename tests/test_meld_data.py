"""The real MELD text + timing data in shared/data/meld_text (skipped where it is absent)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL

from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData, load_dialogue_data
from joyful.datasets import REGISTRY
from joyful.errors import UserError
from joyful.run import build_coach

MELD_PATH = Path(__file__).resolve().parents[1].parent / "shared/data/meld_text/data_meld.pkl"

pytestmark = pytest.mark.skipif(
    not MELD_PATH.exists(), reason=f"MELD data not present at {MELD_PATH}"
)


@pytest.fixture(scope="module")
def meld() -> DialogueData:
    return load_dialogue_data(MELD_PATH, REGISTRY["meld_text"])


def test_official_split_sizes(meld: DialogueData) -> None:
    assert {k: len(v) for k, v in meld.splits.items()} == {"train": 1038, "dev": 114, "test": 280}
    utterances = {k: sum(len(d) for d in v) for k, v in meld.splits.items()}
    assert utterances == {"train": 9989, "dev": 1109, "test": 2610}


def test_modalities_and_labels(meld: DialogueData) -> None:
    assert meld.modality_dims == {"a": 5, "t": 384}
    assert meld.check_modalities("at") == {"a": 5, "t": 384}
    counts = meld.label_counts("train")
    assert counts.shape == (7,) and counts.min() > 0
    assert int(np.argmax(counts)) == 0  # neutral is the largest class
    speakers = np.concatenate([d.speakers for d in meld.splits["train"]])
    assert speakers.min() == 0 and speakers.max() <= 8


def test_visual_requested_is_a_clear_error(meld: DialogueData) -> None:
    with pytest.raises(UserError) as info:
        meld.check_modalities("atv")
    message = str(info.value)
    assert "v (visual)" in message and "it has: at" in message and str(MELD_PATH) in message


def test_loads_as_meld_too() -> None:
    """The file's class path is joyful.Sample.Sample; the `meld` registry entry reads it the same way."""
    data = load_dialogue_data(MELD_PATH, REGISTRY["meld"])
    assert data.modality_dims == {"a": 5, "t": 384} and len(data.splits["test"]) == 280


@pytest.mark.slow
def test_short_training_run_on_a_subset(meld: DialogueData) -> None:
    subset = dataclasses.replace(
        meld,
        splits={
            "train": meld.splits["train"][:60],
            "dev": meld.splits["dev"][:15],
            "test": meld.splits["test"][:15],
        },
    )
    config = JoyfulConfig(
        dataset="meld_text", modalities="at", **{**TINY_MODEL, "batch_size": 16}
    ).validate()
    coach = build_coach(config, subset, torch.device("cpu"))
    summary = coach.fit(evaluate_test=True)
    assert summary["epochs_run"] == 2
    assert all(math.isfinite(v) for r in summary["history"] for v in r["train_loss"].values())
    assert 0.0 <= summary["test"]["weighted_f1"] <= 1.0
    assert set(summary["test"]["report"]) >= {"neutral", "joy", "anger"}
