"""Dialogue graphs (original `batch_graphify`, vectorised).

Within each dialogue, utterance j links to every k with j - wp <= k <= j + wf
(self-loop included; -1 = unbounded on that side); dialogues never connect.
Edge (j -> k) has relation type 2 * (spk(j) * S + spk(k)) + (0 if j < k else 1),
so there are 2 * S**2 relation types for S speakers.
"""

from __future__ import annotations

import torch
from torch import Tensor


def num_relations(n_speakers: int) -> int:
    return 2 * n_speakers * n_speakers


def relation_types(source: Tensor, target: Tensor, speakers: Tensor, n_speakers: int) -> Tensor:
    """(E,) relation type of each edge from its end points' speakers and direction."""
    backward = (source >= target).long()  # self-loops count as "1", like the original
    return 2 * (speakers[source] * n_speakers + speakers[target]) + backward


def build_dialogue_edges(
    lengths: Tensor, speakers: Tensor, n_speakers: int, wp: int, wf: int
) -> tuple[Tensor, Tensor]:
    """Edges of a batch of dialogues laid out back to back.

    lengths: (B,) utterances per dialogue; speakers: (N,) speaker index per node.
    Returns edge_index (2, E) with row 0 = source j, row 1 = target k, and edge_type (E,).
    """
    device = lengths.device
    n_nodes = int(lengths.sum())
    max_len = int(lengths.max())
    dialogue = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)  # (N,)
    starts = torch.cumsum(lengths, 0) - lengths  # (B,)
    position = (
        torch.arange(n_nodes, device=device) - starts[dialogue]
    )  # (N,) index inside the dialogue
    low = -wp if wp >= 0 else -(max_len - 1)
    high = wf if wf >= 0 else max_len - 1
    low, high = max(low, -(max_len - 1)), min(high, max_len - 1)
    offsets = torch.arange(low, high + 1, device=device)  # (K,)
    target_pos = position[:, None] + offsets[None, :]  # (N, K)
    valid = (target_pos >= 0) & (target_pos < lengths[dialogue][:, None])
    nodes = torch.arange(n_nodes, device=device)[:, None]  # (N, 1)
    source = nodes.expand_as(target_pos)[valid]  # (E,)
    target = (nodes + offsets[None, :])[valid]  # (E,)
    edge_index = torch.stack([source, target])
    return edge_index, relation_types(source, target, speakers, n_speakers)
