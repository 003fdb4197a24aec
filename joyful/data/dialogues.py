"""Read a data file (either legacy layout) into validated, model-ready dialogues.

Layouts (docs/TRAINING.md, "Data"):
* processed: ``{"train","dev","test"}`` → lists of per-dialogue ``Sample`` records;
* raw: the DialogueGCN/MMGCN feature tuple of 9 items (10 for MELD and MOSEI).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from joyful.data.unpickle import Sample, restricted_load
from joyful.datasets import DatasetSpec
from joyful.errors import UserError
from joyful.io import check_data_file

SPLITS = ("train", "dev", "test")
MODALITY_NAMES = {"a": "audio", "t": "text", "v": "visual"}


@dataclass
class Dialogue:
    """One dialogue: L utterances with speakers, labels and per-modality features."""

    vid: str
    speakers: np.ndarray  # (L,) int64, index in [0, n_speakers)
    labels: np.ndarray  # (L,) int64, index in [0, n_classes)
    features: dict[str, np.ndarray] = field(default_factory=dict)  # letter -> (L, d) float32

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DialogueData:
    """The three splits of a data set plus what was learned from the file."""

    spec: DatasetSpec
    splits: dict[str, list[Dialogue]]
    modality_dims: dict[str, int]  # widths of the modalities the file has
    source: str = ""
    sha256: str = ""

    def check_modalities(self, modalities: str) -> dict[str, int]:
        """Widths of the requested modalities, in the order given; missing ones are an error."""
        missing = [m for m in modalities if m not in self.modality_dims]
        if missing:
            have = "".join(m for m in "atv" if m in self.modality_dims) or "none"
            names = ", ".join(f"{m} ({MODALITY_NAMES[m]})" for m in missing)
            raise UserError(
                f"--modalities {modalities}: the data in {self.source or 'this file'} has no "
                f"{names} features; it has: {have} (use e.g. --modalities {have})"
            )
        return {m: self.modality_dims[m] for m in modalities}

    def facts(self, modalities: str) -> dict[str, Any]:
        """What a config trained on this file records about it, so that a re-run can tell whether
        another file is the same data (`sha256`) or at least data of the same shape (widths, labels
        present)."""
        labels = np.unique(
            np.concatenate([d.labels for split in self.splits.values() for d in split])
        )
        return {
            "path": self.source,
            "sha256": self.sha256,
            "modality_dims": self.check_modalities(modalities),
            "label_values": [int(v) for v in labels],
            "label_names": list(self.spec.label_names),
        }

    def check_same_shape(self, modalities: str, recorded: dict[str, Any], where: str) -> str | None:
        """Compare this file with the data facts `recorded` (by `facts`) in a config file `where`.

        Other feature widths or another set of labels: UserError (a file of another data set). The
        same shape but another sha256: a warning line (returned), since a re-exported copy of the
        same data is common. None when the file is the recorded one.
        """
        if recorded.get("sha256") == self.sha256:
            return None
        ours = self.facts(modalities)
        for key, what in (("modality_dims", "feature widths"), ("label_values", "labels")):
            if key in recorded and recorded[key] != ours[key]:
                raise UserError(
                    f"{self.source} is not the data {where} was tuned on: its {what} are "
                    f"{ours[key]}, "
                    f"the config's data had {recorded[key]}; pass the data file it records "
                    f"({recorded.get('path', 'see the file')})"
                )
        shape = (
            "same feature widths and labels"
            if "modality_dims" in recorded
            else "shape not recorded"
        )
        return (
            f"warning: {self.source} differs from the data {where} was tuned on (sha256 "
            f"{self.sha256[:12]}… vs "
            f"{str(recorded.get('sha256'))[:12]}…; {shape}); results will differ from the recorded "
            "ones"
        )

    def label_counts(self, split: str = "train") -> np.ndarray:
        labels = np.concatenate([d.labels for d in self.splits[split]])
        return np.bincount(labels, minlength=self.spec.n_classes)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dialogue_data(path: str | Path, spec: DatasetSpec) -> DialogueData:
    """Load and validate a data file; every problem is a one-line :class:`UserError`."""
    path = Path(path)
    source = f"data file {path}"
    check_data_file(path, source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(
            f"{source} cannot be read ({exc.strerror}); check its permissions"
        ) from None
    if not raw:
        raise UserError(f"{source} is empty")
    content = restricted_load(raw, source=source)
    if isinstance(content, dict):
        splits = _from_processed(content, source)
    elif isinstance(content, (tuple, list)) and len(content) in (9, 10):
        splits = _from_raw_tuple(content, spec, source)
    else:
        raise UserError(
            f"{source}: expected a dict with train/dev/test or a 9/10-item feature tuple, got "
            f"{type(content).__name__}"
        )
    splits = {
        name: [_normalise(rec, spec, f"{source} [{name}]") for rec in records]
        for name, records in splits.items()
    }
    dims = _check_widths(splits, source)
    return DialogueData(spec, splits, dims, str(path), hashlib.sha256(raw).hexdigest())


# --- layouts -----------------------------------------------------------------


def _from_processed(content: dict, source: str) -> dict[str, list[dict]]:
    missing = [s for s in SPLITS if s not in content]
    if missing:
        raise UserError(f"{source}: processed layout lacks split(s) {', '.join(missing)}")
    result = {}
    for split in SPLITS:
        records = content[split]
        if not isinstance(records, (list, tuple)):
            raise UserError(f"{source}: split {split!r} must be a list of Sample records")
        if not records:
            raise UserError(f"{source}: split {split!r} is empty")
        converted = []
        for record in records:
            if not isinstance(record, Sample):
                raise UserError(
                    f"{source}: split {split!r} holds a {type(record).__name__}, not a Sample "
                    "record"
                )
            attrs = record.__dict__
            text = attrs.get("sbert_sentence_embeddings")
            if text is None:
                text = attrs.get("text")
            converted.append(
                {
                    "vid": attrs.get("vid", ""),
                    "speaker": attrs.get("speaker"),
                    "label": attrs.get("label"),
                    "a": attrs.get("audio"),
                    "t": text,
                    "v": attrs.get("visual"),
                }
            )
        result[split] = converted
    return result


def _from_raw_tuple(content: tuple, spec: DatasetSpec, source: str) -> dict[str, list[dict]]:
    ids, speakers, labels, text, audio, visual = content[:6]
    for name, table in (("videoIDs", ids), ("videoSpeakers", speakers), ("videoLabels", labels)):
        if not isinstance(table, dict):
            raise UserError(
                f"{source}: raw tuple item {name} must be a dict, got {type(table).__name__}"
            )
    if spec.raw_dev_split and len(content) == 10:
        # The data set ships its own dev split: (..., trainVids, dev_vids, test_vids).
        split_vids = {
            "train": _ordered(content[7]),
            "dev": _ordered(content[8]),
            "test": _ordered(content[9]),
        }
    else:
        # Original preprocess rule: dev = the first 10% of trainVid in stored order.
        train_vids = _ordered(content[7])
        dev_size = int(0.1 * len(train_vids))
        split_vids = {
            "train": train_vids[dev_size:],
            "dev": train_vids[:dev_size],
            "test": _ordered(content[8]),
        }

    def record(vid: Any) -> dict:
        if vid not in labels:
            raise UserError(f"{source}: dialogue {vid!r} is listed in a split but has no labels")
        label = labels[vid]
        if spec.sentiment_labels:
            # Sentiment scores: below 0 is Negative, otherwise Positive (2-class rule).
            label = [0 if _sentiment_score(x, vid, source) < 0 else 1 for x in label]
        return {
            "vid": str(vid),
            "speaker": speakers.get(vid),
            "label": label,
            "a": _get(audio, vid),
            "t": _get(text, vid),
            "v": _get(visual, vid),
        }

    result = {}
    for split, vids in split_vids.items():
        if not vids:
            raise UserError(f"{source}: split {split!r} is empty")
        result[split] = [record(v) for v in vids]
    return result


def _sentiment_score(value: Any, vid: Any, source: str) -> float:
    """One utterance's sentiment score; MOSEI feature files of another release hold a vector per
    utterance."""
    try:
        return float(value)
    except (TypeError, ValueError):
        shape = getattr(value, "shape", None)
        what = (
            f"an array of shape {tuple(shape)}"
            if shape is not None
            else f"{type(value).__name__} {value!r:.40}"
        )
        raise UserError(
            f"{source}: dialogue {vid!r}: a sentiment label is {what}, not one score (this loader "
            "reads the 2-class layout: one score per utterance)"
        ) from None


def _ordered(vids: Iterable) -> list:
    # A set has no stored order (its iteration order follows PYTHONHASHSEED): sort it to stay
    # reproducible.
    if isinstance(vids, (set, frozenset)):
        return sorted(vids, key=str)
    return list(vids)


def _get(table: Any, vid: Any) -> Any:
    return table.get(vid) if isinstance(table, dict) else None


# --- per-dialogue normalisation ---------------------------------------------------


def _normalise(rec: dict, spec: DatasetSpec, where: str) -> Dialogue:
    vid = str(rec["vid"])
    where = f"{where} dialogue {vid!r}"
    labels = _labels(rec["label"], spec, where)
    length = len(labels)
    if length == 0:
        raise UserError(f"{where}: has no utterances")
    speakers = _speakers(rec["speaker"], spec, where, length)
    features = {}
    for letter in "atv":
        matrix = _feature_matrix(rec[letter], where, MODALITY_NAMES[letter])
        if matrix is None:
            continue
        if matrix.shape[0] != length:
            raise UserError(
                f"{where} {MODALITY_NAMES[letter]}: {matrix.shape[0]} feature rows for {length} "
                "labels"
            )
        features[letter] = matrix
    return Dialogue(vid, speakers, labels, features)


def _labels(raw: Any, spec: DatasetSpec, where: str) -> np.ndarray:
    try:
        labels = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f"{where}: labels are not numbers") from None
    if not np.all(labels == np.round(labels)):
        raise UserError(f"{where}: labels must be integer class indices")
    bad = np.flatnonzero((labels < 0) | (labels >= spec.n_classes))
    if bad.size:
        raise UserError(
            f"{where} utterance {int(bad[0])}: label {int(labels[bad[0]])} is outside the label "
            f"map of {spec.name!r} (0..{spec.n_classes - 1}: {', '.join(spec.label_names)})"
        )
    return labels.astype(np.int64)


def _speakers(raw: Any, spec: DatasetSpec, where: str, length: int) -> np.ndarray:
    if raw is None or len(raw) != length:
        raise UserError(f"{where}: needs one speaker per utterance ({length})")
    first = raw[0]
    if isinstance(first, str):
        table = {code: index for index, code in enumerate(spec.speaker_codes)}
        unknown = {s for s in raw if s not in table}
        if unknown:
            codes = " or ".join(repr(c) for c in spec.speaker_codes)
            raise UserError(f"{where}: speaker codes must be {codes}, got {sorted(unknown)[0]!r}")
        index = np.array([table[s] for s in raw], dtype=np.int64)
    else:
        array = np.asarray(raw, dtype=np.float64)
        # One-hot vectors (MELD) become the index of their largest entry.
        index = array.argmax(axis=1) if array.ndim == 2 else array.astype(np.int64)
        index = index.astype(np.int64)
    if index.min() < 0 or index.max() >= spec.n_speakers:
        raise UserError(
            f"{where}: speaker index {int(index.max())} is outside 0..{spec.n_speakers - 1} for "
            f"{spec.name!r}"
        )
    return index


def _feature_matrix(raw: Any, where: str, name: str) -> np.ndarray | None:
    """Stack per-utterance vectors into (L, d) float32; None when the modality is absent or not
    numeric."""
    if raw is None:
        return None
    rows = list(raw) if not isinstance(raw, np.ndarray) else raw
    if len(rows) == 0:
        return None
    if isinstance(rows, np.ndarray) and rows.dtype.kind in "fiu":
        matrix = rows.astype(np.float32, copy=False)
        if matrix.ndim == 3:  # frame sequences (raw MOSEI audio): mean over frames
            matrix = matrix.mean(axis=1)
    else:
        try:
            vectors = []
            for row in rows:
                array = np.asarray(row, dtype=np.float32)
                if array.ndim == 2:  # frame sequence: average over frames
                    array = array.mean(axis=0)
                vectors.append(array.reshape(-1))
        except (TypeError, ValueError):
            return None  # e.g. raw MOSEI text as word lists: not features
        odd = next((i for i, v in enumerate(vectors) if v.shape[0] != vectors[0].shape[0]), None)
        if odd is not None:
            raise UserError(
                f"{where} utterance {odd} {name}: vector of width {vectors[odd].shape[0]}, "
                f"but utterance 0's has width {vectors[0].shape[0]}"
            )
        matrix = np.stack(vectors)
    if matrix.ndim != 2:
        raise UserError(f"{where}: {name} features must be one vector per utterance")
    finite = np.isfinite(matrix)
    if not finite.all():
        row, column = (int(i[0]) for i in np.nonzero(~finite))
        raise UserError(
            f"{where} utterance {row} {name}: feature {column} is {matrix[row, column]} "
            "(NaN or infinite values are not features)"
        )
    return matrix


def _check_widths(splits: dict[str, list[Dialogue]], source: str) -> dict[str, int]:
    """Every dialogue must carry the same modalities with the same widths."""
    reference = splits["train"][0]
    dims = {m: x.shape[1] for m, x in reference.features.items()}
    for split, dialogues in splits.items():
        for d in dialogues:
            have = {m: x.shape[1] for m, x in d.features.items()}
            if have != dims:
                letter = next(m for m in "atv" if have.get(m) != dims.get(m))
                name = MODALITY_NAMES[letter]
                raise UserError(
                    f"{source} [{split}] dialogue {d.vid!r} utterance 0 {name}: width "
                    f"{have.get(letter, 'absent')}, "
                    f"but {name} is {dims.get(letter, 'absent')} wide in train dialogue "
                    f"{reference.vid!r}"
                )
    if not dims:
        raise UserError(f"{source}: no numeric audio, text or visual features found")
    return dims
