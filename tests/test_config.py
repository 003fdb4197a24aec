"""JoyfulConfig: defaults, validation messages that name the flag, and the JSON document."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from joyful.config import (
    CONFIG_SCHEMA_VERSION,
    JoyfulConfig,
    coerce_value,
    config_document,
    field_default,
    field_names,
    field_type,
    load_config_file,
)
from joyful.errors import UserError


def test_defaults_follow_the_original_training_procedure() -> None:
    """§4 defaults (epochs follow the README's 50) and the user's encoder weight 0.03 (§5.3)."""
    config = JoyfulConfig()
    expected = dict(
        optimizer="adam",
        learning_rate=3e-5,
        weight_decay=1e-8,
        scheduler="reduceLR",
        scheduler_patience=8,
        batch_size=32,
        seed=24,
        epochs=50,
        drop_rate=0.3,
        wp=8,
        wf=8,
        hidden_size=100,
        rnn="transformer",
        seqcontext_nlayer=4,
        gnn_nheads=4,
        cl_loss_weight=0.2,
        encoder_loss_weight=0.03,
        gate_reg_weight=0.01,
        class_weight=False,
        max_grad_value=-1.0,
        fusion="autofusion",
        reconstruction_loss="mse",
        fusion_pool_dim=460,
        fusion_hidden=1024,
        fusion_latent=512,
        feature_mask_rate=0.25,
        edge_perturb_rate=0.1,
        contrastive_temperature=0.2,
        modalities="atv",
    )
    assert {k: getattr(config, k) for k in expected} == expected
    assert config.validate() is config


def test_every_field_has_help_and_a_group() -> None:
    for f in dataclasses.fields(JoyfulConfig):
        assert f.metadata["help"] and f.metadata["group"] in ("data", "model", "loss", "train"), (
            f.name
        )


@pytest.mark.parametrize(
    "changes,flag",
    [
        ({"fusion": "gated"}, "--fusion"),
        ({"reconstruction_loss": "l1"}, "--reconstruction_loss"),
        ({"rnn": "rnn"}, "--rnn"),
        ({"optimizer": "lbfgs"}, "--optimizer"),
        ({"modalities": ""}, "--modalities"),
        ({"modalities": "ax"}, "--modalities"),
        ({"modalities": "aa"}, "--modalities"),
        ({"encoder_loss_weight": -0.1}, "--encoder_loss_weight"),
        ({"cl_loss_weight": -1.0}, "--cl_loss_weight"),
        ({"gate_reg_weight": math.nan}, "--gate_reg_weight"),
        ({"encoder_loss_weight": math.inf}, "--encoder_loss_weight"),
        ({"learning_rate": 0.0}, "--learning_rate"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": -3}, "--batch_size"),
        ({"self_pool_chunk": 0}, "--self_pool_chunk"),
        ({"drop_rate": 1.0}, "--drop_rate"),
        ({"feature_mask_rate": -0.1}, "--feature_mask_rate"),
        ({"wp": -2}, "--wp"),
        ({"contrastive_temperature": 0.0}, "--contrastive_temperature"),
        ({"max_grad_value": 0.0}, "--max_grad_value"),
        ({"emotion": "7class"}, "--emotion"),
        ({"dataset": "../iemocap"}, "--dataset"),
        ({"dataset": "a\\b"}, "--dataset"),
        ({"gate_lr_scale": 0.0}, "--gate_lr_scale"),
    ],
)
def test_validate_names_the_flag(changes: dict, flag: str) -> None:
    with pytest.raises(UserError, match=flag):
        JoyfulConfig(**changes).validate()


def test_valid_edge_values_pass() -> None:
    JoyfulConfig(
        modalities="vt",
        wp=-1,
        wf=0,
        max_grad_value=5.0,
        encoder_loss_weight=0.0,
        gate_reg_weight=0.0,
        emotion="2class",
        drop_rate=0.0,
    ).validate()


def test_inactive_settings_warn_only_without_hierarchical_fusion() -> None:
    assert JoyfulConfig().inactive_settings() == []
    notes = JoyfulConfig(
        reconstruction_loss="smooth_l1", gate_reg_weight=0.1, gate_lr_scale=0.1
    ).inactive_settings()
    assert len(notes) == 3
    assert any("--use_smooth_l1" in n for n in notes) and any(
        "--gate_reg_weight" in n for n in notes
    )
    assert (
        JoyfulConfig(
            fusion="hierarchical", reconstruction_loss="smooth_l1", gate_reg_weight=0.1
        ).inactive_settings()
        == []
    )


def test_from_dict_refuses_unknown_keys_and_wrong_types() -> None:
    with pytest.raises(UserError, match="unknown setting.*lerning_rate"):
        JoyfulConfig.from_dict({"lerning_rate": 0.1})
    with pytest.raises(UserError, match="'epochs' must be of type int"):
        JoyfulConfig.from_dict({"epochs": 2.5})
    with pytest.raises(UserError, match="'epochs' must be of type int"):
        JoyfulConfig.from_dict({"epochs": True})
    with pytest.raises(UserError, match="'class_weight' must be of type bool"):
        JoyfulConfig.from_dict({"class_weight": 1})
    with pytest.raises(UserError, match="'modalities' must be of type str"):
        JoyfulConfig.from_dict({"modalities": 3})
    with pytest.raises(UserError, match="expected a JSON object"):
        JoyfulConfig.from_dict(["epochs", 3])
    with pytest.raises(UserError, match="--learning_rate"):  # values are validated too
        JoyfulConfig.from_dict({"learning_rate": -1})


def test_from_dict_accepts_ints_for_floats_and_null_for_optional() -> None:
    config = JoyfulConfig.from_dict({"learning_rate": 1, "data": None, "emotion": None})
    assert (
        config.learning_rate == 1.0
        and isinstance(config.learning_rate, float)
        and config.data is None
    )


def test_field_types() -> None:
    assert field_type("epochs") is int and field_type("learning_rate") is float
    assert (
        field_type("class_weight") is bool
        and field_type("data") is str
        and field_type("fusion") is str
    )
    assert field_default("epochs") == 50 and "encoder_loss_weight" in field_names()
    assert coerce_value("wp", 3) == 3
    with pytest.raises(UserError):
        coerce_value("nope", 3)


def test_document_roundtrip(tmp_path) -> None:
    config = JoyfulConfig(
        dataset="meld",
        fusion="hierarchical",
        reconstruction_loss="smooth_l1",
        learning_rate=1e-4,
        wp=-1,
        data="/x/data.pkl",
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config_document(config)))
    loaded, document = load_config_file(path)
    assert loaded == config
    assert document["schema_version"] == CONFIG_SCHEMA_VERSION


@pytest.mark.parametrize(
    "content,message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected an object"),
        ('{"schema_version": 1}', "expected an object"),
        ('{"schema_version": "1", "config": {}}', "must be an integer"),
        ('{"schema_version": 99, "config": {}}', "upgrade joyful-tune"),
        ('{"schema_version": 4, "config": {"bogus": 1}}', "unknown setting"),
        ('{"schema_version": 4, "config": {"epochs": "3"}}', "must be of type int"),
    ],
)
def test_load_config_file_errors(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        load_config_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_config_file_missing(tmp_path) -> None:
    with pytest.raises(UserError, match="file not found"):
        load_config_file(tmp_path / "absent.json")


def test_replace_returns_a_new_config() -> None:
    base = JoyfulConfig()
    changed = base.replace(epochs=3)
    assert changed.epochs == 3 and base.epochs == 50
