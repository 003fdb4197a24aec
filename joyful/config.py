"""The one typed configuration of a JOYFUL run: every default lives here.

The training CLI flags, the config JSON files, the search-space keys of the
tuning service and the best-config files are all checked against
:class:`JoyfulConfig`. Defaults follow the original JOYFUL code (see
``../shared/reference/joyful_architecture.md``) except where a comment says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joyful.errors import UserError

# Version of the JSON layout written by `config_document` and read by `load_config_file`. Bump it
# when a field is renamed or changes meaning; a file of another version is refused with one line (no
# migrations: nothing was released before version 4). 4: `precision` records what a run used (fp32
# or bf16) in result files; `select_epoch` added.
CONFIG_SCHEMA_VERSION = 4

FUSIONS = ("autofusion", "hierarchical")
RECONSTRUCTION_LOSSES = ("mse", "smooth_l1")
SEQUENCE_MODELS = ("transformer", "lstm", "gru")
PRECISIONS = ("auto", "fp32", "bf16")
WEIGHT_AVERAGING = ("none", "ema", "swa")  # joyful/averaging.py says what each does
SELECT_EPOCHS = ("best", "last")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("reduceLR", "expLR", "none")
MODALITY_LETTERS = ("a", "t", "v")
FEATURE_NORMS = ("none", "standardize", "scale")  # joyful/data/scaling.py says what each does


def _opt(default: Any, help: str, *, choices: tuple | None = None, group: str) -> Any:
    """A config field with the metadata the CLI builder and validators read."""
    return field(default=default, metadata={"help": help, "choices": choices, "group": group})


@dataclass
class JoyfulConfig:
    """All settings of one training run. Field names are the CLI flag names."""

    # --- data -----------------------------------------------------------
    dataset: str = _opt(
        "synthetic", "data-set name from the registry (or a spec file's name)", group="data"
    )
    modalities: str = _opt(
        "atv", "modalities to fuse: any non-empty subset of a, t, v (e.g. atv, at, t)", group="data"
    )
    data: str | None = _opt(
        None,
        "path of the data pickle; default <data_dir_path>/<dataset>/data_<dataset>.pkl",
        group="data",
    )
    data_dir_path: str = _opt(
        "./data",
        "folder that holds <dataset>/data_<dataset>.pkl when --data is not given",
        group="data",
    )
    transformers: bool = _opt(
        False,
        "read <data_dir_path>/<dataset>/transformers/data_<dataset>.pkl (original layout)",
        group="data",
    )
    emotion: str | None = _opt(
        None, "MOSEI label variant; only 2class (the default) is implemented", group="data"
    )
    # Default from the MELD measurements in docs/MEASURED.md; 'none' reproduces the original code.
    # Cross-validation by dialogue over train + dev (joyful/data/folds.py): what a cross-validated
    # search's runs train on, so that `train.py --config` re-runs any of them.
    cv_folds: int = _opt(
        0,
        "0: train on train and select on dev (the data's split); K >= 2: split train + dev into "
        "K folds by dialogue and train on all but --cv_fold",
        group="data",
    )
    cv_fold: int = _opt(
        1,
        "with --cv_folds K: the fold (1..K) that serves as dev; 0: none, train on all of train + "
        "dev "
        "(a refit, which keeps its last epoch)",
        group="data",
    )
    # A search ranks its trials on assignment 0; its confirmation scores on a fresh one, so that the
    # number published is not the number the search selected on.
    cv_fold_seed: int = _opt(
        0,
        "with --cv_folds K: which assignment of dialogues to folds (0: the one every trial of a "
        "search shares; another value draws another)",
        group="data",
    )
    feature_norm: str = _opt(
        "standardize",
        "feature scaling fitted on train: none (original), standardize (per "
        "dimension: train mean and s.d.), scale (per modality: divide by the mean train "
        "vector norm)",
        choices=FEATURE_NORMS,
        group="data",
    )

    # --- model ----------------------------------------------------------
    fusion: str = _opt(
        "autofusion",
        "fusion module: autofusion (original) or hierarchical (gated)",
        choices=FUSIONS,
        group="model",
    )
    reconstruction_loss: str = _opt(
        "mse",
        "reconstruction criterion; smooth_l1 acts only with hierarchical fusion",
        choices=RECONSTRUCTION_LOSSES,
        group="model",
    )
    fusion_pool_dim: int = _opt(
        460, "width of each modality projection before self-pooling", group="model"
    )
    fusion_hidden: int = _opt(1024, "hidden width of the fusion encoders/decoders", group="model")
    fusion_latent: int = _opt(
        512, "latent width of each fusion branch; fused vector is twice this", group="model"
    )
    hidden_size: int = _opt(
        100, "width of the sequence-context output and classifier hidden layer", group="model"
    )
    rnn: str = _opt("transformer", "sequence-context model", choices=SEQUENCE_MODELS, group="model")
    seqcontext_nlayer: int = _opt(4, "layers of the sequence-context model", group="model")
    seqcontext_nhead: int = _opt(
        0,
        "transformer heads; 0 = original rule (first h in 7..14 dividing the width, else 1)",
        group="model",
    )
    drop_rate: float = _opt(0.3, "dropout rate", group="model")
    wp: int = _opt(8, "past context window of the dialogue graph (-1 = unbounded)", group="model")
    wf: int = _opt(8, "future context window of the dialogue graph (-1 = unbounded)", group="model")
    gnn_nheads: int = _opt(4, "heads of the TransformerConv layer", group="model")
    concat_gin_gout: bool = _opt(
        False, "feed [sequence features; GNN output] to the classifier", group="model"
    )
    use_highway: bool = _opt(False, "add a highway layer before the classifier", group="model")
    feature_mask_rate: float = _opt(
        0.25, "contrastive views: share of node-feature entries zeroed", group="model"
    )
    edge_perturb_rate: float = _opt(
        0.1, "contrastive views: share of edges re-targeted inside their dialogue", group="model"
    )
    contrastive_temperature: float = _opt(0.2, "InfoNCE temperature", group="model")

    # --- loss -----------------------------------------------------------
    encoder_loss_weight: float = _opt(
        0.03, "weight of the fusion reconstruction loss (the extension's default)", group="loss"
    )
    cl_loss_weight: float = _opt(0.2, "weight of the graph contrastive loss", group="loss")
    gate_reg_weight: float = _opt(
        0.01,
        "weight of the gate regulariser (hierarchical fusion only; 0 disables it)",
        group="loss",
    )
    class_weight: bool = _opt(False, "weight NLL by inverse training-label frequency", group="loss")

    # --- optimisation ---------------------------------------------------
    epochs: int = _opt(50, "training epochs", group="train")
    batch_size: int = _opt(32, "dialogues per batch", group="train")
    optimizer: str = _opt("adam", "optimizer", choices=OPTIMIZERS, group="train")
    learning_rate: float = _opt(3e-5, "learning rate", group="train")
    weight_decay: float = _opt(1e-8, "weight decay", group="train")
    gate_lr_scale: float = _opt(
        1.0, "learning-rate multiplier of the hierarchical gates and learned state", group="train"
    )
    scheduler: str = _opt("reduceLR", "learning-rate schedule", choices=SCHEDULERS, group="train")
    scheduler_patience: int = _opt(8, "ReduceLROnPlateau patience (epochs)", group="train")
    max_grad_value: float = _opt(
        -1.0, "clip gradients to this absolute value; -1 = no clipping", group="train"
    )
    seed: int = _opt(24, "random seed (python, numpy, torch)", group="train")
    num_threads: int = _opt(0, "torch intra-op threads; 0 = torch's default", group="train")
    self_pool_chunk: int = _opt(
        16, "utterances per self-pooling chunk (bounds memory; no effect on results)", group="train"
    )
    precision: str = _opt(
        "auto",
        "auto: bf16 where the device computes it natively (CUDA with bf16, CPUs with "
        "AVX-512-BF16 or AMX), else fp32; fp32; or bf16: mixed precision (bfloat16 autocast of the "
        "matrix products; results differ slightly from fp32, and it is several times slower than "
        "fp32 where bf16 is emulated)",
        choices=PRECISIONS,
        group="train",
    )
    # Averaged weights are what dev selection, test, checkpoints and re-runs use
    # (joyful/averaging.py). Default from the MELD measurements in docs/AVERAGING.md; 'none' is the
    # original behaviour.
    weight_averaging: str = _opt(
        "ema",
        "evaluate an average of the weights instead of the last ones: none "
        "(original), ema (exponential moving average over steps, --ema_epochs), swa (mean of "
        "the epoch-end weights from --swa_start on)",
        choices=WEIGHT_AVERAGING,
        group="train",
    )
    # A window in epochs, not a per-step decay: searches vary the batch size, and a fixed per-step
    # decay would average over 4x more epochs at batch 32 than at batch 8.
    ema_epochs: float = _opt(
        1.5,
        "window of --weight_averaging ema in epochs: the per-step decay is "
        "1 - 1/(ema_epochs x optimizer steps per epoch); bias-corrected",
        group="train",
    )
    swa_start: int = _opt(
        1, "first epoch whose end-of-epoch weights --weight_averaging swa averages", group="train"
    )
    # `last` is what a cross-validated search publishes: it chose the epoch count on its folds, so
    # the model of that count is kept whatever a dev split would pick (docs/TUNING.md,
    # "Resampling").
    select_epoch: str = _opt(
        "best",
        "which epoch's model is kept and tested: best (highest dev weighted F1, the "
        "original rule) or last (after --epochs epochs)",
        choices=SELECT_EPOCHS,
        group="train",
    )

    # ------------------------------------------------------------------
    def validate(self) -> JoyfulConfig:
        """Raise :class:`UserError` naming the flag when a value breaks a rule."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise UserError(
                    f"--{f.name} is {value!r}, but must be one of: {', '.join(choices)}"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{f.name} is {value}, but must be a finite number")
        mods = self.modalities
        if not mods or any(m not in MODALITY_LETTERS for m in mods) or len(set(mods)) != len(mods):
            raise UserError(
                f"--modalities is {mods!r}, but must be a non-empty subset of 'atv' without "
                "repeats (e.g. atv, at, t)"
            )
        for name in LOSS_WEIGHTS:
            problem = loss_weight_problem(name, getattr(self, name))
            if problem:
                raise UserError(problem)
        positive = (
            "epochs",
            "batch_size",
            "fusion_pool_dim",
            "fusion_hidden",
            "fusion_latent",
            "hidden_size",
            "seqcontext_nlayer",
            "gnn_nheads",
            "self_pool_chunk",
            "learning_rate",
            "gate_lr_scale",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise UserError(f"--{name} is {getattr(self, name)}, but must be > 0")
        for name in ("drop_rate", "feature_mask_rate", "edge_perturb_rate"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"--{name} is {getattr(self, name)}, but must be in [0, 1)")
        for name in ("wp", "wf"):
            if getattr(self, name) < -1:
                raise UserError(
                    f"--{name} is {getattr(self, name)}, but must be >= 0 or -1 (unbounded)"
                )
        if self.cv_folds < 0 or self.cv_folds == 1:
            raise UserError(
                f"--cv_folds is {self.cv_folds}, but must be 0 (the data's dev split) or >= 2"
            )
        if self.cv_folds and not 0 <= self.cv_fold <= self.cv_folds:
            raise UserError(
                f"--cv_fold is {self.cv_fold}, but must be 0..{self.cv_folds} with --cv_folds "
                f"{self.cv_folds} (0: train on all of train + dev)"
            )
        if self.cv_folds and self.cv_fold == 0 and self.select_epoch != "last":
            raise UserError(
                "--cv_fold 0 trains on all of train + dev, with no dev split to select an epoch "
                "on: "
                "pass --select_epoch last (and the epoch count as --epochs)"
            )
        if self.cv_fold_seed < 0:
            raise UserError(f"--cv_fold_seed is {self.cv_fold_seed}, but must be >= 0")
        if self.ema_epochs <= 0:
            raise UserError(f"--ema_epochs is {self.ema_epochs}, but must be > 0")
        if self.swa_start < 1:
            raise UserError(f"--swa_start is {self.swa_start}, but must be >= 1")
        if self.contrastive_temperature <= 0:
            raise UserError(
                f"--contrastive_temperature is {self.contrastive_temperature}, but must be > 0"
            )
        if (
            self.weight_decay < 0
            or self.seqcontext_nhead < 0
            or self.num_threads < 0
            or self.scheduler_patience < 0
        ):
            raise UserError(
                "--weight_decay, --seqcontext_nhead, --num_threads and --scheduler_patience must "
                "be >= 0"
            )
        if self.max_grad_value <= 0 and self.max_grad_value != -1:
            raise UserError(
                f"--max_grad_value is {self.max_grad_value}, but must be > 0 or -1 (no clipping)"
            )
        if self.emotion not in (None, "2class"):
            raise UserError(
                f"--emotion {self.emotion!r} is not implemented; only the MOSEI 2-class labels are "
                "(omit --emotion)"
            )
        if "/" in self.dataset or "\\" in self.dataset or self.dataset in ("", ".", ".."):
            raise UserError(
                f"--dataset {self.dataset!r} must be a plain name without path separators"
            )
        return self

    def inactive_settings(self) -> list[str]:
        """Settings the user changed that have no effect with this fusion (for a warning)."""
        notes = []
        if self.fusion != "hierarchical":
            if self.reconstruction_loss != "mse":
                notes.append(
                    "--use_smooth_l1/--reconstruction_loss acts only with "
                    "--use_hierarchical_fusion; the original AutoFusion keeps MSE"
                )
            if self.gate_reg_weight != field_default("gate_reg_weight"):
                notes.append(
                    "--gate_reg_weight acts only with --use_hierarchical_fusion (no gates "
                    "otherwise)"
                )
            if self.gate_lr_scale != field_default("gate_lr_scale"):
                notes.append(
                    "--gate_lr_scale acts only with --use_hierarchical_fusion (no gates otherwise)"
                )
        return notes

    # --- (de)serialisation ---------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> JoyfulConfig:
        """Build a config from a mapping, refusing unknown keys and wrong types."""
        if not isinstance(values, dict):
            raise UserError(
                f"{source}: expected a JSON object of settings, got {type(values).__name__}"
            )
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UserError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; valid names are the train.py "
                "flags"
            )
        return cls(**{k: coerce_value(k, v, source=source) for k, v in values.items()}).validate()

    def replace(self, **changes: Any) -> JoyfulConfig:
        return dataclasses.replace(self, **changes)


