"""joyful.loss_utils: reconstruction criteria, loss weights, and the one place the loss is assembled."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from joyful.config import JoyfulConfig
from joyful.loss_utils import compute_training_loss, create_reconstruction_loss


def test_public_names_import_from_the_package() -> None:
    from joyful import AutoFusion, AutoFusion_Hierarchical, Coach, create_reconstruction_loss  # noqa: F401
    from joyful.coach import Coach as CoachClass
    from joyful.model.fusion import AutoFusion as AutoFusionClass

    assert Coach is CoachClass and AutoFusion is AutoFusionClass


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_create_reconstruction_loss_types_and_reductions(reduction: str) -> None:
    mse, smooth = (
        create_reconstruction_loss(False, reduction),
        create_reconstruction_loss(True, reduction),
    )
    assert type(mse) is nn.MSELoss and type(smooth) is nn.SmoothL1Loss
    assert mse.reduction == smooth.reduction == reduction
    prediction, target = torch.tensor([[0.0, 3.0], [0.5, -2.0]]), torch.zeros(2, 2)
    squared = torch.tensor([[0.0, 9.0], [0.25, 4.0]])
    huber = torch.tensor([[0.0, 2.5], [0.125, 1.5]])  # beta 1: 0.5 e^2 below 1, |e| - 0.5 above
    reduce = {"mean": torch.mean, "sum": torch.sum, "none": lambda t: t}[reduction]
    torch.testing.assert_close(mse(prediction, target), reduce(squared))
    torch.testing.assert_close(smooth(prediction, target), reduce(huber))


def test_create_reconstruction_loss_defaults_to_mean_mse() -> None:
    loss = create_reconstruction_loss()
    assert type(loss) is nn.MSELoss and loss.reduction == "mean"
    assert create_reconstruction_loss(use_smooth_l1=True).beta == 1.0


def test_loss_weight_defaults_are_the_config_ones() -> None:
    config = JoyfulConfig()
    assert (config.encoder_loss_weight, config.cl_loss_weight, config.gate_reg_weight) == (
        0.03,
        0.2,
        0.01,
    )


@pytest.mark.parametrize("field", ["encoder_loss_weight", "cl_loss_weight", "gate_reg_weight"])
@pytest.mark.parametrize("value", [-0.01, math.nan, math.inf, -math.inf, "0.1", True])
def test_bad_weights_are_refused_naming_the_flag(field: str, value: object) -> None:
    from joyful.errors import UserError

    with pytest.raises(UserError, match=f"--{field}"):
        JoyfulConfig(**{field: value}).validate()


def test_zero_weights_are_allowed() -> None:
    JoyfulConfig(encoder_loss_weight=0.0, cl_loss_weight=0.0, gate_reg_weight=0.0).validate()


def test_compute_training_loss_combines_the_terms() -> None:
    nll, cl, rec, gate = (torch.tensor(v, requires_grad=True) for v in (1.5, 4.0, 20.0, 0.3))
    weights = JoyfulConfig(encoder_loss_weight=0.05, cl_loss_weight=0.1, gate_reg_weight=2.0)
    total, parts = compute_training_loss(nll, cl, rec, gate, weights)
    assert float(total) == pytest.approx(1.5 + 0.1 * 4.0 + 0.05 * 20.0 + 2.0 * 0.3)
    assert parts == pytest.approx(
        {
            "nll": 1.5,
            "contrastive": 4.0,
            "reconstruction": 20.0,
            "gate_reg": 0.3,
            "total": float(total),
        }
    )
    total.backward()
    assert [float(t.grad) for t in (nll, cl, rec, gate)] == pytest.approx([1.0, 0.1, 0.05, 2.0])


def test_compute_training_loss_without_gates() -> None:
    total, parts = compute_training_loss(
        torch.tensor(1.0), torch.tensor(2.0), torch.tensor(10.0), None, JoyfulConfig()
    )
    assert float(total) == pytest.approx(1.0 + 0.2 * 2.0 + 0.03 * 10.0)
    assert parts["gate_reg"] == 0.0
