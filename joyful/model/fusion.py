"""AutoFusion (original JOYFUL) and the shared inter-modal branch, batched over utterances.

Inputs are flat per-utterance features {letter: (N, d_m)}; outputs are the fused
(N, 2 * latent) vectors and per-utterance reconstruction losses (N,), so the
caller decides how utterance losses add up to a batch loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from joyful.model.self_pooling import self_pool


@dataclass
class FusionOutput:
    fused: Tensor  # (N, 2 * latent)
    reconstruction: Tensor  # (N,) per-utterance reconstruction loss
    gate_reg: Tensor | None = None  # scalar, hierarchical fusion only
    gate_means: dict[str, Tensor] = field(default_factory=dict)  # gate name -> scalar mean value


def encoder(in_dim: int, hidden: int, latent: int) -> nn.Sequential:
    """in -> hidden (Tanh) -> latent (ReLU), as in JOYFUL."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, latent), nn.ReLU())


def decoder(latent: int, hidden: int, out_dim: int) -> nn.Sequential:
    """latent -> hidden (Tanh) -> out, as in JOYFUL."""
    return nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, out_dim))


def per_utterance_loss(criterion: nn.Module, prediction: Tensor, target: Tensor) -> Tensor:
    """Criterion with mean reduction applied to each row separately: (N, d) -> (N,)."""
    return criterion(prediction, target).mean(dim=1)


def no_reconstruction(rows: Tensor) -> Tensor:
    """Zero per-utterance losses, (N,): evaluation reports no reconstruction, so the decoders are
    skipped."""
    return rows.new_zeros(rows.shape[0])


class InterModalBranch(nn.Module):
    """Project each modality to `pool_dim`, self-pool it, and auto-encode the concatenation."""

    def __init__(
        self,
        modality_dims: dict[str, int],
        pool_dim: int,
        hidden: int,
        latent: int,
        chunk_size: int,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modality_dims)
        self.projections = nn.ModuleDict(
            {m: nn.Linear(d, pool_dim) for m, d in modality_dims.items()}
        )
        # The pooling query is this layer applied to the all-ones vector: a learned (P,) vector.
        self.pool_query = nn.Linear(pool_dim, pool_dim)
        self.encoder = encoder(pool_dim * len(modality_dims), hidden, latent)
        self.decoder = decoder(latent, hidden, pool_dim * len(modality_dims))
        self.chunk_size = chunk_size

    def query(self) -> Tensor:
        weight = self.pool_query.weight
        ones = torch.ones(self.pool_query.in_features, dtype=weight.dtype, device=weight.device)
        return self.pool_query(ones)  # (P,)

    def forward(
        self, features: dict[str, Tensor], criterion: nn.Module, reconstruct: bool
    ) -> tuple[Tensor, Tensor]:
        query = self.query()
        pooled = [
            self_pool(self.projections[m](features[m]), query, self.chunk_size)
            for m in self.modalities
        ]
        inter_in = torch.cat(pooled, dim=1)  # (N, P * M)
        latent = self.encoder(inter_in)  # (N, latent)
        if not reconstruct:
            return latent, no_reconstruction(latent)
        return latent, per_utterance_loss(criterion, self.decoder(latent), inter_in)


class AutoFusion(nn.Module):
    """JOYFUL's fusion: global autoencoder on [a; t; v] plus the inter-modal branch."""

    def __init__(
        self,
        modality_dims: dict[str, int],
        pool_dim: int,
        hidden: int,
        latent: int,
        chunk_size: int,
        criterion: nn.Module,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modality_dims)
        self.global_encoder = encoder(sum(modality_dims.values()), hidden, latent)
        self.global_decoder = decoder(latent, hidden, sum(modality_dims.values()))
        self.inter = InterModalBranch(modality_dims, pool_dim, hidden, latent, chunk_size)
        self.criterion = criterion  # elementwise (reduction="none")
        self.output_dim = 2 * latent

    def gate_parameters(self) -> list[nn.Parameter]:
        return []

    def forward(self, features: dict[str, Tensor], reconstruct: bool = True) -> FusionOutput:
        global_in = torch.cat([features[m] for m in self.modalities], dim=1)  # (N, sum d_m)
        z_global = self.global_encoder(global_in)  # (N, latent)
        if reconstruct:
            loss_global = per_utterance_loss(
                self.criterion, self.global_decoder(z_global), global_in
            )
        else:
            loss_global = no_reconstruction(z_global)
        z_inter, loss_inter = self.inter(features, self.criterion, reconstruct)
        return FusionOutput(torch.cat([z_global, z_inter], dim=1), loss_global + loss_inter)
