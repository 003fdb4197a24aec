"""Where the shipped search spaces live: one file per data set, and the default one for a data set
without."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DEFAULT_SPACE_NAME",
    "DEFAULT_SPACE_PATH",
    "SPACES_DIR",
    "default_space_path",
    "shipped_names",
]

SPACES_DIR = Path(__file__).resolve().parents[2] / "search_spaces"
# Used when a data set has no space file of its own; its `dataset: default` becomes the data set's
# name.
DEFAULT_SPACE_PATH = SPACES_DIR / "default.yaml"
DEFAULT_SPACE_NAME = "default"


def default_space_path(dataset: str) -> Path:
    return SPACES_DIR / f"{dataset}.yaml"


def shipped_names() -> list[str]:
    """The names of the shipped space files (default, iemocap, ...), sorted."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))
