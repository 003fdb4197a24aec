"""`joyful.Sample.Sample`: the record class name that JOYFUL's data pickles refer to.

A plain attribute holder (the original module also loaded SBERT at import; this
one does nothing). Data files are read through :mod:`joyful.data.unpickle`,
which maps this name and `cogmen.Sample.Sample` to this class.
"""

from __future__ import annotations

from typing import Any


class Sample:
    """One dialogue: vid, speaker, label, text, audio, visual, sentence,
    sbert_sentence_embeddings."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict):
            raise TypeError("a Sample record must be restored from a dict of attributes")
        self.__dict__.update(state)
