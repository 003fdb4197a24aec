"""Feature scaling (`--feature_norm`): train-only statistics, constant dimensions, exact resumes and re-runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from joyful.checkpoint import load_checkpoint, save_checkpoint
from joyful.cli import main as train_main
from joyful.config import CONFIG_SCHEMA_VERSION, FEATURE_NORMS, load_config_file
from joyful.data.dialogues import Dialogue, DialogueData
from joyful.data.scaling import FeatureScaler
from joyful.errors import UserError
from joyful.run import build_coach
from tests.conftest import tiny_config, without_timing

CPU = torch.device("cpu")


def _dialogue(vid: str, features: dict[str, np.ndarray]) -> Dialogue:
    length = next(iter(features.values())).shape[0]
    return Dialogue(vid, np.zeros(length, np.int64), np.zeros(length, np.int64), features)


def _stacked(dialogues: list[Dialogue], letter: str) -> np.ndarray:
    return np.concatenate([d.features[letter] for d in dialogues]).astype(np.float64)


def _badly_scaled(seed: int = 0) -> list[Dialogue]:
    """Timing-like audio (entries in the tens, one constant flag) beside small text entries."""
    rng = np.random.default_rng(seed)
    dialogues = []
    for i in range(6):
        n = 3 + i
        audio = np.column_stack([rng.gamma(2.0, 7.0, n), rng.normal(3, 2, n), np.ones(n)]).astype(
            np.float32
        )
        text = (0.05 * rng.standard_normal((n, 4))).astype(np.float32)
        dialogues.append(_dialogue(f"d{i}", {"a": audio, "t": text}))
    return dialogues


def test_standardize_uses_the_train_split_only():
    train, dev = _badly_scaled(0), _badly_scaled(1)
    scaler = FeatureScaler.fit(train, "at", "standardize")
    rows = _stacked(train, "a")
    assert np.array_equal(scaler.shift["a"], rows.mean(axis=0))
    assert np.allclose(scaler.factor["a"][:2], 1.0 / rows.std(axis=0)[:2])
    # Dev and test are scaled with train's statistics: whatever they hold changes nothing.
    wild = [_dialogue(d.vid, {k: v * 1000 + 5 for k, v in d.features.items()}) for d in dev]
    data_a = DialogueData(None, {"train": train, "dev": dev, "test": dev}, {"a": 3, "t": 4})
    data_b = DialogueData(None, {"train": train, "dev": wild, "test": wild}, {"a": 3, "t": 4})
    a = FeatureScaler.fit(data_a.splits["train"], "at", "standardize")
    b = FeatureScaler.fit(data_b.splits["train"], "at", "standardize")
    assert a.state_dict()["method"] == b.state_dict()["method"]
    assert all(
        np.array_equal(a.shift[k], b.shift[k]) and np.array_equal(a.factor[k], b.factor[k])
        for k in "at"
    )
    scaled = np.concatenate([scaler.transform("a", d.features["a"]) for d in train])
    assert np.allclose(scaled[:, :2].mean(axis=0), 0, atol=1e-6) and np.allclose(
        scaled[:, :2].std(axis=0), 1, atol=1e-5
    )


def test_constant_dimensions_are_only_centred():
    train = _badly_scaled()
    scaler = FeatureScaler.fit(train, "a", "standardize")
    assert scaler.factor["a"][2] == 1.0  # the constant flag: s.d. 0
    out = scaler.transform("a", np.array([[1.0, 2.0, 1.0], [1.0, 2.0, 0.0]], np.float32))
    assert np.all(np.isfinite(out)) and out[0, 2] == 0.0 and out[1, 2] == -1.0
    # A whole modality that is zero everywhere (mean norm 0) is left as it is by 'scale'.
    zeros = [_dialogue("z", {"a": np.zeros((4, 3), np.float32)})]
    assert np.array_equal(FeatureScaler.fit(zeros, "a", "scale").factor["a"], np.ones(3))


def test_scale_keeps_a_modality_geometry():
    train = _badly_scaled()
    scaler = FeatureScaler.fit(train, "at", "scale")
    for letter in "at":
        rows = _stacked(train, letter)
        scaled = np.concatenate(
            [scaler.transform(letter, d.features[letter]) for d in train]
        ).astype(np.float64)
        assert np.linalg.norm(scaled, axis=1).mean() == pytest.approx(1.0, rel=1e-6)
        # One factor per modality: directions and the ratios between dimensions are kept.
        assert np.allclose(
            scaled / np.linalg.norm(scaled, axis=1, keepdims=True),
            rows / np.linalg.norm(rows, axis=1, keepdims=True),
            atol=1e-6,
        )


def test_none_is_the_identity_and_statistics_repeat_exactly():
    train = _badly_scaled()
    matrix = train[0].features["a"]
    assert FeatureScaler.fit(train, "a", "none").transform("a", matrix) is matrix
    for method in FEATURE_NORMS:
        first, second = (
            FeatureScaler.fit(train, "at", method),
            FeatureScaler.fit(copy.deepcopy(train), "at", method),
        )
        first.check_state(second.state_dict(), "x")  # identical statistics: accepted
    with pytest.raises(UserError, match="--feature_norm is 'zscore'"):
        FeatureScaler.fit(train, "a", "zscore")


def test_coach_batches_carry_scaled_features(synthetic_path, synthetic_data):
    coach = build_coach(
        tiny_config(synthetic_path, feature_norm="standardize"), synthetic_data, CPU
    )
    train = torch.cat([item.features["a"] for item in coach.loaders["train"].items]).double()
    assert torch.allclose(
        train.mean(dim=0), torch.zeros(train.shape[1], dtype=torch.float64), atol=1e-5
    )
    raw = build_coach(tiny_config(synthetic_path, feature_norm="none"), synthetic_data, CPU)
    assert torch.equal(
        raw.loaders["dev"].items[0].features["t"],
        torch.tensor(synthetic_data.splits["dev"][0].features["t"]),
    )
    assert not torch.equal(
        coach.loaders["dev"].items[0].features["t"], raw.loaders["dev"].items[0].features["t"]
    )


@pytest.mark.parametrize("method", ["standardize", "scale"])
def test_resume_from_a_checkpoint_is_exact_with_scaling(
    tmp_path, synthetic_path, synthetic_data, method
):
    config = tiny_config(synthetic_path, feature_norm=method, epochs=3)
    whole = build_coach(config, synthetic_data, CPU).fit(evaluate_test=True)

    def stop_after_one(record, coach):
        save_checkpoint(tmp_path / "c.pt", config, coach.state_dict())
        return True

    build_coach(config, synthetic_data, CPU, callbacks=[stop_after_one]).fit(evaluate_test=False)
    payload = load_checkpoint(
        tmp_path / "c.pt"
    )  # weights_only=True: the statistics are plain tensors
    assert payload["coach"]["feature_scaler"]["method"] == method
    resumed = build_coach(config, synthetic_data, CPU)
    resumed.load_state_dict(payload["coach"])
    again = resumed.fit(evaluate_test=True)
    assert (
        without_timing(again["history"]) == without_timing(whole["history"])
        and again["test"] == whole["test"]
    )


def test_resume_on_other_train_data_is_refused(tmp_path, synthetic_path, synthetic_data):
    config = tiny_config(synthetic_path, feature_norm="standardize", epochs=1)
    coach = build_coach(config, synthetic_data, CPU)
    coach.fit(evaluate_test=False)
    state = coach.state_dict()
    shifted = copy.deepcopy(synthetic_data)
    shifted.splits["train"][0].features["a"] += 1.0
    other = build_coach(config, shifted, CPU)
    with pytest.raises(UserError, match="other feature statistics"):
        other.load_state_dict(state, where="c.pt")
    legacy = {
        k: v for k, v in state.items() if k != "feature_scaler"
    }  # written before feature scaling
    with pytest.raises(UserError, match="has no feature statistics"):
        build_coach(config, synthetic_data, CPU).load_state_dict(legacy, where="old.pt")
    build_coach(config.replace(feature_norm="none"), synthetic_data, CPU).load_state_dict(legacy)


@pytest.mark.parametrize("method", ["standardize", "scale"])
def test_best_config_file_reruns_exactly_with_scaling(tmp_path, synthetic_path, capsys, method):
    flags = [
        "--dataset",
        "synthetic",
        "--data",
        str(synthetic_path),
        "--feature_norm",
        method,
        "--epochs",
        "2",
        "--modalities",
        "at",
        "--seqcontext_nlayer",
        "1",
        "--fusion_pool_dim",
        "16",
        "--fusion_hidden",
        "32",
        "--fusion_latent",
        "16",
        "--hidden_size",
        "16",
        "--gnn_nheads",
        "2",
        "--learning_rate",
        "1e-3",
    ]
    assert train_main([*flags, "--metrics-out", str(tmp_path / "a.json"), "-q"]) == 0
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["feature_scaling"]["method"] == method
    document = {
        "schema_version": CONFIG_SCHEMA_VERSION,
        "config": first["config"],
        "metric": {"value": first["best_dev_weighted_f1"]},
    }
    (tmp_path / "best.json").write_text(json.dumps(document))
    assert (
        train_main(
            [
                "--config",
                str(tmp_path / "best.json"),
                "--metrics-out",
                str(tmp_path / "b.json"),
                "-q",
            ]
        )
        == 0
    )
    second = json.loads((tmp_path / "b.json").read_text())
    assert (
        without_timing(second["history"]) == without_timing(first["history"])
        and second["test"] == first["test"]
    )


def test_config_files_of_another_schema_are_refused_in_one_line(tmp_path: Path):
    """No migrations: a file of another layout version is refused with what to do."""
    old = tiny_config("x.pkl").to_dict()
    (tmp_path / "old.json").write_text(
        json.dumps({"schema_version": CONFIG_SCHEMA_VERSION - 1, "config": old})
    )
    with pytest.raises(
        UserError,
        match=r"schema_version \d+, but this joyful-tune reads version \d+; write it again",
    ):
        load_config_file(tmp_path / "old.json")
    (tmp_path / "new.json").write_text(
        json.dumps({"schema_version": CONFIG_SCHEMA_VERSION + 1, "config": old})
    )
    with pytest.raises(UserError, match="upgrade joyful-tune"):
        load_config_file(tmp_path / "new.json")


def test_committed_best_configs_load_and_hold_no_machine_paths():
    """Every committed result file loads in the current records and names no absolute machine path."""
    from tune.records import BestConfig

    repo = Path(__file__).resolve().parents[1]
    for path in sorted((repo / "results" / "best_configs").glob("*.json")):
        BestConfig.from_dict(json.loads(path.read_text()))
    for path in sorted((repo / "results").rglob("*")):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".csv", ".md"):
            text = path.read_text()
            for prefix in ('"/work/', '"/tmp/', '"/root/', '"/home/', "`/work/", "`/tmp/"):
                assert prefix not in text, (
                    f"{path.relative_to(repo)} holds an absolute path ({prefix})"
                )
