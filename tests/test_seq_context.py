"""The sequence context on real rows only equals the padded-grid computation (nn.TransformerEncoder's own forward)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from reference import reference_forward_fusion, reference_seq_context, use_reference_path
from torch.nn import functional as F

from joyful.data.batching import DialogueLoader
from joyful.model import build_model
from joyful.model.seq_context import DialogueLayout, SeqContext, default_num_heads

LENGTHS = [5, 1, 9, 3]


def _layout(lengths: list[int]) -> DialogueLayout:
    lengths_t = torch.tensor(lengths)
    dialogue_index = torch.repeat_interleave(torch.arange(len(lengths)), lengths_t)
    position = torch.cat([torch.arange(n) for n in lengths])
    return DialogueLayout.of(dialogue_index, position, lengths_t)


def _rows(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed), requires_grad=True)


def test_layout_pads_and_unpads() -> None:
    layout = _layout(LENGTHS)
    rows = torch.arange(sum(LENGTHS), dtype=torch.float32)[:, None]
    grid = layout.pad(rows)
    assert grid.shape == (4, 9, 1) and layout.max_len == 9
    assert grid[1, :, 0].tolist() == [5.0] + [0.0] * 8  # the second dialogue starts at row 5
    assert layout.padding_mask.sum(dim=1).tolist() == [9 - n for n in LENGTHS]
    torch.testing.assert_close(layout.unpad(grid), rows)


@pytest.mark.parametrize("kind", ["transformer", "lstm", "gru"])
@pytest.mark.parametrize("training", [False, True])
def test_equals_the_padded_computation(kind: str, training: bool) -> None:
    """Values and gradients; dropout 0 in training so that both paths are deterministic."""
    torch.manual_seed(0)
    module = SeqContext(
        24, 10, kind, num_layers=2, num_heads=default_num_heads(24), dropout=0.0
    ).train(training)
    layout = _layout(LENGTHS)
    rows = _rows(sum(LENGTHS), 24)
    fast = module(rows, layout)
    slow = reference_seq_context(module, rows, layout)
    assert fast.shape == (sum(LENGTHS), module.out_dim)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)
    weights = torch.randn_like(fast)
    fast_grads = torch.autograd.grad((fast * weights).sum(), [rows, *module.parameters()])
    slow_grads = torch.autograd.grad((slow * weights).sum(), [rows, *module.parameters()])
    for got, expected in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_padding_never_reaches_real_rows() -> None:
    """A dialogue's output does not depend on which (longer) dialogues share its batch."""
    torch.manual_seed(0)
    module = SeqContext(16, 8, "transformer", num_layers=1, num_heads=8, dropout=0.0).eval()
    rows = _rows(sum(LENGTHS), 16)
    together = module(rows, _layout(LENGTHS))
    alone = module(rows[5:6], _layout([1]))  # the one-utterance dialogue on its own
    torch.testing.assert_close(together[5:6], alone, rtol=1e-5, atol=1e-6)


def test_dropout_is_active_in_training_and_off_in_eval() -> None:
    torch.manual_seed(0)
    module = SeqContext(16, 8, "transformer", num_layers=1, num_heads=8, dropout=0.5)
    rows, layout = _rows(sum(LENGTHS), 16), _layout(LENGTHS)
    module.train()
    assert not torch.allclose(module(rows, layout), module(rows, layout))
    module.eval()
    torch.testing.assert_close(
        module(rows, layout), reference_seq_context(module, rows, layout), rtol=1e-5, atol=1e-6
    )


def test_checkpoint_names_are_the_standard_encoder_ones() -> None:
    """The parameters stay in nn.TransformerEncoder, so state_dicts keep their usual keys."""
    names = set(SeqContext(16, 8, "transformer", 2, 8, 0.1).state_dict())
    assert {
        "encoder.layers.0.self_attn.in_proj_weight",
        "encoder.layers.1.linear2.bias",
        "output.weight",
    } <= names


def test_whole_model_on_the_reference_path_matches(synthetic_path, synthetic_data) -> None:
    """Per-utterance fusion + padded-grid transformer == the model's vectorised path (eval, fixed augmentations)."""
    torch.manual_seed(0)
    model = build_model(
        tiny_config(synthetic_path), synthetic_data.check_modalities("atv"), synthetic_data.spec
    ).eval()
    batch = next(
        iter(
            DialogueLoader(
                synthetic_data.splits["train"][:4],
                "atv",
                2,
                batch_size=4,
                wp=8,
                wf=8,
                shuffle=False,
            )
        )
    )

    def loss_of(run) -> torch.Tensor:
        torch.manual_seed(1)  # the same augmented views on both paths
        output = run()
        return (
            F.nll_loss(output.log_probs, batch.labels)
            + output.contrastive
            + 0.03 * output.reconstruction
        )

    fast = loss_of(lambda: model(batch, contrast=True))
    with use_reference_path(model):
        slow = loss_of(lambda: model(batch, contrast=True))
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-5)
    assert "forward" not in vars(model.seq_context) and "forward" not in vars(model.fusion)
    torch.testing.assert_close(
        loss_of(lambda: reference_forward_fusion(model, batch, contrast=True)),
        fast,
        rtol=1e-4,
        atol=1e-5,
    )
