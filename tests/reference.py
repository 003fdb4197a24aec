"""Slow, obviously-correct reference implementations, one utterance (or one edge) at a time.

They mirror the original JOYFUL code (docs: ``shared/reference/joyful_architecture.md``
§3.1, §3.3, §3.4, §5.1) with plain torch ops and Python loops, and read the
parameters of the fast modules they are compared with. The tests compare the
vectorised package against them on tiny inputs; the benchmarks import them to
time the original per-utterance fusion path.

    fused, losses = reference_autofusion(model.fusion, batch.features)
    with use_reference_fusion(model):       # the whole model, per-utterance fusion
        output = model(batch, contrast=True)
    with use_reference_path(model):         # ... and the sequence context on the padded grid
        output = model(batch, contrast=True)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from joyful.data.batching import Batch
from joyful.model.fusion import AutoFusion, FusionOutput
from joyful.model.hierarchical_fusion import AutoFusion_Hierarchical
from joyful.model.joyful_model import JOYFUL, ModelOutput
from joyful.model.seq_context import DialogueLayout, SeqContext

__all__ = [
    "reference_autofusion",
    "reference_hierarchical",
    "reference_fusion_output",
    "use_reference_fusion",
    "use_reference_path",
    "reference_seq_context",
    "reference_forward_fusion",
    "reference_self_pool",
    "reference_edges",
    "reference_infonce",
]


# --- building blocks ------------------------------------------------------------------


def _linear(layer: nn.Linear, x: Tensor) -> Tensor:
    return F.linear(x, layer.weight, layer.bias)


def _encode(seq: nn.Sequential, x: Tensor) -> Tensor:
    """JOYFUL encoder: Linear, Tanh, Linear, ReLU (layers 0 and 2 of the Sequential)."""
    return torch.relu(_linear(seq[2], torch.tanh(_linear(seq[0], x))))


def _decode(seq: nn.Sequential, z: Tensor) -> Tensor:
    """JOYFUL decoder: Linear, Tanh, Linear."""
    return _linear(seq[2], torch.tanh(_linear(seq[0], z)))


def _clamp01(x: Tensor) -> Tensor:
    """Hardtanh(0, 1) of the original gates."""
    return torch.clamp(x, 0.0, 1.0)


def reference_self_pool(x: Tensor, query: Tensor) -> Tensor:
    """One utterance x (P,), query b (P,): y_i = sum_j softmax_j(b_i x_j) x_j via a P x P matrix."""
    scores = query[:, None] * x[None, :]  # (P, P): scores[i, j] = b_i * x_j
    return torch.softmax(scores, dim=1) @ x  # (P,)


def _criterion(module: nn.Module) -> str:
    if isinstance(module.criterion, nn.SmoothL1Loss):
        return "smooth_l1"
    if isinstance(module.criterion, nn.MSELoss):
        return "mse"
    raise TypeError(f"no reference for criterion {type(module.criterion).__name__}")


def _reconstruction(kind: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Mean-reduced loss of one utterance (a scalar), as the original's nn.MSELoss()/SmoothL1Loss()."""
    if kind == "smooth_l1":
        return F.smooth_l1_loss(prediction, target, reduction="mean", beta=1.0)
    return F.mse_loss(prediction, target, reduction="mean")


def _inter_branch(inter: nn.Module, rows: dict[str, Tensor], kind: str) -> tuple[Tensor, Tensor]:
    """The inter-modal branch of one utterance: (latent,) and its scalar reconstruction loss."""
    ones = torch.ones(
        inter.pool_query.in_features,
        dtype=inter.pool_query.weight.dtype,
        device=inter.pool_query.weight.device,
    )
    query = _linear(inter.pool_query, ones)  # (P,): P_b applied to the all-ones vector
    pooled = [
        reference_self_pool(_linear(inter.projections[m], rows[m]), query) for m in inter.modalities
    ]
    inter_in = torch.cat(pooled)  # (P * M,)
    latent = _encode(inter.encoder, inter_in)
    return latent, _reconstruction(kind, _decode(inter.decoder, latent), inter_in)


