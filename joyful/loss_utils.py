"""Reconstruction criteria and the one place the training loss is assembled, from the config's loss
weights.

total = NLL + cl_loss_weight * contrastive
            + encoder_loss_weight * reconstruction
            + gate_reg_weight * gate_reg
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn


def create_reconstruction_loss(use_smooth_l1: bool = False, reduction: str = "mean") -> nn.Module:
    """SmoothL1Loss (beta 1) when `use_smooth_l1`, else MSELoss, with the given reduction."""
    return (
        nn.SmoothL1Loss(reduction=reduction) if use_smooth_l1 else nn.MSELoss(reduction=reduction)
    )


class LossWeights(Protocol):
    """The weights of the auxiliary loss terms, as a run's config holds them
    (`joyful.config.JoyfulConfig`)."""

    encoder_loss_weight: float
    cl_loss_weight: float
    gate_reg_weight: float


def compute_training_loss(
    nll: Tensor,
    contrastive: Tensor,
    reconstruction: Tensor,
    gate_reg: Tensor | None,
    weights: LossWeights,
) -> tuple[Tensor, dict[str, float]]:
    """The total loss and its unweighted parts (as floats, for logging)."""
    total = (
        nll + weights.cl_loss_weight * contrastive + weights.encoder_loss_weight * reconstruction
    )
    parts = {
        "nll": float(nll.detach()),
        "contrastive": float(contrastive.detach()),
        "reconstruction": float(reconstruction.detach()),
        "gate_reg": 0.0,
    }
    if gate_reg is not None and weights.gate_reg_weight > 0:
        total = total + weights.gate_reg_weight * gate_reg
    if gate_reg is not None:
        parts["gate_reg"] = float(gate_reg.detach())
    parts["total"] = float(total.detach())
    return total, parts
