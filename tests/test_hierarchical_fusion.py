"""AutoFusion_Hierarchical (batched) against the per-utterance reference (§5.1), and the user's loss switches."""

from __future__ import annotations

import pytest
import torch
from conftest import TINY_DIMS, random_features, tiny_config, without_timing
from reference import reference_autofusion, reference_fusion_output, reference_hierarchical
from torch import nn

from joyful.config import JoyfulConfig
from joyful.datasets import REGISTRY
from joyful.loss_utils import compute_training_loss, create_reconstruction_loss
from joyful.model import AutoFusion, AutoFusion_Hierarchical, build_model
from joyful.run import build_coach

SUBSETS = ["a", "t", "v", "at", "tv", "av", "atv"]
N = 10
GATES = ("temporal", "forget", "input")


def make_hierarchical(
    modalities: str = "atv",
    chunk: int = 64,
    smooth_l1: bool = False,
    seed: int = 0,
    latent: int = 8,
) -> AutoFusion_Hierarchical:
    torch.manual_seed(seed)
    dims = {m: TINY_DIMS[m] for m in modalities}
    return AutoFusion_Hierarchical(
        dims,
        pool_dim=16,
        hidden=32,
        latent=latent,
        chunk_size=chunk,
        criterion=create_reconstruction_loss(smooth_l1, reduction="none"),
    )


def weighted_sum(fused: torch.Tensor, losses: torch.Tensor, gate_reg: torch.Tensor) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (
        (fused * torch.randn(fused.shape, generator=generator)).sum()
        + (losses * torch.rand(losses.shape, generator=generator)).sum()
        + 3.0 * gate_reg
    )


