"""The typed records: a best config and its parts read and write their own JSON, byte for byte; outcomes are an
enum; the parts check themselves; the rule between two results is the record's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from joyful.config import JoyfulConfig
from joyful.io import atomic_write_json
from tests.test_tune_confirm import SPACE, _document, _entry
from tune.publish import confirmed
from tune.records import (
    COMPLETE,
    EARLY_STOPPED,
    ELIGIBLE_OUTCOMES,
    ERRORED,
    NON_FINITE,
    OUTCOMES,
    STATUS_LABELS,
    BestConfig,
    Confirmation,
    DataRef,
    EffectRow,
    EnsembleMember,
    MajorityLevel,
    Metric,
    Outcome,
    StudyRecord,
    Verdict,
)
from tune.records.store import ResultStore
from tune.space import load_space
from tune.stats.confirmation import BASELINE_LABEL, ConfirmationResult

REPO = Path(__file__).parents[1]
MELD = REPO / "results" / "best_configs" / "meld_text.json"
LEGACY = REPO / "tests" / "data" / "legacy_meld" / "results" / "best_configs" / "meld_text.json"


def _rewritten(path: Path, tmp_path: Path) -> bytes:
    """The file read as a BestConfig and written back the way the store writes it."""
    best = BestConfig.from_dict(json.loads(path.read_text()))
    return atomic_write_json(tmp_path / "again.json", best.to_dict()).read_bytes()


def test_the_committed_meld_best_config_round_trips_byte_for_byte(tmp_path: Path) -> None:
    document = json.loads(MELD.read_text())
    best = BestConfig.from_dict(document)
    assert best.to_dict() == document
    assert _rewritten(MELD, tmp_path) == MELD.read_bytes()
    # Typed all the way down: the readers' attributes.
    assert best.confirmation.winner_run.seed == best.confirmation.winner_seed == best.config["seed"]
    assert best.ensemble.test_weighted_f1 == pytest.approx(0.5737781002291279)
    assert best.references.majority.majority_class == "neutral"
    assert {row.verdict for row in best.confirmation.effects.rows} <= set(Verdict)


def test_the_committed_meld_study_record_round_trips_byte_for_byte(tmp_path: Path) -> None:
    path = REPO / "results" / "studies" / "meld_text.json"
    study = StudyRecord.from_dict(json.loads(path.read_text()))
    assert isinstance(study.majority, MajorityLevel) and study.majority.majority_class == "neutral"
    assert atomic_write_json(tmp_path / "study.json", study.to_dict()).read_bytes() == path.read_bytes()


def test_an_older_best_config_keeps_every_nested_key_and_its_order() -> None:
    """The legacy file lacks keys newer versions write (raw scores, ensembles, data facts); none is added."""
    document = json.loads(LEGACY.read_text())
    again = BestConfig.from_dict(document).to_dict()
    assert again == document
    for key, value in document.items():  # nested parts keep their order; the top level is written in field order
        assert json.dumps(again[key]) == json.dumps(value), key


def test_a_confirmed_best_config_written_by_the_store_round_trips_byte_for_byte(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", _document(tmp_path))
    entries = [_entry(BASELINE_LABEL, {1: 0.60, 2: 0.61}), _entry("cand", {1: 0.64, 2: 0.66})]
    entries[0].config = JoyfulConfig(dataset="synthetic", seqcontext_nlayer=1)
    entries[1].config = JoyfulConfig(dataset="synthetic", fusion="hierarchical", seqcontext_nlayer=1)
    result = ConfirmationResult(seeds=[1, 2], entries=entries, winner_label="cand")
    best = confirmed(store.read_best("synthetic"), result, load_space(SPACE, "synthetic"), command="python x")
    assert store.update_confirmation("synthetic", best).written
    path = store.best_config_path("synthetic")
    assert _rewritten(path, tmp_path) == path.read_bytes()
    assert json.loads(path.read_text())["confirmation"]["command"] == "python x"


def test_a_confirmation_reads_back_as_the_record_it_was_written_from() -> None:
    entries = [_entry(BASELINE_LABEL, {1: 0.60, 2: 0.61, 3: 0.59}), _entry("cand", {1: 0.64, 2: 0.66, 3: 0.62})]
    record = ConfirmationResult(seeds=[1, 2, 3], entries=entries, winner_label="cand").to_record()
    again = Confirmation.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.winner_entry.paired_diff_to_baseline.wins == 3
    assert again.entry(BASELINE_LABEL).paired_diff_to_baseline is None
    assert isinstance(again.effects.rows[0], EffectRow) and isinstance(again.effects.rows[0].verdict, Verdict)


def test_outcomes_are_an_enum_whose_members_are_the_stored_strings() -> None:
    assert (COMPLETE, EARLY_STOPPED, NON_FINITE, ERRORED) == ("completed", "early_stopped", "non_finite", "errored")
    assert all(isinstance(o, Outcome) for o in (COMPLETE, EARLY_STOPPED, NON_FINITE, ERRORED))
    assert STATUS_LABELS == {"completed": "TERMINATED", "early_stopped": "EARLY_STOPPED", "non_finite": "NON_FINITE",
                             "errored": "ERROR"}
    assert OUTCOMES["ERROR"] is ERRORED and Outcome.from_label("TERMINATED") is COMPLETE
    assert ELIGIBLE_OUTCOMES == (COMPLETE, EARLY_STOPPED) and not NON_FINITE.can_win
    assert json.dumps({"outcome": EARLY_STOPPED}) == '{"outcome": "early_stopped"}' and f"{COMPLETE}" == "completed"


@pytest.mark.parametrize("build, words", [
    (lambda: Metric(name="f1", mode="maximum", value=0.5, best_epoch=1), "'metric.mode' is 'maximum'"),
    (lambda: Metric(name="f1", mode="max", value=float("inf"), best_epoch=1), "'metric.value' is inf"),
    (lambda: Metric(name="f1", mode="max", value=0.5, best_epoch=True), "'metric.best_epoch' must be int"),
    (lambda: DataRef(path="d.pkl", sha256=""), "'data.sha256' must not be empty"),
    (lambda: EnsembleMember(seed=1, path="/abs/m.pt", config={}), "must be relative to the file's folder"),
    (lambda: EffectRow.from_dict({"effect": "F1", "measure": "m", "description": "d", "verdict": "maybe"}),
     "'confirmation.effects.rows[].verdict' is 'maybe'"),
    (lambda: Confirmation.from_dict({"kind": "joyful-tune confirmation", "seeds": [1], "configurations": []}),
     "missing key 'confirmation.winner'"),
])
def test_parts_check_themselves_naming_the_key_and_the_rule(build, words) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        build()


def test_a_best_config_refuses_a_dict_where_a_part_belongs() -> None:
    best = BestConfig.from_dict(json.loads(MELD.read_text()))
    with pytest.raises(ValueError, match="'metric' must be a Metric"):
        best.replace(metric={"name": "f1", "mode": "max", "value": 0.9, "best_epoch": 1})


def test_the_better_than_rule_is_the_records() -> None:
    current = BestConfig.from_dict(json.loads(MELD.read_text()))
    better = current.replace(metric=current.metric.replace(value=0.6), confirmation=None)
    replaces, reason = better.replaces(current)
    assert replaces and "0.6 > 0.53068" in reason and "single unconfirmed trial" in reason
    assert current.replaces(current) == (False, "kept earlier result: 0.53068 >= 0.53068 on the same data and metric "
                                                "(dev_weighted_f1, max)")
    other_data = better.replace(data=current.data.replace(sha256="b" * 64))
    assert not other_data.replaces(current)[0] and other_data.replaces(current, overwrite=True)[0]
    assert current.confirms(current) == (True, "confirmation of search 'meld-ensemble' recorded")
    assert not current.replace(study=current.study.replace(name="other")).confirms(current)[0]
