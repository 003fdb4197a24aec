"""How the result store writes its files beyond `joyful.io`'s atomic writes: one appended history
line, the name a corrupt best-config file is moved aside to, and a trials-table cell."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["append_line", "cell", "corrupt_path"]


def corrupt_path(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = path.name.removesuffix(".json")
    candidate, n = path.with_name(f"{stem}.corrupt-{stamp}.json"), 1
    while candidate.exists():
        candidate, n = path.with_name(f"{stem}.corrupt-{stamp}-{n}.json"), n + 1
    return candidate


def append_line(path: Path, line: str) -> None:
    """Append one line with a single write, then fsync (callers hold the lock)."""
    handle = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        data = line.encode() + b"\n"
        size = os.fstat(handle).st_size
        if size and os.pread(handle, 1, size - 1) != b"\n":
            data = b"\n" + data  # the previous append was cut short; don't glue onto it
        if os.write(handle, data) != len(data):
            raise OSError(f"short write to {path}")
        os.fsync(handle)
    finally:
        os.close(handle)


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def write_rows_csv(path: Path, rows: list[dict], fixed: tuple[str, ...]) -> Path:
    """Write `rows` (dicts with a `trial_id`) as CSV: the `fixed` columns, then the other keys."""
    import csv

    from joyful.io import atomic_write

    for index, row in enumerate(rows):
        if not isinstance(row, dict) or "trial_id" not in row:
            raise ValueError(f"trial row {index} must be a dict with a 'trial_id' key, got {row!r}")
    columns = [*fixed, *sorted({key for row in rows for key in row} - set(fixed))]

    def write(out: Any) -> None:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(column)) for column in columns])

    return atomic_write(path, write)
