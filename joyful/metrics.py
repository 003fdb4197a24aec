"""Classification metrics (pure functions over label arrays)."""

from __future__ import annotations

import numpy as np

# sklearn is imported where it is used: it costs most of a second, and the command-line tools import
# this module before they know whether they will score anything.


def weighted_f1(labels: np.ndarray, predictions: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, average="weighted", zero_division=0))


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(labels, predictions))


def per_class_report(
    labels: np.ndarray, predictions: np.ndarray, label_names: tuple[str, ...]
) -> dict:
    """sklearn's report as a dict: precision/recall/F1/support per class plus averages."""
    from sklearn.metrics import classification_report

    return classification_report(
        labels,
        predictions,
        labels=list(range(len(label_names))),
        target_names=list(label_names),
        output_dict=True,
        zero_division=0,
    )
