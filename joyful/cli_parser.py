"""The argument parser of every command: `--version`, and errors in one line with the fix.

argparse's own `error` prints the whole usage (35 lines for `train.py`) above the reason; here the
reason comes alone, with where to look. Nothing heavy is imported: every command parses its
arguments (and answers `--help`, `--version` and argument errors) before it imports torch, Ray,
Optuna or matplotlib.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from joyful import __version__

__all__ = ["Parser"]


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `--version` and one-line errors (exit status 2)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's own signature
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"joyful-tune {__version__}",
                          help="print the version and exit")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")
