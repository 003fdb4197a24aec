"""Graph contrastive loss: InfoNCE in PyGCL's dual-branch, node-to-node mode with intra-view
negatives."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def _one_way(anchor: Tensor, other: Tensor, temperature: float) -> Tensor:
    """Mean over nodes of -log(e^{s(u_i,w_i)} / (sum_j e^{s(u_i,w_j)} + sum_{j!=i}
    e^{s(u_i,u_j)}))."""
    inter = anchor @ other.T / temperature  # (N, N)
    intra = anchor @ anchor.T / temperature  # (N, N)
    intra = intra.masked_fill(
        torch.eye(len(anchor), dtype=torch.bool, device=anchor.device), float("-inf")
    )
    log_norm = torch.logsumexp(torch.cat([inter, intra], dim=1), dim=1)  # (N,)
    return (log_norm - inter.diagonal()).mean()


def dual_branch_infonce(u: Tensor, w: Tensor, temperature: float) -> Tensor:
    """C(u, w) = (l(u->w) + l(w->u)) / 2 on L2-normalised node embeddings (N, d)."""
    u, w = F.normalize(u, dim=1), F.normalize(w, dim=1)
    return 0.5 * (_one_way(u, w, temperature) + _one_way(w, u, temperature))
