"""A restricted unpickler for JOYFUL/COGMEN data files.

Pickle can run arbitrary code on load. These files only need the dialogue
record class and what numpy uses to rebuild arrays, so every other global is
refused *before* anything from the file runs: :meth:`find_class` is the only
way a pickle reaches Python objects.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from joyful.errors import UserError
from joyful.Sample import Sample


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # Protocol 0/1 pickles build instances through copyreg._reconstructor;
    # only our own record class may be built this way.
    if cls is not Sample or base is not object or state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor is allowed only for the Sample record")
    return object.__new__(Sample)


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles of protocol 0-2 rebuild bytes (e.g. numpy array buffers) as
    # _codecs.encode(str, "latin1"); only that plain conversion is allowed.
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is allowed only to rebuild latin1 bytes")
    return text.encode("latin1")


_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np._core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy.core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
    ("numpy._core.numeric", "_frombuffer"): np._core.numeric._frombuffer,
}

_ALLOWED = {
    ("joyful.Sample", "Sample"): Sample,
    ("cogmen.Sample", "Sample"): Sample,
    ("copyreg", "_reconstructor"): _safe_reconstructor,
    ("copy_reg", "_reconstructor"): _safe_reconstructor,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "object"): object,
    ("__builtin__", "object"): object,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,
    ("collections", "OrderedDict"): dict,
    **_NUMPY_GLOBALS,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolve only the globals in the allow-list; name any other and stop."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        # numpy >= 2 pickles dtypes as numpy.dtypes.Float32DType etc.: plain classes, no code.
        if module == "numpy.dtypes" and name.endswith("DType") and hasattr(np.dtypes, name):
            return getattr(np.dtypes, name)
        raise RefusedClassError(f"{module}.{name}")


class RefusedClassError(pickle.UnpicklingError):
    def __init__(self, qualified_name: str) -> None:
        super().__init__(qualified_name)
        self.qualified_name = qualified_name


def restricted_load(raw: bytes, *, source: str) -> Any:
    """Unpickle `raw` with the allow-list; any refusal or corruption is a :class:`UserError`."""
    try:
        # latin1 decodes Python 2 str payloads (numpy buffers) in the raw feature tuples.
        return RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except RefusedClassError as exc:
        raise UserError(
            f"{source}: refused to load class {exc.qualified_name} (only JOYFUL/COGMEN Sample "
            "records and numpy arrays are allowed; nothing from the file was run)"
        ) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        MemoryError,
        UnicodeDecodeError,
        OverflowError,
    ) as exc:
        detail = " ".join(
            str(exc).split()
        )  # some unpickler messages span two lines; the error stays one
        raise UserError(
            f"{source}: not a readable data pickle (truncated or corrupt: {type(exc).__name__}: "
            f"{detail})"
        ) from None


__all__ = ["Sample", "RestrictedUnpickler", "restricted_load"]
