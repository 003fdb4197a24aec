"""The Optuna side of a search (tune/study): its journal, warm starts, the story and times a study keeps, and the
study records beside it (no Ray)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from tune_helpers import space_document, write_data

from joyful.config import JoyfulConfig
from joyful.errors import UserError
from tune.planning import plan_dataset
from tune.records import (
    STUDY_SCHEMA_VERSION,
    MajorityLevel,
    Outcome,
    StudyRecord,
    TrialRecord,
    choose_winner,
    ranked,
)
from tune.records.building import winner_config
from tune.records.store import ResultStore
from tune.search import parse_search_options
from tune.space import load_space
from tune.study.storage import create_study, load_study, open_storage, space_fingerprint

REPO = Path(__file__).resolve().parents[1]


def _trial(
    trial_id: str, status: str, value: float | None, best_epoch: int = 2, **params: object
) -> TrialRecord:
    outcome = next(o for o in Outcome if o.label == status)
    return TrialRecord(
        trial_id=trial_id,
        params=params,
        outcome=outcome,
        epochs_run=3,
        best_dev_weighted_f1=value,
        best_epoch=best_epoch,
    )


def test_one_ranking_for_every_caller() -> None:
    trials = [
        _trial("b", "TERMINATED", 0.6, 3),
        _trial("a", "EARLY_STOPPED", 0.6, 3),
        _trial("c", "TERMINATED", 0.6, 1),
        _trial("d", "ERROR", 0.9),
        _trial("e", "NON_FINITE", 0.95),
        _trial("f", "TERMINATED", None),
    ]
    # Ties: the earlier best epoch (cheaper), then the trial id; errored, non-finite and unscored trials never rank.
    assert [t.trial_id for t in ranked(trials)] == ["c", "a", "b"]
    assert choose_winner(trials).trial_id == "c" and choose_winner(trials[3:]) is None
    with pytest.raises(ValueError, match="'outcome': input should be 'completed'"):
        TrialRecord.from_dict(
            {
                "trial_id": "x",
                "params": {},
                "outcome": "finished",
                "epochs_run": 1,
                "best_dev_weighted_f1": 0.5,
                "best_epoch": 1,
            }
        )


def test_the_space_fingerprint_ignores_comments_and_budget_but_not_ranges(tmp_path: Path) -> None:
    document = space_document()
    first = tmp_path / "a.yaml"
    first.write_text("# a comment\n" + yaml.safe_dump(document))
    second = tmp_path / "b.yaml"
    second.write_text(
        yaml.safe_dump({**document, "budget": {**document["budget"], "num_samples": 40}})
    )
    third = tmp_path / "c.yaml"
    wider = {"encoder_loss_weight": {"type": "float", "low": 0.001, "high": 0.1, "log": True}}
    third.write_text(yaml.safe_dump({**document, "parameters": wider}))
    a, b, c = (space_fingerprint(load_space(p, "synthetic")) for p in (first, second, third))
    assert a == b != c and len(a) == 64


# --- warm start --------------------------------------------------------------------------------------


def _plan(tmp_path: Path, *extra: str, space: dict | None = None, data_seed: int = 0):
    from tune_helpers import tiny_data

    data = write_data(tmp_path / f"tiny{data_seed}.pkl", tiny_data(seed=data_seed))
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space or space_document()))
    options = parse_search_options(
        [
            "--dataset",
            "synthetic",
            "--data",
            str(data),
            "--space",
            str(space_file),
            "--results-dir",
            str(tmp_path / "results"),
            "--name",
            "next",
            *extra,
        ]
    )
    store = ResultStore(options.results_dir)
    return plan_dataset(
        "synthetic",
        str(data),
        str(space_file),
        options,
        name=options.name,
        storage=str(tmp_path / "ray"),
        store=store,
    ), store


def _earlier_search(plan, name: str = "first") -> optuna.Study:
    """An earlier search's study in the plan's journal: the baseline, a better trial, an ASHA-stopped and a failed one."""
    study = create_study(open_storage(plan.optuna_storage), name, "max", plan.fingerprints)
    distribution = optuna.distributions.FloatDistribution(0.01, 0.1, log=True)
    state = optuna.trial.TrialState
    for value, weight, trial_state in (
        (0.5, 0.03, state.COMPLETE),
        (0.6, 0.05, state.COMPLETE),
        (None, 0.08, state.PRUNED),
        (None, 0.02, state.FAIL),
    ):
        study.add_trial(
            optuna.trial.create_trial(
                state=trial_state,
                value=value,
                params={"encoder_loss_weight": weight},
                distributions={"encoder_loss_weight": distribution},
                intermediate_values={1: 0.3, 2: 0.4},
            )
        )
    return study


def test_warm_start_learns_from_earlier_trials_and_proposes_earlier_winners(tmp_path: Path) -> None:
    plan, store = _plan(tmp_path)
    _earlier_search(plan)
    # An earlier winner of the data set (from another search) lies inside this space: proposed first.
    from tune_helpers import best_document

    document = best_document(0.7)
    document["config"]["encoder_loss_weight"] = 0.07
    store.publish_best("synthetic", document)
    plan, _ = _plan(tmp_path, "--warm-start")
    warm = plan.warm_start
    assert (
        warm.studies == ["first"] and len(warm.trials) == 3
    )  # COMPLETE and PRUNED; the failed one is left out
    assert {t.user_attrs["warm_start_from"] for t in warm.trials} == {
        "first#0",
        "first#1",
        "first#2",
    }
    assert warm.proposed == [{"encoder_loss_weight": 0.07}]
    # The baseline (0.03) was run by the earlier search: it is not run again; the earlier winner goes first.
    assert plan.queued() == [{"encoder_loss_weight": 0.07}]
    # A learned trial of the baseline's values counts whatever settings the baseline leaves open (real spaces
    # sample the learning rate etc. beside it); a trial with other values does not.
    from types import SimpleNamespace

    for params, baseline_runs in (
        ({"encoder_loss_weight": 0.03, "learning_rate": 3e-4}, False),
        ({"encoder_loss_weight": 0.05, "learning_rate": 3e-4}, True),
    ):
        plan.warm_start = dataclasses.replace(warm, trials=[SimpleNamespace(params=params)])
        assert ({"encoder_loss_weight": 0.03} in plan.queued()) is baseline_runs
    plan.warm_start = warm
    # The copies keep their states and values, and TPE samples from them (no random start-up needed).
    study = create_study(open_storage(plan.optuna_storage), "next", "max", plan.fingerprints)
    study.add_trials(warm.trials)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert study.best_value == 0.6 and study.trials[2].intermediate_values == {1: 0.3, 2: 0.4}


def test_warm_start_from_other_data_or_another_space_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"no earlier search of synthetic in .*run one without --warm-start"
    ):
        _plan(tmp_path, "--warm-start")
    plan, _ = _plan(tmp_path)
    _earlier_search(plan)
    wider = {
        **space_document(),
        "parameters": {"encoder_loss_weight": {"type": "float", "low": 0.001, "high": 0.1}},
    }
    with pytest.raises(
        UserError, match=r"searched on another search space \(synthetic--data-.*\.journal\)"
    ):
        _plan(tmp_path, "--warm-start", space=wider)
    with pytest.raises(UserError, match=r"searched on other data \("):
        _plan(tmp_path, "--warm-start", data_seed=1)
    # Naming the journal of other data explicitly: refused by the fingerprints its studies carry.
    with pytest.raises(UserError, match="study 'first' in .* was searched on another data "):
        _plan(tmp_path, "--warm-start", str(plan.optuna_storage), data_seed=1)
    # A second study of the same name in one journal is refused too (never merged).
    with pytest.raises(UserError, match="an Optuna study named 'first' exists already"):
        _earlier_search(plan)


# --- records on disk ---------------------------------------------------------------------------------


def test_committed_results_load_in_the_new_records() -> None:
    store = ResultStore(REPO / "results")
    for dataset in store.datasets_with_studies():
        record = store.read_study(dataset)
        best = store.read_best(dataset)
        assert record.name == best.study.name and record.data_sha256 == best.data.sha256
        study = load_study(store.journal_of(record), record.optuna_study)
        states = {t.user_attrs["ray_trial_id"]: t.state.name for t in study.trials}
        expected = {
            "TERMINATED": "COMPLETE",
            "EARLY_STOPPED": "PRUNED",
            "ERROR": "FAIL",
            "NON_FINITE": "FAIL",
        }
        assert states == {t.trial_id: expected[t.status] for t in record.trials}
        assert choose_winner(record.trials).trial_id == best.single_trial_best.trial_id
        # The base config the search started from: the winner is it plus the winner's sampled values (with
        # cross-validation: on its first fold, for the epoch count its folds chose); precision as recorded.
        winner = choose_winner(record.trials)
        rebuilt = winner_config(record, load_space(record.space_file, dataset), winner)
        assert rebuilt.replace(precision=winner.precision) == JoyfulConfig.from_dict(
            best.single_trial_best.config
        )
        if record.resampling.kind == "cv":
            assert (rebuilt.cv_folds, rebuilt.cv_fold, rebuilt.epochs) == (
                record.resampling.folds,
                1,
                winner.best_epoch,
            )


def test_a_study_record_round_trips_and_other_schemas_are_refused_with_the_fix(
    tmp_path: Path,
) -> None:
    store = ResultStore(REPO / "results")
    record = store.read_study(store.datasets_with_studies()[0])
    assert StudyRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    with pytest.raises(
        UserError, match=r"x\.json: study record: schema_version 2 .*re-run the search"
    ):
        StudyRecord.read({**record.to_dict(), "schema_version": 2}, "x.json")
    with pytest.raises(UserError, match="upgrade joyful-tune"):
        StudyRecord.read({**record.to_dict(), "schema_version": STUDY_SCHEMA_VERSION + 1}, "x.json")
    broken = record.to_dict()
    broken["budget"] = {**broken["budget"], "grace_period": 99}
    with pytest.raises(UserError, match="budget.grace_period is 99"):
        StudyRecord.read(broken, "x.json")


def test_optuna_dashboard_serves_a_search_journal(tmp_path: Path) -> None:
    """`optuna-dashboard <journal>`, as the README documents it, on the committed study's journal."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    store = ResultStore(REPO / "results")
    record = store.read_study(store.datasets_with_studies()[0])
    journal = shutil.copy(
        store.journal_of(record), tmp_path / "study.journal"
    )  # the dashboard may write notes
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen(
        [str(dashboard), str(journal), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, summaries = time.monotonic() + 60, None
        while summaries is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies", timeout=5
                ) as response:
                    summaries = json.loads(response.read())["study_summaries"]
            except OSError:
                time.sleep(0.5)
        assert summaries is not None, "the dashboard did not answer within 60 s"
        # One journal per data file and space: a later search of both (the committed MELD study
        # `meld-v2` after `meld-cv`) adds its study beside the earlier one.
        [summary] = [s for s in summaries if s["study_name"] == record.optuna_study]
        attrs = {a["key"]: a["value"] for a in summary["user_attrs"]}
        assert attrs["data_sha256"] == record.data_sha256
        assert "finished_at" in attrs and "started_at" in attrs  # the search's own times are there
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_summary_warns_when_the_winner_does_not_clear_always_majority(capsys) -> None:
    from tune.reporting.summary import print_summary
    from tune.stats.references import majority_warning

    record = ResultStore(REPO / "results").read_study("meld_text")
    winner = choose_winner(record.trials)
    assert (
        majority_warning(record, winner) is None
    )  # the committed winner clears always-neutral (0.252)
    stuck = record.replace(
        majority=MajorityLevel(
            majority_class="neutral", dev_weighted_f1=winner.best_dev_weighted_f1
        )
    )
    warning = majority_warning(stuck, winner)
    assert warning.startswith(
        f"WARNING: meld_text: the best trial's dev wF1 {winner.best_dev_weighted_f1:.4f} does "
        "not clear always-neutral"
    )
    print_summary(stuck, winner)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == warning and "<- best" in "\n".join(lines)


def test_warm_start_and_resume_together_are_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    from tune.runner.supervisor import CHILD_ENV
    from tune.search import main

    monkeypatch.setenv(CHILD_ENV, "1")  # the search's own process: no child driver

    code = main(
        [
            "--dataset",
            "synthetic",
            "--warm-start",
            "--resume",
            "--name",
            "x",
            "--results-dir",
            str(tmp_path / "results"),
            "--storage-path",
            str(tmp_path / "ray"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--warm-start starts a new search" in err
    assert (
        not (tmp_path / "results").exists() and not (tmp_path / "ray").exists()
    )  # nothing left behind


def test_a_search_name_taken_in_the_journal_is_refused_before_ray_starts(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    from tune.runner.supervisor import CHILD_ENV
    from tune.search import main

    monkeypatch.setenv(CHILD_ENV, "1")  # the search's own process: no child driver

    plan, _ = _plan(tmp_path)
    _earlier_search(plan, name="taken")
    code = main(
        [
            "--dataset",
            "synthetic",
            "--data",
            str(tmp_path / "tiny0.pkl"),
            "--space",
            str(tmp_path / "space.yaml"),
            "--results-dir",
            str(tmp_path / "results"),
            "--storage-path",
            str(tmp_path / "ray"),
            "--name",
            "taken",
        ]
    )
    err = capsys.readouterr().err
    assert (
        code == 2 and err.count("\n") == 1 and "holds an Optuna study named 'taken' already" in err
    )
    assert not (tmp_path / "ray").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_search_keeps_its_study_in_a_database_given_by_url(tmp_path: Path) -> None:
    """--optuna-storage sqlite:///...: the study (trials, states, story) lives in the database, the records name
    it, the report reads it back, and a warm start finds the earlier study of the same data and space there."""
    import subprocess
    import sys

    from tune_helpers import search_args, search_env, short_tmpdir, stop_ray, write_space

    data, space = (
        write_data(tmp_path / "tiny.pkl"),
        write_space(tmp_path / "space.yaml", num_samples=2, max_epochs=2),
    )
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    ray_tmp = short_tmpdir()
    try:
        for name, extra in (("first", []), ("second", ["--warm-start", "--num-samples", "1"])):
            done = subprocess.run(
                [
                    sys.executable,
                    "tune/search.py",
                    *search_args(
                        data, space, tmp_path, name, "--no-rerun", "--optuna-storage", url, *extra
                    ),
                ],
                cwd=REPO,
                env=search_env(ray_tmp),
                capture_output=True,
                text=True,
                timeout=500,
            )
            assert done.returncode == 0, done.stderr[-3000:]
    finally:
        stop_ray(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    store = ResultStore(tmp_path / "results")
    assert not list(
        store.studies_dir().glob("*.journal")
    )  # no journal file: the database holds the studies
    record = store.read_study("synthetic")
    assert record.optuna_storage == url and record.name == "second"
    first = optuna.load_study(study_name="first", storage=url)
    assert [t.state.name for t in first.trials] == ["COMPLETE", "COMPLETE"] and first.user_attrs[
        "finished_at"
    ]
    second = optuna.load_study(study_name="second", storage=url)
    assert len([t for t in second.trials if "warm_start_from" in t.user_attrs]) == 2
    assert (
        "Optuna study `second` in `sqlite:///"
        in (tmp_path / "results" / "reports" / "synthetic.md").read_text()
    )
