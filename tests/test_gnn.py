"""The relational GNN with graph contrastive learning (§3.4) and its InfoNCE loss."""

from __future__ import annotations

import pytest
import torch
from reference import reference_infonce

from joyful.graph import build_dialogue_edges, num_relations, relation_types
from joyful.model.contrastive import dual_branch_infonce
from joyful.model.gnn import DialogueGNN

LENGTHS = [5, 3, 6]
N = sum(LENGTHS)


def make_batch(n_speakers: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    speakers = torch.randint(n_speakers, (N,), generator=generator)
    edge_index, edge_type = build_dialogue_edges(lengths, speakers, n_speakers, 2, 2)
    dialogue = torch.repeat_interleave(torch.arange(len(LENGTHS)), lengths)
    x = torch.randn(N, 8, generator=generator)
    return x, edge_index, edge_type, speakers, dialogue, lengths


def make_gnn(n_speakers: int = 2, mask: float = 0.25, perturb: float = 0.1) -> DialogueGNN:
    torch.manual_seed(0)
    return DialogueGNN(
        8,
        6,
        num_relations(n_speakers),
        heads=3,
        n_speakers=n_speakers,
        feature_mask_rate=mask,
        edge_perturb_rate=perturb,
        temperature=0.2,
    )


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_infonce_equals_node_by_node_formula(temperature: float) -> None:
    generator = torch.Generator().manual_seed(1)
    u = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    w = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(
        dual_branch_infonce(u, w, temperature), reference_infonce(u, w, temperature)
    )


def test_infonce_is_symmetric_and_scale_free() -> None:
    u, w = torch.randn(6, 4), torch.randn(6, 4)
    torch.testing.assert_close(dual_branch_infonce(u, w, 0.2), dual_branch_infonce(w, u, 0.2))
    torch.testing.assert_close(
        dual_branch_infonce(3 * u, 0.5 * w, 0.2), dual_branch_infonce(u, w, 0.2)
    )


def test_infonce_rewards_aligned_views() -> None:
    u = torch.randn(10, 6)
    assert dual_branch_infonce(u, u, 0.2) < dual_branch_infonce(u, torch.randn(10, 6), 0.2)


def test_output_shape_and_eval_has_no_contrastive_loss() -> None:
    gnn = make_gnn().eval()
    x, edge_index, edge_type, speakers, dialogue, lengths = make_batch()
    out, contrastive = gnn(x, edge_index, edge_type, speakers, dialogue, lengths, contrast=False)
    assert out.shape == (N, 18) and gnn.out_dim == 18
    assert float(contrastive) == 0.0


def test_classification_branch_uses_the_clean_graph() -> None:
    """Augmented views feed only the contrastive loss: the output equals the unaugmented one."""
    gnn = make_gnn(mask=0.5, perturb=0.5).eval()  # eval: BatchNorm uses running stats in both calls
    batch = make_batch()
    clean, zero = gnn(*batch, contrast=False)
    torch.manual_seed(3)
    augmented, contrastive = gnn(*batch, contrast=True)
    torch.testing.assert_close(augmented, clean)
    assert float(contrastive) > 0 and float(zero) == 0.0


def test_contrastive_loss_is_sum_over_two_views_of_infonce() -> None:
    gnn = make_gnn()
    x, edge_index, edge_type, speakers, dialogue, lengths = make_batch()
    torch.manual_seed(5)
    _, contrastive = gnn(x, edge_index, edge_type, speakers, dialogue, lengths, contrast=True)
    torch.manual_seed(5)
    views = [gnn._augment(x, edge_index, speakers, dialogue, lengths) for _ in range(2)]
    h0 = gnn.rgcn(x, edge_index, edge_type)
    expected = sum(dual_branch_infonce(h0, gnn.rgcn(vx, ve, vt), 0.2) for vx, ve, vt in views)
    torch.testing.assert_close(contrastive, expected)


@pytest.mark.parametrize("n_speakers", [2, 9])
def test_augmented_edges_stay_in_their_dialogue_with_consistent_types(n_speakers: int) -> None:
    gnn = make_gnn(n_speakers, perturb=0.5)
    x, edge_index, edge_type, speakers, dialogue, lengths = make_batch(n_speakers)
    torch.manual_seed(7)
    masked, view_edges, view_types = gnn._augment(x, edge_index, speakers, dialogue, lengths)
    assert view_edges.shape == edge_index.shape
    assert torch.equal(view_edges[0], edge_index[0])  # sources are kept
    moved = (view_edges[1] != edge_index[1]).sum()
    assert 0 < moved <= int(0.5 * edge_index.shape[1])
    assert torch.equal(dialogue[view_edges[0]], dialogue[view_edges[1]])
    assert torch.equal(
        view_types, relation_types(view_edges[0], view_edges[1], speakers, n_speakers)
    )
    # The input graph itself is never modified (the original perturbed it in place).
    fresh_index, fresh_type = build_dialogue_edges(lengths, speakers, n_speakers, 2, 2)
    assert torch.equal(edge_index, fresh_index) and torch.equal(edge_type, fresh_type)


def test_feature_mask_drops_the_configured_share_without_rescaling() -> None:
    gnn = make_gnn(mask=0.25)
    x = torch.rand(400, 8) + 1.0  # no zeros of its own
    edge_index = torch.stack([torch.arange(400), torch.arange(400)])
    torch.manual_seed(8)
    masked, _, _ = gnn._augment(
        x,
        edge_index,
        torch.zeros(400, dtype=torch.long),
        torch.zeros(400, dtype=torch.long),
        torch.tensor([400]),
    )
    kept = masked != 0
    assert abs(float(kept.float().mean()) - 0.75) < 0.03
    torch.testing.assert_close(masked[kept], x[kept])


def test_two_views_are_independent() -> None:
    gnn = make_gnn(perturb=0.3)
    x, edge_index, _, speakers, dialogue, lengths = make_batch()
    torch.manual_seed(9)
    first = gnn._augment(x, edge_index, speakers, dialogue, lengths)
    second = gnn._augment(x, edge_index, speakers, dialogue, lengths)
    assert not torch.equal(first[0], second[0])
    assert not torch.equal(first[1], second[1])


def test_gradients_reach_every_parameter() -> None:
    gnn = make_gnn()
    out, contrastive = gnn(*make_batch(), contrast=True)
    (out.sum() + contrastive).backward()
    missing = [
        name for name, p in gnn.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert missing == []


@pytest.mark.parametrize("n_speakers", [2, 9])  # IEMOCAP's 8 relations, MELD's 162
def test_the_relational_conv_is_pyg_rgcnconv_vectorised(n_speakers: int) -> None:
    """PyTorch Geometric's RGCNConv (a loop over relations) is the reference: same initial weights from the same
    seed, same outputs and gradients, on dialogue graphs where some relations are absent."""
    from torch_geometric.nn import RGCNConv

    from joyful.model.rgcn import RelationalGraphConv

    relations = num_relations(n_speakers)
    torch.manual_seed(3)
    reference = RGCNConv(8, 6, relations).double()
    torch.manual_seed(3)
    ours = RelationalGraphConv(8, 6, relations).double()
    assert [name for name, _ in ours.named_parameters()] == [
        name for name, _ in reference.named_parameters()
    ]
    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.equal(mine, theirs)
    x, edge_index, edge_type, *_ = make_batch(n_speakers, seed=4)
    x = x.double().requires_grad_()
    expected, got = reference(x, edge_index, edge_type), ours(x, edge_index, edge_type)
    torch.testing.assert_close(got, expected)
    for mine, theirs in zip(
        torch.autograd.grad(got.square().sum(), [x, *ours.parameters()]),
        torch.autograd.grad(expected.square().sum(), [x, *reference.parameters()]),
        strict=True,
    ):
        torch.testing.assert_close(mine, theirs)
