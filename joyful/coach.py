"""The training loop. It knows nothing about tuning: the outside plugs in through callbacks.

Selection uses dev weighted F1 only; the test set is evaluated once, at the
end, with the best-dev state restored.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from joyful.config import JoyfulConfig
from joyful.data.batching import DialogueLoader
from joyful.data.dialogues import DialogueData
from joyful.data.scaling import FeatureScaler
from joyful.loss_utils import LossWeightConfig, compute_training_loss
from joyful.metrics import accuracy, per_class_report, weighted_f1


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the step was not applied."""

    def __init__(self, epoch: int, parts: dict[str, float]) -> None:
        bad = ", ".join(f"{k}={v}" for k, v in parts.items() if not math.isfinite(v))
        super().__init__(f"non-finite training loss at epoch {epoch} ({bad}); lower --learning_rate or the loss weights")
        self.epoch = epoch


# A callback sees each finished epoch; returning True stops training after it.
EpochCallback = Callable[[dict[str, Any], "Coach"], "bool | None"]


@dataclass
class EvalResult:
    loss: float  # mean NLL per utterance
    weighted_f1: float
    accuracy: float
    labels: np.ndarray = field(repr=False)
    predictions: np.ndarray = field(repr=False)


class Coach:
    def __init__(self, model: nn.Module, config: JoyfulConfig, data: DialogueData, device: torch.device, *,
                 callbacks: list[EpochCallback] | tuple = (), keep_best_state: bool = True,
                 progress: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.model, self.config, self.data, self.device = model.to(device), config, data, device
        self.callbacks = list(callbacks)
        self.keep_best_state = keep_best_state
        self.progress = progress
        self.log = log or (lambda message: None)
        self.weights = LossWeightConfig.from_args(config)
        self.shuffle_generator = torch.Generator().manual_seed(config.seed)
        # Train statistics only: dev and test are scaled with them, never fitted on.
        self.scaler = FeatureScaler.fit(data.splits["train"], config.modalities, config.feature_norm)
        loader_args = dict(modalities=config.modalities, n_speakers=data.spec.n_speakers,
                           batch_size=config.batch_size, wp=config.wp, wf=config.wf, device=device,
                           scaler=self.scaler)
        self.loaders = {
            "train": DialogueLoader(data.splits["train"], shuffle=True, generator=self.shuffle_generator, **loader_args),
            "dev": DialogueLoader(data.splits["dev"], shuffle=False, **loader_args),
            "test": DialogueLoader(data.splits["test"], shuffle=False, **loader_args),
        }
        self.nll = nn.NLLLoss(weight=self._class_weights())
        self.optimizer = self._build_optimizer()
        self.scheduler = self._build_scheduler()
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_dev_f1 = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None

    # --- construction ---------------------------------------------------
    def _class_weights(self) -> torch.Tensor | None:
        if not self.config.class_weight:
            return None
        counts = self.data.label_counts("train").astype(np.float64)
        share = counts / counts.sum()
        # Inverse frequency (1/p), as the original's tables; absent classes get no weight.
        weights = np.divide(1.0, share, out=np.zeros_like(share), where=share > 0)
        return torch.tensor(weights, dtype=torch.float32, device=self.device)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        gate_params = list(getattr(self.model.fusion, "gate_parameters", lambda: [])())
        gate_ids = {id(p) for p in gate_params}
        groups = [{"params": [p for p in self.model.parameters() if id(p) not in gate_ids], "lr": config.learning_rate}]
        if gate_params:
            groups.append({"params": gate_params, "lr": config.learning_rate * config.gate_lr_scale})
        if config.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        return optimizer(groups, lr=config.learning_rate, weight_decay=config.weight_decay)

    def _build_scheduler(self) -> Any:
        if self.config.scheduler == "reduceLR":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="min",
                                                              patience=self.config.scheduler_patience, min_lr=3e-10)
        if self.config.scheduler == "expLR":
            return torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.95)
        return None

    def autocast(self) -> torch.autocast:
        """bf16 mixed precision when --precision bf16 (losses and the self-pooling stay float32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.precision == "bf16")

    # --- one epoch --------------------------------------------------------
    def train_epoch(self) -> dict[str, Any]:
        self.model.train()
        loader = self.loaders["train"]
        sums: dict[str, float] = {}
        gate_sums: dict[str, float] = {}
        start = time.perf_counter()
        for index, batch in enumerate(loader):
            self.optimizer.zero_grad(set_to_none=True)
            with self.autocast():
                output = self.model(batch, contrast=True)
            nll = self.nll(output.log_probs.float(), batch.labels)  # float32 also under bf16 autocast
            total, parts = compute_training_loss(nll, output.contrastive, output.reconstruction, output.gate_reg,
                                                 self.weights)
            if not math.isfinite(parts["total"]):
                raise NonFiniteLossError(self.epoch + 1, parts)
            total.backward()
            if self.config.max_grad_value > 0:
                nn.utils.clip_grad_value_(self.model.parameters(), self.config.max_grad_value)
            self.optimizer.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            for key, value in output.gate_means.items():
                gate_sums[key] = gate_sums.get(key, 0.0) + float(value)
            if self.progress:
                print(f"\r  epoch {self.epoch + 1}/{self.config.epochs}  batch {index + 1}/{len(loader)}",
                      end="", file=sys.stderr, flush=True)
        if self.progress:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        n_batches = len(loader)
        return {
            "train_loss": {k: v / n_batches for k, v in sums.items()},
            "gates": {k: v / n_batches for k, v in gate_sums.items()},
            "train_seconds": seconds,
            "train_utterances_per_s": loader.num_utterances / seconds,
        }

    @torch.no_grad()
    def evaluate(self, split: str) -> EvalResult:
        """One forward pass per batch gives both predictions and the NLL (no second pass)."""
        self.model.eval()
        losses, labels, predictions = [], [], []
        for batch in self.loaders[split]:
            with self.autocast():
                log_probs = self.model(batch, contrast=False, reconstruct=False).log_probs.float()
            losses.append(float(self.nll(log_probs, batch.labels)) * batch.num_utterances)
            labels.append(batch.labels.cpu())
            predictions.append(log_probs.argmax(dim=1).cpu())
        y, p = torch.cat(labels).numpy(), torch.cat(predictions).numpy()
        return EvalResult(sum(losses) / len(y), weighted_f1(y, p), accuracy(y, p), y, p)

    # --- the loop -----------------------------------------------------------
    def fit(self, evaluate_test: bool = True) -> dict[str, Any]:
        """Train up to `config.epochs` (continuing after a restored epoch) and summarise the run."""
        started = time.perf_counter()
        while self.epoch < self.config.epochs:
            record = self.train_epoch()
            dev = self.evaluate("dev")
            self.epoch += 1
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(dev.loss)
            elif self.scheduler is not None:
                self.scheduler.step()
            improved = dev.weighted_f1 > self.best_dev_f1  # strictly greater, as the original
            if improved:
                self.best_dev_f1, self.best_epoch = dev.weighted_f1, self.epoch
                if self.keep_best_state:
                    self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            record = {"epoch": self.epoch, **record, "dev_loss": dev.loss, "dev_weighted_f1": dev.weighted_f1,
                      "dev_accuracy": dev.accuracy, "lr": self.optimizer.param_groups[0]["lr"], "improved": improved}
            self.history.append(record)
            self.log(f"epoch {self.epoch:3d}  train loss {record['train_loss']['total']:.4f}  "
                     f"dev loss {dev.loss:.4f}  dev wF1 {dev.weighted_f1:.4f}  acc {dev.accuracy:.4f}"
                     f"{'  *' if improved else ''}  ({record['train_utterances_per_s']:.0f} utt/s)")
            if any([callback(record, self) for callback in self.callbacks]):
                break
        summary = self.summary()
        if evaluate_test:
            summary["test"] = self.evaluate_test()
        summary["wall_seconds"] = time.perf_counter() - started
        return summary

    def evaluate_test(self) -> dict[str, Any]:
        """Restore the best-dev state and evaluate the test set (once per run)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        test = self.evaluate("test")
        return {"weighted_f1": test.weighted_f1, "accuracy": test.accuracy, "loss": test.loss,
                "report": per_class_report(test.labels, test.predictions, self.data.spec.label_names)}

    def summary(self) -> dict[str, Any]:
        best = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        return {"epochs_run": self.epoch, "best_epoch": self.best_epoch, "best_dev_weighted_f1": self.best_dev_f1,
                "best_dev_accuracy": best["dev_accuracy"] if best else None, "feature_scaling": self.scaler.summary(),
                "history": self.history}

    # --- checkpoints --------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: weights, optimizer, scheduler, RNG, history."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "history": copy.deepcopy(self.history),
            "best_dev_f1": self.best_dev_f1,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "feature_scaler": self.scaler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "shuffle": self.shuffle_generator.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any], where: str = "the checkpoint") -> None:
        self.scaler.check_state(state.get("feature_scaler"), where)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.history = list(state["history"])
        self.best_dev_f1, self.best_epoch = state["best_dev_f1"], state["best_epoch"]
        self.best_state = state.get("best_state")
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.shuffle_generator.set_state(state["rng"]["shuffle"])
