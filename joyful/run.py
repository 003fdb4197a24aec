"""One training run from a resolved config: load data, build, train, report.

Used by the training CLI and by the tuning service's re-run and confirmation.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from joyful.checkpoint import load_checkpoint, save_checkpoint
from joyful.coach import Coach, EpochCallback
from joyful.config import JoyfulConfig
from joyful.data.dialogues import DialogueData, load_dialogue_data
from joyful.data.folds import fold_data
from joyful.datasets import default_data_path, resolve_dataset
from joyful.errors import UserError
from joyful.io import atomic_write_json, recorded_path
from joyful.model import build_model
from joyful.model_file import save_model_file
from joyful.runtime import (
    bound_kernel_caches,
    check_recorded_precision,
    resolve_device,
    seed_everything,
    set_threads,
)

LAST_CHECKPOINT = "last.pt"


@dataclass
class RunOptions:
    """Runtime choices that do not change results (apart from the device)."""

    device: str = "auto"
    checkpoint_dir: str | None = None
    from_begin: bool = False
    metrics_out: str | None = None
    dataset_spec: str | None = None
    init_checkpoint: str | None = None
    progress: bool = False
    save_model: str | None = None  # write the selected model (joyful/model_file.py) here
    # The data facts a --config file recorded (`DialogueData.facts`) and that file's path: the run
    # checks that its data is that data, or at least data of the same shape.
    expected_data: dict[str, Any] | None = None
    config_file: str | None = None
    # A re-run of a recorded result (a --config file without --precision, an ensemble member): its
    # recorded precision must be one this device computes natively, and with `same_data` its data
    # file the recorded one.
    exact_rerun: bool = False
    same_data: bool = False


def data_path(config: JoyfulConfig) -> Path:
    """The data file of `config`. A relative `data` is as a config or result file records it:
    relative to the repository root (the command line makes `--data` absolute); `data_dir_path`
    keeps the original's meaning, relative to the working folder."""
    if config.data:
        return recorded_path(config.data)
    return default_data_path(config.data_dir_path, config.dataset, config.transformers)


def load_data(
    config: JoyfulConfig, dataset_spec: str | None = None, *, check_modalities: bool = True
) -> DialogueData:
    spec = resolve_dataset(config.dataset, dataset_spec)
    path = data_path(config)
    if not path.exists() and config.dataset == "synthetic" and not config.data:
        raise UserError(f"no synthetic data at {path}; create it with: joyful-synth --out {path}")
    data = load_dialogue_data(path, spec)
    if check_modalities:
        data.check_modalities(config.modalities)
    return data


def training_data(config: JoyfulConfig, data: DialogueData) -> DialogueData:
    """The splits a run of `config` trains, selects and tests on: the file's, or a cross-validation
    fold's."""
    if not config.cv_folds:
        return data
    return fold_data(data, config.cv_folds, config.cv_fold, config.cv_fold_seed)


