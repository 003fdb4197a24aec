"""The search service: Optuna bookkeeping (in memory, no model), a real small search, and the exact re-run."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from tune_helpers import reported, trial_dirs

from joyful.data.synthetic import generate
from joyful.io import atomic_write
from tune.forecast import SearchShape, TimeBudget
from tune.records import RANKING_RULE, BestConfig, Outcome, classify, ranked
from tune.records.store import ResultStore
from tune.runner.searcher import ArmSearcher
from tune.space import Strategy, load_space
from tune.study.storage import STORAGE_CLASS

REPO = Path(__file__).resolve().parents[1]
TINY_DIMS = {"a": 8, "t": 16, "v": 12}
TINY_MODEL = {
    "modalities": "atv",
    "seqcontext_nlayer": 1,
    "fusion_pool_dim": 16,
    "fusion_hidden": 32,
    "fusion_latent": 16,
    "hidden_size": 16,
    "learning_rate": 1.0e-3,
}


# --- Optuna bookkeeping, driven in memory ---------------------------------------------


@pytest.fixture
def searcher() -> ArmSearcher:
    space = load_space(REPO / "search_spaces" / "synthetic.yaml", "synthetic")
    return _searcher(space)


def _searcher(space, study=None, **kwargs) -> ArmSearcher:
    study = study or optuna.create_study(direction="maximize")
    settings = dict(
        storage="",
        study_name="",
        space=space,
        strategy=Strategy(),
        seed=0,
        trials=8,
        queued=[space.baseline_point()],
        time_attr="epoch",
        max_budget=4,
        metric="search_score",
        mode="max",
        study=study,
    )
    return ArmSearcher(**{**settings, **kwargs})


def _run(searcher: ArmSearcher, trial_id: str, scores: list[float], **last: object) -> dict:
    """Report `scores` epoch by epoch as the trainable does: `search_score` is the best epoch's so far."""
    searcher.suggest(trial_id)
    result = {}
    for epoch, score in enumerate(scores, start=1):
        best = max(scores[:epoch])
        result = {
            "epoch": epoch,
            "training_iteration": epoch,
            "dev_weighted_f1": score,
            "search_score": best,
        }
        searcher.on_trial_result(trial_id, result)
    return {**result, **last}


def test_classify() -> None:
    assert classify({"epoch": 4}, False, 4) is Outcome.COMPLETE
    assert classify({"epoch": 2}, False, 4) is Outcome.EARLY_STOPPED
    assert classify({"epoch": 2, "non_finite": True}, False, 4) is Outcome.NON_FINITE
    assert classify({"epoch": 4}, True, 4) is Outcome.ERRORED
    assert classify(None, False, 4) is Outcome.ERRORED


def test_a_trial_ended_twice_is_told_once(searcher: ArmSearcher) -> None:
    """A driver killed after a trial ended in the Optuna study but before Ray saved the experiment:
    on resume Ray runs that trial again from its checkpoint and ends it again (here as an error);
    the study keeps what it was told the first time."""
    searcher.on_trial_complete("done", _run(searcher, "done", [0.3, 0.6, 0.5, 0.4]))
    again = {"epoch": 4, "search_score": 0.1}
    searcher.on_trial_complete("done", again, error=True)
    searcher.on_trial_complete("done", again)
    [trial] = searcher.sampler.study.get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.6
    assert trial.user_attrs["outcome"] == "completed"


