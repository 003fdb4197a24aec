"""`python -m benchmarks`: measure start-up, bf16 against fp32, training and search throughput, and searchers.

    python -m benchmarks --quick                       # a few minutes, smaller data and searches
    python -m benchmarks --json benchmarks/results.json # the full run (about 30 minutes on 2 cores)
    python -m benchmarks --sections training --device cuda --json gpu.json
    python -m benchmarks --sections precision          # seconds: the bf16/fp32 ratio here, and auto's choice
    python -m benchmarks --sections startup            # seconds: --help/--version/argument errors of every command
    python -m benchmarks --sections memory             # resident memory per epoch and across a reused Ray actor
    python -m benchmarks --sections overtuning         # holdout vs cross-validated search on draws of MELD (~1 h)
    python -m benchmarks --sections searchers          # samplers x schedulers replayed on real curves (minutes)

Prints a table (each figure with how it was measured) and the targets of
docs/PERFORMANCE.md; `--json` writes every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import IEMOCAP_DIMS, REPO, SMALL_DIMS, DataSpec, run_worker
from benchmarks.report import render, targets
from joyful.io import atomic_write_json

SECTIONS = (
    "startup",
    "precision",
    "memory",
    "training",
    "search",
    "searchers",
    "profile",
    "overtuning",
)
FUSIONS = ("autofusion", "hierarchical")


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run (full or --quick)."""

    training_scale: float  # synthetic data scale of the training section (1.0 = IEMOCAP-4 size)
    reference_batches: int  # train batches the per-utterance reference runs
    search_epochs: int  # epochs of every search-throughput trial
    search_trials_per_slot: int  # trials per concurrent slot ...
    search_min_trials: int  # ... and at least this many per search-throughput run
    iemocap_trial: bool  # run one real IEMOCAP-size Ray trial for the overhead figure
    searcher_seeds: int  # seeds of every replayed search arm ...
    searcher_budgets: tuple[int, ...]  # ... at these multiples of the MELD space's trial budget
    profile_batches: int | None  # None: a whole epoch
    memory_epochs: int  # epochs of every memory run ...
    memory_meld: bool  # ... also on the real MELD data where ../shared has it
    memory_reused_trials: int  # trials of the reused-actor run (4 epochs each)
    overtuning_draws: int  # draws of MELD the overtuning section searches twice each ...
    overtuning_budget: dict[
        str, Any
    ]  # ... with these budget overrides of benchmarks/spaces/overtuning.yaml


FULL = Settings(1.0, 1, 3, 2, 4, True, 30, (1, 2, 4), None, 12, True, 5, 5, {})
QUICK = Settings(
    0.2, 1, 2, 1, 1, False, 3, (1,), 1, 6, False, 3, 2, {"num_samples": 4, "max_epochs": 6}
)
MEMORY_DATA = DataSpec(scale=0.35)  # the quick start's synthetic data (IEMOCAP widths)
MELD = REPO.parent / "shared" / "data" / "meld_text" / "data_meld.pkl"
SEARCH_DATA = DataSpec(scale=0.2, dims=tuple(SMALL_DIMS.items()))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick", action="store_true", help="smaller data and searches: a run of a few minutes"
    )
    p.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {', '.join(SECTIONS)}",
    )
    p.add_argument("--fusions", default=",".join(FUSIONS), help="fusions of the training section")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of the training and profile sections and of the IEMOCAP-size trial (0 = all cores)",
    )
    p.add_argument(
        "--device", default="cpu", help="device of the training and profile sections (cpu, cuda)"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config setting of the training and profile sections (repeatable), e.g. self_pool_chunk=256",
    )
    p.add_argument(
        "--overtuning-arms",
        default="holdout,cv",
        help="arms of the overtuning section (comma-separated holdout, cv; cv alone answers its "
        "first goal in about two thirds of the time)",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (data, Ray experiments)"
    )
    return p


def _split(text: str, valid: tuple[str, ...], flag: str) -> list[str]:
    items = [item for item in text.split(",") if item]
    unknown = [item for item in items if item not in valid]
    if unknown or not items:
        raise SystemExit(
            f"python -m benchmarks: error: {flag} {text!r}: choose from {', '.join(valid)}"
        )
    return items


