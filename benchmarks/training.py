"""Training and evaluation throughput: the vectorised model against the per-utterance reference.

Both paths run the real Coach (`train_epoch`, `evaluate`) on the same model,
seed and batches. The reference path (`tests/reference.py`, `use_reference_path`)
computes what the original JOYFUL computed: the fusion one utterance at a time
with the module's own parameters, as the original did inside batch building,
and the sequence transformer over the whole padded (B, maxL) grid. Each path
runs in its own subprocess (see `benchmarks.common.run_worker`), so peak RSS
figures do not mix.

A worker first computes the full training loss of the first dev batch at
the initial weights with dropout off and seeded augmentations (the "same
results" check: dropout masks are drawn per real row on the vectorised path and
per grid cell on the reference path, so only a dropout-free loss can agree),
evaluates dev/test (timed; the losses also feed the check), times the fusion
module alone (forward and backward on the dev batch), then trains on the first
`subset_batches` batches of the first epoch (timed), then, on the vectorised
path only, trains one whole further epoch (timed: the epoch throughput) and
times one checkpoint save of the Coach state.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from benchmarks.common import WorkerError, peak_rss_mib, relative_difference, run_worker

# Float tolerance of the "same results" check (relative).
SAME_RESULTS_RTOL = 1e-4


class FirstBatches:
    """The first `limit` batches of a DialogueLoader, with the attributes Coach.train_epoch reads."""

    def __init__(self, loader: Any, limit: int) -> None:
        self.loader, self.limit = loader, limit
        self.num_utterances = 0

    def __len__(self) -> int:
        return min(self.limit, len(self.loader))

    def __iter__(self) -> Iterator[Any]:
        self.num_utterances = 0
        for index, batch in enumerate(self.loader):
            if index >= self.limit:
                return
            self.num_utterances += batch.num_utterances
            yield batch


def build_benchmark_coach(params: dict[str, Any]) -> Any:
    """A Coach for the default config on `params["data"]` (fusion, threads, device and overrides from params)."""
    import torch

    from joyful.config import JoyfulConfig
    from joyful.run import build_coach, load_data

    config = JoyfulConfig.from_dict(
        {
            **JoyfulConfig().to_dict(),
            "dataset": "synthetic",
            "data": params["data"],
            "fusion": params["fusion"],
            "num_threads": params.get("threads", 0),
            **params.get("overrides", {}),
        },
        source="benchmark config",
    ).validate()
    return build_coach(config, load_data(config), torch.device(params.get("device", "cpu")))


def _fusion_only(coach: Any) -> dict[str, Any]:
    """Forward + backward of the fusion module alone on the (cached) dev batch: the part that was vectorised."""
    batch = next(iter(coach.loaders["dev"]))
    coach.model.train()
    started = time.perf_counter()
    output = coach.model.fusion(batch.features)
    (output.fused.sum() + output.reconstruction.sum()).backward()
    seconds = time.perf_counter() - started
    coach.model.zero_grad(set_to_none=True)
    return {
        "fusion_utterances": batch.num_utterances,
        "fusion_seconds": seconds,
        "fusion_utterances_per_s": batch.num_utterances / seconds,
    }


def _check_loss(coach: Any) -> float:
    """The full training loss (NLL + contrastive + reconstruction) of the first dev batch: initial weights,
    dropout off, seeded augmentations. The dev loader is unshuffled, so this draws no batch order."""
    import torch

    from joyful.loss_utils import compute_training_loss

    batch = next(iter(coach.loaders["dev"]))
    coach.model.eval()
    with torch.no_grad():
        torch.manual_seed(12345)
        with coach.autocast():  # --precision as configured
            output = coach.model(batch, contrast=True)
        _, parts = compute_training_loss(
            coach.nll(output.log_probs.float(), batch.labels),
            output.contrastive,
            output.reconstruction,
            output.gate_reg,
            coach.weights,
        )
    return parts["total"]


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _matmul_floor(coach: Any, rows: int) -> dict[str, Any]:
    """The least time the sequence transformer's linear layers can take on `rows` utterances (one forward),
    at this process's measured matrix-multiply rate in float32 and bfloat16: a floor for evaluation."""
    import torch

    seq = coach.model.seq_context
    weights = sum(m.weight.numel() for m in seq.modules() if isinstance(m, torch.nn.Linear))
    weights += sum(
        layer.self_attn.in_proj_weight.numel() for layer in seq.encoder.layers
    )  # Q, K, V
    flops = 2 * rows * weights
    width = seq.output.in_features
    rates = {}
    # A private generator: the global RNG state must stay as the reference path sees it.
    generator = torch.Generator(device=coach.device).manual_seed(0)
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(rows, width, dtype=dtype, device=coach.device, generator=generator)
        b = torch.randn(width, 2 * width, dtype=dtype, device=coach.device, generator=generator)
        a @ b  # warm
        _synchronize(coach.device)
        started, repeats = time.perf_counter(), 5
        for _ in range(repeats):
            a @ b
        _synchronize(coach.device)
        rates[name] = 2 * rows * width * 2 * width * repeats / (time.perf_counter() - started)
    return {
        "floor_rows": rows,
        "transformer_linear_flops": flops,
        "matmul_flops_per_s": rates,
        "eval_floor_seconds": {name: flops / rate for name, rate in rates.items()},
    }