LOSS_WEIGHTS = ("encoder_loss_weight", "cl_loss_weight", "gate_reg_weight")


def loss_weight_problem(name: str, value: Any) -> str | None:
    """What is wrong with a loss weight (a finite number >= 0), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"--{name} is {value!r}, but must be a number"
    if not math.isfinite(value) or value < 0:
        return f"--{name} is {value}, but must be a finite number >= 0"
    return None


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(JoyfulConfig)]


def field_default(name: str) -> Any:
    for f in dataclasses.fields(JoyfulConfig):
        if f.name == name:
            return f.default
    raise KeyError(name)


def field_type(name: str) -> type:
    """The Python type of a field's value (``str`` for the optional strings)."""
    annotation = {f.name: f.type for f in dataclasses.fields(JoyfulConfig)}[name]
    text = str(annotation)
    for candidate, kind in (("bool", bool), ("int", int), ("float", float)):
        if text.startswith(candidate):
            return kind
    return str


def coerce_value(name: str, value: Any, *, source: str = "config") -> Any:
    """Check one value's type against the field; ints are accepted for floats."""
    if name not in field_names():
        raise UserError(f"{source}: unknown setting {name!r}")
    kind = field_type(name)
    optional = field_default(name) is None
    if value is None and optional:
        return None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise UserError(
            f"{source}: setting {name!r} must be of type {kind.__name__}, got {value!r}"
        )
    return value


