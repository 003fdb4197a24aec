"""Smoke tests of the benchmark package at a tiny scale: the figures and keys exist (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.__main__ import _iemocap_extrapolation, build_parser, main, summary
from benchmarks.common import DataSpec, relative_difference
from benchmarks.report import render, targets
from benchmarks.training import FirstBatches, measure_training
from tests.conftest import TINY_DIMS, TINY_MODEL

TINY_OVERRIDES = {k: v for k, v in TINY_MODEL.items() if k != "epochs"}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(
        DataSpec(scale=0.1, dims=tuple(TINY_DIMS.items())).ensure(tmp_path_factory.mktemp("bench"))
    )


def test_first_batches_limits_an_epoch() -> None:
    class Loader:
        def __len__(self) -> int:
            return 3

        def __iter__(self):
            return iter([type("B", (), {"num_utterances": n})() for n in (5, 6, 7)])

    subset = FirstBatches(Loader(), 2)
    assert (
        len(subset) == 2
        and [b.num_utterances for b in subset] == [5, 6]
        and subset.num_utterances == 11
    )


def test_relative_difference() -> None:
    assert relative_difference(1.0, 1.0) == 0.0
    assert relative_difference(2.0, 1.0) == pytest.approx(0.5)


def test_unknown_section_is_refused() -> None:
    assert build_parser().parse_args(["--quick"]).quick
    with pytest.raises(SystemExit, match="--sections"):
        main(["--sections", "training,nope"])


def test_iemocap_extrapolation_adds_a_checkpoint_save_and_copy_every_checkpoint_interval() -> None:
    """The shipped IEMOCAP-4 space: 50 epochs, a checkpoint every 5 -> 10 saves, each saved and copied."""
    search = {"runs": {"1": {"overhead_seconds_per_trial": 10.0}}}
    training = {
        "autofusion": {
            "vectorised": {
                "epoch_utterances_per_s": 100.0,
                "eval_utterances_per_s": 300.0,
                "checkpoint_seconds": 1.0,
            }
        }
    }
    figures = _iemocap_extrapolation(search, training)
    assert figures["overhead_per_checkpoint_seconds"] == 2.0 and figures["epochs"] == 50
    assert figures["checkpoint_every"] == 5
    overhead = 10.0 + 10 * 2.0
    assert figures["overhead_share"] == pytest.approx(
        overhead / (overhead + 50 * figures["epoch_seconds"])
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_training_measurement_reports_speedups_and_same_results(tiny_data: str) -> None:
    training = measure_training(
        tiny_data,
        ["hierarchical"],
        1,
        eval_splits=["dev", "test"],
        threads=1,
        overrides=TINY_OVERRIDES,
        log=lambda message: None,
    )
    figures = training["hierarchical"]
    for key in ("train_epoch_speedup", "train_same_batches_speedup", "eval_speedup"):
        assert figures[key] > 0
    assert figures["same_results"] is True
    assert figures["train_loss_rel_diff"] <= 1e-4 and figures["eval_loss_rel_diff"] <= 1e-4
    for path in ("vectorised", "reference"):
        assert figures[path]["peak_rss_mib"] > 0 and figures[path]["subset_utterances"] > 0
    assert figures["vectorised"]["epoch_utterances"] >= figures["vectorised"]["subset_utterances"]
    assert figures["vectorised"]["checkpoint_mib"] > 0 and figures["fusion_speedup"] > 0
    bf16 = figures["bf16"]  # the --precision bf16 option, measured in the same run
    assert bf16["train_epoch_speedup"] > 0 and bf16["eval_speedup"] > 0
    assert 0 < bf16["loss_rel_diff_vs_fp32"] < 5e-2  # rounding, not a different model
    vec = figures[
        "vectorised"
    ]  # the transformer's floor: 2 FLOPs per weight of its linear layers per utterance
    seq_weights = (
        3 * 32 * 32 + 32 * 32 + 2 * 32 * 2048 + 32 * 16
    )  # TINY_MODEL: 1 layer, width 32, output 16
    assert vec["transformer_linear_flops"] == 2 * vec["eval_utterances"] * seq_weights
    assert (
        set(figures["eval_speedup_ceiling"]) == {"fp32", "bf16"}
        and min(figures["eval_speedup_ceiling"].values()) > 0
    )
    results = {
        "meta": {"quick": True, "machine": "test", "load_start": "0", "load_end": "0"},
        "training": training,
    }
    results["targets"] = targets(results)
    flat = summary(results)
    assert any("train" in key and "speedup" in key for key in flat)
    assert {t["target"].split(":")[0] for t in results["targets"]} >= {"hierarchical"}
    assert "train speed-up" in render(results) and "bf16 train speed-up" in render(results)
    json.dumps(results)  # everything is JSON-serialisable


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_search_throughput_is_measured(tiny_data: str, tmp_path: Path) -> None:
    import ray

    from benchmarks.search_throughput import measure_search_throughput

    try:
        throughput = measure_search_throughput(
            tiny_data,
            tmp_path / "ray",
            concurrencies=[1],
            epochs=1,
            trials=lambda c: 1,
            log=lambda message: None,
        )
    finally:
        ray.shutdown()
    run = throughput["runs"]["1"]
    assert run["trials_per_hour"] > 0 and 0 < run["training_share"] < 1
    assert "ray_seconds_per_trial_over_standalone" in run


def test_a_tiny_replay_runs_the_service_code_on_the_committed_curves() -> None:
    """Two seeds of random search and per-arm TPE, with and without early stopping, on the committed table: the
    replays finish, use the service's sampler bookkeeping, and early stopping spends fewer fold-epochs."""
    from benchmarks.replay import CurveTable, compare, render

    table = CurveTable.load()
    assert len(table.params) >= 200 and table.folds == 3 and table.epochs >= 12
    summary = compare(
        table,
        seeds=2,
        budgets=(1,),
        arms=(("random", "random", True, None), ("tpe", "tpe", True, None)),
        schedulers=("fifo", "patient"),
        log=lambda message: None,
    )
    arms = summary["budgets"]["1"]["arms"]
    trials = table.space.budget.num_samples
    assert (
        arms["random+fifo"]["fold_epochs"] == trials * table.folds * table.epochs
    )  # every trial in full
    assert arms["tpe+patient"]["fold_epochs"] < arms["tpe+fifo"]["fold_epochs"]
    assert arms["random+fifo"]["model_share"] == 0 and arms["tpe+fifo"]["model_share"] > 0
    assert all(0 <= row["regret"]["mean"] < 0.5 for row in arms.values())
    assert "vs_random" in arms["tpe+patient"] and summary["default_arm"] == "gp+fifo"
    for fidelity in summary["fidelity"].values():
        assert -1 <= fidelity["spearman"] <= 1
    assert "regret" in render(summary)


