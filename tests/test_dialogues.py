"""Reading both legacy layouts into validated dialogues (§1), and every way a data file can be wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import make_processed, pickle_with_class_path, write_pickle

from joyful.data.dialogues import file_sha256, load_dialogue_data
from joyful.datasets import REGISTRY
from joyful.errors import UserError
from joyful.Sample import Sample

IEMOCAP_4 = REGISTRY["iemocap_4"]


# --- processed layout -----------------------------------------------------------------------


@pytest.mark.parametrize("module", ["joyful.Sample", "cogmen.Sample"])
def test_processed_layout_with_either_class_path(tmp_path: Path, module: str) -> None:
    content = make_processed(4, "MF", {"a": 5, "t": 7, "v": 3}, seed=1)
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle_with_class_path(content, module))
    data = load_dialogue_data(path, IEMOCAP_4)
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 8, "dev": 3, "test": 3}
    assert data.modality_dims == {"a": 5, "t": 7, "v": 3}
    assert data.sha256 == file_sha256(path) and data.source == str(path)
    for split, records in content.items():
        for record, dialogue in zip(records, data.splits[split], strict=True):  # order kept
            assert dialogue.vid == record.vid
            np.testing.assert_array_equal(dialogue.labels, record.label)
            np.testing.assert_array_equal(
                dialogue.speakers, [0 if s == "M" else 1 for s in record.speaker]
            )
            np.testing.assert_array_equal(dialogue.features["t"], record.sbert_sentence_embeddings)
            np.testing.assert_array_equal(dialogue.features["a"], np.stack(record.audio))
            assert dialogue.features["v"].dtype == np.float32 and len(dialogue) == len(record.label)


def test_text_prefers_sbert_embeddings_over_text(tmp_path: Path) -> None:
    content = make_processed(4, "MF", {"a": 2, "t": 6})
    for record in content["train"] + content["dev"] + content["test"]:
        record.text = [np.full(100, 7.0, dtype=np.float32)] * len(
            record.label
        )  # the 100-d CNN features
    data = load_dialogue_data(write_pickle(tmp_path / "d.pkl", content), IEMOCAP_4)
    assert data.modality_dims["t"] == 6
    np.testing.assert_array_equal(
        data.splits["dev"][0].features["t"], content["dev"][0].sbert_sentence_embeddings
    )


def test_text_falls_back_to_text_without_sbert(tmp_path: Path) -> None:
    content = make_processed(4, "MF", {"a": 2, "t": 6})
    for record in content["train"] + content["dev"] + content["test"]:
        del record.sbert_sentence_embeddings
    data = load_dialogue_data(write_pickle(tmp_path / "d.pkl", content), IEMOCAP_4)
    assert data.modality_dims["t"] == 6
    np.testing.assert_array_equal(
        data.splits["train"][2].features["t"], np.stack(content["train"][2].text)
    )


def test_meld_one_hot_speakers_become_indices(tmp_path: Path) -> None:
    content = make_processed(7, "onehot", {"a": 3, "t": 4}, n_speakers=9, seed=2)
    data = load_dialogue_data(write_pickle(tmp_path / "d.pkl", content), REGISTRY["meld"])
    record, dialogue = content["test"][1], data.splits["test"][1]
    np.testing.assert_array_equal(dialogue.speakers, np.argmax(record.speaker, axis=1))
    assert "v" not in data.modality_dims


def test_label_counts(tmp_path: Path) -> None:
    content = make_processed(4, "MF", {"a": 2})
    data = load_dialogue_data(write_pickle(tmp_path / "d.pkl", content), IEMOCAP_4)
    expected = np.bincount(np.concatenate([r.label for r in content["train"]]), minlength=4)
    np.testing.assert_array_equal(data.label_counts("train"), expected)


# --- raw feature tuples -----------------------------------------------------------------------


def _raw_tables(vids: list[str], speaker_of, label_of, dims: dict[str, int], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lengths = {vid: int(rng.integers(3, 8)) for vid in vids}
    return {
        "ids": {v: [f"{v}_{i}" for i in range(n)] for v, n in lengths.items()},
        "speakers": {v: [speaker_of(i) for i in range(n)] for v, n in lengths.items()},
        "labels": {v: [label_of(i) for i in range(n)] for v, n in lengths.items()},
        "features": {
            m: {
                v: [rng.standard_normal(d).astype(np.float32) for _ in range(n)]
                for v, n in lengths.items()
            }
            for m, d in dims.items()
        },
        "sentences": {v: [f"words {i}" for i in range(n)] for v, n in lengths.items()},
    }


def test_raw_iemocap_tuple_dev_is_first_tenth_in_stored_order(tmp_path: Path) -> None:
    train_vids = [f"Ses0{i % 4 + 1}_{i:02d}" for i in range(25)][::-1]  # stored order, not sorted
    test_vids = ["Ses05_a", "Ses05_b", "Ses05_c"]
    t = _raw_tables(
        train_vids + test_vids, lambda i: "MF"[i % 2], lambda i: i % 4, {"t": 10, "a": 10, "v": 12}
    )
    content = (
        t["ids"],
        t["speakers"],
        t["labels"],
        t["features"]["t"],
        t["features"]["a"],
        t["features"]["v"],
        t["sentences"],
        train_vids,
        test_vids,
    )
    data = load_dialogue_data(
        write_pickle(tmp_path / "IEMOCAP_features.pkl", content, protocol=2), IEMOCAP_4
    )
    assert [d.vid for d in data.splits["dev"]] == train_vids[:2]  # int(0.1 * 25) = 2
    assert [d.vid for d in data.splits["train"]] == train_vids[2:]
    assert [d.vid for d in data.splits["test"]] == test_vids
    assert data.modality_dims == {"a": 10, "t": 10, "v": 12}
    first = data.splits["train"][0]
    np.testing.assert_array_equal(first.speakers, [i % 2 for i in range(len(first))])
    np.testing.assert_array_equal(first.features["v"], np.stack(t["features"]["v"][first.vid]))


def test_raw_tuple_with_a_set_of_vids_is_sorted(tmp_path: Path) -> None:
    """A set has no stored order; the split must not depend on PYTHONHASHSEED."""
    train_vids = [f"d{i:02d}" for i in range(20)]
    t = _raw_tables(train_vids + ["t1", "t2"], lambda i: "M", lambda i: 0, {"t": 3})
    content = (
        t["ids"],
        t["speakers"],
        t["labels"],
        t["features"]["t"],
        None,
        None,
        t["sentences"],
        set(train_vids),
        {"t1", "t2"},
    )
    data = load_dialogue_data(write_pickle(tmp_path / "d.pkl", content), IEMOCAP_4)
    assert [d.vid for d in data.splits["dev"]] == ["d00", "d01"]
    assert data.modality_dims == {"t": 3}


def test_raw_meld_tuple_ignores_the_trailing_item(tmp_path: Path) -> None:
    train_vids, test_vids = list(range(30)), [100, 101]
    t = _raw_tables(
        train_vids + test_vids,
        lambda i: [1.0 if k == (i * 4) % 9 else 0.0 for k in range(9)],
        lambda i: i % 7,
        {"t": 6, "a": 5, "v": 4},
        seed=3,
    )
    content = (
        t["ids"],
        t["speakers"],
        t["labels"],
        t["features"]["t"],
        t["features"]["a"],
        t["features"]["v"],
        t["sentences"],
        train_vids,
        test_vids,
        "trailing item (MELD's extra table)",
    )
    data = load_dialogue_data(
        write_pickle(tmp_path / "MELD_features.pkl", content), REGISTRY["meld"]
    )
    assert [d.vid for d in data.splits["dev"]] == ["0", "1", "2"]
    assert len(data.splits["train"]) == 27 and [d.vid for d in data.splits["test"]] == [
        "100",
        "101",
    ]
    dialogue = data.splits["train"][0]
    np.testing.assert_array_equal(dialogue.speakers, [(i * 4) % 9 for i in range(len(dialogue))])


def test_raw_mosei_tuple_has_its_own_dev_split_and_binarised_labels(tmp_path: Path) -> None:
    train_vids, dev_vids, test_vids = ["a", "b", "c", "d"], ["e"], ["f", "g"]
    rng = np.random.default_rng(4)
    vids = train_vids + dev_vids + test_vids
    scores = [-2.0, -0.1, 0.0, 0.4, 3.0]
    lengths = {v: 5 for v in vids}
    audio = {
        v: [rng.standard_normal((int(rng.integers(2, 6)), 74)).astype(np.float32) for _ in range(5)]
        for v in vids
    }
    content = (
        {v: list(range(n)) for v, n in lengths.items()},
        {v: ["M"] * n for v, n in lengths.items()},
        {v: scores for v in vids},
        {v: [["hello", "world"]] * n for v, n in lengths.items()},  # word lists: not features
        audio,
        {
            v: [rng.standard_normal(35).astype(np.float32) for _ in range(n)]
            for v, n in lengths.items()
        },
        {v: ["hello world"] * n for v, n in lengths.items()},
        train_vids,
        dev_vids,
        test_vids,
    )
    data = load_dialogue_data(write_pickle(tmp_path / "tbje_mosei.pkl", content), REGISTRY["mosei"])
    assert [d.vid for d in data.splits["train"]] == train_vids
    assert [d.vid for d in data.splits["dev"]] == dev_vids and [
        d.vid for d in data.splits["test"]
    ] == test_vids
    np.testing.assert_array_equal(
        data.splits["dev"][0].labels, [0, 0, 1, 1, 1]
    )  # below 0 -> Negative
    assert data.modality_dims == {"a": 74, "v": 35}
    # Audio frames are averaged per utterance.
    np.testing.assert_allclose(
        data.splits["train"][1].features["a"][2], audio["b"][2].mean(axis=0), rtol=1e-6
    )
    np.testing.assert_array_equal(data.splits["train"][0].speakers, np.zeros(5))
    with pytest.raises(UserError, match="has no t \\(text\\) features"):
        data.check_modalities("atv")
    # A release with a vector of scores per utterance (7 emotion intensities) is refused in one line, not a
    # TypeError from deep in the loader.
    vectors = (*content[:2], {v: [np.zeros(7, dtype=np.float32)] * 5 for v in vids}, *content[3:])
    with pytest.raises(
        UserError,
        match=r"dialogue 'a': a sentiment label is an array of shape \(7,\), not one score",
    ):
        load_dialogue_data(write_pickle(tmp_path / "vectors.pkl", vectors), REGISTRY["mosei"])


# --- errors -------------------------------------------------------------------------------------


def _processed_file(tmp_path: Path, mutate=None, dims=None) -> Path:
    content = make_processed(4, "MF", dims or {"a": 3, "t": 4})
    if mutate:
        mutate(content)
    return write_pickle(tmp_path / "data.pkl", content)


def _error(path: Path, spec=IEMOCAP_4) -> str:
    with pytest.raises(UserError) as info:
        load_dialogue_data(path, spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pkl"
    message = _error(path)
    assert str(path) in message and "does not exist" in message and "--data" in message


def test_folder_instead_of_file(tmp_path: Path) -> None:
    assert "is a folder" in _error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.pkl"
    path.write_bytes(b"")
    assert "is empty" in _error(path)


def test_truncated_pickle(tmp_path: Path) -> None:
    whole = _processed_file(tmp_path).read_bytes()
    path = tmp_path / "cut.pkl"
    path.write_bytes(whole[: len(whole) // 2])
    assert "truncated or corrupt" in _error(path)


def test_corrupt_bytes(tmp_path: Path) -> None:
    whole = bytearray(_processed_file(tmp_path).read_bytes())
    whole[2:40] = b"\xfe" * 38
    path = tmp_path / "bad.pkl"
    path.write_bytes(bytes(whole))
    assert "truncated or corrupt" in _error(path)


def test_wrong_top_level_object(tmp_path: Path) -> None:
    assert "expected a dict with train/dev/test" in _error(
        write_pickle(tmp_path / "x.pkl", [1, 2, 3])
    )


def test_missing_split(tmp_path: Path) -> None:
    assert "lacks split(s) dev" in _error(_processed_file(tmp_path, lambda c: c.pop("dev")))


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_empty_split(tmp_path: Path, split: str) -> None:
    assert f"split {split!r} is empty" in _error(
        _processed_file(tmp_path, lambda c: c.__setitem__(split, []))
    )


def test_empty_raw_split(tmp_path: Path) -> None:
    t = _raw_tables(["a", "b"], lambda i: "M", lambda i: 0, {"t": 3})
    content = (
        t["ids"],
        t["speakers"],
        t["labels"],
        t["features"]["t"],
        None,
        None,
        t["sentences"],
        ["a", "b"],
        [],
    )
    assert "split 'dev' is empty" in _error(
        write_pickle(tmp_path / "d.pkl", content)
    )  # int(0.1 * 2) = 0


def test_record_of_the_wrong_type(tmp_path: Path) -> None:
    message = _error(_processed_file(tmp_path, lambda c: c["test"].append({"vid": "x"})))
    assert "holds a dict, not a Sample record" in message


def test_label_outside_the_label_map(tmp_path: Path) -> None:
    def mutate(content):
        content["dev"][1].label[0] = 4

    message = _error(_processed_file(tmp_path, mutate))
    assert (
        "label 4 is outside the label map of 'iemocap_4'" in message
        and "hap, sad, neu, ang" in message
    )
    assert "[dev] dialogue 'dev_1' utterance 0:" in message  # names split, dialogue and utterance


def test_non_integer_labels(tmp_path: Path) -> None:
    def mutate(content):
        content["train"][0].label[0] = 1.5

    assert "integer class indices" in _error(_processed_file(tmp_path, mutate))


def test_inconsistent_feature_widths(tmp_path: Path) -> None:
    def mutate(content):
        record = content["test"][2]
        record.audio = [np.zeros(5, np.float32)] * len(record.label)

    message = _error(_processed_file(tmp_path, mutate))
    assert "[test] dialogue 'test_2' utterance 0 audio: width 5" in message


def test_ragged_vectors_inside_a_dialogue(tmp_path: Path) -> None:
    def mutate(content):
        content["train"][3].audio[1] = np.zeros(9, np.float32)

    assert "utterance 1 audio: vector of width 9" in _error(_processed_file(tmp_path, mutate))


def test_feature_rows_must_match_labels(tmp_path: Path) -> None:
    def mutate(content):
        content["train"][0].audio = content["train"][0].audio[:-1]

    assert (
        "audio: " in (message := _error(_processed_file(tmp_path, mutate)))
        and "feature rows for" in message
    )


def test_non_finite_features(tmp_path: Path) -> None:
    def mutate(content):
        content["dev"][0].sbert_sentence_embeddings[0, 0] = np.nan

    message = _error(_processed_file(tmp_path, mutate))
    assert "[dev] dialogue 'dev_0' utterance 0 text: feature 0 is nan" in message


def test_bad_speakers(tmp_path: Path) -> None:
    def unknown_code(content):
        content["train"][0].speaker[0] = "X"

    def too_few(content):
        content["train"][0].speaker = content["train"][0].speaker[:-1]

    assert "'M' or 'F'" in _error(_processed_file(tmp_path, unknown_code))
    assert "one speaker per utterance" in _error(_processed_file(tmp_path / "b", too_few))
    # Nine one-hot speakers do not fit the two of IEMOCAP.
    meld = make_processed(7, "onehot", {"t": 3}, n_speakers=9, seed=5)
    message = _error(
        write_pickle(tmp_path / "meld.pkl", meld), REGISTRY["meld"].__class__("x", ("a",) * 7, 2)
    )
    assert "speaker index" in message and "outside 0..1" in message


def test_modality_the_data_lacks(tmp_path: Path) -> None:
    data = load_dialogue_data(_processed_file(tmp_path, dims={"a": 3, "t": 4}), IEMOCAP_4)
    assert data.check_modalities("ta") == {"t": 4, "a": 3}
    with pytest.raises(UserError) as info:
        data.check_modalities("atv")
    message = str(info.value)
    assert "--modalities atv" in message and "v (visual)" in message and "it has: at" in message


def test_no_numeric_features_at_all(tmp_path: Path) -> None:
    def mutate(content):
        for record in content["train"] + content["dev"] + content["test"]:
            record.audio = None
            record.sbert_sentence_embeddings = None
            record.text = [["w"]] * len(record.label)

    assert "no numeric audio, text or visual features" in _error(_processed_file(tmp_path, mutate))


def test_plain_records_built_in_python_load(tmp_path: Path) -> None:
    """A file written by a user script with the Sample class of this package."""
    record = Sample(
        vid="v",
        speaker=["F", "M"],
        label=[3, 0],
        audio=np.ones((2, 4), np.float32),
        text=None,
        visual=None,
        sbert_sentence_embeddings=np.zeros((2, 2), np.float32),
    )
    path = tmp_path / "d.pkl"
    path.write_bytes(pickle.dumps({"train": [record], "dev": [record], "test": [record]}))
    data = load_dialogue_data(path, IEMOCAP_4)
    assert data.modality_dims == {"a": 4, "t": 2}
    np.testing.assert_array_equal(data.splits["train"][0].speakers, [1, 0])
