"""Averaged weights: a running average of the model that training produces, evaluated in its place.

Dev scores of a single epoch's weights wander from epoch to epoch (on MELD by ±0.03–0.05 after
epoch 4–6, docs/MELD_EVIDENCE.md), so the best-dev epoch is often a spike that does not transfer to
test. An average of the weights along the trajectory smooths that walk:

* ``ema``: exponential moving average over optimizer steps with decay ``ema_decay`` (a window of
  about ``1 / (1 - ema_decay)`` steps), bias-corrected as Adam's moments are: after n steps the
  weights of step k count ``(1 - d) d^(n-k) / (1 - d^n)``, so the average is a proper weighted mean
  from the first step on and the initial weights never dominate it.
* ``swa``: the uniform average of the weights at the end of every epoch from ``swa_start`` on
  (stochastic weight averaging at the training learning rate); before that epoch it follows the
  trained weights.

Every floating-point tensor of the state (parameters, and buffers such as BatchNorm's running
statistics) is averaged; integer buffers (``num_batches_tracked``) are copied. With SWA the Coach
then recomputes the BatchNorm statistics of the averaged weights from a pass over train (as
`torch.optim.swa_utils.update_bn`): an average of the epochs' statistics does not describe them. The
average lives in a copy of the model on the same device, which is what `Coach` evaluates, selects,
checkpoints and tests when averaging is on.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

__all__ = ["AVERAGING_MODES", "WeightAverage"]

AVERAGING_MODES = ("none", "ema", "swa")


class WeightAverage:
    """The averaged copy of `model` (`mode` ema or swa) and the rule that updates it."""

    def __init__(
        self, model: nn.Module, mode: str, *, ema_decay: float = 0.999, swa_start: int = 1
    ) -> None:
        if mode not in AVERAGING_MODES[1:]:
            raise ValueError(
                f"weight averaging mode is {mode!r}, but must be one of: "
                f"{', '.join(AVERAGING_MODES[1:])}"
            )
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay is {ema_decay}, but must be in (0, 1)")
        if swa_start < 1:
            raise ValueError(f"swa_start is {swa_start}, but must be >= 1")
        self.mode, self.ema_decay, self.swa_start = mode, ema_decay, swa_start
        self.model = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.updates = 0  # how many states the average holds

    # --- updating -----------------------------------------------------------------------------
    def after_step(self, model: nn.Module) -> None:
        """Called after every optimizer step."""
        if self.mode == "ema":
            # Bias correction: the n-th state gets weight (1 - d) / (1 - d^n); the first is copied.
            n = self.updates + 1
            self._blend(model, (1.0 - self.ema_decay) / (1.0 - self.ema_decay**n))

    def after_epoch(self, model: nn.Module, epoch: int) -> None:
        """Called once an epoch's training steps are done (`epoch` counts from 1)."""
        if self.mode != "swa":
            return
        if epoch < self.swa_start:
            self._blend(model, 1.0)  # not averaging yet: follow the trained weights
            self.updates = 0
        else:
            self._blend(model, 1.0 / (self.updates + 1))  # running mean of the epoch-end states

    @torch.no_grad()
    def _blend(self, model: nn.Module, weight: float) -> None:
        """average <- average + weight * (current - average) for floating tensors; integers are
        copied."""
        averaged, current = self._floating(self.model), self._floating(model)
        if weight >= 1.0:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, weight)
        for mine, theirs in zip(self._integer(self.model), self._integer(model), strict=True):
            mine.copy_(theirs)
        self.updates += 1

    @staticmethod
    def _floating(model: nn.Module) -> list[torch.Tensor]:
        return [t for t in _state_tensors(model) if t.is_floating_point()]

    @staticmethod
    def _integer(model: nn.Module) -> list[torch.Tensor]:
        return [t for t in _state_tensors(model) if not t.is_floating_point()]

    # --- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "updates": self.updates,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("mode") != self.mode:
            raise ValueError(
                f"the checkpoint averages weights by {state.get('mode')!r}, this run by "
                f"{self.mode!r}"
            )
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def _state_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, in registration order (the same order for a model and its copy)."""
    return [*(p.data for p in model.parameters()), *model.buffers()]
