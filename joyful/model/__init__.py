"""JOYFUL's modules; :func:`build_model` is the only place that reads the config."""

from joyful.model.builder import build_model
from joyful.model.fusion import AutoFusion
from joyful.model.hierarchical_fusion import AutoFusion_Hierarchical
from joyful.model.joyful_model import JOYFUL, ModelOutput

__all__ = ["AutoFusion", "AutoFusion_Hierarchical", "JOYFUL", "ModelOutput", "build_model"]
