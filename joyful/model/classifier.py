"""Emotion classifier head: (N, in_dim) node features -> (N, C) log-probabilities."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class Highway(nn.Module):
    """y = t * relu(W_h x) + (1 - t) * x with t = sigmoid(W_t x)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.transform = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1 - t) * x


class Classifier(nn.Module):
    def __init__(
        self, in_dim: int, hidden: int, n_classes: int, dropout: float, use_highway: bool
    ) -> None:
        super().__init__()
        self.highway = Highway(in_dim) if use_highway else nn.Identity()
        self.hidden = nn.Linear(in_dim, hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.dropout(F.relu(self.hidden(self.highway(x))))
        return F.log_softmax(self.output(hidden), dim=-1)
