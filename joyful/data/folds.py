"""K-fold cross-validation by dialogue over train + dev; the test split never enters.

A small dev split makes every decision taken on it a coin toss (IEMOCAP's original rule carves a
dozen dialogues). With `--cv_folds K --cv_fold f`, a run trains on the other K-1 folds of train +
dev and scores fold f as its dev split; `tune/` scores a setting by the mean over its folds
(docs/TUNING.md, "Resampling").

Folds are whole dialogues (utterances of one dialogue are never split), stratified by each
dialogue's most frequent label and balanced by utterance count: dialogues are sorted by that label,
then by length (largest first), and each goes to the fold with the fewest utterances of that label
so far (ties: the fold with fewest utterances, then the lowest index). The assignment depends on the
data alone, so every trial, run and re-run of a search sees the same folds, and `train.py --config`
re-runs any of them exactly.
"""

from __future__ import annotations

import numpy as np

from joyful.data.dialogues import Dialogue, DialogueData
from joyful.errors import UserError

__all__ = ["assign_folds", "fold_data"]


def assign_folds(dialogues: list[Dialogue], folds: int, seed: int = 0) -> list[int]:
    """The fold (0..folds-1) of each dialogue, in the order given. `seed` 0 is the assignment of the
    module docstring; another seed visits the dialogues of each label in a random order (seeded),
    which gives another assignment with the same balance."""
    if folds < 2:
        raise UserError(
            f"--cv_folds is {folds}, but cross-validation needs at least 2 folds (0 = the data's "
            "dev split)"
        )
    if folds > len(dialogues):
        raise UserError(
            f"--cv_folds is {folds}, but train + dev hold only {len(dialogues)} dialogues"
        )
    dominant = [int(np.bincount(d.labels).argmax()) for d in dialogues]
    if seed:
        rank = np.random.default_rng(seed).permutation(len(dialogues))
        order = sorted(range(len(dialogues)), key=lambda i: (dominant[i], rank[i]))
    else:
        order = sorted(range(len(dialogues)), key=lambda i: (dominant[i], -len(dialogues[i]), i))
    per_label: dict[int, np.ndarray] = {}
    utterances = np.zeros(folds, dtype=np.int64)
    assignment = [0] * len(dialogues)
    for index in order:
        label_load = per_label.setdefault(dominant[index], np.zeros(folds, dtype=np.int64))
        fold = min(range(folds), key=lambda f: (label_load[f], utterances[f], f))
        assignment[index] = fold
        label_load[fold] += len(dialogues[index])
        utterances[fold] += len(dialogues[index])
    return assignment


def fold_data(data: DialogueData, folds: int, fold: int, seed: int = 0) -> DialogueData:
    """`data` with fold `fold` (1..folds) of train + dev (assignment `seed`) as its dev split and
    the other folds as train; fold 0: all of train + dev as train and no dev split (a refit)."""
    if not 0 <= fold <= folds:
        raise UserError(f"--cv_fold is {fold}, but must be 0..{folds} with --cv_folds {folds}")
    pool = data.splits["train"] + data.splits["dev"]
    assignment = assign_folds(pool, folds, seed) if fold else [folds] * len(pool)  # none held out
    held_out = [d for d, f in zip(pool, assignment, strict=True) if f == fold - 1]
    rest = [d for d, f in zip(pool, assignment, strict=True) if f != fold - 1]
    return DialogueData(
        data.spec,
        {"train": rest, "dev": held_out, "test": data.splits["test"]},
        data.modality_dims,
        source=data.source,
        sha256=data.sha256,
    )
