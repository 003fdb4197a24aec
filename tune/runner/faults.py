"""Fault injection for the reliability tests, switched on only by an environment variable.

``JOYFUL_TUNE_FAULT`` holds a JSON object, or a list of them (each acts on its own), or ``@path`` of
a file holding that JSON (read at every hook, so a test can change the faults of a running cluster
whose nodes were started with the variable), e.g.::

    {"kind": "raise", "epoch": 3, "times": 1, "state_dir": "/tmp/faults"}
    {"kind": "nan", "epoch": 2, "trial": 2}
    {"kind": "sleep", "epoch": 1, "seconds": 30, "match": {"fusion": "autofusion"}}

* ``raise``: raise :class:`InjectedFault` after that epoch's checkpoint is reported, at most
  ``times`` times over all retries (counted with marker files in ``state_dir``, which outlives the
  trial's actor);
* ``nan``: from that epoch on the loss weights become infinite, so the Coach's real non-finite check
  trips;
* ``sleep``: stall after that epoch for ``seconds`` (gives a test time to kill something); with
  ``state_dir``, at most ``times`` times, as ``raise``;
* ``hog``: hold ``megabytes`` of memory after that epoch and stall for ``seconds`` (Ray's memory
  monitor then kills the worker); at most ``times`` times per ``state_dir``;
* ``kill``: SIGKILL the worker after that epoch (a node or process lost); at most ``times`` times
  per ``state_dir``.

``match`` (optional) limits a fault to trials whose sampled parameters have those values (a
cross-validated trial adds ``fold``; a confirmation run has ``confirmation: true``,
``config_index``, ``seed`` and ``fold``); ``trial`` (optional) to the trial with that number (1 =
the first trial created, the baseline; Ray's trial folder name carries it, and a retried or resumed
trial keeps it). Without the variable, every hook here returns at once."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from tune.runner.trial_names import trial_number

ENV_VAR = "JOYFUL_TUNE_FAULT"
KINDS = ("raise", "nan", "sleep", "hog", "kill")


_HELD: list[bytearray] = []  # memory a `hog` fault holds until its process dies


class InjectedFault(RuntimeError):
    """The failure a test asked for."""


def _specs() -> list[dict[str, Any]]:
    raw = os.environ.get(ENV_VAR)
    if raw and raw.startswith("@"):
        path = Path(raw[1:])
        raw = path.read_text() if path.exists() else ""
    if not raw or not raw.strip():
        return []
    specs = json.loads(raw)
    specs = specs if isinstance(specs, list) else [specs]
    for spec in specs:
        if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
            raise ValueError(
                f"{ENV_VAR}: each fault must be an object with kind one of {', '.join(KINDS)}, got "
                f"{spec!r}"
            )
    return specs


def _trial_number() -> int | None:
    """This trial's creation number in its experiment."""
    from ray import tune

    context = tune.get_context()
    return trial_number(Path(context.get_trial_dir()).name, context.get_trial_id())


def _matches(spec: dict[str, Any], config: dict[str, Any]) -> bool:
    if not all(config.get(k) == v for k, v in spec.get("match", {}).items()):
        return False
    return "trial" not in spec or _trial_number() == int(spec["trial"])


def after_epoch(epoch: int, config: dict[str, Any], coach: Any) -> None:
    """Called by the trainable after each epoch has been reported (and once after start or
    restore)."""
    for spec in _specs():
        if _matches(spec, config):
            _inject(spec, epoch, coach)


def _inject(spec: dict[str, Any], epoch: int, coach: Any) -> None:
    kind, at = spec["kind"], int(spec.get("epoch", 1))
    if kind == "raise" and epoch == at and _take_turn(spec):
        raise InjectedFault(f"injected failure after epoch {epoch}")
    elif kind == "nan" and epoch >= at - 1:
        # Weights of inf make the next total loss non-finite through the real code path.
        coach.weights = _infinite_weights()
    elif kind == "sleep" and epoch == at and ("state_dir" not in spec or _take_turn(spec)):
        time.sleep(float(spec.get("seconds", 30)))
    elif kind == "hog" and epoch == at and _take_turn(spec):
        _HELD.append(
            bytearray(int(spec.get("megabytes", 1024)) * 2**20)
        )  # bytearray touches every page
        time.sleep(float(spec.get("seconds", 30)))
    elif kind == "kill" and epoch == at and _take_turn(spec):
        os.kill(os.getpid(), signal.SIGKILL)


def _take_turn(spec: dict[str, Any]) -> bool:
    """Whether the fault may fire again: at most `times` times per `state_dir`, over all actors."""
    state = Path(spec["state_dir"])
    state.mkdir(parents=True, exist_ok=True)
    for turn in range(int(spec.get("times", 1))):
        try:  # O_EXCL: two actors racing for the same turn cannot both get it
            os.close(os.open(state / f"fired-{turn}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue
        return True
    return False


def _infinite_weights() -> Any:
    """Loss weights with an infinite reconstruction weight: what no config would pass, on
    purpose."""
    from types import SimpleNamespace

    return SimpleNamespace(encoder_loss_weight=math.inf, cl_loss_weight=0.2, gate_reg_weight=0.01)
