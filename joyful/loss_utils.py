"""Reconstruction criteria, loss weights, and the one place the training loss is assembled.

    total = NLL + cl_loss_weight * contrastive
                + encoder_loss_weight * reconstruction
                + gate_reg_weight * gate_reg
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from joyful.config import LOSS_WEIGHTS, field_default, loss_weight_problem

WEIGHT_FIELDS = LOSS_WEIGHTS


def create_reconstruction_loss(use_smooth_l1: bool = False, reduction: str = "mean") -> nn.Module:
    """SmoothL1Loss (beta 1) when `use_smooth_l1`, else MSELoss, with the given reduction."""
    return nn.SmoothL1Loss(reduction=reduction) if use_smooth_l1 else nn.MSELoss(reduction=reduction)


@dataclass
class LossWeightConfig:
    """Weights of the auxiliary loss terms; defaults come from :class:`joyful.config.JoyfulConfig`."""

    encoder_loss_weight: float = field_default("encoder_loss_weight")
    cl_loss_weight: float = field_default("cl_loss_weight")
    gate_reg_weight: float = field_default("gate_reg_weight")

    def __post_init__(self) -> None:
        # The same rule as JoyfulConfig.validate; a ValueError here, as this class is also built by hand.
        for name in WEIGHT_FIELDS:
            problem = loss_weight_problem(name, getattr(self, name))
            if problem:
                raise ValueError(problem)

    @classmethod
    def from_args(cls, args: Any) -> LossWeightConfig:
        """Read the three weights from an argparse namespace or a config, defaulting missing ones."""
        return cls(**{name: getattr(args, name, field_default(name)) for name in WEIGHT_FIELDS})

    def get_weights(self) -> dict[str, float]:
        return {"encoder": self.encoder_loss_weight, "contrastive": self.cl_loss_weight, "gate_reg": self.gate_reg_weight}

    def __repr__(self) -> str:
        return (f"LossWeightConfig(encoder={self.encoder_loss_weight}, contrastive={self.cl_loss_weight}, "
                f"gate_reg={self.gate_reg_weight})")


def compute_training_loss(nll: Tensor, contrastive: Tensor, reconstruction: Tensor, gate_reg: Tensor | None,
                          weights: LossWeightConfig) -> tuple[Tensor, dict[str, float]]:
    """The total loss and its unweighted parts (as floats, for logging)."""
    total = nll + weights.cl_loss_weight * contrastive + weights.encoder_loss_weight * reconstruction
    parts = {"nll": float(nll.detach()), "contrastive": float(contrastive.detach()),
             "reconstruction": float(reconstruction.detach()), "gate_reg": 0.0}
    if gate_reg is not None and weights.gate_reg_weight > 0:
        total = total + weights.gate_reg_weight * gate_reg
    if gate_reg is not None:
        parts["gate_reg"] = float(gate_reg.detach())
    parts["total"] = float(total.detach())
    return total, parts
