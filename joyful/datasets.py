"""Data-set facts in one place: label names, speaker count, default file location.

Modality widths are never listed here: they are read from the data file.
A user-defined data set is a small JSON spec file (see :func:`load_spec_file`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from joyful.errors import UserError


@dataclass(frozen=True)
class DatasetSpec:
    """What the model needs to know about a data set before reading it."""

    name: str
    label_names: tuple[str, ...]
    n_speakers: int
    description: str = ""
    # Speaker codes of the raw layouts, in index order (IEMOCAP: 'M' -> 0, 'F' -> 1); one-hot or
    # integer speakers need none.
    speaker_codes: tuple[str, ...] = ("M", "F")
    # The raw 10-item tuple carries its own dev split (trainVids, dev_vids, test_vids) instead of
    # the original preprocess rule (dev = the first 10% of trainVid in stored order).
    raw_dev_split: bool = False
    # Raw labels are sentiment scores: below 0 is class 0 (Negative), otherwise 1 (Positive).
    sentiment_labels: bool = False

    @property
    def n_classes(self) -> int:
        return len(self.label_names)


IEMOCAP_6 = ("hap", "sad", "neu", "ang", "exc", "fru")
IEMOCAP_4 = ("hap", "sad", "neu", "ang")
MELD_7 = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("iemocap", IEMOCAP_6, 2, "IEMOCAP, 6 emotions, speakers M/F"),
        DatasetSpec("iemocap_4", IEMOCAP_4, 2, "IEMOCAP, 4 emotions, speakers M/F"),
        DatasetSpec(
            "mosei",
            ("Negative", "Positive"),
            1,
            "CMU-MOSEI sentiment, 2 classes (7class/multilabel not implemented)",
            raw_dev_split=True,
            sentiment_labels=True,
        ),
        DatasetSpec("meld", MELD_7, 9, "MELD, 7 emotions, up to 9 speakers"),
        DatasetSpec(
            "meld_text", MELD_7, 9, "MELD text + timing features (a=timing, t=MiniLM; no visual)"
        ),
        DatasetSpec(
            "synthetic", IEMOCAP_4, 2, "built-in synthetic data (IEMOCAP-4 shape), see joyful-synth"
        ),
    )
}

_NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_dataset_name(name: str) -> str:
    if not _NAME_RULE.match(name) or name in (".", ".."):
        raise UserError(
            f"data-set name {name!r} must be a plain name (letters, digits, _ . -), without path "
            "separators"
        )
    return name


def resolve_dataset(name: str, spec_file: str | Path | None = None) -> DatasetSpec:
    """The registry entry for `name`, or the spec in `spec_file`; unknown names list the valid
    ones."""
    check_dataset_name(name)
    if spec_file is not None:
        spec = load_spec_file(spec_file)
        if spec.name != name:
            raise UserError(
                f"--dataset-spec {spec_file} defines data set {spec.name!r}, not {name!r}"
            )
        return spec
    if name not in REGISTRY:
        raise UserError(
            f"unknown data set {name!r}; valid: {', '.join(sorted(REGISTRY))} "
            "(or describe your own with --dataset-spec FILE.json)"
        )
    return REGISTRY[name]


def load_spec_file(path: str | Path) -> DatasetSpec:
    """Read ``{"name": ..., "label_names": [...], "n_speakers": N}`` from JSON."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"--dataset-spec {path}: cannot read a JSON object ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"--dataset-spec {path}: expected a JSON object")
    unknown = set(raw) - {"name", "label_names", "n_speakers", "description"}
    if unknown:
        raise UserError(f"--dataset-spec {path}: unknown key(s) {', '.join(sorted(unknown))}")
    name, labels, speakers = raw.get("name"), raw.get("label_names"), raw.get("n_speakers")
    if not isinstance(name, str):
        raise UserError(f"--dataset-spec {path}: 'name' must be a string")
    check_dataset_name(name)
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) for x in labels)
    ):
        raise UserError(f"--dataset-spec {path}: 'label_names' must list at least two strings")
    if len(set(labels)) != len(labels):
        raise UserError(f"--dataset-spec {path}: 'label_names' has duplicates")
    if not isinstance(speakers, int) or isinstance(speakers, bool) or speakers < 1:
        raise UserError(f"--dataset-spec {path}: 'n_speakers' must be an integer >= 1")
    return DatasetSpec(name, tuple(labels), speakers, str(raw.get("description", "")))


def default_data_path(data_dir: str | Path, name: str, transformers: bool = False) -> Path:
    """Where the original code looks: ``<data_dir>/<name>/[transformers/]data_<name>.pkl``."""
    folder = Path(data_dir) / name
    if transformers:
        folder = folder / "transformers"
    return folder / f"data_{name}.pkl"