def _overrides(items: list[str]) -> dict[str, Any]:
    import yaml

    from joyful.config import coerce_value
    from joyful.errors import UserError

    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        try:
            if not sep:
                raise UserError("expected KEY=VALUE")
            overrides[key] = coerce_value(key, yaml.safe_load(text), source="--set")
        except UserError as exc:
            raise SystemExit(f"python -m benchmarks: error: --set {item!r}: {exc}") from None
    return overrides


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _meta(quick: bool, argv: list[str]) -> dict[str, Any]:
    import optuna
    import ray
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "quick": quick,
        "command": shlex.join([sys.executable, "-m", "benchmarks", *argv]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": commit,
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, ray {ray.__version__}, "
        f"optuna {optuna.__version__}, python {platform.python_version()}",
        "load_start": _load(),
    }


def summary(results: dict[str, Any]) -> dict[str, float]:
    """Flat headline figures (`<fusion>_train_epoch_speedup`, ...) for scripts and tests."""
    flat: dict[str, float] = {}
    if "precision" in results:
        flat["bf16_over_fp32"] = results["precision"]["bf16_over_fp32"]
    if "startup" in results:
        flat["startup_slowest_seconds"] = results["startup"]["slowest_seconds"]
    for fusion, r in results.get("training", {}).items():
        for key in (
            "train_epoch_speedup",
            "train_same_batches_speedup",
            "eval_speedup",
            "fusion_speedup",
        ):
            if r.get(key) is not None:
                flat[f"{fusion}_{key}"] = r[key]
        flat[f"{fusion}_train_utterances_per_s"] = r["vectorised"]["epoch_utterances_per_s"]
    for concurrency, r in results.get("search_throughput", {}).get("runs", {}).items():
        flat[f"search_trials_per_hour_c{concurrency}"] = r["trials_per_hour"]
        flat[f"search_overhead_share_c{concurrency}"] = r["overhead_share"]
    searchers = results.get("searchers")
    if searchers:
        default = searchers["default_arm"]
        row = searchers["budgets"]["1"]["arms"][default]
        flat["searchers_default_regret"] = row["regret"]["mean"]
        if row.get("vs_random") and row["vs_random"]["ratio"] is not None:
            flat["searchers_default_over_random"] = row["vs_random"]["ratio"]
        flat["searchers_default_model_share"] = row["least_model_share"]
    return flat


