"""The whole JOYFUL model: fusion -> sequence context -> dialogue graph -> classifier."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from joyful.data.batching import Batch
from joyful.model.classifier import Classifier
from joyful.model.gnn import DialogueGNN
from joyful.model.seq_context import DialogueLayout, SeqContext


@dataclass
class ModelOutput:
    log_probs: Tensor  # (N, C)
    reconstruction: Tensor  # scalar: mean over dialogues of summed utterance losses
    contrastive: Tensor  # scalar (0 without augmentation)
    gate_reg: Tensor | None  # scalar, hierarchical fusion only
    gate_means: dict[str, Tensor] = field(default_factory=dict)


class JOYFUL(nn.Module):
    def __init__(
        self,
        fusion: nn.Module,
        seq_context: SeqContext,
        gnn: DialogueGNN,
        classifier: Classifier,
        concat_gin_gout: bool,
    ) -> None:
        super().__init__()
        self.fusion = fusion
        self.seq_context = seq_context
        self.gnn = gnn
        self.classifier = classifier
        self.concat_gin_gout = concat_gin_gout

    def forward(self, batch: Batch, contrast: bool, reconstruct: bool = True) -> ModelOutput:
        """`contrast`: compute the contrastive loss (training); `reconstruct`: the fusion's
        reconstruction loss (evaluation reports neither, and skips the decoders)."""
        fused = self.fusion(batch.features, reconstruct=reconstruct)
        n_dialogues = len(batch.lengths)
        layout = DialogueLayout.of(batch.dialogue_index, batch.position, batch.lengths)
        nodes = self.seq_context(fused.fused, layout)  # (N, g)
        graph_out, contrastive = self.gnn(
            nodes,
            batch.edge_index,
            batch.edge_type,
            batch.speakers,
            batch.dialogue_index,
            batch.lengths,
            contrast,
        )
        if self.concat_gin_gout:
            graph_out = torch.cat([nodes, graph_out], dim=1)
        # Every dialogue counts; a dialogue's loss is the sum over its utterances (original scale).
        reconstruction = fused.reconstruction.sum() / n_dialogues
        return ModelOutput(
            self.classifier(graph_out),
            reconstruction,
            contrastive,
            fused.gate_reg,
            fused.gate_means,
        )
