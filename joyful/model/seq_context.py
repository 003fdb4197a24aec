"""Sequence context over each dialogue: transformer (default) or bidirectional LSTM/GRU.

The model keeps utterances as flat (N, D) rows. A batch's dialogues have different lengths, and
on IEMOCAP-size batches about a third of a padded (B, maxL) grid is padding. So the transformer
runs its per-token work (Q/K/V and output projections, feed-forward, layer norms, dropout) on
the real rows only, and only the attention itself on the padded grid, with a key-padding mask.
The parameters live in a standard `nn.TransformerEncoder`, so checkpoints keep the usual names;
the plain padded computation is kept as the reference in `tests/reference.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def default_num_heads(width: int) -> int:
    """The original rule: the first h in 7..14 that divides the width, else 1 (1024 -> 8)."""
    return next((h for h in range(7, 15) if width % h == 0), 1)


@dataclass(frozen=True)
class DialogueLayout:
    """Where each flat row sits in the (B, maxL) padded grid of a batch's dialogues."""

    dialogue_index: Tensor  # (N,) long
    position: Tensor  # (N,) long
    lengths: Tensor  # (B,) long
    max_len: int

    @classmethod
    def of(cls, dialogue_index: Tensor, position: Tensor, lengths: Tensor) -> DialogueLayout:
        return cls(dialogue_index, position, lengths, int(lengths.max()))

    @property
    def padding_mask(self) -> Tensor:
        """(B, maxL) bool, True on padding (nn.Transformer's convention)."""
        return (
            torch.arange(self.max_len, device=self.lengths.device)[None, :] >= self.lengths[:, None]
        )

    def pad(self, rows: Tensor) -> Tensor:
        """(N, D) -> (B, maxL, D), zeros on padding."""
        grid = rows.new_zeros(len(self.lengths), self.max_len, rows.shape[1])
        grid[self.dialogue_index, self.position] = rows
        return grid

    def unpad(self, grid: Tensor) -> Tensor:
        """(B, maxL, D) -> (N, D), the real rows in flat order."""
        return grid[self.dialogue_index, self.position]


class SeqContext(nn.Module):
    """(N, in_dim) utterance rows + their layout -> (N, out_dim) context features.

    Unlike the original, padding never takes part in attention (key-padding mask), so results do
    not depend on which dialogues share a batch.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_size: int,
        kind: str,
        num_layers: int,
        num_heads: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.kind = kind
        if kind == "transformer":
            layer = nn.TransformerEncoderLayer(in_dim, num_heads, dropout=dropout, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
            self.output = nn.Linear(in_dim, hidden_size)
            self.out_dim = hidden_size
        else:
            # Original: g_dim = 200 for the RNNs, split over two directions.
            rnn = nn.LSTM if kind == "lstm" else nn.GRU
            self.encoder = rnn(
                in_dim,
                hidden_size,
                num_layers=num_layers,
                dropout=dropout if num_layers > 1 else 0.0,
                bidirectional=True,
                batch_first=True,
            )
            self.out_dim = 2 * hidden_size

    def forward(self, rows: Tensor, layout: DialogueLayout) -> Tensor:
        if self.kind == "transformer":
            # True = may be attended to (scaled_dot_product_attention's convention); (B, 1, 1,
            # maxL).
            attend = ~layout.padding_mask[:, None, None, :]
            for layer in self.encoder.layers:
                rows = packed_encoder_layer(layer, rows, layout, attend)
            return self.output(rows)
        packed = pack_padded_sequence(
            layout.pad(rows), layout.lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.encoder(packed)
        return layout.unpad(
            pad_packed_sequence(out, batch_first=True, total_length=layout.max_len)[0]
        )


def packed_encoder_layer(
    layer: nn.TransformerEncoderLayer, rows: Tensor, layout: DialogueLayout, attend: Tensor
) -> Tensor:
    """`nn.TransformerEncoderLayer` (post-norm, batch_first) on real rows only.

    Same parameters and the same function as the module's own forward with a key-padding mask;
    dropout masks are drawn per real row, so a seeded run differs from the padded computation
    in its dropout pattern, not in distribution.
    """
    attention = layer.self_attn
    heads, width = attention.num_heads, rows.shape[1]
    qkv = F.linear(rows, attention.in_proj_weight, attention.in_proj_bias)  # (N, 3D)
    grid = layout.pad(qkv).view(len(layout.lengths), layout.max_len, 3, heads, width // heads)
    query, key, value = grid.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, H, maxL, D/H)
    mixed = F.scaled_dot_product_attention(
        query, key, value, attn_mask=attend, dropout_p=attention.dropout if layer.training else 0.0
    )
    mixed = layout.unpad(
        mixed.transpose(1, 2).reshape(len(layout.lengths), layout.max_len, width)
    )  # (N, D)
    rows = layer.norm1(rows + layer.dropout1(attention.out_proj(mixed)))
    feed_forward = layer.linear2(layer.dropout(layer.activation(layer.linear1(rows))))
    return layer.norm2(rows + layer.dropout2(feed_forward))
