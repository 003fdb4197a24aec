"""Checkpoints: state_dicts plus the resolved config, never pickled modules.

Loaded with ``weights_only=True``, so a checkpoint file cannot run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from joyful.config import JoyfulConfig
from joyful.errors import UserError
from joyful.io import atomic_write

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, config: JoyfulConfig, coach_state: dict[str, Any]) -> Path:
    payload = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(), "coach": coach_state}
    return atomic_write(path, lambda out: torch.save(payload, out), binary=True)


def safe_load(path: str | Path, what: str, map_location: str | torch.device = "cpu") -> Any:
    """The tensors and plain values saved at `path`, read with torch's weights-only unpickler (never
    code); a missing, corrupt or unsafe file is one UserError naming `what` ("checkpoint", "model
    file")."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{what} {path} does not exist") from None
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise UserError(
            f"{what} {path} cannot be loaded safely ({type(exc).__name__}: {str(exc)[:200]})"
        ) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    payload = safe_load(path, "checkpoint", map_location)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(
            f"checkpoint {path} is not a joyful-tune checkpoint (format {CHECKPOINT_FORMAT})"
        )
    return payload
