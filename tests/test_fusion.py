"""AutoFusion (batched) against the per-utterance reference of the original (§3.1)."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_DIMS, random_features, tiny_config
from reference import (
    reference_autofusion,
    reference_forward_fusion,
    reference_fusion_output,
    use_reference_fusion,
)
from torch import nn
from torch.nn import functional as F

from joyful.data.batching import DialogueLoader
from joyful.loss_utils import create_reconstruction_loss
from joyful.model import build_model
from joyful.model.fusion import AutoFusion, FusionOutput
from joyful.model.self_pooling import self_pool

SUBSETS = ["a", "t", "v", "at", "tv", "av", "atv"]
N = 10  # utterances: chunk 5 divides it, 3 and 4 do not, 64 exceeds it


def make_autofusion(
    modalities: str, chunk: int = 64, seed: int = 0, criterion: nn.Module | None = None
) -> AutoFusion:
    torch.manual_seed(seed)
    dims = {m: TINY_DIMS[m] for m in modalities}
    return AutoFusion(
        dims,
        pool_dim=16,
        hidden=32,
        latent=8,
        chunk_size=chunk,
        criterion=criterion or create_reconstruction_loss(False, reduction="none"),
    )


def grads_after(
    module: nn.Module, fused: torch.Tensor, losses: torch.Tensor, seed: int = 1
) -> dict[str, torch.Tensor]:
    """Parameter gradients of a random linear functional of (fused, losses)."""
    module.zero_grad(set_to_none=True)
    generator = torch.Generator().manual_seed(seed)
    weight_fused = torch.randn(fused.shape, generator=generator)
    weight_loss = torch.rand(losses.shape, generator=generator)
    ((fused * weight_fused).sum() + (losses * weight_loss).sum()).backward()
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [3, 5, 64])
@pytest.mark.parametrize("modalities", SUBSETS)
def test_forward_and_gradients_equal_reference(modalities: str, chunk: int) -> None:
    module = make_autofusion(modalities, chunk)
    features = random_features(N, {m: TINY_DIMS[m] for m in modalities}, seed=2)
    out = module(features)
    assert out.fused.shape == (N, 16) and out.reconstruction.shape == (N,)
    assert out.gate_reg is None and out.gate_means == {}
    fused_ref, losses_ref = reference_autofusion(module, features)
    torch.testing.assert_close(out.fused, fused_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.reconstruction, losses_ref, rtol=1e-4, atol=1e-5)

    grads = grads_after(module, out.fused, out.reconstruction)
    grads_ref = grads_after(module, fused_ref, losses_ref)
    assert grads.keys() == grads_ref.keys()
    # Every parameter takes part: the projections, the pooling query, both autoencoders.
    assert set(grads) == {name for name, _ in module.named_parameters()}
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-3, atol=1e-5, msg=name)


def test_float64_matches_reference_tightly() -> None:
    module = make_autofusion("atv", chunk=4).double()
    features = random_features(7, TINY_DIMS, seed=3, dtype=torch.float64)
    out = module(features)
    fused_ref, losses_ref = reference_autofusion(module, features)
    assert out.fused.dtype == torch.float64
    torch.testing.assert_close(out.fused, fused_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.reconstruction, losses_ref, rtol=1e-10, atol=1e-12)


def test_gradient_wrt_inputs_matches_reference() -> None:
    module = make_autofusion("atv", chunk=3)
    features = {m: x.requires_grad_() for m, x in random_features(N, TINY_DIMS, seed=4).items()}
    out = module(features)
    batched = torch.autograd.grad(
        out.fused.sum() + out.reconstruction.sum(), list(features.values())
    )
    fused_ref, losses_ref = reference_autofusion(module, features)
    reference = torch.autograd.grad(fused_ref.sum() + losses_ref.sum(), list(features.values()))
    for got, want in zip(batched, reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)


def test_chunk_size_does_not_change_results() -> None:
    features = random_features(N, TINY_DIMS, seed=5)
    results = [make_autofusion("atv", chunk)(features) for chunk in (1, 3, 10, 100)]
    for other in results[1:]:
        torch.testing.assert_close(other.fused, results[0].fused)
        torch.testing.assert_close(other.reconstruction, results[0].reconstruction)


def test_utterances_are_independent() -> None:
    """The fused vector of one utterance does not depend on the others in the batch."""
    module = make_autofusion("atv", chunk=4)
    features = random_features(N, TINY_DIMS, seed=6)
    whole = module(features)
    part = module({m: x[3:7] for m, x in features.items()})
    torch.testing.assert_close(part.fused, whole.fused[3:7])
    torch.testing.assert_close(part.reconstruction, whole.reconstruction[3:7])


def test_feature_dict_order_is_irrelevant() -> None:
    module = make_autofusion("atv")
    features = random_features(5, TINY_DIMS, seed=7)
    reordered = {m: features[m] for m in "vta"}
    torch.testing.assert_close(module(reordered).fused, module(features).fused)


def test_output_layout_is_global_then_inter() -> None:
    """[z_g ; z_i]: the first half comes from the global autoencoder alone."""
    module = make_autofusion("atv")
    features = random_features(5, TINY_DIMS, seed=8)
    before = module(features).fused
    with torch.no_grad():
        module.inter.pool_query.bias.add_(1.0)  # touches only the inter branch
    after = module(features).fused
    torch.testing.assert_close(after[:, :8], before[:, :8])
    assert not torch.allclose(after[:, 8:], before[:, 8:])


def test_reconstruction_loss_is_mse_of_both_branches() -> None:
    """Zeroing the decoders' output makes each branch's loss the mean square of its input."""
    module = make_autofusion("at")
    features = random_features(4, {"a": 8, "t": 16}, seed=9)
    with torch.no_grad():
        for dec in (module.global_decoder, module.inter.decoder):
            dec[2].weight.zero_()
            dec[2].bias.zero_()
    out = module(features)
    global_in = torch.cat([features["a"], features["t"]], dim=1)
    query = module.inter.query()
    inter_in = torch.cat(
        [self_pool(module.inter.projections[m](features[m]), query, 64) for m in "at"], dim=1
    )
    expected = global_in.pow(2).mean(dim=1) + inter_in.pow(2).mean(dim=1)
    torch.testing.assert_close(out.reconstruction, expected)


def test_parameter_count_of_the_original_module() -> None:
    """At the original widths (a100 t768 v512, P 460, hidden 1024, latent 512): 8,605,752 parameters (§3.1)."""
    module = AutoFusion(
        {"a": 100, "t": 768, "v": 512}, 460, 1024, 512, 64, nn.MSELoss(reduction="none")
    )
    assert sum(p.numel() for p in module.parameters()) == 8_605_752
    assert module.output_dim == 1024
    assert module.gate_parameters() == []


def test_reference_fusion_output_wraps_autofusion() -> None:
    module = make_autofusion("tv")
    features = random_features(3, {"t": 16, "v": 12}, seed=10)
    out = reference_fusion_output(module, features)
    assert isinstance(out, FusionOutput) and out.gate_reg is None
    torch.testing.assert_close(out.fused, module(features).fused, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fusion", ["autofusion", "hierarchical"])
def test_whole_model_with_reference_fusion_matches(
    synthetic_path, synthetic_data, fusion: str
) -> None:
    """`reference_forward_fusion` runs the full JOYFUL model on the per-utterance path, gradients included."""
    torch.manual_seed(0)
    config = tiny_config(synthetic_path, fusion=fusion, self_pool_chunk=7)
    model = build_model(config, synthetic_data.check_modalities("atv"), synthetic_data.spec)
    batch = next(
        iter(
            DialogueLoader(
                synthetic_data.splits["train"][:3],
                "atv",
                2,
                batch_size=3,
                wp=8,
                wf=8,
                shuffle=False,
            )
        )
    )

    def step(run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # same dropout masks and augmented views on both paths
        output = run()
        loss = (
            F.nll_loss(output.log_probs, batch.labels)
            + 0.2 * output.contrastive
            + 0.03 * output.reconstruction
            + (output.gate_reg if output.gate_reg is not None else 0.0)
        )
        loss.backward()
        return loss.detach(), {
            n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None
        }

    model.train()
    loss, grads = step(lambda: model(batch, contrast=True))
    loss_ref, grads_ref = step(
        lambda: reference_forward_fusion(model, batch)
    )  # contrast follows model.training
    torch.testing.assert_close(loss, loss_ref, rtol=1e-4, atol=1e-5)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-3, atol=1e-4, msg=name)
    assert "forward" not in vars(model.fusion)  # the swap is undone

    model.eval()
    with torch.no_grad(), use_reference_fusion(model):
        reference_eval = model(batch, contrast=False)
    with torch.no_grad():
        fast_eval = model(batch, contrast=False)
    torch.testing.assert_close(fast_eval.log_probs, reference_eval.log_probs, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        fast_eval.reconstruction, reference_eval.reconstruction, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("fusion", ["autofusion", "hierarchical"])
def test_evaluation_without_reconstruction_changes_nothing_it_reports(
    synthetic_path, synthetic_data, fusion: str
) -> None:
    """Evaluation skips the fusion's decoders (reconstruct=False): the same fused vectors, gates and
    predictions, and zero reconstruction loss (tests/test_coach.py checks what Coach.evaluate passes)."""
    torch.manual_seed(0)
    config = tiny_config(synthetic_path, fusion=fusion)
    model = build_model(config, synthetic_data.check_modalities("atv"), synthetic_data.spec).eval()
    batch = next(
        iter(
            DialogueLoader(
                synthetic_data.splits["dev"], "atv", 2, batch_size=4, wp=8, wf=8, shuffle=False
            )
        )
    )
    with torch.no_grad():
        full, skipped = (
            model.fusion(batch.features),
            model.fusion(batch.features, reconstruct=False),
        )
        outputs = model(batch, contrast=False), model(batch, contrast=False, reconstruct=False)
    torch.testing.assert_close(skipped.fused, full.fused, rtol=0, atol=0)
    assert (
        torch.count_nonzero(skipped.reconstruction) == 0
        and torch.count_nonzero(full.reconstruction) > 0
    )
    assert (skipped.gate_reg is None) == (full.gate_reg is None) == (fusion == "autofusion")
    if fusion == "hierarchical":
        torch.testing.assert_close(skipped.gate_reg, full.gate_reg, rtol=0, atol=0)
        assert skipped.gate_means.keys() == full.gate_means.keys()
    torch.testing.assert_close(outputs[1].log_probs, outputs[0].log_probs, rtol=0, atol=0)
    assert float(outputs[1].reconstruction) == 0.0 < float(outputs[0].reconstruction)
