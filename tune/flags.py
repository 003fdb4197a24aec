"""How typed options become a command line: a dataclass field per flag (`flag`), the parser
generated from the fields (`options_parser`), and the options read back from it
(`Options.from_namespace`). The space file's `budget` and `strategy` settings are flags too: one per
field of Budget and Strategy (`space_flags`), collected in the options' `overrides`.

Nothing heavy is imported here: the commands answer --help, --version and argument errors before
torch, Ray or Optuna load.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

from joyful.cli_parser import Parser
from tune.space import Budget, Strategy

__all__ = [
    "ALWAYS",
    "NEVER",
    "PER_DATASET",
    "SPACE_SECTIONS",
    "Options",
    "flag",
    "options_parser",
    "space_flags",
    "spelling",
]

BUDGET = "budget (defaults come from the space file's `budget`)"
STRATEGY = "strategy (defaults come from the space file's `strategy`)"
# The space-file sections whose every field is also a flag of the same name: (section, group,
# dataclass).
SPACE_SECTIONS = (("budget", BUDGET, Budget), ("strategy", STRATEGY, Strategy))

# How a flag goes into the command that resumes a search; without `resume`: when it differs from its
# default.
PER_DATASET = "per dataset"  # one value per --dataset, written beside it
# written even at its default: a later version's default must not change a resumed search
ALWAYS = "always"
NEVER = "never"  # a resumed search continues with what it had


def flag(
    default: Any = dataclasses.MISSING, help: str = "", *, group: str | None = None, **metadata: Any
) -> Any:
    """An options field: `default` (none: a required flag; False: a switch), and what the parser
    needs.

    `metadata` may hold type, choices, metavar, const (the value of the flag given without one),
    repeatable (the flag may be given several times; the field is a tuple) and resume (PER_DATASET,
    ALWAYS or NEVER).
    """
    return dataclasses.field(default=default, metadata={"help": help, "group": group, **metadata})


def space_flags() -> list[tuple[str, tuple[dataclasses.Field, ...]]]:
    """(argument group, fields) of the space-file settings the command line may override."""
    return [(group, dataclasses.fields(kind)) for _, group, kind in SPACE_SECTIONS]


def spelling(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def options_parser(options: type, prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of an options dataclass: one flag per field, in field order, in the fields'
    groups."""
    parser = Parser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    groups: dict[str | None, Any] = {None: parser}
    for f in dataclasses.fields(options):
        meta = f.metadata
        if meta.get("generated"):
            for group, fields in space_flags() if f.name == "overrides" else ():
                section = parser.add_argument_group(group)
                for setting in fields:
                    keys = {
                        key: setting.metadata[key]
                        for key in ("type", "choices", "metavar")
                        if key in setting.metadata
                    }
                    section.add_argument(
                        spelling(setting.name),
                        default=None,
                        help=setting.metadata["help"],
                        dest=f"space_{setting.name}",
                        **keys,
                    )
            continue
        if meta["group"] not in groups:
            groups[meta["group"]] = parser.add_argument_group(meta["group"])
        keys: dict[str, Any] = {"help": meta["help"]}
        if f.default is False:
            keys["action"] = "store_true"
        else:
            keys.update(
                {key: meta[key] for key in ("type", "choices", "metavar", "const") if key in meta}
            )
            if "const" in meta:
                keys["nargs"] = "?"
            if meta.get("repeatable"):
                keys["action"] = "append"
            if f.default is dataclasses.MISSING:
                keys["required"] = True
            else:
                keys["default"] = list(f.default) if meta.get("repeatable") else f.default
        groups[meta["group"]].add_argument(spelling(f.name), **keys)
    return parser


OptionsType = TypeVar("OptionsType", bound="Options")


class Options:
    """What the commands' options share: reading them from the parser their fields generated."""

    @classmethod
    def from_namespace(cls: type[OptionsType], namespace: argparse.Namespace) -> OptionsType:
        """The options a parsed command line holds (repeated flags as tuples), checked."""
        values = {
            f.name: getattr(namespace, f.name)
            for f in dataclasses.fields(cls)
            if not f.metadata.get("generated")
        }
        if any(f.name == "overrides" for f in dataclasses.fields(cls)):
            values["overrides"] = tuple(
                (f.name, getattr(namespace, f"space_{f.name}"))
                for _, fields in space_flags()
                for f in fields
                if getattr(namespace, f"space_{f.name}") is not None
            )
        return cls(**{name: tuple(v) if isinstance(v, list) else v for name, v in values.items()})
