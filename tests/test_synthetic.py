"""The seeded synthetic data set: layout, sizes, determinism, and labels that need context and every modality."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_DIMS

from joyful.data.dialogues import load_dialogue_data
from joyful.data.synthetic import DEFAULT_SPLITS, SyntheticSpec, generate, main, parse_dims
from joyful.datasets import REGISTRY
from joyful.errors import UserError
from joyful.Sample import Sample


def test_layout_and_tiny_sizes() -> None:
    data = generate(seed=0, scale=0.1, dims=TINY_DIMS)
    assert set(data) == {"train", "dev", "test"}
    assert {k: len(v) for k, v in data.items()} == {"train": 11, "dev": 2, "test": 3}
    record = data["train"][0]
    assert isinstance(record, Sample)
    n = len(record.label)
    assert (
        record.sbert_sentence_embeddings.shape == (n, 16)
        and record.sbert_sentence_embeddings.dtype == np.float32
    )
    assert (
        len(record.audio)
        == len(record.visual)
        == len(record.text)
        == len(record.sentence)
        == len(record.speaker)
        == n
    )
    assert record.audio[0].shape == (8,) and record.visual[0].shape == (12,)
    assert set(record.speaker) <= {"M", "F"} and set(record.label) <= {0, 1, 2, 3}


def test_default_sizes_are_iemocap_4_like() -> None:
    """Counted without building features (dims of 1): 108 / 12 / 31 dialogues of about 50 utterances."""
    data = generate(seed=0, dims={"a": 1, "t": 1, "v": 1})
    assert (
        {k: len(v) for k, v in data.items()}
        == DEFAULT_SPLITS
        == {"train": 108, "dev": 12, "test": 31}
    )
    mean_length = np.mean([len(r.label) for r in data["train"]])
    assert 40 < mean_length < 60


def test_seeded() -> None:
    first, again, other = (generate(seed=s, scale=0.1, dims=TINY_DIMS) for s in (3, 3, 4))
    for a, b in zip(first["test"], again["test"], strict=True):
        assert a.label == b.label and a.speaker == b.speaker
        np.testing.assert_array_equal(a.sbert_sentence_embeddings, b.sbert_sentence_embeddings)
    assert any(a.label != b.label for a, b in zip(first["test"], other["test"], strict=True))


def test_loads_through_the_data_reader(synthetic_data) -> None:
    assert synthetic_data.modality_dims == TINY_DIMS
    assert synthetic_data.spec.name == "synthetic"


def _utterances(seed: int = 1, spec: SyntheticSpec | None = None):
    data = generate(
        seed=seed, scale=0.5, dims={"a": 6, "t": 6, "v": 6}, spec=spec or SyntheticSpec()
    )
    records = data["train"] + data["dev"] + data["test"]
    labels = np.concatenate([r.label for r in records])
    feats = {
        m: np.concatenate([np.stack(getattr(r, attr)) for r in records])
        for m, attr in (("a", "audio"), ("t", "text"), ("v", "visual"))
    }
    return records, labels, feats


def _nearest_centroid_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    half = len(y) // 2
    centroids = np.stack([x[:half][y[:half] == c].mean(axis=0) for c in range(4)])
    predicted = np.argmin(((x[half:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    return float((predicted == y[half:]).mean())


def test_every_modality_carries_signal_and_fusion_beats_each() -> None:
    _, labels, feats = _utterances()
    single = {m: _nearest_centroid_accuracy(x, labels) for m, x in feats.items()}
    fused = _nearest_centroid_accuracy(np.concatenate([feats[m] for m in "atv"], axis=1), labels)
    assert all(acc > 0.35 for acc in single.values()), single  # chance: 0.25
    assert fused > max(single.values()) + 0.03, (fused, single)


def test_labels_persist_within_a_speaker() -> None:
    """A speaker's emotion carries over between turns, so context predicts the label."""
    records, _, _ = _utterances()
    same, total = 0, 0
    for r in records:
        last = {}
        for speaker, label in zip(r.speaker, r.label, strict=True):
            if speaker in last:
                same += last[speaker] == label
                total += 1
            last[speaker] = label
    assert same / total > 0.6  # 4 classes without persistence: about 0.25


def test_difficulty_does_not_depend_on_the_width() -> None:
    """Signal strengths are in latent noise units: a 512-wide modality is as hard as a 32-wide one,
    and its variance sits in the 32 latent directions (as real embeddings' does in few)."""
    accuracies = {}
    for width in (32, 512):
        data = generate(seed=1, scale=0.5, dims={"a": 4, "t": width, "v": 4})
        records = data["train"] + data["dev"] + data["test"]
        labels = np.concatenate([r.label for r in records])
        text = np.concatenate([r.sbert_sentence_embeddings for r in records])
        accuracies[width] = _nearest_centroid_accuracy(text, labels)
        if width == 512:
            spectrum = np.linalg.svd(text - text.mean(axis=0), compute_uv=False) ** 2
            assert spectrum[:32].sum() / spectrum.sum() > 0.6
    assert abs(accuracies[32] - accuracies[512]) < 0.08, accuracies
    assert all(acc > 0.3 for acc in accuracies.values()), accuracies  # chance: 0.25


def test_zero_signal_strength_gives_uninformative_features() -> None:
    """With zero signal strength the features say nothing about the label."""
    _, labels, feats = _utterances(spec=SyntheticSpec(signal={"a": 0.0, "t": 0.0, "v": 0.0}))
    assert _nearest_centroid_accuracy(feats["t"], labels) < 0.35


def test_parse_dims() -> None:
    assert parse_dims("a=8,t=16,v=12") == {"a": 8, "t": 16, "v": 12}
    assert parse_dims("t=5") == {"a": 100, "t": 5, "v": 512}
    for bad in ("x=3", "a=0", "a=-1", "a", "a=b"):
        with pytest.raises(UserError, match="--dims"):
            parse_dims(bad)


def test_scale_must_be_positive() -> None:
    with pytest.raises(UserError, match="--scale"):
        generate(scale=0)


def test_command_writes_a_loadable_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sub" / "data_synthetic.pkl"
    assert main(["--out", str(out), "--seed", "2", "--scale", "0.1", "--dims", "a=4,t=5,v=6"]) == 0
    assert "wrote" in capsys.readouterr().out
    data = load_dialogue_data(out, REGISTRY["synthetic"])
    assert data.modality_dims == {"a": 4, "t": 5, "v": 6}
    expected = generate(seed=2, scale=0.1, dims={"a": 4, "t": 5, "v": 6})
    assert [len(d) for d in data.splits["train"]] == [len(r.label) for r in expected["train"]]
    assert pickle.loads(out.read_bytes())["dev"][0].vid == expected["dev"][0].vid


def test_command_reports_bad_arguments(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path / "x.pkl"), "--dims", "q=1"]) == 2
    assert "joyful-synth: error: --dims" in capsys.readouterr().err
    assert not (tmp_path / "x.pkl").exists()