def load_config_file(path: str | Path) -> tuple[JoyfulConfig, dict[str, Any]]:
    """Read a plain config JSON or a best-config file written by the tuning service.

    Both carry ``schema_version`` and a ``config`` object. Returns the config and
    the whole document (so callers can read the recorded metrics).
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--config {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise UserError(
            f"--config {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(document, dict) or "config" not in document:
        raise UserError(
            f"--config {path}: expected an object with 'schema_version' and 'config' keys"
        )
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise UserError(f"--config {path}: 'schema_version' must be an integer")
    if version != CONFIG_SCHEMA_VERSION:
        fix = (
            "upgrade joyful-tune"
            if version > CONFIG_SCHEMA_VERSION
            else "write it again with this joyful-tune"
        )
        raise UserError(
            f"--config {path}: schema_version {version}, but this joyful-tune reads version "
            f"{CONFIG_SCHEMA_VERSION}; {fix}"
        )
    source = f"--config {path}"
    try:
        config = JoyfulConfig.from_dict(document["config"], source=source)
    except UserError as exc:  # a value rule names the setting; say which file holds it
        message = str(exc)
        raise UserError(message if message.startswith(source) else f"{source}: {message}") from None
    return config, document


def config_document(config: JoyfulConfig) -> dict[str, Any]:
    """The JSON document `load_config_file` reads back."""
    return {"schema_version": CONFIG_SCHEMA_VERSION, "config": config.to_dict()}
