"""The argument parser of every command: `--version`, and errors in one line with the fix.

argparse's own `error` prints the whole usage (35 lines for `train.py`) above the reason; here the
reason comes alone, with where to look. Nothing heavy is imported: every command parses its
arguments (and answers `--help`, `--version` and argument errors) before it imports torch, Ray,
Optuna or matplotlib.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import NoReturn

from joyful import __version__

__all__ = ["Parser"]


class Parser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` with `--version` and one-line errors (exit status 2) that name a
    mistyped flag and the flag it was probably meant to be. Abbreviated flags are refused, not
    guessed: with many similar flags a prefix could silently pick another setting."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's own signature
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--version",
            action="version",
            version=f"joyful-tune {__version__}",
            help="print the version and exit",
        )
        self._given: list[str] = []

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ):  # noqa: ANN201
        import sys

        self._given = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        unknown = self._unknown_flags()
        if unknown:  # before "required" or "expected one argument": the typo is the mistake to fix
            flag, near = unknown[0]
            message = f"unrecognized argument {flag}" + (f"; did you mean {near}?" if near else "")
        self.exit(2, f"{self.prog}: error: {message} (`{self.prog} --help` lists the options)\n")

    def _unknown_flags(self) -> list[tuple[str, str | None]]:
        """The flags given that no option has, each with the closest known flag (or None)."""
        known = [flag for action in self._actions for flag in action.option_strings]
        found = []
        for token in self._given:
            flag = token.split("=", 1)[0]
            if flag.startswith("--") and flag not in known:
                near = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
                found.append((flag, near[0] if near else None))
        return found
