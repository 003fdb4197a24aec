"""The report: built from a hand-made study in memory (fast), and from a real small search, confirmed,
then rebuilt without training (slow)."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from joyful.config import JoyfulConfig
from joyful.data.synthetic import generate
from joyful.io import atomic_write, atomic_write_json
from tune.records import BestConfig, MajorityLevel, Outcome, Resampling, StudyRecord, TrialRecord
from tune.records.store import ResultStore
from tune.reporting.report import build_report, parameter_importance
from tune.space import Budget, load_space, rungs
from tune.stats.confirmation import BASELINE_LABEL, ConfigRuns, ConfirmationResult, SeedRun
from tune.study.storage import create_study, open_storage, space_fingerprint

REPO = Path(__file__).resolve().parents[1]
SPACE = REPO / "search_spaces" / "synthetic.yaml"
TINY_DIMS = {"a": 8, "t": 16, "v": 12}
TINY_FIXED = {
    "modalities": "atv",
    "seqcontext_nlayer": 1,
    "fusion_pool_dim": 16,
    "fusion_hidden": 32,
    "fusion_latent": 16,
    "hidden_size": 16,
    "learning_rate": 1.0e-3,
    "batch_size": 4,
    "gnn_nheads": 2,
}


def _images(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)


# --- fast: a hand-made study ------------------------------------------------------------------


def _optuna_trial(
    number: int, state: str, value: float | None, params: dict
) -> optuna.trial.FrozenTrial:
    distributions = {
        "fusion": optuna.distributions.CategoricalDistribution(["autofusion", "hierarchical"]),
        "encoder_loss_weight": optuna.distributions.FloatDistribution(0.01, 0.1, log=True),
    }
    return optuna.trial.create_trial(
        state=optuna.trial.TrialState[state],
        value=value,
        params=params,
        distributions={k: distributions[k] for k in params},
        intermediate_values={1: 0.5},
        user_attrs={"ray_trial_id": f"abc_{number:05d}"},
    )


def _study(trials: list[optuna.trial.FrozenTrial]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return study


def _ray_trial(
    index: int, status: str, value: float | None, fusion: str, weight: float, epochs: int
) -> TrialRecord:
    curve = (
        [
            {
                "epoch": e,
                "dev_weighted_f1": value * e / epochs,
                "dev_loss": 1.0,
                "train_loss": 2.0 / e,
            }
            for e in range(1, epochs + 1)
        ]
        if value is not None
        else []
    )
    return TrialRecord(
        trial_id=f"abc_{index:05d}",
        params={"fusion": fusion, "encoder_loss_weight": weight},
        outcome=next(o for o in Outcome if o.label == status),
        epochs_run=epochs,
        best_dev_weighted_f1=value,
        best_epoch=epochs if value is not None else None,
        curve=curve,
        optuna_number=index,
    )


def _confirmation() -> dict:
    def runs(values: dict[int, float]) -> list[SeedRun]:
        return [
            SeedRun(
                seed=s,
                best_dev_weighted_f1=v,
                best_epoch=4,
                epochs_run=4,
                test_weighted_f1=v - 0.02,
                test_accuracy=v,
                dev_weighted_f1=[v - 0.2, v - 0.1, v, v - 0.01],
                train_loss=[2.0, 1.5, 1.2, 1.1],
                train_nll=[1.5, 1.2, 1.0, 0.9],
            )
            for s, v in values.items()
        ]

    entries = [
        ConfigRuns(BASELINE_LABEL, JoyfulConfig(), runs({1024: 0.60, 1025: 0.62})),
        ConfigRuns(
            "rank 1: trial abc_00001",
            JoyfulConfig(encoder_loss_weight=0.099),
            runs({1024: 0.63, 1025: 0.64}),
        ),
    ]
    return ConfirmationResult(
        seeds=[1024, 1025],
        entries=entries,
        winner_label="rank 1: trial abc_00001",
        proposal={"encoder_loss_weight": 0.099},
    ).to_dict()


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A hand-made study: its record, and its Optuna study in the journal the store names."""
    results = tmp_path / "results"
    store = ResultStore(results)
    trials = [
        _ray_trial(0, "TERMINATED", 0.60, "autofusion", 0.03, 4),
        _ray_trial(1, "TERMINATED", 0.66, "autofusion", 0.099, 4),
        _ray_trial(2, "EARLY_STOPPED", 0.40, "hierarchical", 0.02, 1),
        _ray_trial(3, "ERROR", None, "autofusion", 0.05, 1),
    ]
    space = load_space(SPACE, "synthetic")
    journal = store.optuna_storage_path("synthetic", "a" * 64, space_fingerprint(space))
    study = create_study(open_storage(journal), "s1", "max", {})
    study.add_trials(
        [
            _optuna_trial(
                0, "COMPLETE", 0.60, {"fusion": "autofusion", "encoder_loss_weight": 0.03}
            ),
            _optuna_trial(
                1, "COMPLETE", 0.66, {"fusion": "autofusion", "encoder_loss_weight": 0.099}
            ),
            _optuna_trial(
                2, "PRUNED", None, {"fusion": "hierarchical", "encoder_loss_weight": 0.02}
            ),
        ]
    )
    store.write_study(
        StudyRecord(
            dataset="synthetic",
            name="s1",
            metric="dev_weighted_f1",
            mode="max",
            space_file=str(SPACE),
            space_sha256=space.sha256,
            space_fingerprint=space_fingerprint(space),
            data_path="d.pkl",
            data_sha256="a" * 64,
            base_config=JoyfulConfig(dataset="synthetic", epochs=4).to_dict(),
            budget=Budget(num_samples=4, max_epochs=4, grace_period=1, reduction_factor=2),
            optuna_storage=str(journal),
            optuna_study="s1",
            trials=trials,
            majority=MajorityLevel(majority_class="neutral", dev_weighted_f1=0.25),
            resampling=Resampling(kind="holdout", reason="the space file's choice"),
        )
    )
    return results