def test_the_peaks_benchmark_picks_the_tables_best_and_those_peaking_late() -> None:
    """benchmarks/peaks.py retrains the table's best configurations as a search ranks them (the best
    epoch of the fold-mean curve), optionally only those whose curve peaks late."""
    from benchmarks.peaks import top_configurations
    from benchmarks.replay import CurveTable

    table = CurveTable.load()
    ranked = top_configurations(table, 20)
    scores = [table.real_best(c)[0] for c in ranked]
    assert len(ranked) == 20 and scores == sorted(scores, reverse=True)
    assert scores[0] == max(table.real_best(c)[0] for c in table.params)
    late = top_configurations(table, 20, late_from=table.epochs)
    assert late and set(late) < set(ranked)
    assert all(table.real_best(c)[1] == table.epochs for c in late)


def test_a_replay_on_more_slots_runs_each_arm_at_the_services_concurrency() -> None:
    """On 8 free slots the service runs random search on all 8 and a learning sampler on as many as
    leave half of the trials to its model (tune.plan.learning_concurrency): 14 trials, 2 arms, 2
    start-up trials each -> 4; on 2 slots every arm runs 2."""
    from benchmarks.replay import service_concurrency

    assert service_concurrency("random", True, 14, 8, 2) == 8
    assert service_concurrency("gp", True, 14, 8, 2) == 4
    assert service_concurrency("tpe", True, 14, 8, 2) == 4
    assert service_concurrency("gp", True, 56, 8, 2) == 8  # a larger budget leaves room
    assert service_concurrency("gp", True, 14, 2, 2) == 2


