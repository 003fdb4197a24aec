"""The data-set registry: label maps and speaker counts in one place (§1b), spec files, names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joyful.datasets import (
    REGISTRY,
    check_dataset_name,
    default_data_path,
    load_spec_file,
    resolve_dataset,
)
from joyful.errors import UserError


@pytest.mark.parametrize(
    "name,labels,speakers",
    [
        ("iemocap", ("hap", "sad", "neu", "ang", "exc", "fru"), 2),
        ("iemocap_4", ("hap", "sad", "neu", "ang"), 2),
        ("mosei", ("Negative", "Positive"), 1),
        ("meld", ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"), 9),
        ("meld_text", ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"), 9),
        ("synthetic", ("hap", "sad", "neu", "ang"), 2),
    ],
)
def test_registry_matches_the_original_label_maps(name: str, labels: tuple, speakers: int) -> None:
    spec = resolve_dataset(name)
    assert spec.name == name and spec.label_names == labels
    assert spec.n_speakers == speakers and spec.n_classes == len(labels)
    assert spec is REGISTRY[name]


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(UserError) as info:
        resolve_dataset("iemocap4")
    message = str(info.value)
    assert "'iemocap4'" in message
    for name in REGISTRY:
        assert name in message
    assert "--dataset-spec" in message


@pytest.mark.parametrize("name", ["../meld", "a/b", "a\\b", "/abs", ".", "..", "", "-x", "sp ace"])
def test_names_with_path_separators_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="plain name"):
        check_dataset_name(name)
    with pytest.raises(UserError, match="plain name"):
        resolve_dataset(name)


def test_default_data_path() -> None:
    assert default_data_path("./data", "iemocap_4") == Path("data/iemocap_4/data_iemocap_4.pkl")
    assert default_data_path("/d", "meld", transformers=True) == Path(
        "/d/meld/transformers/data_meld.pkl"
    )


def _spec(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    return path


def test_spec_file_defines_a_data_set(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        {
            "name": "my_erc",
            "label_names": ["calm", "angry", "glad"],
            "n_speakers": 3,
            "description": "mine",
        },
    )
    spec = resolve_dataset("my_erc", path)
    assert (spec.name, spec.label_names, spec.n_speakers, spec.n_classes) == (
        "my_erc",
        ("calm", "angry", "glad"),
        3,
        3,
    )
    with pytest.raises(UserError, match="defines data set 'my_erc', not 'other'"):
        resolve_dataset("other", path)


@pytest.mark.parametrize(
    "content,message",
    [
        ("{oops", "cannot read a JSON object"),
        ([1], "expected a JSON object"),
        ({"name": "x", "label_names": ["a", "b"], "n_speakers": 1, "colour": 1}, "unknown key"),
        ({"name": 3, "label_names": ["a", "b"], "n_speakers": 1}, "'name' must be a string"),
        ({"name": "../x", "label_names": ["a", "b"], "n_speakers": 1}, "plain name"),
        ({"name": "x", "label_names": ["a"], "n_speakers": 1}, "at least two"),
        ({"name": "x", "label_names": ["a", "a"], "n_speakers": 1}, "duplicates"),
        ({"name": "x", "label_names": ["a", "b"], "n_speakers": 0}, "n_speakers"),
        ({"name": "x", "label_names": ["a", "b"], "n_speakers": True}, "n_speakers"),
    ],
)
def test_bad_spec_files(tmp_path: Path, content: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_spec_file(_spec(tmp_path, content))


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot read"):
        load_spec_file(tmp_path / "none.json")


def test_per_data_set_rules_live_in_the_registry() -> None:
    """MOSEI's own dev split and sentiment labels, and the M/F speaker codes, are registry facts."""
    from joyful.datasets import REGISTRY

    assert REGISTRY["mosei"].raw_dev_split and REGISTRY["mosei"].sentiment_labels
    assert not any(
        REGISTRY[n].raw_dev_split or REGISTRY[n].sentiment_labels
        for n in ("iemocap", "iemocap_4", "meld")
    )
    assert REGISTRY["iemocap"].speaker_codes == ("M", "F")