def test_report_from_a_stored_study(stored: Path) -> None:
    path = build_report("synthetic", stored)
    markdown = path.read_text()
    assert path == stored / "reports" / "synthetic.md"
    images = _images(markdown)
    assert "synthetic/history.png" in images and "synthetic/curves.png" in images
    assert (
        "synthetic/param_fusion.png" in images
        and "synthetic/param_encoder_loss_weight.png" in images
    )
    for image in images:
        assert (path.parent / image).is_file(), image
    # The best trial's encoder_loss_weight 0.099 sits at the top of [0.01, 0.1] (log scale).
    assert "**Warning:** the best trial's encoder_loss_weight = 0.099 lies at the edge" in markdown
    assert "**Warning:** the best trial's fusion" not in markdown
    assert "Importance" in markdown or "importance" in markdown
    assert "This search's result was not confirmed" in markdown
    assert "the rungs (epochs 1, 2)" in markdown
    assert (
        "- Resampling: the data's dev split (a trial's score: its best epoch's dev wF1); chosen: the space file's "
        "choice\n"
    ) in markdown


def test_report_shows_confirmation_and_effects_tables(stored: Path) -> None:
    from tune_helpers import best_document

    document = best_document()
    document["confirmation"] = _confirmation()
    document["test"] = {"weighted_f1": 0.61, "accuracy": 0.62}
    atomic_write_json(stored / "best_configs" / "synthetic.json", document)
    markdown = build_report("synthetic", stored).read_text()
    assert (
        "| **rank 1: trial abc_00001** (published) | encoder_loss_weight=0.099 | 2 | 0.6350 ± 0.0071 |"
        in markdown
    )
    assert "| baseline | - | 2 | 0.6100 ± 0.0141 |" in markdown
    assert (
        "| F1 | best dev wF1 (mean over seeds) | 0.6100 | 0.6350 | +2.50 points | +1-2 points | 2/2 | "
        "held (beyond the expected range) |" in markdown
    )
    assert "synthetic/confirmation.png" in _images(markdown)
    assert (stored / "reports" / "synthetic" / "confirmation.png").is_file()
    assert "The confirmation of this search, whose result is the published one.\n" in markdown


def test_a_search_whose_result_was_kept_out_says_whose_result_is_published(stored: Path) -> None:
    from tune_helpers import best_document

    from tune.records.store import ResultStore

    earlier = best_document(0.9, search="earlier")
    earlier["confirmation"] = _confirmation()
    ours = best_document(0.5)
    ours["confirmation"] = _confirmation()
    store = ResultStore(stored)
    assert store.publish_best("synthetic", earlier).written
    assert not store.publish_best("synthetic", ours).written
    markdown = build_report("synthetic", stored).read_text()
    assert (
        "The confirmation of this search, whose result is not published: the best-config file keeps search "
        "`earlier`'s result, its confirmed winner rank 1: trial abc_00001 (dev wF1 0.9000)."
    ) in markdown
    assert "**Published:** the result of the earlier search `earlier`" in markdown