def test_an_overtuning_run_of_the_cv_arm_alone_reports_its_goal_and_not_the_other() -> None:
    """`--overtuning-arms cv`: the table names only cv's rows, the first goal is judged on cv's
    draws (4 of 5 needed), and the cv - holdout goal, which needs both arms, is left out."""
    from benchmarks.report import overtuning_rows, targets

    def draw(index: int, published: float) -> dict:
        arm = {
            "published": "baseline",
            "published_dev": 0.5,
            "published_test": published,
            "ensemble_test": published + 0.01,
            "untuned_test": 0.45,
            "defaults_test": 0.40,
            "published_vs_untuned_test": None,
            "seconds": 60.0,
        }
        return {"draw": index, "cv": arm}

    scores = [0.46, 0.47, 0.44, 0.43, 0.48]  # 3 of 5 at or above the untuned 0.45
    result = {
        "draws": [draw(i, score) for i, score in enumerate(scores)],
        "arms": ["cv"],
        "at_least_untuned": {"cv": 3},
        "at_least_defaults": {"cv": 5},
        "mean_published_test": {"cv": sum(scores) / 5},
        "mean_untuned_test": {"cv": 0.45},
        "mean_defaults_test": {"cv": 0.40},
        "seconds": {"cv": 300.0},
    }
    names = [name for name, _, _ in overtuning_rows(result)]
    assert names[-1] == "cv: published >= strong untuned on test" and len(names) == 6
    assert not any("holdout" in name for name in names)
    found = [t for t in targets({"overtuning": result}) if "cv" in t["target"]]
    assert [(t["value"], t["met"]) for t in found] == [(3, False)]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_overtuning_benchmark_runs_at_a_small_size(tmp_path: Path) -> None:
    """One small draw (of tiny synthetic data, standing in for MELD), both arms through the real search CLI:
    each publishes, confirms, measures the two references (once, reused by the second arm), and the
    table reads both back."""
    from benchmarks.overtuning import measure_overtuning, write_draw
    from benchmarks.report import overtuning_rows

    source = DataSpec(scale=0.3, dims=tuple(TINY_DIMS.items())).ensure(tmp_path / "source")
    drawn = write_draw(source, tmp_path / "draw.pkl", seed=0, train=12, dev=3)
    from joyful.data.unpickle import restricted_load

    splits = restricted_load(drawn.read_bytes(), source=str(drawn))
    assert (len(splits["train"]), len(splits["dev"])) == (12, 3)
    tiny = {k: v for k, v in TINY_OVERRIDES.items() if k not in ("learning_rate", "batch_size")}
    result = measure_overtuning(
        source,
        tmp_path / "work",
        draws=1,
        train=12,
        dev=3,
        folds=2,
        dataset="synthetic",
        overrides={
            "budget": {"num_samples": 2, "max_epochs": 2, "grace_period": 1},
            "fixed": {**tiny, "modalities": "atv"},
        },
        log=lambda message: None,
    )
    [row] = result["draws"]
    for arm in ("holdout", "cv"):
        assert 0 <= row[arm]["published_test"] <= 1
        assert row[arm]["defaults_test"] is not None and row[arm]["untuned_test"] is not None
        assert row[arm]["published_vs_untuned_test"]["split"] == "test"
    # The references are trained once per draw: the second arm reuses the first's runs.
    assert not row["holdout"]["references_reused"] and row["cv"]["references_reused"]
    assert row["cv"]["untuned_test"] == row["holdout"]["untuned_test"]
    assert set(result["at_least_untuned"]) == {"holdout", "cv"}
    assert any(
        "published test / strong untuned / defaults" in name
        for name, _, _ in overtuning_rows(result)
    )
    results = {
        "meta": {"quick": True, "machine": "test", "load_start": "0", "load_end": "0"},
        "overtuning": result,
    }
    assert {t["target"] for t in targets(results)} >= {"cv mean test - holdout mean test"}
