"""Fault injection for the reliability tests, switched on only by an environment variable.

``JOYFUL_TUNE_FAULT`` holds a JSON object, for example::

    {"kind": "raise", "epoch": 3, "times": 1, "state_dir": "/tmp/faults"}
    {"kind": "nan", "epoch": 2}
    {"kind": "sleep", "epoch": 1, "seconds": 30}

* ``raise``: raise :class:`InjectedFault` after that epoch's checkpoint is
  reported, at most ``times`` times over all retries (counted with marker files
  in ``state_dir``, which survives the trial's actor);
* ``nan``: from that epoch on the loss weights become infinite, so the Coach's
  real non-finite check trips;
* ``sleep``: stall after that epoch (gives a test time to kill something).

``match`` (optional) limits the fault to trials whose config has those values.
Without the variable, every hook here returns at once.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joyful.loss_utils import LossWeightConfig

ENV_VAR = "JOYFUL_TUNE_FAULT"


class InjectedFault(RuntimeError):
    """The failure a test asked for."""


def _spec() -> dict[str, Any] | None:
    raw = os.environ.get(ENV_VAR)
    return json.loads(raw) if raw else None


def _matches(spec: dict[str, Any], config: dict[str, Any]) -> bool:
    return all(config.get(k) == v for k, v in spec.get("match", {}).items())


def after_epoch(epoch: int, config: dict[str, Any], coach: Any) -> None:
    """Called by the trainable after each epoch has been reported."""
    spec = _spec()
    if spec is None or not _matches(spec, config):
        return
    kind, at = spec["kind"], int(spec.get("epoch", 1))
    if kind == "raise" and epoch == at:
        state = Path(spec["state_dir"])
        state.mkdir(parents=True, exist_ok=True)
        if len(list(state.glob("raised-*"))) < int(spec.get("times", 1)):
            (state / f"raised-{uuid.uuid4().hex}").touch()
            raise InjectedFault(f"injected failure after epoch {epoch}")
    elif kind == "nan" and epoch >= at - 1:
        # Weights of inf make the next total loss non-finite through the real code path.
        coach.weights = _infinite_weights()
    elif kind == "sleep" and epoch == at:
        time.sleep(float(spec.get("seconds", 30)))


def _infinite_weights() -> Any:
    weights = LossWeightConfig()
    weights.encoder_loss_weight = math.inf  # bypasses validation on purpose: this is the injected fault
    return weights
