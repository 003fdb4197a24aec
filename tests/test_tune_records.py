"""The typed records (tune/records): each reads and writes its own JSON, checks itself naming the key and the
rule, outcomes are an enum, and the rule between two results is the record's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tune_helpers import SHA_B, best_document, confirmation_entry

from joyful.config import JoyfulConfig
from tune.records import (
    BestConfig,
    Confirmation,
    DataRef,
    EffectRow,
    EnsembleMember,
    MajorityLevel,
    Metric,
    Outcome,
    StudyRecord,
    TrialRecord,
    Verdict,
    classify,
)
from tune.records.building import confirmed
from tune.records.store import ResultStore
from tune.space import load_space
from tune.stats.confirmation import BASELINE_LABEL, ConfirmationResult

REPO = Path(__file__).parents[1]
SPACE = REPO / "search_spaces" / "synthetic.yaml"


def test_a_best_config_reads_back_as_the_document_it_was_written_as() -> None:
    document = best_document()
    best = BestConfig.from_dict(document)
    assert BestConfig.from_dict(json.loads(json.dumps(best.to_dict()))) == best
    assert best.to_dict()["single_trial_best"] == document["single_trial_best"]
    assert best.study.scheduler.max_t == 8 and best.rerun.reason == "--no-rerun was given"


def test_unknown_keys_are_kept_through_a_rewrite() -> None:
    document = best_document()
    document["from_a_newer_version"] = {"x": 1}
    document["study"]["also_newer"] = [1, 2]
    again = BestConfig.from_dict(document).to_dict()
    assert again["from_a_newer_version"] == {"x": 1} and again["study"]["also_newer"] == [1, 2]


def test_a_confirmed_best_config_written_by_the_store_reads_back_equal(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.publish_best("synthetic", best_document())
    entries = [
        confirmation_entry(
            BASELINE_LABEL,
            {1: 0.60, 2: 0.61},
            JoyfulConfig(dataset="synthetic", seqcontext_nlayer=1),
        ),
        confirmation_entry(
            "cand",
            {1: 0.64, 2: 0.66},
            JoyfulConfig(dataset="synthetic", fusion="hierarchical", seqcontext_nlayer=1),
        ),
    ]
    result = ConfirmationResult(seeds=[1, 2], entries=entries, winner_label="cand")
    best = confirmed(
        store.read_best("synthetic"), result, load_space(SPACE, "synthetic"), command="python x"
    )
    assert store.update_confirmation("synthetic", best).written
    again = store.read_best("synthetic")
    assert again == best.replace()  # every field as written
    assert (
        again.confirmation.command == "python x" and again.config["precision"] == "fp32"
    )  # as the runs used


def test_a_confirmation_reads_back_as_the_record_it_was_written_from() -> None:
    entries = [
        confirmation_entry(BASELINE_LABEL, {1: 0.60, 2: 0.61, 3: 0.59}),
        confirmation_entry("cand", {1: 0.64, 2: 0.66, 3: 0.62}),
    ]
    record = ConfirmationResult(
        seeds=[1, 2, 3], entries=entries, winner_label="cand", proposal={"learning_rate": 0.005}
    ).to_record()
    again = Confirmation.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.winner_entry.paired_diff_to_baseline.wins == 3
    assert again.entry(BASELINE_LABEL).paired_diff_to_baseline is None
    assert isinstance(again.effects.rows[0], EffectRow) and isinstance(
        again.effects.rows[0].verdict, Verdict
    )


def test_outcomes_are_an_enum_whose_members_are_the_stored_strings() -> None:
    assert [o.value for o in Outcome] == ["completed", "early_stopped", "non_finite", "errored"]
    assert [o.label for o in Outcome] == ["TERMINATED", "EARLY_STOPPED", "NON_FINITE", "ERROR"]
    assert [o.can_win for o in Outcome] == [True, True, False, False]
    assert json.dumps({"outcome": Outcome.EARLY_STOPPED}) == '{"outcome": "early_stopped"}'
    assert classify({"epoch": 4}, False, 4) is Outcome.COMPLETE
    assert classify({"epoch": 2}, False, 4) is Outcome.EARLY_STOPPED
    assert classify({"epoch": 2, "non_finite": True}, False, 4) is Outcome.NON_FINITE
    assert (
        classify({"epoch": 4}, True, 4) is Outcome.ERRORED
        and classify(None, False, 4) is Outcome.ERRORED
    )
    assert classify({"fold": 2}, False, 5, time_attr="fold") is Outcome.EARLY_STOPPED


def test_a_trial_record_takes_its_outcome_from_the_stored_string() -> None:
    trial = TrialRecord.from_dict(
        {
            "trial_id": "t1",
            "params": {"x": 1},
            "outcome": "early_stopped",
            "epochs_run": 2,
            "best_dev_weighted_f1": 0.5,
            "best_epoch": 2,
        }
    )
    assert (
        trial.outcome is Outcome.EARLY_STOPPED
        and trial.eligible
        and trial.status == "EARLY_STOPPED"
    )
    assert TrialRecord.from_dict(trial.to_dict()) == trial


@pytest.mark.parametrize(
    "build, words",
    [
        (
            lambda: Metric.from_dict(
                {"name": "f1", "mode": "maximum", "value": 0.5, "best_epoch": 1}
            ),
            "'mode': input should be 'max' or 'min', got 'maximum'",
        ),
        (
            lambda: Metric.from_dict(
                {"name": "f1", "mode": "max", "value": float("inf"), "best_epoch": 1}
            ),
            "'value': input should be a finite number, got inf",
        ),
        (
            lambda: Metric.from_dict(
                {"name": "f1", "mode": "max", "value": 0.5, "best_epoch": True}
            ),
            "'best_epoch': input should be a valid integer, got True",
        ),
        (
            lambda: Metric.from_dict({"name": "f1", "mode": "max", "value": 0.5}),
            "missing key 'best_epoch'",
        ),
        (
            lambda: DataRef.from_dict({"path": "d.pkl", "sha256": ""}),
            "'data.sha256' must not be empty",
        ),
        (
            lambda: EnsembleMember.from_dict(
                {
                    "label": "b",
                    "seed": 1,
                    "path": "/abs/m.pt",
                    "config_file": "m.json",
                    "megabytes": 1,
                    "best_epoch": 1,
                    "dev_weighted_f1": 0.5,
                    "test_weighted_f1": 0.5,
                    "config": {},
                }
            ),
            "must be relative to the file's folder",
        ),
        (
            lambda: EffectRow.from_dict(
                {"effect": "F1", "measure": "m", "description": "d", "verdict": "maybe"}
            ),
            "'verdict': input should be 'held'",
        ),
        (
            lambda: MajorityLevel.from_dict({"class": "neutral", "dev_weighted_f1": "0.3"}),
            "'dev_weighted_f1': input should be a valid number, got '0.3'",
        ),
        (
            lambda: BestConfig.from_dict({**best_document(), "schema_version": 1}),
            "'schema_version' is 1, but this joyful-tune reads",
        ),
        (
            lambda: BestConfig.from_dict({**best_document(), "dataset": "../x"}),
            "'dataset' '../x' is not a plain name",
        ),
    ],
)
def test_records_check_themselves_naming_the_key_and_the_rule(build, words) -> None:
    with pytest.raises(
        ValueError,
        match=words.replace("[", r"\[")
        .replace("]", r"\]")
        .replace(".", r"\.")
        .replace("(", r"\(")
        .replace(")", r"\)"),
    ):
        build()


def test_a_confirmation_names_a_winner_among_its_configurations() -> None:
    document = ConfirmationResult(
        seeds=[1, 2],
        entries=[confirmation_entry(BASELINE_LABEL, {1: 0.5, 2: 0.6})],
        winner_label=BASELINE_LABEL,
    ).to_dict()
    with pytest.raises(ValueError, match="'confirmation.winner' 'x' is none of the configurations"):
        Confirmation.from_dict({**document, "winner": "x"})


def test_a_study_record_of_another_schema_is_refused_in_one_line() -> None:
    from joyful.errors import UserError

    with pytest.raises(
        UserError, match=r"^studies/x\.json: study record: schema_version 2 is not a study record"
    ):
        StudyRecord.read({"schema_version": 2}, "studies/x.json")


def test_the_better_than_rule_is_the_records() -> None:
    current = BestConfig.from_dict(best_document(0.53068))
    better = current.replace(metric=current.metric.replace(value=0.6))
    replaces, reason = better.replaces(current)
    assert replaces and "0.6 > 0.53068" in reason
    assert current.replaces(current) == (
        False,
        "kept earlier result of search 's1': 0.53068 >= 0.53068 on the same "
        "data and metric (dev_weighted_f1, max)",
    )
    other_data = better.replace(data=current.data.replace(sha256=SHA_B))
    assert not other_data.replaces(current)[0] and other_data.replaces(current, overwrite=True)[0]
    folds = better.replace(resampling=better.resampling.replace(kind="cv", folds=3))
    kept, reason = folds.replaces(current)
    assert not kept and "scored by the dev split, this one by 3-fold cross-validation" in reason
    assert folds.replaces(current, overwrite=True)[0]
    assert current.confirms(current) == (True, "confirmation of search 's1' recorded")
    assert not current.replace(study=current.study.replace(name="other")).confirms(current)[0]
