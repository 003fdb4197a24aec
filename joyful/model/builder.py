"""Build a JOYFUL model from the config and the widths read from the data."""

from __future__ import annotations

from joyful.config import JoyfulConfig
from joyful.datasets import DatasetSpec
from joyful.errors import UserError
from joyful.graph import num_relations
from joyful.loss_utils import create_reconstruction_loss
from joyful.model.classifier import Classifier
from joyful.model.fusion import AutoFusion
from joyful.model.gnn import DialogueGNN
from joyful.model.hierarchical_fusion import AutoFusion_Hierarchical
from joyful.model.joyful_model import JOYFUL
from joyful.model.seq_context import SeqContext, default_num_heads

FUSION_MODULES = {"autofusion": AutoFusion, "hierarchical": AutoFusion_Hierarchical}


def build_model(config: JoyfulConfig, modality_dims: dict[str, int], spec: DatasetSpec) -> JOYFUL:
    """`modality_dims` maps each requested modality letter to its width in the data."""
    # SmoothL1 exists only in the hierarchical module (the extension's design): AutoFusion keeps
    # MSE.
    use_smooth_l1 = config.fusion == "hierarchical" and config.reconstruction_loss == "smooth_l1"
    criterion = create_reconstruction_loss(use_smooth_l1, reduction="none")
    fusion = FUSION_MODULES[config.fusion](
        modality_dims,
        config.fusion_pool_dim,
        config.fusion_hidden,
        config.fusion_latent,
        config.self_pool_chunk,
        criterion,
    )
    heads = config.seqcontext_nhead or default_num_heads(fusion.output_dim)
    if config.rnn == "transformer" and fusion.output_dim % heads:
        raise UserError(
            f"--seqcontext_nhead {heads} must divide the fused width {fusion.output_dim}"
        )
    seq_context = SeqContext(
        fusion.output_dim,
        config.hidden_size,
        config.rnn,
        config.seqcontext_nlayer,
        heads,
        config.drop_rate,
    )
    gnn = DialogueGNN(
        seq_context.out_dim,
        config.hidden_size,
        num_relations(spec.n_speakers),
        config.gnn_nheads,
        spec.n_speakers,
        config.feature_mask_rate,
        config.edge_perturb_rate,
        config.contrastive_temperature,
    )
    classifier_in = gnn.out_dim + (seq_context.out_dim if config.concat_gin_gout else 0)
    classifier = Classifier(
        classifier_in, config.hidden_size, spec.n_classes, config.drop_rate, config.use_highway
    )
    return JOYFUL(fusion, seq_context, gnn, classifier, config.concat_gin_gout)
