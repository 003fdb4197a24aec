"""JOYFUL for emotion recognition in conversation: vectorised, tested, tunable.

Nothing here imports ray or optuna; the tuning service (`tune/`) plugs into
:class:`Coach` through its per-epoch callbacks. The public names are imported
lazily, so `import joyful.config` does not pay for torch_geometric.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "JOYFUL": "joyful.model",
    "AutoFusion": "joyful.model",
    "AutoFusion_Hierarchical": "joyful.model",
    "build_model": "joyful.model",
    "Coach": "joyful.coach",
    "JoyfulConfig": "joyful.config",
    "create_reconstruction_loss": "joyful.loss_utils",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'joyful' has no attribute {name!r}")