def _checkpoint_cost(coach: Any) -> dict[str, Any]:
    """Time one save of the Coach state (weights, Adam state, ...), as a search trial does after each epoch."""
    from joyful.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coach.pt"
        started = time.perf_counter()
        save_checkpoint(path, coach.config, coach.state_dict())
        return {
            "checkpoint_seconds": time.perf_counter() - started,
            "checkpoint_mib": path.stat().st_size / 2**20,
        }


def training_worker(params: dict[str, Any]) -> dict[str, Any]:
    """Measure one path (`params["path"]`: vectorised | reference) in this process."""
    import torch

    from tests.reference import use_reference_path

    coach = build_benchmark_coach(params)
    device = coach.device
    result: dict[str, Any] = {
        "path": params["path"],
        "fusion": coach.config.fusion,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "data_rss_mib": peak_rss_mib(),
        "parameters": sum(p.numel() for p in coach.model.parameters()),
    }
    reference = params["path"] == "reference"
    with use_reference_path(coach.model) if reference else nullcontext():
        # Drawn before the timed loops, so the batches and the RNG state they see are the same on both paths.
        rng_state = torch.get_rng_state()
        result["check_loss"] = _check_loss(coach)
        torch.set_rng_state(rng_state)
        splits = params.get("eval_splits", ["dev", "test"])
        if splits:
            for split in splits:
                list(coach.loaders[split])  # build and cache the batches outside the timing
            best = float("inf")
            for _ in range(1 if reference else params.get("eval_repeats", 2)):
                started = time.perf_counter()
                evaluations = {split: coach.evaluate(split) for split in splits}
                best = min(best, time.perf_counter() - started)
            utterances = sum(len(evaluations[s].labels) for s in splits)
            result.update(
                eval_utterances=utterances,
                eval_seconds=best,
                eval_utterances_per_s=utterances / best,
                eval_loss={s: e.loss for s, e in evaluations.items()},
                eval_peak_rss_mib=peak_rss_mib(),
            )
            if not reference and coach.config.rnn == "transformer":
                result.update(_matmul_floor(coach, utterances))
        if params.get("fusion_only", True):
            result.update(_fusion_only(coach))
        full_loader = coach.loaders["train"]
        coach.loaders["train"] = FirstBatches(full_loader, params["subset_batches"])
        record = coach.train_epoch()
        result.update(
            subset_batches=len(coach.loaders["train"]),
            subset_utterances=coach.loaders["train"].num_utterances,
            subset_seconds=record["train_seconds"],
            subset_utterances_per_s=record["train_utterances_per_s"],
            subset_train_loss=record["train_loss"],
        )
        coach.loaders["train"] = full_loader
        if params.get("full_epoch") and not reference:
            record = coach.train_epoch()
            result.update(
                epoch_batches=len(full_loader),
                epoch_utterances=full_loader.num_utterances,
                epoch_seconds=record["train_seconds"],
                epoch_utterances_per_s=record["train_utterances_per_s"],
            )
    result["peak_rss_mib"] = peak_rss_mib()
    if not reference:
        result.update(_checkpoint_cost(coach))
    if device.type == "cuda":
        result["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        result["cuda_peak_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
    return result


def measure_training(
    data_path: str,
    fusions: list[str],
    subset_batches: int,
    *,
    eval_splits: list[str],
    threads: int = 0,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
    bf16_option: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Vectorised vs reference, per fusion: throughput, speed-ups, peak RSS and the same-results check;
    with `bf16_option`, the vectorised path once more under `--precision bf16`."""
    common = {
        "data": data_path,
        "subset_batches": subset_batches,
        "eval_splits": eval_splits,
        "threads": threads,
        "device": device,
        "overrides": overrides or {},
    }
    results: dict[str, Any] = {}
    for fusion in fusions:
        log(f"  training throughput, {fusion}: vectorised ...")
        vec = run_worker(
            "training", {**common, "fusion": fusion, "path": "vectorised", "full_epoch": True}
        )
        log(
            f"  training throughput, {fusion}: per-utterance reference ({subset_batches} batch(es); slow) ..."
        )
        try:
            ref = run_worker("training", {**common, "fusion": fusion, "path": "reference"})
        except WorkerError as exc:  # e.g. killed for memory: keep the vectorised figures
            log(f"  reference path failed: {exc}")
            results[fusion] = {"vectorised": vec, "reference": None, "error": str(exc)}
            continue
        loss_diff = relative_difference(vec["check_loss"], ref["check_loss"])
        eval_diff = max(
            (relative_difference(vec["eval_loss"][s], ref["eval_loss"][s]) for s in eval_splits),
            default=0.0,
        )
        bf16 = None
        if bf16_option:
            log(f"  training throughput, {fusion}: vectorised, --precision bf16 ...")
            bf16 = run_worker(
                "training",
                {
                    **common,
                    "fusion": fusion,
                    "path": "vectorised",
                    "full_epoch": True,
                    "fusion_only": False,
                    "overrides": {**common["overrides"], "precision": "bf16"},
                },
            )
            bf16.update(
                train_epoch_speedup=bf16["epoch_utterances_per_s"] / ref["subset_utterances_per_s"],
                train_epoch_speedup_over_fp32=bf16["epoch_utterances_per_s"]
                / vec["epoch_utterances_per_s"],
                eval_speedup=(bf16["eval_utterances_per_s"] / ref["eval_utterances_per_s"])
                if eval_splits
                else None,
                # bfloat16 keeps 8 bits of mantissa: this is rounding, compared with fp32, not a tolerance check.
                loss_rel_diff_vs_fp32=relative_difference(bf16["check_loss"], vec["check_loss"]),
            )
        results[fusion] = {
            "bf16": bf16,
            "vectorised": vec,
            "reference": ref,
            # Whole vectorised epoch against the reference on its batch subset (the reference is too slow for more).
            "train_epoch_speedup": vec["epoch_utterances_per_s"] / ref["subset_utterances_per_s"],
            # The same first batch(es) on both paths (the vectorised one is cold here).
            "train_same_batches_speedup": vec["subset_utterances_per_s"]
            / ref["subset_utterances_per_s"],
            "eval_speedup": (vec["eval_utterances_per_s"] / ref["eval_utterances_per_s"])
            if eval_splits
            else None,
            # The most any evaluation could gain: the reference's time over the floor of the transformer alone.
            "eval_speedup_ceiling": {
                name: ref["eval_seconds"] / floor
                for name, floor in vec.get("eval_floor_seconds", {}).items()
            }
            or None,
            # The fusion module alone (forward + backward): what vectorising changed, without the transformer.
            "fusion_speedup": vec["fusion_utterances_per_s"] / ref["fusion_utterances_per_s"],
            "train_loss_rel_diff": loss_diff,
            "eval_loss_rel_diff": eval_diff,
            "same_results": loss_diff <= SAME_RESULTS_RTOL and eval_diff <= SAME_RESULTS_RTOL,
        }
    return results