def test_stale_figures_are_removed_on_rebuild(stored: Path) -> None:
    build_report("synthetic", stored)
    stale = stored / "reports" / "synthetic" / "param_removed.png"
    stale.write_bytes(b"old")
    build_report("synthetic", stored)
    assert not stale.exists()


def test_importance_degrades_with_a_reason() -> None:
    assert parameter_importance(None)[1] == "the search's Optuna study is not available"
    one = [
        _optuna_trial(0, "COMPLETE", 0.6, {"fusion": "autofusion", "encoder_loss_weight": 0.03}),
        _optuna_trial(1, "PRUNED", None, {"fusion": "autofusion", "encoder_loss_weight": 0.05}),
    ]
    assert parameter_importance(_study(one)) == (
        {},
        "1 trial(s) completed all epochs; importance needs at least 6 "
        "(ASHA-stopped trials have no final score, and from fewer the fitted "
        "model shows noise)",
    )
    five = [
        _optuna_trial(
            i,
            "COMPLETE",
            0.5 + i / 20,
            {"fusion": "autofusion", "encoder_loss_weight": 0.01 + i / 100},
        )
        for i in range(5)
    ]
    assert parameter_importance(_study(five))[1].startswith(
        "5 trial(s) completed all epochs; importance needs at least 6"
    )
    same = [
        _optuna_trial(
            i, "COMPLETE", 0.6 + i / 10, {"fusion": "autofusion", "encoder_loss_weight": 0.03}
        )
        for i in range(6)
    ]
    assert (
        parameter_importance(_study(same))[1]
        == "the completed trials all share the same parameter values"
    )
    tied = [
        _optuna_trial(
            i, "COMPLETE", 0.6, {"fusion": "autofusion", "encoder_loss_weight": 0.01 + i / 100}
        )
        for i in range(6)
    ]
    assert parameter_importance(_study(tied))[1] == (
        "all 6 completed trials have the same score (0.6000); there is no "
        "difference to attribute to a parameter"
    )
    varied = [
        _optuna_trial(
            i,
            "COMPLETE",
            0.5 + i / 20,
            {"fusion": "autofusion", "encoder_loss_weight": 0.01 + i / 100},
        )
        for i in range(6)
    ]
    importances, reason = parameter_importance(_study(varied))
    assert reason == "" and set(importances) <= {"fusion", "encoder_loss_weight"} and importances


def test_importance_is_deterministic_and_ties_are_ordered_by_name() -> None:
    """A rebuilt report repeats the numbers (the dashboard's PED-ANOVA); equal values sort by name."""
    trials = [
        _optuna_trial(
            i,
            "COMPLETE",
            0.5 + (i % 3) / 10 + i / 100,
            {
                "fusion": ("autofusion", "hierarchical")[i % 2],
                "encoder_loss_weight": 0.01 + i / 100,
            },
        )
        for i in range(8)
    ]
    first, again = parameter_importance(_study(trials)), parameter_importance(_study(trials))
    assert first == again and first[1] == "" and len(first[0]) == 2
    values = list(first[0].items())
    assert values == sorted(values, key=lambda kv: (-kv[1], kv[0]))
    # A parameter that never changes explains nothing and comes last.
    constant = [
        _optuna_trial(
            i,
            "COMPLETE",
            0.5 + i / 20,
            {"fusion": "autofusion", "encoder_loss_weight": 0.01 + i / 100},
        )
        for i in range(6)
    ]
    assert list(parameter_importance(_study(constant))[0]) == ["encoder_loss_weight", "fusion"]


def test_rungs() -> None:
    assert rungs(3, 2, 12) == [3, 6]
    assert rungs(5, 3, 50) == [5, 15, 45]
    assert rungs(3, 2, 3) == []
    assert rungs(1, 2, 5) == [1, 2, 4]  # folds of a 5-fold search


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "tune/report.py", "--dataset", "nothing", "--results-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("tune/report.py: error: ") and "run tune/search.py" in done.stderr


