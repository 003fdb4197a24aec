"""The training loop. It knows nothing about tuning: the outside plugs in through callbacks.

Selection uses dev weighted F1 only; the test set is evaluated once, at the
end, with the best-dev state restored. With `--weight_averaging ema|swa` the
*selected model* is the averaged copy of the weights (joyful/averaging.py): its
dev score is the epoch's `dev_weighted_f1`, its best state is what test,
checkpoints and re-runs use. The trained (raw) weights are still scored on dev
(`raw_dev_weighted_f1`, and the scheduler watches their dev loss) and, for
comparison, tested once at their own best dev epoch (`test.raw`).
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

from joyful.averaging import WeightAverage
from joyful.config import JoyfulConfig
from joyful.data.batching import DialogueLoader
from joyful.data.dialogues import DialogueData
from joyful.data.scaling import FeatureScaler
from joyful.errors import UserError
from joyful.loss_utils import compute_training_loss
from joyful.metrics import accuracy, per_class_report, weighted_f1
from joyful.runtime import release_free_memory, resident_megabytes, resolve_precision


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the step was not applied."""

    def __init__(self, epoch: int, parts: dict[str, float]) -> None:
        bad = ", ".join(f"{k}={v}" for k, v in parts.items() if not math.isfinite(v))
        super().__init__(
            f"non-finite training loss at epoch {epoch} ({bad}); lower --learning_rate or the loss "
            "weights"
        )
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
    probabilities: np.ndarray = field(repr=False)  # (utterances, classes), float32, in loader order