def test_outcomes_reach_optuna_truthfully(searcher: ArmSearcher) -> None:
    searcher.on_trial_complete("full", _run(searcher, "full", [0.3, 0.6, 0.5, 0.4]))
    searcher.on_trial_complete("stopped", _run(searcher, "stopped", [0.2, 0.25]))
    searcher.on_trial_complete(
        "nan",
        _run(
            searcher,
            "nan",
            [0.3],
            non_finite=True,
            search_score=-math.inf,
            stop_reason="non-finite training loss at epoch 2",
        ),
    )
    searcher.suggest("crashed")
    searcher.on_trial_complete("crashed", None, error=True)
    study = searcher.sampler.study
    trials = {t.user_attrs["ray_trial_id"]: t for t in study.get_trials()}
    # A finished trial is told its best epoch's score (what selection uses), not its last one.
    assert trials["full"].state == optuna.trial.TrialState.COMPLETE and trials["full"].value == 0.6
    # A trial stopped early is PRUNED, so the sampler does not take 0.25 after 2 epochs as a final score.
    assert trials["stopped"].state == optuna.trial.TrialState.PRUNED
    assert trials["stopped"].intermediate_values == {1: 0.2, 2: 0.25}
    assert trials["full"].intermediate_values == {
        1: 0.3,
        2: 0.6,
        3: 0.6,
        4: 0.6,
    }  # the running best it ranks by
    assert trials["nan"].state == optuna.trial.TrialState.FAIL
    assert "non-finite" in trials["nan"].user_attrs["stop_reason"]
    assert trials["crashed"].state == optuna.trial.TrialState.FAIL
    assert not [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert [t.user_attrs["proposed_by"] for t in study.get_trials()] == [
        "queued",
        "start-up",
        "start-up",
        "start-up",
    ]


def test_the_result_tune_gives_only_to_on_trial_complete_counts(searcher: ArmSearcher) -> None:
    """When the scheduler stops a trial (at a rung, or at max_t after a full run), Tune passes that last result to
    on_trial_complete and never to on_trial_result: it must still be an intermediate value and count as best."""
    last = _run(searcher, "full", [0.3, 0.4, 0.5])
    searcher.on_trial_complete(
        "full", {**last, "epoch": 4, "training_iteration": 4, "search_score": 0.9}
    )
    last = _run(searcher, "stopped", [0.2])
    searcher.on_trial_complete(
        "stopped", {**last, "epoch": 2, "training_iteration": 2, "search_score": 0.25}
    )
    trials = {t.user_attrs["ray_trial_id"]: t for t in searcher.sampler.study.get_trials()}
    assert trials["full"].value == 0.9 and trials["full"].intermediate_values == {
        1: 0.3,
        2: 0.4,
        3: 0.5,
        4: 0.9,
    }
    assert trials["stopped"].state == optuna.trial.TrialState.PRUNED
    assert trials["stopped"].intermediate_values == {1: 0.2, 2: 0.25}


def test_baseline_is_suggested_first(searcher: ArmSearcher) -> None:
    assert searcher.suggest("first") == {"fusion": "autofusion", "encoder_loss_weight": 0.03}


def test_non_finite_intermediate_is_not_reported(searcher: ArmSearcher) -> None:
    searcher.suggest("x")
    searcher.on_trial_result("x", {"epoch": 1, "training_iteration": 1, "search_score": math.nan})
    assert searcher.sampler.study.get_trials()[0].intermediate_values == {}


def test_progress_reports_feed_the_pace_not_the_study(searcher: ArmSearcher) -> None:
    """A cross-validated trial reports each epoch with the folds it finished; only a finished fold is a score."""
    cv = _searcher(searcher.space, time_attr="fold", max_budget=3)
    cv.suggest("t")
    cv.on_trial_result(
        "t", {"fold": 0, "search_score": math.nan, "epoch_seconds": 2.0, "progress": True}
    )
    cv.on_trial_result(
        "t", {"fold": 0, "search_score": math.nan, "epoch_seconds": 1.0, "progress": True}
    )
    cv.on_trial_result("t", {"fold": 1, "search_score": 0.4, "progress": False})
    cv.on_trial_result(
        "t", {"fold": 1, "search_score": 0.4, "epoch_seconds": 1.2, "progress": True}
    )
    assert cv.sampler.study.get_trials()[0].intermediate_values == {1: 0.4}
    assert cv.pace.epochs == {"t": [2.0, 1.0, 1.2]} and cv.pace.epoch_seconds() == 1.1


def test_with_a_time_budget_no_trial_starts_that_would_not_end_in_time(
    searcher: ArmSearcher,
) -> None:
    """Before any epoch is measured only the first wave starts; then a trial starts only if its expected length
    fits before the deadline, and once one does not the searcher says it has finished."""
    from ray.tune.search import Searcher

    shape = SearchShape.of(
        trials=8,
        epochs=4,
        folds=0,
        concurrency=2,
        grace_period=1,
        reduction_factor=2,
        stops_early=False,
        rerun=False,
    )
    timed = _searcher(searcher.space, shape=shape, time_budget=TimeBudget(seconds=100.0))
    assert isinstance(timed.suggest("a"), dict) and isinstance(timed.suggest("b"), dict)
    assert (
        timed.suggest("c") is None and not timed.ended_on_time
    )  # nothing measured yet: the third waits
    for seconds in (5.0, 5.0, 5.0):
        timed.pace.add_epoch("a", seconds)
    # 4 epochs at 5 s + 3 s overhead = 23 s a trial; the deadline is 100 s: one fits while elapsed <= 77 s.
    timed._started_at -= 70.0
    assert isinstance(timed.suggest("c"), dict)
    timed._started_at -= 10.0
    assert timed.suggest("d") == Searcher.FINISHED and timed.ended_on_time


def test_each_arm_learns_only_from_its_own_trials() -> None:
    """The hierarchical arm's sampler sees the hierarchical trials only (and the AutoFusion arm's the AutoFusion
    ones), so no fixed value overrides what a model proposed and no arm is tuned on the other's results."""
    space = load_space(REPO / "search_spaces" / "meld_text.yaml", "meld_text")
    searcher = _searcher(space, trials=12, max_budget=2)
    for index in range(12):
        trial_id = f"t{index}"
        params = searcher.suggest(trial_id)
        score = 0.5 + (0.1 if params["fusion"] == "hierarchical" else 0.0) + 0.01 * index
        searcher.on_trial_complete(trial_id, {"epoch": 2, "search_score": score})
    sampler = searcher.sampler
    for arm, model in sampler._models.items():
        seen = [t.params for t in model.get_trials()]
        assert "fusion" not in {
            k for p in seen for k in p
        }  # the arm's own value is given, never sampled
        fusion = arm.split("=")[1]
        hierarchical_only = {"gate_reg_weight", "reconstruction_loss"}
        assert all(bool(hierarchical_only & set(p)) == (fusion == "hierarchical") for p in seen)
        ours = [t for t in sampler.study.get_trials() if t.params["fusion"] == fusion]
        assert [{k: v for k, v in t.params.items() if k != "fusion"} for t in ours] == seen
    arms = [t.params["fusion"] for t in sampler.study.get_trials()]
    assert arms.count("autofusion") == arms.count("hierarchical") == 6  # equal budgets
    counts = sampler.counts()
    assert (
        counts["queued"] == 1
        and counts["model"] + counts["start-up"] == 11
        and counts["model"] >= 6
    )


def test_with_folds_a_stopped_trial_is_learned_with_its_folds_score_and_stays_pruned() -> None:
    """Cross-validation: a trial stopped after fold 1 has a score of the same quantity (noisier), so
    its arm's model sees it as finished with that score - a GP, which models only finished trials,
    learns from it - while the search's study, the record users read, keeps it PRUNED. Over epochs
    a stopped trial stays pruned for the model too."""
    import optuna

    from tune.sampling import ArmedSampler

    space = load_space(REPO / "search_spaces" / "meld_text.yaml", "meld_text")
    for stopped_scored in (True, False):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize")
        sampler = ArmedSampler(
            study,
            space,
            Strategy(sampler="gp"),
            seed=0,
            trials=8,
            stopped_scored=stopped_scored,
        )
        proposal = sampler.ask()
        sampler.report(proposal.number, 1, 0.41)
        sampler.finish(proposal.number, "PRUNED")
        [model] = [m for m in sampler._models.values() if m.get_trials()]
        [learned] = model.get_trials()
        assert study.get_trials()[0].state.name == "PRUNED"
        if stopped_scored:
            assert learned.state.name == "COMPLETE" and learned.value == 0.41
        else:
            assert learned.state.name == "PRUNED"  # what Optuna's GP leaves out


def test_a_resumed_searcher_rebuilds_its_arms_and_the_scheduler_rungs_from_the_study(
    tmp_path: Path,
) -> None:
    """After a restore the study is the truth: the arm samplers read its trials back, a trial the dead driver
    started but Ray never recorded is told FAIL, and the scheduler's rungs hold the earlier trials' scores."""
    from tune.runner.scheduler import PatientHalving

    space = load_space(REPO / "search_spaces" / "synthetic.yaml", "synthetic")
    journal = tmp_path / "study.journal"
    from tune.study.storage import create_study, open_storage

    study = create_study(open_storage(journal), "s", "max", {})
    scheduler = PatientHalving(
        time_attr="epoch",
        max_t=4,
        grace_period=1,
        reduction_factor=2,
        floor=0.1,
        noise=0.01,
        metric="search_score",
        mode="max",
    )
    first = _searcher(space, study=study, storage=str(journal), study_name="s", scheduler=scheduler)
    for trial_id, score in (("a", 0.6), ("b", 0.62), ("c", 0.64)):
        first.suggest(trial_id)
        first.on_trial_result(trial_id, {"epoch": 1, "search_score": score})
        scheduler.decide(trial_id, {"epoch": 1, "search_score": score})
    first.save(str(tmp_path / "searcher.json"))
    first.suggest("lost")  # started after the last save: the restored experiment does not know it
    restarted = PatientHalving(
        time_attr="epoch",
        max_t=4,
        grace_period=1,
        reduction_factor=2,
        floor=0.1,
        noise=0.01,
        metric="search_score",
        mode="max",
    )
    second = _searcher(space, study=None, storage=str(journal), study_name="s", scheduler=restarted)
    second.restore(str(tmp_path / "searcher.json"))
    states = {t.user_attrs["ray_trial_id"]: t.state.name for t in second.sampler.study.get_trials()}
    assert states == {"a": "RUNNING", "b": "RUNNING", "c": "RUNNING", "lost": "FAIL"}
    assert restarted.recorded[1] == {"a": 0.6, "b": 0.62, "c": 0.64}
    # A new trial that trails the restored rung far is stopped, as it would have been without the restart.
    assert restarted.decide("late", {"epoch": 1, "search_score": 0.2}) == "STOP"
    second.on_trial_complete("a", {"epoch": 4, "search_score": 0.7})
    assert {t.user_attrs["ray_trial_id"]: t.state.name for t in second.sampler.study.get_trials()}[
        "a"
    ] == "COMPLETE"


# --- a real small search ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("search")
    data = root / "tiny.pkl"
    import pickle

    atomic_write(
        data, lambda out: pickle.dump(generate(0, scale=0.1, dims=TINY_DIMS), out), binary=True
    )
    space = yaml.safe_load((REPO / "search_spaces" / "synthetic.yaml").read_text())
    space["fixed"] = TINY_MODEL
    space["resampling"] = "holdout"
    # Early stopping end to end (the default strategy runs every trial in full).
    space["strategy"] = {"scheduler": "patient"}
    space["budget"] = {
        "num_samples": 6,
        "max_epochs": 4,
        "grace_period": 1,
        "reduction_factor": 2,
        "cpus_per_trial": 1,
        "gpus_per_trial": 0,
        "max_concurrent": 2,
    }
    space_file = root / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    results = root / "results"
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        "synthetic",
        "--data",
        str(data),
        "--space",
        str(space_file),
        "--results-dir",
        str(results),
        "--storage-path",
        str(root / "ray"),
        "--name",
        "e2e",
        "--quiet",
        "--seed",
        "3",
        "--confirm-top",
        "1",
        "--confirm-seeds",
        "2",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return {
        "root": root,
        "results": results,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "data": data,
    }


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_search_writes_best_config_and_tables(small_search: dict) -> None:
    results = small_search["results"]
    document = json.loads((results / "best_configs" / "synthetic.json").read_text())
    BestConfig.from_dict(document)
    assert (
        document["config"]["seqcontext_nlayer"] == 1 and document["config"]["fusion_hidden"] == 32
    )
    assert document["rerun"]["reproduced"] is True
    assert document["study"]["num_samples"] == 6
    rows = list(csv.DictReader((results / "trials" / "synthetic.csv").open()))
    assert len(rows) == 6
    # The winner is the trial with the highest best dev F1 from its per-epoch history.
    best_row = max(rows, key=lambda r: float(r["best_dev_weighted_f1"] or -1))
    assert float(best_row["best_dev_weighted_f1"]) == document["single_trial_best"]["value"]
    # Confirmation ran: the published config is the confirmed winner (highest mean dev F1 over seeds).
    assert document["confirmation"] is not None
    assert (
        "<- best" in small_search["stdout"]
        and "re-run it with:\n  python train.py --config" in small_search["stdout"]
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cross_validated_search_confirms_on_fresh_folds_and_publishes_refits(
    tmp_path: Path,
) -> None:
    """resampling cv: every trial trains fold by fold and is scored by the mean over its folds at one
    epoch count; the records, the Optuna study and the report say so; confirmation runs every fold
    of another fold assignment with two seeds; the references are trained and compared; the
    published model is the winner refit on all of train + dev (the fold models recorded beside it),
    `python -m joyful.predict` reproduces its recorded score in a fresh process, and `train.py
    --config` re-runs the recorded confirmation run exactly. No trial reports a test score."""
    import pickle

    data = tmp_path / "tiny.pkl"
    atomic_write(
        data, lambda out: pickle.dump(generate(0, scale=0.1, dims=TINY_DIMS), out), binary=True
    )
    space = yaml.safe_load((REPO / "search_spaces" / "synthetic.yaml").read_text())
    space.update(
        fixed=TINY_MODEL,
        resampling={"kind": "cv", "folds": 3},
        references={"seeds": 2},
        # Plain ASHA over folds end to end: a stopped trial's fold mean is what its arm learns.
        strategy={"scheduler": "asha"},
        budget={
            "num_samples": 4,
            "max_epochs": 3,
            "grace_period": 1,
            "reduction_factor": 2,
            "cpus_per_trial": 1,
            "gpus_per_trial": 0,
            "max_concurrent": 2,
        },
    )
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    results = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            "tune/search.py",
            "--dataset",
            "synthetic",
            "--data",
            str(data),
            "--space",
            str(space_file),
            "--results-dir",
            str(results),
            "--storage-path",
            str(tmp_path / "ray"),
            "--name",
            "cv",
            "--quiet",
            "--confirm-top",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record, study = _stored_study(results)
    assert record.resampling.kind == "cv" and record.resampling.folds == 3
    from tune.study.story import details

    assert details(study)["resampling"] == {"kind": "cv", "folds": 3}
    for trial in record.trials:
        assert 1 <= trial.folds_run <= 3 and len(trial.fold_scores) == trial.folds_run
        assert trial.best_dev_weighted_f1 == pytest.approx(sum(trial.fold_scores) / trial.folds_run)
        assert trial.best_dev_weighted_f1 == max(p["dev_weighted_f1"] for p in trial.curve)
    for folder in (tmp_path / "ray" / "cv" / "synthetic").iterdir():
        if (folder / "result.json").exists():
            for line in (folder / "result.json").read_text().splitlines():
                assert not [
                    key for key in json.loads(line) if "test" in key
                ]  # a trial never sees test
    best = BestConfig.from_dict(
        json.loads((results / "best_configs" / "synthetic.json").read_text())
    )
    assert best.resampling.kind == "cv" and best.config["cv_folds"] == 3
    assert best.config["select_epoch"] == "last" and best.rerun.reproduced
    confirmation = best.confirmation
    assert confirmation.resampling == "cv: 3 folds" and len(confirmation.seeds) == 2
    # Evaluation apart from selection: the trials ranked on fold assignment 0, confirmation on 1.
    assert record.base().cv_fold_seed == 0 and best.config["cv_fold_seed"] == 1
    assert "fold seed 1" in best.metric.scored_on
    for entry in confirmation.configurations:
        assert sorted((r.seed, r.fold) for r in entry.runs) == [
            (seed, fold) for seed in confirmation.seeds for fold in (1, 2, 3)
        ]
    # The published model: the confirmed winner refit on all of train + dev, one per fold count.
    ensemble = best.ensemble
    assert "refits" in ensemble.members_from and len(ensemble.members) == 3
    assert ensemble.dev_weighted_f1 is None
    for member in ensemble.members:
        assert member.config["cv_fold"] == 0 and member.dev_weighted_f1 is None
        assert member.config["epochs"] == best.config["epochs"]
    assert any("fold models" in option.members_from for option in ensemble.not_chosen)
    names = {(c.name, c.split) for c in best.comparisons}
    for reference in (
        "logistic regression",
        "defaults, as train.py runs them",
        "strong untuned setting",
    ):
        assert (f"published model vs {reference}", "test") in names
    assert all(c.p_holm is not None and c.family == len(best.comparisons) for c in best.comparisons)
    assert [r.label for r in best.references.runs] == [
        "defaults, as train.py runs them",
        "strong untuned setting",
    ]
    assert all(len(r.seeds) == 2 for r in best.references.runs)
    # The references' epochs are the config's own (what train.py runs), never the search's.
    assert {r.config["epochs"] for r in best.references.runs} == {50}
    # predict, in a fresh process, reproduces the recorded ensemble score.
    predicted = subprocess.run(
        [
            sys.executable,
            "-m",
            "joyful.predict",
            "--config",
            str(results / "best_configs" / "synthetic.json"),
            "--data",
            str(data),
            "--scores-out",
            str(tmp_path / "scores.json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]
    assert scores["test"]["weighted_f1"] == ensemble.test_weighted_f1
    assert [m["weighted_f1"] for m in scores["test"]["members"]] == [
        m.test_weighted_f1 for m in ensemble.members
    ]
    report = (results / "reports" / "synthetic.md").read_text()
    assert (
        "3-fold cross-validation by dialogue" in report
        and "## Comparisons, with intervals" in report
    )
    # The best config holds the confirmed winner's median run, fold and seed; train.py re-runs it exactly.
    rerun = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            str(results / "best_configs" / "synthetic.json"),
            "--data",
            str(data),
            "--quiet",
            "--device",
            "cpu",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"best dev wF1 {best.metric.value:.4f}" in rerun.stdout


def _stored_study(results: Path, dataset: str = "synthetic") -> tuple:
    """(the study record, its Optuna study read back with `optuna.load_study` from the journal)."""
    store = ResultStore(results)
    record = store.read_study(dataset)
    journal = store.journal_of(record)
    return record, optuna.load_study(
        study_name=record.optuna_study,
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(journal))
        ),
    )


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_optuna_study_in_its_journal_matches_the_trials_table(small_search: dict) -> None:
    results = small_search["results"]
    record, study = _stored_study(results)
    # One journal per data set, data and space: its name holds both fingerprints.
    assert record.optuna_storage.endswith(
        f"synthetic--data-{record.data_sha256[:12]}--space-{record.space_fingerprint[:12]}.journal"
    )
    assert study.user_attrs["data_sha256"] == record.data_sha256 and record.optuna_study == "e2e"
    table = {
        row["trial_id"]: row
        for row in csv.DictReader((results / "trials" / "synthetic.csv").open())
    }
    trials = study.get_trials()
    assert len(trials) == 6 == len(table)
    expected_state = {
        "TERMINATED": "COMPLETE",
        "EARLY_STOPPED": "PRUNED",
        "ERROR": "FAIL",
        "NON_FINITE": "FAIL",
    }
    for trial in trials:
        row = table[trial.user_attrs["ray_trial_id"]]
        assert trial.state.name == expected_state[row["status"]]
        if (
            trial.state == optuna.trial.TrialState.COMPLETE
        ):  # the best epoch's score, as the table records it
            assert trial.value == float(row["best_dev_weighted_f1"])
            assert max(trial.intermediate_values.values()) == trial.value
        else:  # ASHA-stopped: every epoch's score (Optuna keeps the last one as the pruned trial's value)
            assert len(trial.intermediate_values) == int(row["epochs_run"])
            assert trial.value == trial.intermediate_values[int(row["epochs_run"])]
    first = min(trials, key=lambda t: t.number)
    assert first.params == {
        "fusion": "autofusion",
        "encoder_loss_weight": 0.03,
    }  # the baseline goes first
    for trial in record.trials:
        epochs = [point["epoch"] for point in trial.curve]
        assert epochs == list(range(1, len(epochs) + 1))
    # Optuna's own CLI reads the journal as documented in the README.
    command = [
        str(Path(sys.executable).with_name("optuna")),
        "best-trial",
        "--storage",
        str(ResultStore(results).journal_of(record)),
        "--storage-class",
        STORAGE_CLASS,
        "--study-name",
        "e2e",
        "-f",
        "json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == study.best_value


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_a_trials_reported_score_is_what_the_study_records_and_report_show(
    small_search: dict,
) -> None:
    """The score a trial reports each epoch (its averaged weights' dev wF1) is the curve and best score of its
    record and what the report names; the scheduler and TPE see its running best (the search score on the dev
    split), which are its Optuna intermediate values."""
    import itertools

    results = small_search["results"]
    record, study = _stored_study(results)
    by_ray_id = {t.user_attrs["ray_trial_id"]: t for t in study.trials}
    folders = trial_dirs(small_search["root"] / "ray" / "e2e" / "synthetic")
    assert len(folders) == len(record.trials) == 6
    for folder in folders:
        reports = reported(folder)
        sent = [r["dev_weighted_f1"] for r in reports]
        assert all("raw_dev_weighted_f1" in r for r in reports)  # weight averaging is on by default
        trial = next(t for t in record.trials if t.trial_id == reports[-1]["trial_id"])
        assert [p["dev_weighted_f1"] for p in trial.curve] == sent
        assert [p["raw_dev_weighted_f1"] for p in trial.curve] == [
            r["raw_dev_weighted_f1"] for r in reports
        ]
        assert (
            trial.best_dev_weighted_f1 == max(sent)
            and trial.best_epoch == sent.index(max(sent)) + 1
        )
        optuna_trial = by_ray_id[trial.trial_id]
        running_best = list(itertools.accumulate(sent, max))
        assert [r["search_score"] for r in reports] == running_best
        assert [
            optuna_trial.intermediate_values[e] for e in sorted(optuna_trial.intermediate_values)
        ] == running_best
    best = ranked(record.trials)[0]
    report = (results / "reports" / "synthetic.md").read_text()
    assert (
        f"Best single trial: `{best.trial_id}`, {best.best_dev_weighted_f1:.4f} dev wF1 (the "
        "data's dev split, one seed)" in report
    )
    document = json.loads((results / "best_configs" / "synthetic.json").read_text())
    assert document["single_trial_best"]["value"] == best.best_dev_weighted_f1


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_the_confirmed_winner_is_published_as_an_ensemble(
    small_search: dict, tmp_path: Path
) -> None:
    results, data = small_search["results"], small_search["data"]
    best_path = results / "best_configs" / "synthetic.json"
    document = json.loads(best_path.read_text())
    ensemble, confirmation = document["ensemble"], document["confirmation"]
    assert ensemble["label"] == confirmation["winner"]
    winners_runs = f"the {len(ensemble['members'])} runs of {confirmation['winner']}, one per seed"
    assert ensemble["members_from"] in (winners_runs, "every confirmed run, all configurations")
    # Chosen on dev: the published ensemble scores at least as high on dev as the one not chosen.
    assert all(
        ensemble["dev_weighted_f1"] >= other["dev_weighted_f1"] for other in ensemble["not_chosen"]
    )
    for member in ensemble["members"]:
        path = best_path.parent / member["path"]
        assert path.is_file() and path.resolve().is_relative_to(
            (results / "models" / "synthetic" / "e2e").resolve()
        )
        assert member["seed"] in confirmation["seeds"]
        config = json.loads((best_path.parent / member["config_file"]).read_text())["config"]
        assert config == member["config"]
        if member["label"] == confirmation["winner"]:
            assert member["config"] == {**document["config"], "seed": member["seed"]}
    winner = next(c for c in confirmation["configurations"] if c["label"] == confirmation["winner"])
    assert ensemble["single_run"]["test_weighted_f1"] == winner["test_weighted_f1"]
    assert winner["raw_test_weighted_f1"]["n"] == 2  # the raw weights were tested too, once per run
    # The user's command scores the ensemble as the best config recorded it (test, then dev).
    for split in ("test", "dev"):
        scores = tmp_path / f"{split}.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "joyful.predict",
                "--config",
                str(best_path),
                "--data",
                str(data),
                "--split",
                split,
                "--scores-out",
                str(scores),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert (
            json.loads(scores.read_text())["scores"][split]["weighted_f1"]
            == ensemble[f"{split}_weighted_f1"]
        )
    # Each member re-runs exactly through train.py --config with its config file.
    member = ensemble["members"][-1]
    metrics = tmp_path / "member.json"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            str(best_path.parent / member["config_file"]),
            "--metrics-out",
            str(metrics),
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rerun = json.loads(metrics.read_text())
    assert rerun["best_dev_weighted_f1"] == member["dev_weighted_f1"]
    assert rerun["test"]["weighted_f1"] == member["test_weighted_f1"]
    report = (results / "reports" / "synthetic.md").read_text()
    assert f"| **published ensemble**: {ensemble['members_from']} (chosen on dev) |" in report


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_the_optuna_study_tells_the_searchs_story(small_search: dict) -> None:
    """The search's winner, ranking rule, confirmation and published config are in the Optuna study itself (and in
    its optuna-dashboard note), agreeing with the best config; where Optuna's best_trial differs, it says why."""
    results = small_search["results"]
    record, study = _stored_study(results)
    document = json.loads((results / "best_configs" / "synthetic.json").read_text())
    from tune.study.story import details

    # What `optuna studies` lists is short (fingerprints, times, a summary line); the rest is in system attributes.
    assert set(study.user_attrs) >= {
        "data_sha256",
        "space_fingerprint",
        "started_at",
        "finished_at",
        "summary",
    }
    assert study.user_attrs["summary"].startswith(
        f"winner #{ranked(record.trials)[0].optuna_number} ("
    )
    attrs = details(study)
    winner = ranked(record.trials)[0]
    assert attrs["ranking_rule"] == RANKING_RULE and attrs["budget"]["num_samples"] == 6
    assert (
        attrs["search_winner"]["ray_trial_id"]
        == winner.trial_id
        == document["single_trial_best"]["trial_id"]
    )
    assert attrs["search_winner"]["trial_number"] == winner.optuna_number
    assert attrs["search_winner"]["value"] == winner.best_dev_weighted_f1
    if study.best_trial.number == winner.optuna_number:
        assert attrs["optuna_best_trial_differs"] is None
    else:
        assert f"#{study.best_trial.number}" in attrs["optuna_best_trial_differs"]
        assert (
            "ranks every trial by its search score, also trials stopped early"
            in attrs["optuna_best_trial_differs"]
        )
    confirmation = document["confirmation"]
    assert attrs["confirmation"]["winner"] == confirmation["winner"]
    for stored, configuration in zip(
        attrs["confirmation"]["configurations"], confirmation["configurations"], strict=True
    ):
        assert stored["dev_weighted_f1"] == {
            f"seed {r['seed']}": r["best_dev_weighted_f1"] for r in configuration["runs"]
        }
    published = attrs["published"]
    assert published["written"] is True and published["config_searched"] == document["searched"]
    assert published["ensemble"]["test_weighted_f1"] == document["ensemble"]["test_weighted_f1"]
    assert study.user_attrs["finished_at"] >= study.user_attrs["started_at"]
    by_id = {t.trial_id: t for t in record.trials}
    for trial in study.trials:
        own = by_id[trial.user_attrs["ray_trial_id"]]
        assert (trial.user_attrs["epochs_run"], trial.user_attrs["stop_reason"]) == (
            own.epochs_run,
            own.stop_reason,
        )
    from optuna_dashboard import get_note

    assert f"Search winner:** trial #{winner.optuna_number}" in get_note(study)


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_the_search_reports_itself(small_search: dict) -> None:
    stdout, results = small_search["stdout"], small_search["results"]
    # --quiet still prints one progress line per ended trial, the last one 6/6.
    progress = [
        line
        for line in stdout.splitlines()
        if line.startswith("[synthetic] ") and "trials done (" in line
    ]
    # Each line names the trial that ended (and why, if it was stopped), then the counts.
    assert len(progress) == 6 and "; 6/6 trials done (" in progress[-1]
    assert all(line.startswith("[synthetic] trial ") for line in progress)
    assert "best dev wF1" in progress[-1] and "elapsed" in progress[-1] and "left" in progress[-1]
    assert "always-" in stdout and "on dev: wF1" in stdout  # the trivial level in the summary
    # The confirmation reports itself too: a line per finished run, the last one complete.
    confirming = [line for line in stdout.splitlines() if line.startswith("[confirmation] ")]
    runs = int(confirming[-1].split("/")[1].split()[0])
    assert len(confirming) >= runs and confirming[-1].startswith(
        f"[confirmation] {runs}/{runs} runs done"
    )
    # Quiet means quiet: no Ray configuration box, no TensorBoard hint, no Ray warnings.
    for noise in (
        "Configuration for experiment",
        "tensorboard --logdir",
        "View detailed results here",
    ):
        assert noise not in stdout and noise not in small_search["stderr"]
    report = (results / "reports" / "synthetic.md").read_text()
    assert (
        "## Parameters together" in report
        and "## Confirmation\n" in report
        and "## Comparisons, with intervals" in report
    )
    assert "Trivial level: always" in report
    for image in ("history.png", "curves.png", "confirmation.png"):
        assert (results / "reports" / "synthetic" / image).stat().st_size > 5000


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_a_warm_started_search_learns_from_the_earlier_one(small_search: dict) -> None:
    # On a copy of the results: publishing here must not change what the other tests read.
    root = small_search["root"]
    results = root / "warm-results"
    shutil.copytree(small_search["results"], results)
    earlier, _ = _stored_study(results)
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        "synthetic",
        "--data",
        str(small_search["data"]),
        "--space",
        str(root / "space.yaml"),
        "--results-dir",
        str(results),
        "--storage-path",
        str(root / "ray"),
        "--name",
        "warm",
        "--quiet",
        "--num-samples",
        "2",
        "--confirm-top",
        "0",
        "--no-rerun",
        "--warm-start",
        "--seed",
        "3",
    ]  # the earlier search's seed: its random draws must not be replayed
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    learned = [t for t in earlier.trials if t.status in ("TERMINATED", "EARLY_STOPPED")]
    assert f"warm start from {len(learned)} trial(s) of e2e" in done.stdout
    record, study = _stored_study(results)
    assert (
        record.name == "warm"
        and Path(record.optuna_storage).name == Path(earlier.optuna_storage).name
    )  # one journal
    copies = [t for t in study.trials if "warm_start_from" in t.user_attrs]
    ran = [t for t in study.trials if "warm_start_from" not in t.user_attrs]
    assert (
        len(copies) == len(learned) == record.warm_start.trials
        and len(ran) == len(record.trials) == 2
    )
    assert {t.user_attrs["ray_trial_id"] for t in copies} == {
        t.trial_id for t in learned
    }  # not re-run
    # The baseline was run by the earlier search: it is not run again, nor is any configuration it ran.
    assert {"fusion": "autofusion", "encoder_loss_weight": 0.03} not in [t.params for t in ran]
    assert not any(t.params == c.params for t in ran for c in copies)
    assert study.user_attrs["sampler_seed"] != 3
    # The earlier search's study is untouched: searches never merge.
    assert len(optuna.load_study(study_name="e2e", storage=study._storage).trials) == 6


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_train_cli_reproduces_the_winner_exactly(small_search: dict, tmp_path: Path) -> None:
    best = small_search["results"] / "best_configs" / "synthetic.json"
    metrics = tmp_path / "rerun.json"
    done = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--config",
            str(best),
            "--metrics-out",
            str(metrics),
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rerun = json.loads(metrics.read_text())
    document = json.loads(best.read_text())
    assert rerun["best_dev_weighted_f1"] == document["metric"]["value"]
    assert rerun["best_epoch"] == document["metric"]["best_epoch"]
    assert rerun["test"]["weighted_f1"] == document["test"]["weighted_f1"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_unconfirmed_winner_below_the_references_still_gets_its_report(tmp_path: Path) -> None:
    """A command that once crashed (no confirmation, a winner below the linear reference): the search ends
    with exit 0 and a whole report that says so."""
    data = tmp_path / "tiny.pkl"
    atomic_write(
        data,
        lambda out: __import__("pickle").dump(generate(0, scale=0.1, dims=TINY_DIMS), out),
        binary=True,
    )
    space = yaml.safe_load((REPO / "search_spaces" / "synthetic.yaml").read_text())
    space["fixed"] = {
        **TINY_MODEL,
        "learning_rate": 1.0e-5,
    }  # learns nothing in 2 epochs: below the reference
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(space))
    results = tmp_path / "results"
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        "synthetic",
        "--data",
        str(data),
        "--space",
        str(tmp_path / "space.yaml"),
        "--num-samples",
        "3",
        "--max-epochs",
        "2",
        "--grace-period",
        "2",
        "--cpus-per-trial",
        "1",
        "--confirm-top",
        "0",
        "--quiet",
        "--results-dir",
        str(results),
        "--storage-path",
        str(tmp_path / "ray"),
        "--name",
        "below",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "could not be written" not in done.stderr
    report = (results / "reports" / "synthetic.md").read_text()
    assert "re-run winner: test wF1" in report and "BELOW logistic regression" in report
    assert "This search's result was not confirmed (`--confirm-top 0`)" in report


# --- a user's own data set: no YAML needed ----------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_spec_only_data_set_searches_the_default_space(tmp_path: Path) -> None:
    from tests.conftest import make_processed, write_pickle

    spec = tmp_path / "calls.json"
    spec.write_text(
        json.dumps({"name": "calls", "label_names": ["ok", "angry", "sad"], "n_speakers": 2})
    )
    data = write_pickle(tmp_path / "calls.pkl", make_processed(3, "MF", {"t": 6}))
    results = tmp_path / "results"
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        "calls",
        "--dataset-spec",
        str(spec),
        "--data",
        str(data),
        "--num-samples",
        "2",
        "--max-epochs",
        "1",
        "--grace-period",
        "1",
        "--results-dir",
        str(results),
        "--storage-path",
        str(tmp_path / "ray"),
        "--name",
        "own",
        "--quiet",
        "--confirm-top",
        "0",
        "--no-rerun",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr[-3000:]
    notes = [line for line in done.stdout.splitlines() if "using the default space" in line]
    assert len(notes) == 1 and "--write-space" in notes[0]
    document = json.loads((results / "best_configs" / "calls.json").read_text())
    BestConfig.from_dict(document)
    assert document["study"]["space_file"].endswith("search_spaces/default.yaml")
    assert document["config"]["modalities"] == "t"  # every modality the file has
    assert document["references"]["majority"]["test_weighted_f1"] >= 0
    record, study = _stored_study(results, "calls")
    assert len(record.trials) == 2 and "learning_rate" in study.trials[1].params

    # The default space as a starting file: written once, never over an existing file.
    out = tmp_path / "calls.yaml"
    write = [sys.executable, "tune/search.py", "--dataset", "calls", "--write-space", str(out)]
    done = subprocess.run(write, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (
        load_space(out, "calls").param_names()
        == load_space(REPO / "search_spaces" / "default.yaml", "calls", template=True).param_names()
    )
    assert "\ndataset: calls\n" in out.read_text() and out.read_text().startswith("#")
    again = subprocess.run(write, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (
        again.returncode == 2
        and "the file exists" in again.stderr
        and len(again.stderr.strip().splitlines()) == 1
    )