# --- slow: a real small search, confirmed, reported and rebuilt --------------------------------


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("report")
    data = root / "tiny.pkl"
    atomic_write(
        data, lambda out: pickle.dump(generate(0, scale=0.1, dims=TINY_DIMS), out), binary=True
    )
    space = yaml.safe_load(SPACE.read_text())
    space["fixed"] = TINY_FIXED
    space_file = root / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    results, storage = root / "results", root / "ray"
    commands = [
        [
            "tune/search.py",
            "--dataset",
            "synthetic",
            "--data",
            str(data),
            "--space",
            str(space_file),
            "--num-samples",
            "4",
            "--max-epochs",
            "3",
            "--grace-period",
            "1",
            "--cpus-per-trial",
            "1",
            "--results-dir",
            str(results),
            "--storage-path",
            str(storage),
            "--name",
            "search",
            "--quiet",
        ],
        [
            "tune/confirm.py",
            "--dataset",
            "synthetic",
            "--results-dir",
            str(results),
            "--confirm-top",
            "1",
            "--confirm-seeds",
            "2",
            "--cpus-per-trial",
            "1",
            "--storage-path",
            str(storage),
            "--name",
            "confirm",
            "--quiet",
        ],
        ["tune/report.py", "--dataset", "synthetic", "--results-dir", str(results)],
    ]
    outputs = []
    for command in commands:
        done = subprocess.run(
            [sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command[0]}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    return {"results": results, "storage": storage, "outputs": outputs}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_report_of_a_real_search_has_plots_and_tables(searched: dict) -> None:
    results = searched["results"]
    markdown = (results / "reports" / "synthetic.md").read_text()
    images = _images(markdown)
    assert {"synthetic/history.png", "synthetic/curves.png", "synthetic/confirmation.png"} <= set(
        images
    )
    for image in images:
        assert (results / "reports" / image).is_file(), image
    assert (
        "## Confirmation\n" in markdown
        and "| configuration | settings that differ from the baseline |" in markdown
    )
    document = json.loads((results / "best_configs" / "synthetic.json").read_text())
    confirmation = document["confirmation"]
    assert confirmation["seeds"] == [1024, 1025] and document["config"]["seed"] in (1024, 1025)
    labels = [c["label"] for c in confirmation["configurations"]]
    # The baseline, the top 1, and the proposal when a trial ran it and the top 1 is not it.
    assert labels[0] == BASELINE_LABEL and len(labels) in (2, 3)
    assert "## Expected effects" in markdown
    if any(label.startswith("proposal: ") for label in labels) or confirmation["effects"]:
        assert "| effect | measure | baseline | " in markdown
    else:
        assert "Not measured: the effects compare the space's proposal" in markdown
    assert (
        f"published configuration: {confirmation['winner']} (config at seed "
        in searched["outputs"][1]
    )
    assert confirmation["command"].startswith(
        "python tune/confirm.py --dataset synthetic --results-dir "
    )
    # train.py --config reproduces the run the best config now names (the winner's median seed).
    history = [
        json.loads(line) for line in (results / "best_configs" / "synthetic.history.jsonl").open()
    ]
    assert [h["outcome"] for h in history] == ["published", "confirmed"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_best_config_of_a_real_search_round_trips_byte_for_byte(
    searched: dict, tmp_path: Path
) -> None:
    path = searched["results"] / "best_configs" / "synthetic.json"
    best = BestConfig.from_dict(json.loads(path.read_text()))
    assert best.confirmation.winner_run is not None
    assert (
        atomic_write_json(tmp_path / "again.json", best.to_dict()).read_bytes() == path.read_bytes()
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rebuild_gives_the_same_files_without_training(searched: dict) -> None:
    results, storage = searched["results"], searched["storage"]
    before = _files(results / "reports")
    experiments = sorted(p.name for p in storage.iterdir())
    done = subprocess.run(
        [sys.executable, "tune/report.py", "--results-dir", str(results)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"wrote {results / 'reports' / 'synthetic.md'}"
    after = _files(results / "reports")
    assert after.keys() == before.keys()
    assert after["synthetic.md"] == before["synthetic.md"]
    assert (
        sorted(p.name for p in storage.iterdir()) == experiments
    )  # no new Ray experiment: nothing trained
