"""The base of every part of a best config: a frozen dataclass that checks its values and owns its JSON form.

A part is read with `from_dict` and written with `to_dict`, and `from_dict(d).to_dict() == d` holds key for
key and in key order: keys the part does not know are kept in `extra`, and the order of the keys it was
read from is kept in `keys`, so that a file rewritten unchanged (migrate, the store's compare-and-swap)
stays byte for byte what it was, also a file written by an older joyful-tune that lacks a newer key.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

__all__ = ["DOCUMENT", "Part", "check_type", "finite_number", "type_names"]

DOCUMENT = "best-config document"  # how every message names the file's form

P = TypeVar("P", bound="Part")


def type_names(kinds: tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in kinds)


def check_type(name: str, value: Any, kinds: type | tuple[type, ...]) -> Any:
    """`value` when it is one of `kinds`, else ValueError naming `name` (the key's path) and the rule."""
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    # bool is an int subclass, but True is no epoch number
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ValueError(f"{DOCUMENT}: '{name}' must be {type_names(allowed)}, got {value!r}")
    return value


def finite_number(name: str, value: Any) -> None:
    check_type(name, value, (int, float))
    if not math.isfinite(value):
        raise ValueError(f"{DOCUMENT}: '{name}' is {value}, but must be a finite number")


@dataclass(frozen=True)
class Part:
    """A part of a best config. Subclasses are frozen dataclasses and name, as class variables:

    * `KEY`: where the part sits in a best config ("metric", "ensemble.members[]"), for messages;
    * `REQUIRED`: keys a document must have (the other fields may be absent: older files lack them);
    * `TYPES`: the JSON types of each field's value (None is allowed for a field that is absent);
    * `PARTS` / `LISTS`: fields holding a part / a list of parts, read and written by that part's class;
    * `OMIT_NONE`: fields written only when set (a part built in code, not read from a file);
    * `RENAMED`: field name -> JSON key, where the key is no Python name (``class``);
    * `UNSTORED`: fields a subclass holds in memory only (never written);
    * `NULLABLE`: required part fields that may be null;
    * `KEEP_ORDER`: False where the form is always written in field order (the best config's top level).
    """

    KEY: ClassVar[str] = ""
    REQUIRED: ClassVar[tuple[str, ...]] = ()
    TYPES: ClassVar[dict[str, type | tuple[type, ...]]] = {}
    PARTS: ClassVar[dict[str, type[Part]]] = {}
    LISTS: ClassVar[dict[str, type[Part]]] = {}
    OMIT_NONE: ClassVar[tuple[str, ...]] = ()
    RENAMED: ClassVar[dict[str, str]] = {}
    UNSTORED: ClassVar[tuple[str, ...]] = ()
    NULLABLE: ClassVar[tuple[str, ...]] = ()
    KEEP_ORDER: ClassVar[bool] = True

    extra: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False)
    # The key order of the document it was read from (None: built in code, written in field order).
    keys: tuple[str, ...] | None = field(default=None, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in self.field_names():
            value = getattr(self, name)
            if name in self.PARTS:
                self._check_part(name, value)
                continue
            if name in self.LISTS:
                self._check_list(name, value)
                continue
            kinds = self.TYPES.get(name)
            if kinds is None or (value is None and name not in self.REQUIRED):
                continue
            check_type(self._path(name), value, kinds)
        self.check()

    def _check_part(self, name: str, value: Any) -> None:
        if value is None:
            if name in self.REQUIRED and name not in self.NULLABLE:
                raise ValueError(f"{DOCUMENT}: '{self._path(name)}' must be an object, got None")
        elif not isinstance(value, self.PARTS[name]):
            raise ValueError(f"'{self._path(name)}' must be a {self.PARTS[name].__name__} (build it with "
                             f"{self.PARTS[name].__name__}.from_dict), got {type(value).__name__}")

    def _check_list(self, name: str, value: Any) -> None:
        if value is None and name not in self.REQUIRED:
            return
        check_type(self._path(name), value, list)
        kind = self.LISTS[name]
        if not all(isinstance(item, kind) for item in value):
            raise ValueError(f"'{self._path(name)}' must be a list of {kind.__name__}")

    def check(self) -> None:
        """The part's own rules beyond JSON types; raise ValueError naming the key and the rule."""

    def replace(self: P, **changes: Any) -> P:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields written to JSON (not `extra`, `keys` or the `UNSTORED` ones)."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in ("extra", "keys", *cls.UNSTORED)]

    @classmethod
    def _key(cls, name: str) -> str:
        return cls.RENAMED.get(name, name)

    @classmethod
    def _path(cls, name: str) -> str:
        return f"{cls.KEY}.{cls._key(name)}" if cls.KEY else cls._key(name)

    @classmethod
    def from_dict(cls: type[P], document: Any) -> P:
        """Validate and build; ValueError names the first missing or invalid key."""
        if not isinstance(document, dict):
            raise ValueError(f"{DOCUMENT}: '{cls.KEY}' must be an object, got {document!r}")
        names = cls.field_names()
        for name in cls.REQUIRED:
            if cls._key(name) not in document:
                raise ValueError(f"{DOCUMENT}: missing key '{cls._path(name)}'")
        values: dict[str, Any] = {}
        for name in names:
            key = cls._key(name)
            if key not in document:
                continue
            value = document[key]
            if name in cls.PARTS and value is not None:
                value = cls.PARTS[name].from_dict(value)
            elif name in cls.LISTS and value is not None:
                items = check_type(cls._path(name), value, list)
                value = [cls.LISTS[name].from_dict(item) for item in items]
            values[name] = value
        known = {cls._key(n) for n in names}
        return cls(**values, extra={k: v for k, v in document.items() if k not in known},
                   keys=tuple(document) if cls.KEEP_ORDER else None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the keys it was read with, in their order, then fields set since, then unknown keys."""
        fields = {self._key(f.name): f for f in dataclasses.fields(self) if f.name in self.field_names()}
        order = [*(self.keys or ()), *fields, *self.extra]
        document: dict[str, Any] = {}
        for key in order:
            if key in document:
                continue
            if key in fields:
                value = getattr(self, fields[key].name)
                if self.keys is None:
                    if value is None and fields[key].name in self.OMIT_NONE:
                        continue  # optional, unset
                elif key not in self.keys and value == _default(fields[key]):
                    continue  # absent from the file it was read from, and not set since
                document[key] = plain(value)
            elif key in self.extra:
                document[key] = self.extra[key]
        return document


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def plain(value: Any) -> Any:
    """A field's value as JSON holds it: parts as objects, enum members as their strings."""
    if isinstance(value, Part):
        return value.to_dict()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value