class Coach:
    def __init__(
        self,
        model: nn.Module,
        config: JoyfulConfig,
        data: DialogueData,
        device: torch.device,
        *,
        callbacks: list[EpochCallback] | tuple = (),
        keep_best_state: bool = True,
        progress: bool = False,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.model, self.config, self.data, self.device = model.to(device), config, data, device
        self.callbacks = list(callbacks)
        self.keep_best_state = keep_best_state
        self.progress = progress
        self.log = log or (lambda message: None)
        self.weights = config  # the loss weights are the config's (fault injection swaps them)
        self.shuffle_generator = torch.Generator().manual_seed(config.seed)
        # Train statistics only: dev and test are scaled with them, never fitted on.
        self.scaler = FeatureScaler.fit(
            data.splits["train"], config.modalities, config.feature_norm
        )
        loader_args = dict(
            modalities=config.modalities,
            n_speakers=data.spec.n_speakers,
            batch_size=config.batch_size,
            wp=config.wp,
            wf=config.wf,
            device=device,
            scaler=self.scaler,
        )
        self.loaders = {
            "train": DialogueLoader(
                data.splits["train"], shuffle=True, generator=self.shuffle_generator, **loader_args
            ),
            "dev": DialogueLoader(data.splits["dev"], shuffle=False, **loader_args),
            "test": DialogueLoader(data.splits["test"], shuffle=False, **loader_args),
        }
        self.nll = nn.NLLLoss(weight=self._class_weights())
        self.optimizer = self._build_optimizer()
        self.scheduler = self._build_scheduler()
        self.precision, self.precision_reason = resolve_precision(config.precision, device)
        self.average = (
            None
            if config.weight_averaging == "none"
            else WeightAverage(
                self.model,
                config.weight_averaging,
                ema_decay=self._ema_decay(),
                swa_start=config.swa_start,
            )
        )
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best_dev_f1 = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        # The raw weights' own best dev epoch, kept only with averaging (for `test.raw`).
        self.raw_best_dev_f1 = -math.inf
        self.raw_best_epoch = 0
        self.raw_best_state: dict[str, torch.Tensor] | None = None
        self.last_test: EvalResult | None = (
            None  # the selected model's test evaluation (with probabilities)
        )

    @property
    def selected_model(self) -> nn.Module:
        """The model that is scored, selected and tested: the averaged copy with averaging, else the
        model."""
        return self.average.model if self.average is not None else self.model

    # --- construction ---------------------------------------------------
    def _class_weights(self) -> torch.Tensor | None:
        if not self.config.class_weight:
            return None
        counts = self.data.label_counts("train").astype(np.float64)
        share = counts / counts.sum()
        # Inverse frequency (1/p), as the original's tables; absent classes get no weight.
        weights = np.divide(1.0, share, out=np.zeros_like(share), where=share > 0)
        return torch.tensor(weights, dtype=torch.float32, device=self.device)

    def _ema_decay(self) -> float:
        """The EMA's per-step decay: its window stays `ema_epochs` epochs whatever the batch
        size."""
        steps = len(self.loaders["train"])
        window = self.config.ema_epochs * steps
        if self.config.weight_averaging == "ema" and window <= 1:
            raise UserError(
                f"--ema_epochs {self.config.ema_epochs:g} x {steps} optimizer step(s) per epoch is "
                "a window "
                f"of {window:g} step(s), but an average needs more than 1; raise --ema_epochs, "
                "lower --batch_size or use --weight_averaging none"
            )
        return 1.0 - 1.0 / window if window > 1 else 0.5  # 0.5: unused unless ema

    def _build_optimizer(self) -> torch.optim.Optimizer:
        config = self.config
        gate_params = list(getattr(self.model.fusion, "gate_parameters", lambda: [])())
        gate_ids = {id(p) for p in gate_params}
        groups = [
            {
                "params": [p for p in self.model.parameters() if id(p) not in gate_ids],
                "lr": config.learning_rate,
            }
        ]
        if gate_params:
            groups.append(
                {"params": gate_params, "lr": config.learning_rate * config.gate_lr_scale}
            )
        if config.optimizer == "sgd":
            return torch.optim.SGD(
                groups, lr=config.learning_rate, momentum=0.9, weight_decay=config.weight_decay
            )
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        return optimizer(groups, lr=config.learning_rate, weight_decay=config.weight_decay)

    def _build_scheduler(self) -> Any:
        if self.config.scheduler == "reduceLR":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", patience=self.config.scheduler_patience, min_lr=3e-10
            )
        if self.config.scheduler == "expLR":
            return torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.95)
        return None

    def _plateau_loss(self, record: dict[str, Any], raw: EvalResult) -> float:
        """What ReduceLROnPlateau watches. On the data's own dev split: the trained weights' dev
        loss, as the original. With cross-validation the dev split is the held-out fold whose score
        ranks the setting, so no training decision may read it: the schedule watches the epoch's
        mean training NLL instead."""
        if self.config.cv_folds:
            return float(record["train_loss"]["nll"])
        return raw.loss

    def autocast(self) -> torch.autocast:
        """bf16 mixed precision when the run uses bf16 (losses and the self-pooling stay
        float32)."""
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

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
            nll = self.nll(
                output.log_probs.float(), batch.labels
            )  # float32 also under bf16 autocast
            total, parts = compute_training_loss(
                nll, output.contrastive, output.reconstruction, output.gate_reg, self.weights
            )
            if not math.isfinite(parts["total"]):
                raise NonFiniteLossError(self.epoch + 1, parts)
            total.backward()
            if self.config.max_grad_value > 0:
                nn.utils.clip_grad_value_(self.model.parameters(), self.config.max_grad_value)
            self.optimizer.step()
            if self.average is not None:
                self.average.after_step(self.model)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            for key, value in output.gate_means.items():
                gate_sums[key] = gate_sums.get(key, 0.0) + float(value)
            if self.progress:
                print(
                    f"\r  epoch {self.epoch + 1}/{self.config.epochs}  batch "
                    f"{index + 1}/{len(loader)}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        if self.progress:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
        if self.average is not None:
            self.average.after_epoch(self.model, self.epoch + 1)
            if self.average.mode == "swa" and self.epoch + 1 >= self.config.swa_start:
                self._recompute_norm_statistics(self.average.model)
        seconds = time.perf_counter() - start
        n_batches = (
            index + 1
        )  # not len(loader): a one-utterance chunk may have joined its neighbour
        return {
            "train_loss": {k: v / n_batches for k, v in sums.items()},
            "gates": {k: v / n_batches for k, v in gate_sums.items()},
            "train_seconds": seconds,
            "train_utterances_per_s": loader.num_utterances / seconds,
        }

    @torch.no_grad()
    def _recompute_norm_statistics(self, model: nn.Module) -> None:
        """BatchNorm running statistics of `model` from one pass over the train split (as
        `torch.optim.swa_utils.update_bn`): the mean of the epoch-end weights has its own
        activations, and an average of the epochs' statistics does not describe them. Everything but
        BatchNorm runs as in evaluation (no dropout), in stored order: the pass draws no random
        number and training goes on exactly as without it."""
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        model.eval()
        momenta = {}
        for norm in norms:
            norm.reset_running_stats()
            momenta[norm], norm.momentum = (
                norm.momentum,
                None,
            )  # None: a cumulative mean over the pass
            norm.train()
        for batch in self.loaders["train"].in_order():
            with self.autocast():
                model(batch, contrast=False, reconstruct=False)
        for norm in norms:
            norm.momentum = momenta[norm]
        model.eval()

    @torch.no_grad()
    def evaluate(
        self, split: str, model: nn.Module | None = None, *, exact: bool = False
    ) -> EvalResult:
        """Score `model` (default: the selected model) on `split`; one forward pass per batch gives
        the predictions, the class probabilities and the NLL. `exact`: in float32 whatever the run's
        precision, as `python -m joyful.predict` scores a model file (bfloat16 inference on a CPU
        can depend on which kernels the process built before): how test, and the probabilities a
        confirmation run records for its ensemble, are computed. The per-epoch dev scores that
        select the epoch stay at the run's precision (an exact re-run reproduces them)."""
        model = self.selected_model if model is None else model
        if not self.data.splits[split]:  # a refit has no dev split: nothing to score
            empty = np.zeros(0, dtype=np.int64)
            return EvalResult(
                math.nan, math.nan, math.nan, empty, empty, np.zeros((0, 0), np.float32)
            )
        model.eval()
        losses, labels, log_probs = [], [], []
        for batch in self.loaders[split]:
            with torch.autocast(
                self.device.type,
                dtype=torch.bfloat16,
                enabled=self.precision == "bf16" and not exact,
            ):
                batch_log_probs = model(batch, contrast=False, reconstruct=False).log_probs.float()
            losses.append(float(self.nll(batch_log_probs, batch.labels)) * batch.num_utterances)
            labels.append(batch.labels.cpu())
            log_probs.append(batch_log_probs.cpu())
        y, scores = torch.cat(labels).numpy(), torch.cat(log_probs)
        p = scores.argmax(dim=1).numpy()
        return EvalResult(
            sum(losses) / len(y), weighted_f1(y, p), accuracy(y, p), y, p, scores.exp().numpy()
        )

    # --- the loop -----------------------------------------------------------
    def fit(self, evaluate_test: bool = True) -> dict[str, Any]:
        """Train up to `config.epochs` (continuing after a restored epoch) and summarise the run."""
        started = time.perf_counter()
        while self.epoch < self.config.epochs:
            record = self.train_epoch()
            dev = self.evaluate("dev")
            raw = self.evaluate("dev", self.model) if self.average is not None else dev
            self.epoch += 1
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(self._plateau_loss(record, raw))
            elif self.scheduler is not None:
                self.scheduler.step()
            # Strictly greater, as the original; with --select_epoch last every epoch replaces the
            # one before.
            improved = dev.weighted_f1 > self.best_dev_f1 or self.config.select_epoch == "last"
            if improved:
                self.best_dev_f1, self.best_epoch = dev.weighted_f1, self.epoch
                if self.keep_best_state:
                    self.best_state = _cpu_copy(self.selected_model)
            # the epoch's freed tensors, so the resident size below is what the run holds
            release_free_memory()
            record = {
                "epoch": self.epoch,
                **record,
                "dev_loss": dev.loss,
                "dev_weighted_f1": dev.weighted_f1,
                "dev_accuracy": dev.accuracy,
                "lr": self.optimizer.param_groups[0]["lr"],
                "improved": improved,
                "resident_mb": round(resident_megabytes(), 1),
            }
            if self.average is not None:
                if raw.weighted_f1 > self.raw_best_dev_f1 or self.config.select_epoch == "last":
                    self.raw_best_dev_f1, self.raw_best_epoch = raw.weighted_f1, self.epoch
                    if self.keep_best_state:
                        self.raw_best_state = _cpu_copy(self.model)
                record.update(raw_dev_loss=raw.loss, raw_dev_weighted_f1=raw.weighted_f1)
            self.history.append(record)
            raw_note = f"  (raw weights {raw.weighted_f1:.4f})" if self.average is not None else ""
            self.log(
                f"epoch {self.epoch:3d}  train loss {record['train_loss']['total']:.4f}  "
                f"dev loss {dev.loss:.4f}  dev wF1 {dev.weighted_f1:.4f}{raw_note}  acc "
                f"{dev.accuracy:.4f}"
                f"{'  *' if improved else ''}  ({record['train_utterances_per_s']:.0f} utt/s)"
            )
            if any([callback(record, self) for callback in self.callbacks]):
                break
        summary = self.summary()
        if evaluate_test:
            summary["test"] = self.evaluate_test()
        summary["wall_seconds"] = time.perf_counter() - started
        return summary

    def restore_best(self) -> None:
        """Load the best-dev state into the selected model (no-op when it was not kept)."""
        if self.best_state is not None:
            self.selected_model.load_state_dict(self.best_state)

    def evaluate_test(self) -> dict[str, Any]:
        """Restore the best-dev state and evaluate the test set (once per model). With averaging,
        the raw weights at their own best dev epoch are tested too, as `raw`: what selection without
        averaging would have published."""
        self.restore_best()
        test = self.evaluate("test", exact=True)
        self.last_test = test
        result = {
            "weighted_f1": test.weighted_f1,
            "accuracy": test.accuracy,
            "loss": test.loss,
            "report": per_class_report(test.labels, test.predictions, self.data.spec.label_names),
        }
        if self.average is not None and self.raw_best_state is not None:
            self.model.load_state_dict(self.raw_best_state)
            raw = self.evaluate("test", self.model, exact=True)
            result["raw"] = {
                "weighted_f1": raw.weighted_f1,
                "accuracy": raw.accuracy,
                "best_epoch": self.raw_best_epoch,
                "best_dev_weighted_f1": self.raw_best_dev_f1,
            }
        return result

    def summary(self) -> dict[str, Any]:
        best = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        return {
            "epochs_run": self.epoch,
            "best_epoch": self.best_epoch,
            "best_dev_weighted_f1": self.best_dev_f1,
            "best_dev_accuracy": best["dev_accuracy"] if best else None,
            "feature_scaling": self.scaler.summary(),
            "weight_averaging": self.config.weight_averaging,
            "precision": {
                "requested": self.config.precision,
                "used": self.precision,
                "reason": self.precision_reason,
            },
            "history": self.history,
        }

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
            "average": self.average.state_dict() if self.average is not None else None,
            "raw_best": {
                "dev_f1": self.raw_best_dev_f1,
                "epoch": self.raw_best_epoch,
                "state": self.raw_best_state,
            },
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
        if (state.get("average") is None) != (self.average is None):
            raise UserError(
                f"{where} was written with another --weight_averaging; pass --from_begin to start "
                "over"
            )
        if self.average is not None:
            self.average.load_state_dict(state["average"])
            raw_best = state["raw_best"]
            self.raw_best_dev_f1, self.raw_best_epoch, self.raw_best_state = (
                raw_best["dev_f1"],
                raw_best["epoch"],
                raw_best["state"],
            )
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.shuffle_generator.set_state(state["rng"]["shuffle"])


def _cpu_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
