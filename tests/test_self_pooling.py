"""The memory-bounded self-pooling autograd function against the P x P softmax per utterance."""

from __future__ import annotations

import pytest
import torch
from reference import reference_self_pool

from joyful.model.self_pooling import self_pool


def _reference(x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    return torch.stack([reference_self_pool(row, query) for row in x])


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 100])
def test_gradcheck_float64(chunk: int) -> None:
    generator = torch.Generator().manual_seed(chunk)
    x = torch.randn(5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    # Mixed signs in the query exercise both branches of the row-maximum shortcut.
    query = torch.randn(6, dtype=torch.float64, generator=generator, requires_grad=True)
    assert (query < 0).any() and (query > 0).any()
    assert torch.autograd.gradcheck(
        lambda a, b: self_pool(a, b, chunk), (x, query), eps=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("chunk", [1, 4, 7, 64])
def test_forward_and_backward_equal_per_utterance_softmax(chunk: int) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(7, 16, generator=generator, dtype=torch.float64, requires_grad=True)
    query = torch.randn(16, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(7, 16, generator=generator, dtype=torch.float64)
    out = self_pool(x, query, chunk)
    want = _reference(x, query)
    torch.testing.assert_close(out, want, rtol=1e-12, atol=1e-12)
    got_grads = torch.autograd.grad((out * weight).sum(), (x, query))
    want_grads = torch.autograd.grad((want * weight).sum(), (x, query))
    for got, expected in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_evaluation_path_equals_the_training_forward(chunk: int) -> None:
    """Without grad, self_pool skips the second moment; the values must not change."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(9, 16, generator=generator, dtype=torch.float64)
    query = torch.randn(16, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        evaluated = self_pool(x, query, chunk)
    trained = self_pool(x.clone().requires_grad_(), query, chunk)
    assert trained.grad_fn is not None and evaluated.grad_fn is None
    torch.testing.assert_close(evaluated, trained.detach(), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(evaluated, _reference(x, query), rtol=1e-12, atol=1e-12)


def test_large_scores_do_not_overflow() -> None:
    """Scores of several hundred would overflow exp() without the max shift."""
    x = torch.linspace(-30, 30, 12).repeat(3, 1).requires_grad_()
    query = torch.linspace(-20, 20, 12).requires_grad_()
    out = self_pool(x, query, 2)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _reference(x, query), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(query.grad).all()


def test_pooled_values_lie_in_the_row_range() -> None:
    """Each output entry is a convex combination of the row's entries."""
    x = torch.randn(6, 10)
    out = self_pool(x, torch.randn(10), 4)
    assert torch.all(out <= x.amax(dim=1, keepdim=True) + 1e-6)
    assert torch.all(out >= x.amin(dim=1, keepdim=True) - 1e-6)


def test_zero_query_gives_the_row_mean() -> None:
    x = torch.randn(4, 9)
    out = self_pool(x, torch.zeros(9), 3)
    torch.testing.assert_close(out, x.mean(dim=1, keepdim=True).expand_as(x))


def test_empty_batch() -> None:
    x = torch.zeros(0, 5, requires_grad=True)
    out = self_pool(x, torch.randn(5), 3)
    assert out.shape == (0, 5)