def parameter_grads(module: nn.Module, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    module.zero_grad(set_to_none=True)
    loss.backward()
    return {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("smooth_l1", [False, True], ids=["mse", "smooth_l1"])
@pytest.mark.parametrize("chunk", [3, 5, 64])
@pytest.mark.parametrize("modalities", SUBSETS)
def test_forward_and_gradients_equal_reference(
    modalities: str, chunk: int, smooth_l1: bool
) -> None:
    module = make_hierarchical(modalities, chunk, smooth_l1)
    # Scaled inputs put some gate pre-activations outside [0, 1], so the clamp matters.
    features = {
        m: 3 * x
        for m, x in random_features(N, {m: TINY_DIMS[m] for m in modalities}, seed=2).items()
    }
    out = module(features)
    fused_ref, losses_ref, gate_reg_ref, means_ref = reference_hierarchical(module, features)
    assert (
        out.fused.shape == (N, 16) and out.reconstruction.shape == (N,) and out.gate_reg.shape == ()
    )
    torch.testing.assert_close(out.fused, fused_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.reconstruction, losses_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.gate_reg, gate_reg_ref, rtol=1e-4, atol=1e-6)
    assert out.gate_means.keys() == means_ref.keys() == {"utterance", *GATES}
    for name, value in means_ref.items():
        torch.testing.assert_close(out.gate_means[name], value, rtol=1e-4, atol=1e-6)

    grads = parameter_grads(module, weighted_sum(out.fused, out.reconstruction, out.gate_reg))
    grads_ref = parameter_grads(module, weighted_sum(fused_ref, losses_ref, gate_reg_ref))
    assert grads.keys() == grads_ref.keys() == {name for name, _ in module.named_parameters()}
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-3, atol=1e-5, msg=name)


def test_float64_matches_reference_tightly() -> None:
    module = make_hierarchical("atv", chunk=4, smooth_l1=True).double()
    features = random_features(7, TINY_DIMS, seed=3, dtype=torch.float64)
    out = module(features)
    fused_ref, losses_ref, gate_reg_ref, _ = reference_hierarchical(module, features)
    torch.testing.assert_close(out.fused, fused_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.reconstruction, losses_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out.gate_reg, gate_reg_ref, rtol=1e-10, atol=1e-12)


def test_gates_stay_in_unit_interval() -> None:
    module = make_hierarchical()
    out = module({m: 50 * x for m, x in random_features(N, TINY_DIMS, seed=4).items()})
    for value in out.gate_means.values():
        assert 0.0 <= float(value) <= 1.0
    assert not any(v.requires_grad for v in out.gate_means.values())


def test_dialogue_gate_shapes_only_the_reconstruction() -> None:
    """§5.1: the dialogue gate never reaches the fused features."""
    module = make_hierarchical()
    features = random_features(N, TINY_DIMS, seed=5)
    before = module(features)
    with torch.no_grad():
        for p in module.dialogue_gate.parameters():
            p.add_(0.3)
    after = module(features)
    torch.testing.assert_close(after.fused, before.fused)
    assert not torch.allclose(after.reconstruction, before.reconstruction)


def test_gate_parameters_are_the_gates_and_the_state() -> None:
    module = make_hierarchical()
    chosen = {id(p) for p in module.gate_parameters()}
    names = {name for name, p in module.named_parameters() if id(p) in chosen}
    # Exactly the gates and the learned state: not the encoders, not the dialogue gate's decoder.
    assert names == {
        "utterance_gate.gate.weight",
        "utterance_gate.gate.bias",
        "dialogue_gate.state",
        *(
            f"dialogue_gate.{g}.{w}"
            for g in ("temporal", "forget", "input")
            for w in ("weight", "bias")
        ),
    }
    assert len(module.gate_parameters()) == len(chosen) == 9


def test_reference_fusion_output_carries_gates() -> None:
    module = make_hierarchical()
    features = random_features(4, TINY_DIMS, seed=6)
    out = reference_fusion_output(module, features)
    assert out.gate_reg.requires_grad and set(out.gate_means) == {"utterance", *GATES}


# --- loss switches ------------------------------------------------------------------------


def test_gate_reg_weight_zero_removes_the_term() -> None:
    module = make_hierarchical()
    out = module(random_features(N, TINY_DIMS, seed=7))
    nll, contrastive = torch.tensor(1.3), torch.tensor(2.0)
    reconstruction = out.reconstruction.sum()
    assert float(out.gate_reg) > 0
    total_zero, parts_zero = compute_training_loss(
        nll, contrastive, reconstruction, out.gate_reg, JoyfulConfig(gate_reg_weight=0.0)
    )
    total_none, _ = compute_training_loss(
        nll, contrastive, reconstruction, None, JoyfulConfig(gate_reg_weight=0.0)
    )
    torch.testing.assert_close(total_zero, total_none)
    torch.testing.assert_close(total_zero, nll + 0.2 * contrastive + 0.03 * reconstruction)
    assert parts_zero["gate_reg"] == pytest.approx(float(out.gate_reg))  # still logged
    total_big, _ = compute_training_loss(
        nll, contrastive, reconstruction, out.gate_reg, JoyfulConfig(gate_reg_weight=2.0)
    )
    torch.testing.assert_close(total_big, total_zero + 2.0 * out.gate_reg)
    # With weight 0 the gate regulariser sends no gradient to the learned state.
    module.zero_grad()
    total_zero.backward(retain_graph=True)
    grad_zero = module.dialogue_gate.state.grad.clone()
    module.zero_grad()
    total_none.backward()
    torch.testing.assert_close(module.dialogue_gate.state.grad, grad_zero)


def _mean_gate_distance(
    module: AutoFusion_Hierarchical, features: dict[str, torch.Tensor]
) -> float:
    with torch.no_grad():
        global_in = torch.cat([features[m] for m in module.modalities], dim=1)
        z_global, _ = module.utterance_gate(global_in)
        _, gates = module.dialogue_gate(z_global)
    return float(torch.stack([(g - 0.5).abs().mean() for g in gates.values()]).mean())


def _train_fusion(gate_reg_weight: float, steps: int = 200) -> tuple[float, float]:
    module = make_hierarchical(latent=8, seed=11)
    features = random_features(32, TINY_DIMS, seed=12)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    start = _mean_gate_distance(module, features)
    for _ in range(steps):
        optimizer.zero_grad()
        out = module(features)
        (out.reconstruction.mean() + gate_reg_weight * out.gate_reg).backward()
        optimizer.step()
    return start, _mean_gate_distance(module, features)


def test_larger_gate_reg_weight_pulls_gates_toward_one_half() -> None:
    start, free = _train_fusion(0.0)
    start_again, regulated = _train_fusion(100.0)
    assert start == start_again  # same initial module
    assert regulated < 0.5 * free, (free, regulated)
    assert regulated < start


def test_loss_type_switches_the_criterion_of_the_hierarchical_fusion(synthetic_data) -> None:
    dims = synthetic_data.check_modalities("atv")
    spec = REGISTRY["synthetic"]
    features = {m: 2 * x for m, x in random_features(N, dims, seed=13).items()}
    results = {}
    for loss in ("mse", "smooth_l1"):
        torch.manual_seed(0)
        config = JoyfulConfig(
            fusion="hierarchical",
            reconstruction_loss=loss,
            fusion_pool_dim=16,
            fusion_hidden=32,
            fusion_latent=16,
            hidden_size=16,
            seqcontext_nlayer=1,
            gnn_nheads=2,
        )
        fusion = build_model(config, dims, spec).fusion
        expected = nn.SmoothL1Loss if loss == "smooth_l1" else nn.MSELoss
        assert type(fusion.criterion) is expected and fusion.criterion.reduction == "none"
        results[loss] = fusion(features).reconstruction
        torch.testing.assert_close(
            results[loss], reference_hierarchical(fusion, features)[1], rtol=1e-4, atol=1e-5
        )
    assert not torch.allclose(results["mse"], results["smooth_l1"])
    # Large errors: SmoothL1 is linear (|e| - 0.5) where MSE is quadratic, so it is smaller.
    assert torch.all(results["smooth_l1"] < results["mse"])


def test_autofusion_ignores_the_loss_type(synthetic_data) -> None:
    """The original AutoFusion keeps MSE whatever --reconstruction_loss says (the user's design)."""
    dims = synthetic_data.check_modalities("atv")
    features = random_features(N, dims, seed=14)
    outputs = []
    for loss in ("mse", "smooth_l1"):
        torch.manual_seed(0)
        config = JoyfulConfig(
            reconstruction_loss=loss,
            fusion_pool_dim=16,
            fusion_hidden=32,
            fusion_latent=16,
            hidden_size=16,
            seqcontext_nlayer=1,
            gnn_nheads=2,
        )
        fusion = build_model(config, dims, REGISTRY["synthetic"]).fusion
        assert type(fusion) is AutoFusion and type(fusion.criterion) is nn.MSELoss
        outputs.append(fusion(features).reconstruction)
        torch.testing.assert_close(
            outputs[-1], reference_autofusion(fusion, features)[1], rtol=1e-4, atol=1e-5
        )
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_defaults_are_the_core_behaviour(synthetic_data) -> None:
    config = JoyfulConfig()
    assert (config.fusion, config.reconstruction_loss) == ("autofusion", "mse")
    assert (config.encoder_loss_weight, config.cl_loss_weight, config.gate_reg_weight) == (
        0.03,
        0.2,
        0.01,
    )
    assert config.gate_lr_scale == 1.0
    model = build_model(
        config.replace(fusion_pool_dim=16, fusion_hidden=32, fusion_latent=16),
        synthetic_data.check_modalities("atv"),
        REGISTRY["synthetic"],
    )
    assert type(model.fusion) is AutoFusion and type(model.fusion.criterion) is nn.MSELoss


def test_hierarchical_only_settings_change_nothing_with_autofusion(
    synthetic_path, synthetic_data
) -> None:
    """Without --use_hierarchical_fusion, --use_smooth_l1 / --gate_reg_weight / --gate_lr_scale are inert."""
    histories = []
    for changes in (
        {},
        {"reconstruction_loss": "smooth_l1", "gate_reg_weight": 5.0, "gate_lr_scale": 0.1},
    ):
        coach = build_coach(
            tiny_config(synthetic_path, **changes), synthetic_data, torch.device("cpu")
        )
        assert len(coach.optimizer.param_groups) == 1
        histories.append(without_timing(coach.fit(evaluate_test=False)["history"]))
    assert histories[0] == histories[1]
    assert all(
        record["train_loss"]["gate_reg"] == 0.0 and record["gates"] == {} for record in histories[0]
    )


def test_hierarchical_training_reports_gates(synthetic_path, synthetic_data) -> None:
    coach = build_coach(
        tiny_config(synthetic_path, fusion="hierarchical", gate_lr_scale=0.1),
        synthetic_data,
        torch.device("cpu"),
    )
    lrs = [group["lr"] for group in coach.optimizer.param_groups]
    assert lrs == [pytest.approx(1e-3), pytest.approx(1e-4)]
    history = coach.fit(evaluate_test=False)["history"]
    for record in history:
        assert set(record["gates"]) == {"utterance", *GATES}
        assert all(0.0 <= v <= 1.0 for v in record["gates"].values())
        assert record["train_loss"]["gate_reg"] > 0