def _iemocap_extrapolation(search: dict[str, Any], training: dict[str, Any]) -> dict[str, Any]:
    """Without a real IEMOCAP-size trial: small-data overhead per trial plus a checkpoint save and copy
    (the default model's, timed in the training section) every `checkpoint_every` epochs of the shipped
    IEMOCAP space, against IEMOCAP-size epochs."""
    from benchmarks.search_throughput import shipped_iemocap_budget
    from joyful.data.synthetic import DEFAULT_SPLITS, SyntheticSpec

    vec = next(iter(training.values()))["vectorised"]
    length = SyntheticSpec().mean_length  # expected utterances per dialogue at scale 1
    epoch = (
        DEFAULT_SPLITS["train"] * length / vec["epoch_utterances_per_s"]
        + DEFAULT_SPLITS["dev"] * length / vec["eval_utterances_per_s"]
    )
    fixed = search["runs"]["1"]["overhead_seconds_per_trial"]
    budget = shipped_iemocap_budget()
    per_checkpoint = 2 * vec["checkpoint_seconds"]  # the trial's save and Ray's copy into storage
    n = budget.max_epochs
    overhead = fixed + -(-n // budget.checkpoint_every) * per_checkpoint
    return {
        "overhead_fixed_seconds": fixed,
        "overhead_per_checkpoint_seconds": per_checkpoint,
        "checkpoint_every": budget.checkpoint_every,
        "epoch_seconds": epoch,
        "epochs": n,
        "overhead_share": overhead / (overhead + n * epoch),
    }


def run(
    settings: Settings,
    sections: list[str],
    fusions: list[str],
    threads: int,
    device: str,
    overrides: dict[str, Any],
    workdir: Path,
    results: dict[str, Any],
    overtuning_arms: tuple[str, ...] = ("holdout", "cv"),
) -> None:
    from benchmarks.search_throughput import measure_search_throughput
    from benchmarks.training import measure_training

    def log(message: str) -> None:
        print(f"[{datetime.now():%H:%M:%S} load {_load()}] {message}", file=sys.stderr, flush=True)

    data_dir = workdir / "data"
    if "startup" in sections:
        from benchmarks.startup import measure_startup

        log("start-up of the commands")
        results["startup"] = measure_startup()
    if "precision" in sections:
        log("bf16 against fp32")
        results["precision"] = run_worker("precision", {"threads": threads, "device": device})
    if "memory" in sections:
        log("memory")
        results["memory"] = _memory(settings, threads, data_dir, workdir, log)
    training_data = DataSpec(settings.training_scale, tuple(IEMOCAP_DIMS.items()))
    if "training" in sections:
        log("training throughput")
        results["training"] = measure_training(
            str(training_data.ensure(data_dir)),
            fusions,
            settings.reference_batches,
            eval_splits=["dev", "test"],
            threads=threads,
            device=device,
            overrides=overrides,
            log=log,
        )
    if "search" in sections:
        log("search throughput")
        iemocap = str(DataSpec().ensure(data_dir)) if settings.iemocap_trial else None
        search = measure_search_throughput(
            str(SEARCH_DATA.ensure(data_dir)),
            workdir / "ray",
            concurrencies=[1, 2, 4],
            epochs=settings.search_epochs,
            trials=lambda c: max(settings.search_min_trials, c * settings.search_trials_per_slot),
            iemocap_data=iemocap,
            iemocap_cpus=threads or 2,
            log=log,
        )
        if iemocap is None and "training" in results and "1" in search["runs"]:
            search["iemocap_extrapolated"] = _iemocap_extrapolation(search, results["training"])
        results["search_throughput"] = search
    if "searchers" in sections:
        from benchmarks.replay import CurveTable, compare

        log("searchers replayed on the learning-curve table")
        results["searchers"] = compare(
            CurveTable.load(),
            seeds=settings.searcher_seeds,
            budgets=settings.searcher_budgets,
            log=log,
        )
    if "overtuning" in sections:
        from benchmarks.overtuning import measure_overtuning

        if not MELD.exists():
            log(f"overtuning: skipped, no MELD data at {MELD}")
        else:
            log("overtuning")
            results["overtuning"] = measure_overtuning(
                MELD,
                workdir / "overtuning",
                draws=settings.overtuning_draws,
                overrides={"budget": settings.overtuning_budget},
                arms=tuple(overtuning_arms),
                log=log,
            )
    if "profile" in sections:
        log("profile of one epoch")
        results["profile"] = run_worker(
            "profile",
            {
                "data": str(training_data.ensure(data_dir)),
                "fusion": fusions[0],
                "threads": threads,
                "device": device,
                "overrides": overrides,
                "batches": settings.profile_batches,
            },
        )


def _memory(
    settings: Settings, threads: int, data_dir: Path, workdir: Path, log: Any
) -> dict[str, Any]:
    """Memory runs: synthetic (quick-start size) at fp32, bf16 and bf16 with oneDNN's default kernel caches; MELD
    (`at`, batch 16) at fp32 and bf16 where the data is at hand; then one reused Ray actor."""
    from benchmarks.memory import ONEDNN_DEFAULT_CAPACITY, measure_memory

    synthetic = str(MEMORY_DATA.ensure(data_dir))
    common = {"epochs": settings.memory_epochs, "threads": threads}
    runs = [
        {
            **common,
            "name": f"synthetic {p}",
            "dataset": "synthetic",
            "data": synthetic,
            "modalities": "atv",
            "precision": p,
        }
        for p in ("fp32", "bf16")
    ]
    runs.append(
        {
            **runs[1],
            "name": "synthetic bf16, default kernel caches",
            "kernel_cache": ONEDNN_DEFAULT_CAPACITY,
        }
    )
    if settings.memory_meld and MELD.exists():
        runs += [
            {
                **common,
                "name": f"meld_text {p}",
                "dataset": "meld_text",
                "data": str(MELD),
                "modalities": "at",
                "precision": p,
                "overrides": {"batch_size": 16, "learning_rate": 1e-4},
            }
            for p in ("fp32", "bf16")
        ]
    reused = {"data": synthetic, "trials": settings.memory_reused_trials, "epochs": 4}
    return measure_memory(runs, reused, workdir / "ray", log=log)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    sections = _split(args.sections, SECTIONS, "--sections")
    fusions = _split(args.fusions, FUSIONS, "--fusions")
    overrides = _overrides(args.set)
    overtuning_arms = tuple(_split(args.overtuning_arms, ("holdout", "cv"), "--overtuning-arms"))
    results: dict[str, Any] = {"meta": {**_meta(args.quick, argv), "overrides": overrides}}
    workdir = Path(tempfile.mkdtemp(prefix="joyful-bench-"))
    try:
        run(
            QUICK if args.quick else FULL,
            sections,
            fusions,
            args.threads,
            args.device,
            overrides,
            workdir,
            results,
            overtuning_arms,
        )
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["load_end"] = _load()
    results["targets"] = targets(results)
    results["summary"] = summary(results)
    print(render(results))
    if args.json:
        atomic_write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
