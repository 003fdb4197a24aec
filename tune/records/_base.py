"""The base of every record: a frozen pydantic model whose annotations are the one statement of its
JSON form.

Types are checked strictly (a string is no number, True is no epoch), non-finite floats are refused
where a field says so, and keys a record does not know are kept (a file written by a newer
joyful-tune survives a rewrite). `from_dict` turns pydantic's report into one line naming the first
bad key and the rule; `to_dict` is the JSON form, in field order.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Finite", "Record", "describe"]

# A float that must be a finite number (JSON has no NaN; a NaN score is a bug, not a value).
Finite = Annotated[float, Field(allow_inf_nan=False)]


def describe(document: str, exc: ValidationError) -> str:
    """The first error of `exc` as one line: where (the key's path), what rule, what value."""
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"{document}: missing key '{where}'"
    if error["type"] == "value_error":  # a record's own rule: its message names the key already
        return f"{document}: {error['ctx']['error']}"
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{document}: '{where}': {error['msg'][0].lower()}{error['msg'][1:]}, got {shown}"


class Record(BaseModel):
    """A record written to disk and read back. Subclasses declare fields; `DOCUMENT` names the
    file's form."""

    # defer_build: a model's validator is built on its first use, not at import (the CLIs answer
    # --help fast).
    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        strict=True,
        validate_by_name=True,
        validate_by_alias=True,
        defer_build=True,
    )

    DOCUMENT: ClassVar[str] = "record"

    @classmethod
    def from_dict(cls, document: Any) -> Self:
        """Validate and build; ValueError names the first missing or invalid key."""
        if not isinstance(document, dict):
            raise ValueError(
                f"{cls.DOCUMENT}: expected a JSON object, got {type(document).__name__}"
            )
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise ValueError(describe(cls.DOCUMENT, exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every field in declaration order (None as null), then the unknown keys it
        was read with."""
        return self.model_dump(mode="json", by_alias=True)

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`, validated like a new record."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        try:
            return type(self).model_validate({**(self.model_extra or {}), **values, **changes})
        except ValidationError as exc:
            raise ValueError(describe(self.DOCUMENT, exc)) from None
