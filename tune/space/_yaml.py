"""Reading a space file's YAML: duplicate keys refused, the file's sha256, and the checks of one
mapping's type and keys (with the closest valid key for a mistyped one)."""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from joyful.errors import UserError
from tune.space._parameter import is_plain
from tune.space._shipped import shipped_names

__all__ = ["check_keys", "mapping", "read_yaml"]


class _Loader(yaml.SafeLoader):
    """Safe loader that refuses duplicate keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not is_plain(key):
                continue  # the base class reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads `1e-4` (no dot) as a string; accept it as the float everyone means.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(path: Path, where: str) -> tuple[Any, str]:
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(
            f"{where}: file not found (shipped spaces: {', '.join(shipped_names())})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{where}: cannot read it ({exc})") from None
    try:
        doc = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: {line}invalid YAML ({problem})") from None
    return doc, hashlib.sha256(data).hexdigest()


def mapping(raw: Any, where: str, key: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise UserError(f"{where}: {key}: must be a mapping with string keys, got {raw!r}")
    return raw


def check_keys(raw: dict, valid: tuple[str, ...], where: str, key: str) -> None:
    for k in raw:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"{where}: {key}: unknown key {k!r}; {hint}valid keys: {', '.join(valid)}"
            )
