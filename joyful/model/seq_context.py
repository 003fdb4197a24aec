"""Sequence context over each dialogue: transformer (default) or bidirectional LSTM/GRU."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def default_num_heads(width: int) -> int:
    """The original rule: the first h in 7..14 that divides the width, else 1 (1024 -> 8)."""
    return next((h for h in range(7, 15) if width % h == 0), 1)


class SeqContext(nn.Module):
    """(B, maxL, in_dim) padded dialogues -> (B, maxL, out_dim) context features.

    Unlike the original, the transformer gets a key-padding mask, so padded rows
    never take part in attention and results do not depend on batch composition.
    """

    def __init__(self, in_dim: int, hidden_size: int, kind: str, num_layers: int, num_heads: int, dropout: float) -> None:
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
            self.encoder = rnn(in_dim, hidden_size, num_layers=num_layers, dropout=dropout if num_layers > 1 else 0.0,
                               bidirectional=True, batch_first=True)
            self.out_dim = 2 * hidden_size

    def forward(self, padded: Tensor, lengths: Tensor, padding_mask: Tensor) -> Tensor:
        if self.kind == "transformer":
            return self.output(self.encoder(padded, src_key_padding_mask=padding_mask))
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.encoder(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=padded.shape[1])[0]
