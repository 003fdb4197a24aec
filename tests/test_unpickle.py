"""The restricted unpickler: records and numpy arrays load; any other global is refused before it runs."""

from __future__ import annotations

import builtins
import codecs
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import make_processed, pickle_with_class_path, write_pickle

from joyful.data.dialogues import load_dialogue_data
from joyful.data.unpickle import restricted_load
from joyful.datasets import REGISTRY
from joyful.errors import UserError
from joyful.Sample import Sample


class _OpenFile:
    """Unpickling this calls builtins.open(marker, 'w'), which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


class _System:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _Popen:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return subprocess.Popen, (["touch", self.marker],)


PAYLOADS = {"builtins.open": _OpenFile, "os.system": _System, "subprocess.Popen": _Popen}


def _hidden_in_data(payload: object) -> dict:
    """A processed-layout dict whose first record carries the payload as an attribute."""
    data = make_processed(4, "MF", {"a": 3, "t": 4})
    data["train"][0].audio = payload
    return data


@pytest.mark.parametrize("name", PAYLOADS)
def test_payload_works_with_plain_pickle(tmp_path: Path, name: str) -> None:
    """Guard for the next test: the crafted pickle really does create the marker when trusted."""
    marker = tmp_path / "pwned"
    result = pickle.loads(pickle.dumps(_hidden_in_data(PAYLOADS[name](marker))))
    if name == "subprocess.Popen":
        result["train"][0].audio.wait()
    if name == "builtins.open":
        result["train"][0].audio.close()
    assert marker.exists()


@pytest.mark.parametrize("name", PAYLOADS)
def test_forbidden_class_is_refused_and_nothing_runs(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "evil.pkl", _hidden_in_data(PAYLOADS[name](marker)))
    with pytest.raises(UserError) as info:
        load_dialogue_data(path, REGISTRY["iemocap_4"])
    message = str(info.value)
    assert "refused to load class" in message and str(path) in message
    module, _, attribute = name.rpartition(".")
    assert attribute in message  # names the refused class (os.system pickles as posix.system)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_records_and_arrays_load_with_every_protocol(protocol: int) -> None:
    record = Sample(
        vid="v1",
        speaker=["M", "F"],
        label=[0, 3],
        audio=[np.arange(3, dtype=np.float32)] * 2,
        sbert_sentence_embeddings=np.ones((2, 4), dtype=np.float32),
        visual=None,
        extra={"set": {1, 2}, "tuple": (1, 2.5)},
    )
    loaded = restricted_load(pickle.dumps({"train": [record]}, protocol=protocol), source="test")
    got = loaded["train"][0]
    assert type(got) is Sample and got.vid == "v1" and got.label == [0, 3] and got.visual is None
    np.testing.assert_array_equal(got.sbert_sentence_embeddings, record.sbert_sentence_embeddings)
    assert got.sbert_sentence_embeddings.dtype == np.float32
    np.testing.assert_array_equal(got.audio[1], np.arange(3))
    assert got.extra == {"set": {1, 2}, "tuple": (1, 2.5)}


@pytest.mark.parametrize("module", ["joyful.Sample", "cogmen.Sample"])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_both_record_class_paths_map_to_sample(module: str, protocol: int) -> None:
    raw = pickle_with_class_path({"train": [Sample(vid="x", label=[1])]}, module, protocol)
    assert module.encode() in raw
    loaded = restricted_load(raw, source="test")
    assert type(loaded["train"][0]) is Sample and loaded["train"][0].label == [1]


def test_reconstructor_is_allowed_only_for_sample() -> None:
    """Protocol 0 builds instances through copyreg._reconstructor; another base class is refused."""
    raw = pickle.dumps(Sample(vid="ok"), protocol=0)
    assert restricted_load(raw, source="t").vid == "ok"
    assert b"c__builtin__\nobject" in raw
    forged = raw.replace(b"c__builtin__\nobject", b"c__builtin__\nset")
    with pytest.raises(UserError, match="_reconstructor is allowed only"):
        restricted_load(forged, source="t")


def test_numpy_cannot_smuggle_other_classes() -> None:
    with pytest.raises(UserError, match="refused to load class"):
        restricted_load(pickle.dumps(np.float64), source="t")  # a class, not an array
    with pytest.raises(UserError, match="numpy.load"):
        restricted_load(pickle.dumps(np.load), source="t")


class _Codec:
    def __reduce__(self):
        return codecs.encode, ("payload", "rot13")


def test_codecs_encode_only_rebuilds_latin1_bytes() -> None:
    """Protocol-2 numpy buffers need _codecs.encode(str, 'latin1'); other codecs are refused."""
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    raw = pickle.dumps(array, protocol=2)
    assert b"_codecs" in raw and b"latin1" in raw
    np.testing.assert_array_equal(restricted_load(raw, source="t"), array)
    with pytest.raises(UserError, match="latin1"):
        restricted_load(pickle.dumps(_Codec(), protocol=2), source="t")


@pytest.mark.parametrize(
    "raw", [b"\x80\x04\x95", b"not a pickle at all", b"\x80\x05" + b"\xff" * 40]
)
def test_corrupt_bytes_are_a_user_error(raw: bytes) -> None:
    with pytest.raises(UserError, match="src"):
        restricted_load(raw, source="src")


def test_a_two_line_unpickler_message_becomes_one_line() -> None:
    """A persistent-id opcode makes pickle raise a message with a newline (seen from random bytes in CI)."""
    with pytest.raises(UserError) as caught:
        restricted_load(b"P0\n.", source="data file x.pkl")
    message = str(caught.value)
    assert (
        "\n" not in message
        and "persistent id instruction was encountered, but no persistent_load" in message
    )