# --- fusion modules -----------------------------------------------------------------------


def reference_autofusion(module: AutoFusion, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Original AutoFusion (§3.1), one utterance at a time, with `module`'s parameters.

    features: letter -> (N, d_m). Returns the fused vectors (N, 2 * latent) and the
    per-utterance loss L_g + L_i (N,). The loss is MSE, as in the original module
    (it had no other criterion).
    """
    n = next(iter(features.values())).shape[0]
    fused, losses = [], []
    for u in range(n):
        rows = {m: features[m][u] for m in module.modalities}
        global_in = torch.cat([rows[m] for m in module.modalities])  # (sum d_m,)
        z_global = _encode(module.global_encoder, global_in)
        loss_global = _reconstruction("mse", _decode(module.global_decoder, z_global), global_in)
        z_inter, loss_inter = _inter_branch(module.inter, rows, "mse")
        fused.append(torch.cat([z_global, z_inter]))
        losses.append(loss_global + loss_inter)
    return torch.stack(fused), torch.stack(losses)


def reference_hierarchical(
    module: AutoFusion_Hierarchical, features: dict[str, Tensor]
) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """The user's AutoFusion_Hierarchical (§5.1), one utterance at a time, with `module`'s parameters.

    Returns fused (N, 2 * latent), the per-utterance loss L_g + L_i (N,) with the
    module's criterion (MSE or SmoothL1), gate_reg (scalar: the mean over every
    utterance's gate entries of (g - 0.5)^2, summed over the temporal, forget and
    input gates) and the mean value of each gate (utterance, temporal, forget, input).
    """
    kind = _criterion(module)
    n = next(iter(features.values())).shape[0]
    ugate, dgate = module.utterance_gate, module.dialogue_gate
    state = dgate.state  # (latent,) the learned `global_emotion_state`
    fused, losses = [], []
    gate_sums = {"utterance": 0.0, "temporal": 0.0, "forget": 0.0, "input": 0.0}
    reg_sums = {"temporal": 0.0, "forget": 0.0, "input": 0.0}
    for u in range(n):
        rows = {m: features[m][u] for m in module.modalities}
        global_in = torch.cat([rows[m] for m in module.modalities])
        gate = _clamp01(_linear(ugate.gate, global_in))  # (latent,)
        z_global = gate * _encode(ugate.encoder, global_in)
        query = torch.cat([z_global, state])  # (2 * latent,)
        gates = {
            "temporal": _clamp01(_linear(dgate.temporal, query)),
            "forget": _clamp01(_linear(dgate.forget, query)),
            "input": _clamp01(_linear(dgate.input, query)),
        }
        memory = gates["temporal"] * (gates["forget"] * state + gates["input"] * z_global)
        loss_global = _reconstruction(kind, _decode(dgate.decoder, memory), global_in)
        z_inter, loss_inter = _inter_branch(module.inter, rows, kind)
        fused.append(torch.cat([z_global, z_inter]))
        losses.append(loss_global + loss_inter)
        gate_sums["utterance"] = gate_sums["utterance"] + gate.mean()
        for name, g in gates.items():
            gate_sums[name] = gate_sums[name] + g.mean()
            reg_sums[name] = reg_sums[name] + ((g - 0.5) ** 2).mean()
    # Every utterance has the same number of gate entries, so the mean of the
    # per-utterance means is the mean over all entries.
    gate_reg = sum(reg_sums.values()) / n
    gate_means = {name: (total / n).detach() for name, total in gate_sums.items()}
    return torch.stack(fused), torch.stack(losses), gate_reg, gate_means


def reference_fusion_output(module: nn.Module, features: dict[str, Tensor]) -> FusionOutput:
    """The per-utterance reference of either fusion module, as the module's own output type."""
    if isinstance(module, AutoFusion_Hierarchical):
        fused, losses, gate_reg, means = reference_hierarchical(module, features)
        return FusionOutput(fused, losses, gate_reg, means)
    if isinstance(module, AutoFusion):
        fused, losses = reference_autofusion(module, features)
        return FusionOutput(fused, losses)
    raise TypeError(f"no reference for fusion module {type(module).__name__}")


