"""Relational graph encoder with graph contrastive learning (JOYFUL's GNN).

Training builds two *independently* augmented views (feature masking and edge
re-targeting inside the source's dialogue, with relation types recomputed) and
keeps the clean graph for the classification branch: what the paper describes.
The original perturbed one edge list in place, so its views shared one graph.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv

from joyful.graph import relation_types
from joyful.model.contrastive import dual_branch_infonce
from joyful.model.rgcn import RelationalGraphConv


class DialogueGNN(nn.Module):
    def __init__(
        self,
        in_dim: int,
        hidden: int,
        num_relations: int,
        heads: int,
        n_speakers: int,
        feature_mask_rate: float,
        edge_perturb_rate: float,
        temperature: float,
    ) -> None:
        super().__init__()
        self.rgcn = RelationalGraphConv(in_dim, hidden, num_relations)
        self.transformer_conv = TransformerConv(hidden, hidden, heads=heads)
        self.norm = nn.BatchNorm1d(hidden * heads)
        self.activation = nn.LeakyReLU()
        self.n_speakers = n_speakers
        self.feature_mask_rate, self.edge_perturb_rate, self.temperature = (
            feature_mask_rate,
            edge_perturb_rate,
            temperature,
        )
        self.out_dim = hidden * heads

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_type: Tensor,
        speakers: Tensor,
        dialogue_index: Tensor,
        lengths: Tensor,
        contrast: bool,
    ) -> tuple[Tensor, Tensor]:
        """x (N, in_dim) -> (N, hidden * heads) and the contrastive loss (0 when `contrast` is
        False)."""
        h0 = self.rgcn(x, edge_index, edge_type)  # (N, hidden)
        contrastive = x.new_zeros(())
        if contrast:
            views = [
                self._augment(x, edge_index, speakers, dialogue_index, lengths) for _ in range(2)
            ]
            for view_x, view_edges, view_types in views:
                contrastive = contrastive + dual_branch_infonce(
                    h0, self.rgcn(view_x, view_edges, view_types), self.temperature
                )
        out = self.activation(self.norm(self.transformer_conv(h0, edge_index)))
        return out, contrastive

    def _augment(
        self,
        x: Tensor,
        edge_index: Tensor,
        speakers: Tensor,
        dialogue_index: Tensor,
        lengths: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        keep = torch.rand_like(x) >= self.feature_mask_rate
        masked = x * keep  # no rescaling, as in the original
        source, target = edge_index[0], edge_index[1].clone()
        n_edges = source.numel()
        n_moved = int(self.edge_perturb_rate * n_edges)
        if n_moved:
            moved = torch.randperm(n_edges, device=x.device)[:n_moved]
            dialogue = dialogue_index[source[moved]]
            starts = (torch.cumsum(lengths, 0) - lengths)[dialogue]
            offset = (torch.rand(n_moved, device=x.device) * lengths[dialogue]).long()
            target[moved] = starts + torch.minimum(offset, lengths[dialogue] - 1)
        types = relation_types(source, target, speakers, self.n_speakers)
        return masked, torch.stack([source, target]), types
