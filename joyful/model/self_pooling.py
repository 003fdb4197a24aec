"""Self-pooling of AutoFusion, batched over utterances with a memory-bounded autograd function.

For one utterance with projected features x in R^P and the learned query b in R^P:

    y_i = sum_j p_ij x_j,   p_ij = softmax_j(b_i * x_j)

which is a P x P attention matrix per utterance (P = 460). Plain autograd would
keep every N x P x P probability matrix alive until backward (3.8 GB for an
IEMOCAP batch). This function keeps only y and E_p[x^2] (N x P each) and
recomputes the exponentials chunk by chunk in backward, using

    dL/dx_k = sum_i p_ik * g_i * (1 - b_i * y_i) + x_k * sum_i p_ik * g_i * b_i
    dL/db_i = sum_n g_ni * (E_p[x^2]_ni - y_ni^2)
"""

from __future__ import annotations

import torch
from torch import Tensor


def _chunk_weights(x: Tensor, query: Tensor, buffer: Tensor) -> Tensor:
    """Unnormalised softmax weights exp(b_i x_j - max_j b_i x_j) for a chunk: (n, P, P).

    `buffer` is reused across chunks: allocating (and first touching) a fresh
    n x P x P tensor per chunk cost as much as the exponentials on CPU.
    """
    # The row maximum of b_i * x_j is b_i * max(x) when b_i >= 0, else b_i * min(x):
    # no reduction over the P x P scores is needed.
    x_max = x.amax(dim=1, keepdim=True)  # (n, 1)
    x_min = x.amin(dim=1, keepdim=True)  # (n, 1)
    row_max = torch.where(query >= 0, query * x_max, query * x_min)  # (n, P)
    scores = buffer[: x.shape[0]]
    torch.mul(query[None, :, None], x[:, None, :], out=scores)  # (n, P, P): scores[n, i, j] = b_i x_nj
    scores.sub_(row_max[:, :, None])
    return scores.exp_()


class _SelfPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, query: Tensor, chunk_size: int) -> Tensor:  # type: ignore[override]
        pooled = torch.empty_like(x)
        second_moment = torch.empty_like(x)
        buffer = x.new_empty(min(chunk_size, x.shape[0]), x.shape[1], x.shape[1])
        for start in range(0, x.shape[0], chunk_size):
            xc = x[start:start + chunk_size]
            weights = _chunk_weights(xc, query, buffer)  # (n, P, P)
            moments = torch.bmm(weights, torch.stack([xc, xc * xc], dim=2))  # (n, P, 2)
            norm = weights.sum(dim=2)  # (n, P)
            pooled[start:start + chunk_size] = moments[..., 0] / norm
            second_moment[start:start + chunk_size] = moments[..., 1] / norm
        ctx.save_for_backward(x, query, pooled, second_moment)
        ctx.chunk_size = chunk_size
        return pooled

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, query, pooled, second_moment = ctx.saved_tensors
        grad_x = torch.empty_like(x)
        buffer = x.new_empty(min(ctx.chunk_size, x.shape[0]), x.shape[1], x.shape[1])
        for start in range(0, x.shape[0], ctx.chunk_size):
            stop = start + ctx.chunk_size
            xc, gc, yc = x[start:stop], grad[start:stop], pooled[start:stop]
            weights = _chunk_weights(xc, query, buffer)  # (n, P, P), unnormalised
            norm = weights.sum(dim=2)  # (n, P)
            u = gc * (1 - query * yc) / norm  # (n, P)
            w = gc * query / norm  # (n, P)
            back = torch.bmm(weights.transpose(1, 2), torch.stack([u, w], dim=2))  # (n, P, 2)
            grad_x[start:stop] = back[..., 0] + xc * back[..., 1]
        grad_query = (grad * (second_moment - pooled * pooled)).sum(dim=0)
        return grad_x, grad_query, None


def self_pool(x: Tensor, query: Tensor, chunk_size: int) -> Tensor:
    """Pool each row of x (N, P) against the query b (P,); returns (N, P)."""
    if x.shape[0] == 0:
        return x.clone()
    return _SelfPool.apply(x, query, chunk_size)