def build_coach(
    config: JoyfulConfig,
    data: DialogueData,
    device: torch.device,
    *,
    callbacks: list[EpochCallback] | tuple = (),
    keep_best_state: bool = True,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> Coach:
    """Seed, build the model and its Coach; the same seed and data give the same run."""
    bound_kernel_caches()  # before the first kernel is built (joyful/runtime.py says why)
    set_threads(config.num_threads)
    seed_everything(config.seed)
    data = training_data(config, data)
    model = build_model(config, data.check_modalities(config.modalities), data.spec)
    return Coach(
        model,
        config,
        data,
        device,
        callbacks=callbacks,
        keep_best_state=keep_best_state,
        progress=progress,
        log=log,
    )


def train(
    config: JoyfulConfig, options: RunOptions, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train with `config`, evaluate test once at the best-dev epoch, and return the metrics
    document."""
    config.validate()
    started = time.perf_counter()
    data = load_data(config, options.dataset_spec)
    where = f"--config {options.config_file}"
    if options.expected_data:
        if options.same_data and options.expected_data.get("sha256") != data.sha256:
            raise UserError(
                f"{data.source} is not the data {where} was trained on (sha256 {data.sha256[:12]}… "
                f"vs {str(options.expected_data.get('sha256'))[:12]}…); an exact re-run needs that "
                "file"
            )
        warning = data.check_same_shape(config.modalities, options.expected_data, where)
        if warning:  # on stderr, also under --quiet: the user should know before the results
            print(warning, file=sys.stderr, flush=True)
    device = resolve_device(options.device)
    if options.exact_rerun:
        check_recorded_precision(config.precision, device, where)
    callbacks: list[EpochCallback] = []
    checkpoint_path = (
        Path(options.checkpoint_dir) / LAST_CHECKPOINT if options.checkpoint_dir else None
    )
    if checkpoint_path is not None:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)

        def save_each_epoch(record: dict[str, Any], coach: Coach) -> None:
            save_checkpoint(checkpoint_path, config, coach.state_dict())

        callbacks.append(save_each_epoch)
    coach = build_coach(
        config, data, device, callbacks=callbacks, progress=options.progress, log=log
    )
    n_params = sum(p.numel() for p in coach.model.parameters())
    log(
        f"{config.dataset} [{config.modalities}] from {data.source}: "
        + ", ".join(f"{k} {len(v)} dialogues" for k, v in coach.data.splits.items())
        + (
            (
                f" (fold {config.cv_fold} of {config.cv_folds} of train + dev as dev)"
                if config.cv_fold
                else " (a refit: trained on all of train + dev, no dev split)"
            )
            if config.cv_folds
            else ""
        )
        + f"; fusion {config.fusion}; {n_params / 1e6:.2f}M parameters; device {device}"
    )
    if options.init_checkpoint:
        coach.model.load_state_dict(load_checkpoint(options.init_checkpoint)["coach"]["model"])
        log(f"initialised weights from {options.init_checkpoint}")
    if checkpoint_path is not None and checkpoint_path.exists() and not options.from_begin:
        payload = load_checkpoint(checkpoint_path, map_location=device)
        if JoyfulConfig.from_dict(payload["config"]) != config:
            raise UserError(
                f"{checkpoint_path} was written with another config; pass --from_begin to start "
                "over"
            )
        coach.load_state_dict(payload["coach"], where=str(checkpoint_path))
        log(f"resumed from {checkpoint_path} after epoch {coach.epoch}")
    log(
        f"precision {coach.precision} ({coach.precision_reason}); weight averaging "
        f"{config.weight_averaging}"
    )
    summary = coach.fit(evaluate_test=True)
    if options.save_model:
        scores = {
            "best_epoch": summary["best_epoch"],
            "dev_weighted_f1": summary["best_dev_weighted_f1"],
            "test_weighted_f1": summary["test"]["weighted_f1"],
        }
        save_model_file(
            options.save_model,
            config.replace(precision=coach.precision),
            coach.selected_model.state_dict(),
            coach.scaler,
            data,
            scores,
        )
    document = {
        "config": config.to_dict(),
        "data": {
            **data.facts(config.modalities),
            "all_modality_dims": data.modality_dims,
            "splits": {
                k: {"dialogues": len(v), "utterances": sum(len(d) for d in v)}
                for k, v in coach.data.splits.items()
            },
        },
        **summary,
        "wall_seconds": time.perf_counter() - started,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }
    test = summary["test"]
    raw = test.get("raw")
    raw_note = (
        f" (raw weights at their best dev epoch {raw['best_epoch']}: test wF1 "
        f"{raw['weighted_f1']:.4f})"
        if raw
        else ""
    )
    log(
        f"best dev wF1 {summary['best_dev_weighted_f1']:.4f} at epoch {summary['best_epoch']}; "
        f"test wF1 {test['weighted_f1']:.4f}, accuracy {test['accuracy']:.4f}{raw_note} "
        f"({document['wall_seconds']:.1f} s)"
    )
    if options.save_model:
        log(f"saved the model to {options.save_model}")
    if options.metrics_out:
        atomic_write_json(options.metrics_out, document)
    return document
