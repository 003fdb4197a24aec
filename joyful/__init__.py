"""JOYFUL for emotion recognition in conversation: vectorised, tested, tunable.

Nothing here imports ray or optuna; the tuning service (`tune/`) plugs into
:class:`Coach` through its per-epoch callbacks.
"""

from joyful.coach import Coach
from joyful.config import JoyfulConfig
from joyful.loss_utils import LossWeightConfig, create_reconstruction_loss
from joyful.model import JOYFUL, AutoFusion, AutoFusion_Hierarchical, build_model

__all__ = ["JOYFUL", "AutoFusion", "AutoFusion_Hierarchical", "Coach", "JoyfulConfig", "LossWeightConfig",
           "build_model", "create_reconstruction_loss"]
__version__ = "0.1.0"