@contextmanager
def use_reference_fusion(model: JOYFUL) -> Iterator[JOYFUL]:
    """Inside the block, `model.fusion` runs the per-utterance reference (autograd included)."""
    fusion = model.fusion
    if "forward" in vars(fusion):
        raise RuntimeError("model.fusion.forward is already replaced")
    # The original computed the reconstruction in evaluation too, so the reference always does.
    fusion.forward = lambda features, reconstruct=True: reference_fusion_output(fusion, features)
    try:
        yield model
    finally:
        del fusion.forward


def reference_seq_context(module: SeqContext, rows: Tensor, layout: DialogueLayout) -> Tensor:
    """The sequence context computed on the whole padded grid, as the original did (plus the
    key-padding mask): `nn.TransformerEncoder`'s own forward, padding rows included."""
    if module.kind != "transformer":
        return SeqContext.forward(module, rows, layout)  # the RNNs already run on the padded grid
    grid = layout.pad(rows)
    return layout.unpad(
        module.output(module.encoder(grid, src_key_padding_mask=layout.padding_mask))
    )


@contextmanager
def use_reference_path(model: JOYFUL) -> Iterator[JOYFUL]:
    """Per-utterance fusion and the padded-grid sequence context: the original's computation."""
    seq_context = model.seq_context
    if "forward" in vars(seq_context):
        raise RuntimeError("model.seq_context.forward is already replaced")
    seq_context.forward = lambda rows, layout: reference_seq_context(seq_context, rows, layout)
    try:
        with use_reference_fusion(model):
            yield model
    finally:
        del seq_context.forward


def reference_forward_fusion(
    model: JOYFUL, batch: Batch, contrast: bool | None = None
) -> ModelOutput:
    """One forward pass of the whole model with the per-utterance reference fusion.

    `contrast` defaults to `model.training` (what the Coach passes). Gradients flow
    through the reference loop, so it can be timed in a training step.
    """
    with use_reference_fusion(model):
        return model(batch, contrast=model.training if contrast is None else contrast)


# --- graph and contrastive loss -----------------------------------------------------------


def reference_edges(
    lengths: list[int] | Tensor, speakers: list[int] | Tensor, n_speakers: int, wp: int, wf: int
) -> set[tuple[int, int, int]]:
    """Original `batch_graphify` edges (§3.3) as {(source j, target k, relation type)}, global node ids.

    Dialogues lie back to back; j links to k when j - wp <= k <= j + wf inside its
    dialogue (self-loop included; -1 = unbounded); type = 2 (spk_j S + spk_k) + (0 if j < k else 1).
    """
    lengths = [int(x) for x in lengths]
    speakers = [int(x) for x in speakers]
    edges = set()
    offset = 0
    for length in lengths:
        for j in range(length):
            for k in range(length):
                if wp != -1 and k < j - wp:
                    continue
                if wf != -1 and k > j + wf:
                    continue
                s_j, s_k = speakers[offset + j], speakers[offset + k]
                edge_type = 2 * (s_j * n_speakers + s_k) + (0 if j < k else 1)
                edges.add((offset + j, offset + k, edge_type))
        offset += length
    return edges


def reference_infonce(u: Tensor, w: Tensor, temperature: float) -> Tensor:
    """PyGCL DualBranchContrast(InfoNCE, 'L2L', intraview_negs=True) on (N, d) embeddings, node by node."""

    def one_way(a: Tensor, b: Tensor) -> Tensor:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        total = 0.0
        for i in range(len(a)):
            positive = torch.exp(torch.dot(a[i], b[i]) / temperature)
            inter = sum(torch.exp(torch.dot(a[i], b[j]) / temperature) for j in range(len(a)))
            intra = sum(
                torch.exp(torch.dot(a[i], a[j]) / temperature) for j in range(len(a)) if j != i
            )
            total = total - torch.log(positive / (inter + intra))
        return total / len(a)

    return 0.5 * (one_way(u, w) + one_way(w, u))
