"""What Ray's trial folder names tell: `<trainable>_<trial id>_<number>_<params>_<time>`."""

from __future__ import annotations


def trial_number(folder_name: str, trial_id: str) -> int | None:
    """The trial's creation number in its experiment (1, 2, ...), or None if the name has no
    number."""
    _, _, tag = folder_name.partition(f"_{trial_id}_")
    number = tag.split("_", 1)[0]
    return int(number) if number.isdigit() else None
