"""The small rules of tune/, each written once: what a score is, what a stored cell holds, how a
value and a moment are written. Everything in tune/ that needs one of them imports it from here."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["finite", "fmt_value", "present", "slug", "utc_now", "utc_stamp"]


def finite(value: Any) -> bool:
    """Whether `value` is a finite number: a score. Booleans are not numbers here (True is not a wF1
    of 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def present(value: Any) -> bool:
    """Whether a stored cell holds a value (not None, "" or NaN: a parameter inactive in that
    trial)."""
    return (
        value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))
    )


def fmt_value(value: Any) -> str:
    """A parameter value as tables and summaries print it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def slug(name: str) -> str:
    """`name` made safe as a file name: every character outside [A-Za-z0-9_.-] becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def utc_now() -> str:
    """This moment in UTC as records store it (ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def utc_stamp() -> str:
    """This moment in UTC as a default experiment name carries it (20261201-061436)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}"
