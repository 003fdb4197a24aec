"""The hierarchical gated fusion extension (AutoFusion_Hierarchical), batched over utterances.

Only the global branch changes: an utterance-level gate scales the compressed
global features, and a dialogue-level gate (temporal/forget/input gates over the
features and one learned state vector) feeds the global reconstruction. The
dialogue gate shapes only the reconstruction loss, never the fused output.
The original's `modal_attention` was computed and discarded; it is left out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from joyful.model.fusion import (
    FusionOutput,
    InterModalBranch,
    decoder,
    encoder,
    no_reconstruction,
    per_utterance_loss,
)


def unit_clamp(x: Tensor) -> Tensor:
    """Hardtanh(0, 1), the original gate non-linearity (zero gradient outside [0, 1])."""
    return F.hardtanh(x, 0.0, 1.0)


class UtteranceLevelGate(nn.Module):
    def __init__(self, in_dim: int, hidden: int, latent: int) -> None:
        super().__init__()
        self.gate = nn.Linear(in_dim, latent)
        self.encoder = encoder(in_dim, hidden, latent)

    def forward(self, global_in: Tensor) -> tuple[Tensor, Tensor]:
        gate = unit_clamp(self.gate(global_in))  # (N, latent)
        return gate * self.encoder(global_in), gate


class DialogueLevelGate(nn.Module):
    def __init__(self, latent: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.state = nn.Parameter(torch.randn(latent) * 0.01)  # the original `global_emotion_state`
        self.temporal = nn.Linear(2 * latent, latent)
        self.forget = nn.Linear(2 * latent, latent)
        self.input = nn.Linear(2 * latent, latent)
        self.decoder = decoder(latent, hidden, out_dim)

    def forward(
        self, z_global: Tensor, decode: bool = True
    ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """The decoded memory (None without `decode`) and the three gates."""
        state = self.state.expand_as(z_global)  # (N, latent)
        query = torch.cat([z_global, state], dim=1)  # (N, 2 * latent)
        gates = {
            "temporal": unit_clamp(self.temporal(query)),
            "forget": unit_clamp(self.forget(query)),
            "input": unit_clamp(self.input(query)),
        }
        if not decode:
            return None, gates
        memory = gates["temporal"] * (gates["forget"] * state + gates["input"] * z_global)
        return self.decoder(memory), gates


class AutoFusion_Hierarchical(nn.Module):  # noqa: N801 - the extension's own class name
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
        in_dim = sum(modality_dims.values())
        self.utterance_gate = UtteranceLevelGate(in_dim, hidden, latent)
        self.dialogue_gate = DialogueLevelGate(latent, hidden, in_dim)
        self.inter = InterModalBranch(modality_dims, pool_dim, hidden, latent, chunk_size)
        self.criterion = criterion  # elementwise (reduction="none")
        self.output_dim = 2 * latent

    def gate_parameters(self) -> list[nn.Parameter]:
        """Parameters that `gate_lr_scale` applies to: both gates and the learned state, nothing
        else (the dialogue gate's decoder, about 1.9M parameters at IEMOCAP width, is a decoder, not
        a gate)."""
        gate = self.dialogue_gate
        return [
            *self.utterance_gate.gate.parameters(),
            gate.state,
            *gate.temporal.parameters(),
            *gate.forget.parameters(),
            *gate.input.parameters(),
        ]

    def forward(self, features: dict[str, Tensor], reconstruct: bool = True) -> FusionOutput:
        global_in = torch.cat([features[m] for m in self.modalities], dim=1)  # (N, sum d_m)
        z_global, utterance_gate = self.utterance_gate(global_in)  # (N, latent) each
        reconstruction, gates = self.dialogue_gate(z_global, decode=reconstruct)
        if reconstruction is None:
            loss_global = no_reconstruction(z_global)
        else:
            loss_global = per_utterance_loss(self.criterion, reconstruction, global_in)
        z_inter, loss_inter = self.inter(features, self.criterion, reconstruct)
        # Squared distance from 0.5 keeps the regulated gates away from saturation.
        gate_reg = sum(((g - 0.5) ** 2).mean() for g in gates.values())
        means = {
            "utterance": utterance_gate.mean(),
            **{name: g.mean() for name, g in gates.items()},
        }
        return FusionOutput(
            torch.cat([z_global, z_inter], dim=1),
            loss_global + loss_inter,
            gate_reg,
            {k: v.detach() for k, v in means.items()},
        )
