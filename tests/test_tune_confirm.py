"""Confirmation: statistics by hand, candidate choice from a stored study, the store update, and
a real end-to-end confirmation on tiny data with Ray (K=2 configurations + baseline, S=2 seeds)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
from scipy import stats
from tune_helpers import best_document, confirmation_entry

from joyful.config import JoyfulConfig
from joyful.errors import UserError
from tune.records import BestConfig, Outcome, TrialRecord
from tune.records.building import confirmed
from tune.records.store import ResultStore
from tune.runner.confirmation import confirm
from tune.space import load_space
from tune.stats.candidates import candidates_from_study, confirmation_seeds, tuned_baseline
from tune.stats.confirmation import (
    BASELINE_LABEL,
    ConfigRuns,
    ConfirmationResult,
    SeedRun,
    choose_confirmed_winner,
    mean_ci95,
    paired_difference,
)

REPO = Path(__file__).resolve().parents[1]
SPACE = REPO / "search_spaces" / "synthetic.yaml"
TINY = dict(
    fusion_pool_dim=16,
    fusion_hidden=32,
    fusion_latent=16,
    hidden_size=16,
    seqcontext_nlayer=1,
    gnn_nheads=2,
    batch_size=4,
    learning_rate=1e-3,
    epochs=3,
    num_threads=1,
)


# --- statistics ---------------------------------------------------------------------------


def test_mean_ci95_is_the_t_interval() -> None:
    values = [0.60, 0.62, 0.65]
    summary = mean_ci95(values)
    mean, std = statistics.fmean(values), statistics.stdev(values)
    half = stats.t.ppf(0.975, 2) * std / math.sqrt(3)  # t(0.975, 2 df) = 4.303
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(0.623333333)
    assert summary["std"] == pytest.approx(0.025166115)
    assert summary["ci95"] == pytest.approx([mean - half, mean + half])
    assert summary["ci95"][0] == pytest.approx(0.560817, abs=1e-6)
    assert mean_ci95([0.5]) == {"n": 1, "mean": 0.5, "std": None, "ci95": None}
    assert mean_ci95([])["mean"] is None


def test_paired_difference_pairs_by_seed() -> None:
    candidate = {1: 0.62, 2: 0.60, 3: 0.66, 9: 0.99}  # seed 9 has no baseline run: not paired
    baseline = {1: 0.60, 2: 0.61, 3: 0.62}
    diff = paired_difference(candidate, baseline)
    assert diff["runs"] == ["seed 1", "seed 2", "seed 3"]
    assert diff["diffs"] == pytest.approx([0.02, -0.01, 0.04])
    assert diff["mean"] == pytest.approx(0.05 / 3)
    assert (diff["wins"], diff["ties"], diff["losses"]) == (2, 0, 1)
    assert diff["ci95"][0] < 0 < diff["ci95"][1] and diff["ci_excludes_zero"] is False
    clear = paired_difference({1: 0.7, 2: 0.71, 3: 0.72}, {1: 0.6, 2: 0.6, 3: 0.61})
    assert clear["ci_excludes_zero"] is True and clear["wins"] == 3


def _entry(label: str, values: dict[int, float]) -> ConfigRuns:
    return confirmation_entry(label, values)


def test_the_winner_is_the_highest_mean_and_ties_keep_the_baseline() -> None:
    baseline = _entry(BASELINE_LABEL, {1: 0.5, 2: 0.5})
    assert (
        choose_confirmed_winner(
            [baseline, _entry("a", {1: 0.75, 2: 0.25}), _entry("b", {1: 0.5, 2: 0.625})]
        )
        == "b"
    )
    assert (
        choose_confirmed_winner([baseline, _entry("a", {1: 0.75, 2: 0.25})]) == BASELINE_LABEL
    )  # a tie
    failed = ConfigRuns(
        "c", JoyfulConfig(), [SeedRun(seed=1, best_dev_weighted_f1=None, error="boom")]
    )
    assert choose_confirmed_winner([baseline, failed]) == BASELINE_LABEL
    with pytest.raises(RuntimeError, match="every confirmation run failed"):
        choose_confirmed_winner([failed])


def test_to_dict_and_the_median_seed_config() -> None:
    entries = [
        _entry(BASELINE_LABEL, {1: 0.60, 2: 0.61, 3: 0.59}),
        _entry("cand", {1: 0.64, 2: 0.66, 3: 0.62}),
    ]
    result = ConfirmationResult(
        seeds=[1, 2, 3], entries=entries, winner_label="cand", proposal={"learning_rate": 0.005}
    )
    assert (
        result.winner_run.seed == 1 and result.winner_config.seed == 1
    )  # 0.64 is the median of the three
    document = result.to_dict()
    cand = document["configurations"][1]
    assert cand["dev_weighted_f1"]["mean"] == pytest.approx(0.64)
    assert cand["paired_diff_to_baseline"]["mean"] == pytest.approx(0.04)
    assert cand["searched"] == {"learning_rate": pytest.approx(0.005)}
    rows = {row["measure"]: row for row in document["effects"]["rows"]}
    assert document["effects"]["compared"] == "cand" and document["effects"]["compared_is_winner"]
    assert rows["dev_weighted_f1"]["change"] == pytest.approx(4.0)


def test_a_failed_run_is_recorded_with_its_reason() -> None:
    from types import SimpleNamespace

    from tune.runner.confirmation import _seed_run

    nan_loss = SimpleNamespace(
        config={"seed": 7, "config_index": 0},
        error=None,
        metrics={"failed": "non-finite training loss at epoch 2 (total=nan)"},
    )
    run = _seed_run(nan_loss)
    assert not run.ok and run.seed == 7 and run.error.startswith("non-finite training loss")
    crashed = SimpleNamespace(
        config={"seed": 8, "config_index": 0}, error=RuntimeError("a\nworker died"), metrics={}
    )
    assert _seed_run(crashed).error == "worker died"


def test_confirmation_seeds_avoid_the_search_seed() -> None:
    assert confirmation_seeds(24, 3) == [1024, 1025, 1026]
    with pytest.raises(UserError, match="--confirm-seeds is 1, but must be >= 2"):
        confirmation_seeds(24, 1)


# --- from a stored study --------------------------------------------------------------------


def _trial(
    trial_id: str, value: float | None, status: str = "TERMINATED", **params: object
) -> TrialRecord:
    """A trial as a study record stores it (read back through `TrialRecord.from_dict`, as confirmation reads it)."""
    outcome = next(o for o in Outcome if o.label == status)
    return TrialRecord.from_dict(
        {
            "trial_id": trial_id,
            "params": params,
            "outcome": outcome.value,
            "epochs_run": 4,
            "best_dev_weighted_f1": value,
            "best_epoch": 3,
        }
    )


def test_candidates_are_the_best_distinct_non_baseline_configs() -> None:
    space = load_space(SPACE, "synthetic")
    base = JoyfulConfig(dataset="synthetic", epochs=8, learning_rate=1e-4, seqcontext_nlayer=1)
    hier = {
        "fusion": "hierarchical",
        "encoder_loss_weight": 0.05,
        "gate_reg_weight": 0.002,
        "reconstruction_loss": "smooth_l1",
    }
    trials = [
        _trial(
            "t_00000", 0.90, fusion="autofusion", encoder_loss_weight=0.03
        ),  # the baseline: never a candidate
        _trial("t_00001", 0.80, **hier),
        _trial("t_00002", 0.80, **hier),  # same settings as t_00001: dropped
        _trial("t_00003", 0.95, status="ERROR", fusion="autofusion", encoder_loss_weight=0.02),
        _trial(
            "t_00004", 0.70, status="EARLY_STOPPED", fusion="autofusion", encoder_loss_weight=0.05
        ),
        _trial("t_00005", None, fusion="autofusion", encoder_loss_weight=0.07),
    ]
    chosen = candidates_from_study(trials, space, base, top=5)
    assert [label for label, _ in chosen] == ["rank 2: trial t_00001", "rank 4: trial t_00004"]
    first = chosen[0][1]
    assert (first.fusion, first.gate_reg_weight, first.reconstruction_loss, first.epochs) == (
        "hierarchical",
        0.002,
        "smooth_l1",
        8,
    )
    assert (
        chosen[1][1].gate_reg_weight == 0.01 and chosen[1][1].epochs == 8
    )  # full budget, also when stopped early
    assert candidates_from_study(trials, space, base, top=1) == chosen[:1]


def test_the_baseline_is_confirmed_at_tuned_nuisance_settings_and_the_proposal_is_added() -> None:
    """The baseline keeps its scientific values (AutoFusion, 0.03) but takes the learning rate etc. of the
    best AutoFusion trial; the proposal (hierarchical + SmoothL1) joins when the top-K lacks it, at the best trial
    that has both its values: a configuration the search evaluated, never a combination no trial ran."""
    space = load_space(REPO / "search_spaces" / "meld_text.yaml", "meld_text")
    base = JoyfulConfig(dataset="meld_text", modalities="at", epochs=8)
    nuisance = dict(
        drop_rate=0.2, weight_decay=1e-5, class_weight=False, feature_norm="standardize"
    )
    trials = [
        _trial(
            "t_00000",
            0.50,
            fusion="autofusion",
            encoder_loss_weight=0.03,
            learning_rate=3e-5,
            **nuisance,
        ),
        _trial(
            "t_00001",
            0.56,
            fusion="autofusion",
            encoder_loss_weight=0.08,
            learning_rate=1.2e-4,
            **{**nuisance, "drop_rate": 0.4},
        ),
        _trial(
            "t_00002",
            0.58,
            fusion="hierarchical",
            encoder_loss_weight=0.02,
            gate_reg_weight=0.001,
            reconstruction_loss="mse",
            learning_rate=2e-4,
            **nuisance,
        ),
        _trial(
            "t_00003",
            0.54,
            fusion="hierarchical",
            encoder_loss_weight=0.05,
            gate_reg_weight=0.01,
            reconstruction_loss="smooth_l1",
            learning_rate=9e-5,
            **nuisance,
        ),
    ]
    baseline = tuned_baseline(trials, space, base)
    assert (baseline.fusion, baseline.encoder_loss_weight) == ("autofusion", 0.03)
    assert (baseline.learning_rate, baseline.drop_rate) == (
        1.2e-4,
        0.4,
    )  # from t_00001, the best AutoFusion trial
    chosen = candidates_from_study(trials, space, base, top=1)
    # The best hierarchical trial (t_00002) used MSE; the proposal is t_00003 as it ran, not t_00002 with SmoothL1.
    assert [label for label, _ in chosen] == ["rank 1: trial t_00002", "proposal: trial t_00003"]
    proposal = chosen[1][1]
    assert (
        proposal.fusion,
        proposal.reconstruction_loss,
        proposal.learning_rate,
        proposal.gate_reg_weight,
    ) == ("hierarchical", "smooth_l1", 9e-5, 0.01)
    # A top-K that already holds the proposal adds nothing; no trial with its values: no proposal to confirm.
    assert len(candidates_from_study(trials[3:], space, base, top=1)) == 1
    assert [label for label, _ in candidates_from_study(trials[:3], space, base, top=1)] == [
        "rank 1: trial t_00002"
    ]
    assert tuned_baseline(trials[2:], space, base).learning_rate == base.learning_rate


def test_effects_compare_the_proposal_with_the_baseline() -> None:
    def runs(values: list[float]) -> list[SeedRun]:
        return [
            SeedRun(
                seed=s,
                best_dev_weighted_f1=v,
                best_epoch=2,
                epochs_run=3,
                test_weighted_f1=v,
                test_accuracy=v,
                dev_weighted_f1=[v / 2, v, v],
                train_loss=[3, 2, 1],
                train_nll=[3, 2, 1],
            )
            for s, v in zip((1, 2), values, strict=True)
        ]

    base = JoyfulConfig(dataset="synthetic")
    entries = [
        ConfigRuns(BASELINE_LABEL, base, runs([0.5, 0.52])),
        ConfigRuns("rank 1: trial a", base.replace(fusion="hierarchical"), runs([0.6, 0.61])),
        ConfigRuns(
            "proposal, tuned from trial c",
            base.replace(fusion="hierarchical", reconstruction_loss="smooth_l1"),
            runs([0.55, 0.5]),
        ),
    ]
    result = ConfirmationResult(
        [1, 2],
        entries,
        choose_confirmed_winner(entries),
        proposal={"fusion": "hierarchical", "reconstruction_loss": "smooth_l1"},
    )
    effects = result.to_dict()["effects"]
    assert (
        effects["compared"] == "proposal, tuned from trial c"
        and effects["compared_is_winner"] is False
    )
    # Without a proposal there is nothing the effects were expected of: never another trial.
    assert ConfirmationResult([1, 2], entries, "rank 1: trial a").to_dict()["effects"] is None


# --- the store update ------------------------------------------------------------------------


def test_update_confirmation_rewrites_only_the_same_search_on_the_same_data(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    assert store.publish_best("synthetic", best_document(0.7)).written
    entries = [_entry(BASELINE_LABEL, {1: 0.60, 2: 0.61}), _entry("cand", {1: 0.64, 2: 0.66})]
    entries[1].config = JoyfulConfig(
        dataset="synthetic", fusion="hierarchical", seqcontext_nlayer=1
    )
    entries[0].config = JoyfulConfig(dataset="synthetic", seqcontext_nlayer=1)
    result = ConfirmationResult(seeds=[1, 2], entries=entries, winner_label="cand")
    updated = confirmed(store.read_best("synthetic"), result, load_space(SPACE, "synthetic"))
    BestConfig.from_dict(updated.to_dict())  # still a valid best config
    outcome = store.update_confirmation("synthetic", updated)
    assert outcome.written
    now = store.read_best("synthetic")
    assert (
        now.config["fusion"] == "hierarchical" and now.config["seed"] == 1
    )  # median (lower) run: seed 1
    assert now.metric.value == 0.64 and now.test.weighted_f1 == pytest.approx(0.63)
    assert now.searched["fusion"] == "hierarchical" and "gate_reg_weight" in now.searched
    assert now.confirmation.winner == "cand" and now.single_trial_best.trial_id == "t0001"
    assert now.checkpoint is None  # no checkpoint was kept for the confirmed run
    other_data = updated.replace(data=updated.data.replace(sha256="b" * 64))
    other_search = updated.replace(study=updated.study.replace(name="s2"))
    for offered, words in ((other_data, "other data"), (other_search, "now holds search 's1'")):
        kept = store.update_confirmation("synthetic", offered)
        assert not kept.written and words in kept.reason
    assert store.read_best("synthetic").confirmation.winner == "cand"
    assert [h["outcome"] for h in store.history("synthetic")] == [
        "published",
        "confirmed",
        "kept-earlier",
        "kept-earlier",
    ]
    with pytest.raises(UserError, match="no valid best config"):
        store.update_confirmation(
            "iemocap",
            updated.replace(dataset="iemocap", config={**updated.config, "dataset": "iemocap"}),
        )


# --- end to end with Ray -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=False,
        )
    yield
    if started:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_confirm_end_to_end(
    ray_local: None, synthetic_path: Path, synthetic_data, tmp_path: Path
) -> None:
    base = JoyfulConfig(dataset="synthetic", data=str(synthetic_path), **TINY)
    baseline = base.replace(fusion="autofusion", encoder_loss_weight=0.03)
    candidates = [
        ("hier", base.replace(fusion="hierarchical", encoder_loss_weight=0.05)),
        ("auto", base.replace(encoder_loss_weight=0.08)),
        ("same as baseline", baseline.replace(seed=7)),
    ]  # dropped: only the seed differs
    seeds = confirmation_seeds(base.seed, 2)
    result = confirm(
        candidates,
        baseline,
        seeds,
        data=synthetic_data,
        cpus_per_trial=1,
        gpus_per_trial=0,
        storage_path=str(tmp_path),
        name="confirm",
        proposal={"fusion": "hierarchical"},
    )
    document = result.to_dict()
    assert [c["label"] for c in document["configurations"]] == [BASELINE_LABEL, "hier", "auto"]
    assert (tmp_path / "confirm").is_dir()  # the Ray experiment is in the given storage
    for c in document["configurations"]:
        values = [r["best_dev_weighted_f1"] for r in c["runs"]]
        assert [r["seed"] for r in c["runs"]] == seeds and None not in values
        assert all(
            len(r["dev_weighted_f1"]) == 3
            and r["best_dev_weighted_f1"] == max(r["dev_weighted_f1"])
            for r in c["runs"]
        )
        dev = c["dev_weighted_f1"]
        assert dev["mean"] == pytest.approx(statistics.fmean(values))
        assert dev["std"] == pytest.approx(statistics.stdev(values))
        half = stats.t.ppf(0.975, 1) * statistics.stdev(values) / math.sqrt(2)
        assert dev["ci95"] == pytest.approx([dev["mean"] - half, dev["mean"] + half])
        if c["label"] != BASELINE_LABEL:
            diff = c["paired_diff_to_baseline"]
            base_values = [r["best_dev_weighted_f1"] for r in document["configurations"][0]["runs"]]
            assert diff["diffs"] == pytest.approx(
                [v - b for v, b in zip(values, base_values, strict=True)]
            )
            assert diff["wins"] == sum(v > b for v, b in zip(values, base_values, strict=True))
    means = {c["label"]: c["dev_weighted_f1"]["mean"] for c in document["configurations"]}
    leader = max(means, key=lambda k: (means[k], k == BASELINE_LABEL))
    # The highest mean wins, unless its lead over the baseline is within the paired interval: then the baseline.
    if document["tie"] is None:
        assert document["winner"] == leader
    else:
        assert document["winner"] == BASELINE_LABEL != leader
        assert document["tie"].startswith(f"{leader} had the highest mean dev wF1")
    assert result.winner_config.seed in seeds and result.winner_config.seed != base.seed
    # Effects compare the proposal (here "hier") with the baseline.
    effects = document["effects"]
    assert effects["rows"] and (effects["baseline"], effects["compared"]) == (
        BASELINE_LABEL,
        "hier",
    )
    # A confirmation run is the training code path: train() with the winner's config gives the same run.
    from joyful.run import RunOptions, train

    rerun = train(result.winner_config, RunOptions(device="cpu"), log=lambda message: None)
    assert rerun["best_dev_weighted_f1"] == result.winner_run.best_dev_weighted_f1
    assert rerun["test"]["weighted_f1"] == result.winner_run.test_weighted_f1


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "tune/confirm.py",
            "--dataset",
            "synthetic",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert (
        done.stderr.startswith("tune/confirm.py: error: no best config at ")
        and "run tune/search.py" in done.stderr
    )


# --- ties, the defaults and intervals -------------------------------------------------------------


def _runs_with_predictions(
    label: str,
    dev_right: float,
    test_right: float,
    seeds: tuple[int, ...] = (1, 2),
    config: JoyfulConfig | None = None,
) -> ConfigRuns:
    """A configuration whose runs predict a fixed share of 60 dev and 80 test utterances right (10 dialogues of
    6 and 8), the same share on every seed: a paired interval then reflects the dialogues alone."""
    import numpy as np

    rng = np.random.default_rng(0)
    probabilities = {}
    for split, n, right, length in (("dev", 60, dev_right, 6), ("test", 80, test_right, 8)):
        labels = rng.integers(0, 4, n)
        predicted = np.where(np.arange(n) < int(right * n), labels, (labels + 1) % 4)
        probabilities[split] = np.eye(4)[predicted]
        probabilities[f"{split}_labels"] = labels
        probabilities[f"{split}_lengths"] = [length] * (n // length)
    runs = [
        SeedRun(
            seed=s,
            best_dev_weighted_f1=dev_right,
            best_epoch=2,
            epochs_run=3,
            test_weighted_f1=test_right,
            test_accuracy=test_right,
            dev_weighted_f1=[dev_right] * 3,
            train_loss=[1.0] * 3,
            train_nll=[1.0] * 3,
            probabilities=probabilities,
        )
        for s in seeds
    ]
    return ConfigRuns(label, config or JoyfulConfig(learning_rate=0.001 * (1 + len(label))), runs)


def test_a_lead_within_the_noise_publishes_the_baseline() -> None:
    entries = [
        _runs_with_predictions(BASELINE_LABEL, 0.60, 0.6),
        _runs_with_predictions("cand", 0.6167, 0.6),
    ]
    result = ConfirmationResult([1, 2], entries, choose_confirmed_winner(entries), n_classes=4)
    assert result.winner_label == "cand"  # the higher mean dev score
    result.decide_ties("baseline")
    assert (
        result.winner_label == BASELINE_LABEL
        and "holds 0: a tie publishes the baseline" in result.tie
    )
    kept = ConfirmationResult([1, 2], entries, "cand", n_classes=4)
    kept.decide_ties("winner")  # the space may say otherwise
    assert kept.winner_label == "cand" and kept.tie is None
    clear = [
        _runs_with_predictions(BASELINE_LABEL, 0.3, 0.3),
        _runs_with_predictions("cand", 0.95, 0.9),
    ]
    decided = ConfirmationResult([1, 2], clear, "cand", n_classes=4)
    decided.decide_ties("baseline")
    assert decided.winner_label == "cand" and decided.tie is None


def test_a_fold_one_configuration_lacks_is_left_out_of_its_comparisons() -> None:
    # Cross-validation: the candidate's run on fold 2 failed, so its out-of-fold predictions cover folds 1 and 3;
    # the comparison with the baseline pairs those two folds instead of failing on misaligned utterances.
    def on_folds(entry: ConfigRuns, folds: tuple[int, ...]) -> ConfigRuns:
        return ConfigRuns(
            entry.label, entry.config, [entry.runs[0].model_copy(update={"fold": f}) for f in folds]
        )

    entries = [
        on_folds(_runs_with_predictions(BASELINE_LABEL, 0.60, 0.6, seeds=(1,)), (1, 2, 3)),
        on_folds(_runs_with_predictions("cand", 0.6167, 0.6, seeds=(1,)), (1, 3)),
    ]
    result = ConfirmationResult([1], entries, "cand", n_classes=4, folds=3)
    result.decide_ties("baseline")
    assert result.winner_label == BASELINE_LABEL and "holds 0" in result.tie
    kept = ConfirmationResult(
        [1], entries, "cand", n_classes=4, folds=3
    )  # as a space with on_tie: winner keeps it
    dev = [c for c in kept.comparisons() if c.split != "test"]
    assert dev and all(c.dialogues == 20 for c in dev)  # 2 common folds x 10 dev dialogues


def test_every_headline_comparison_has_a_paired_interval_with_the_seeds_in_it() -> None:
    entries = [
        _runs_with_predictions(BASELINE_LABEL, 0.5, 0.5),
        _runs_with_predictions(
            "proposal, tuned", 0.9, 0.85, config=JoyfulConfig(fusion="hierarchical")
        ),
    ]
    result = ConfirmationResult(
        [1, 2], entries, "proposal, tuned", proposal={"fusion": "hierarchical"}, n_classes=4
    )
    found = {(c.name, c.split): c for c in result.comparisons()}
    assert set(found) == {
        ("winner vs baseline", "dev"),
        ("winner vs baseline", "test"),
        ("proposal vs baseline", "dev"),
        ("proposal vs baseline", "test"),
    }
    lead = found[("winner vs baseline", "dev")]
    assert lead.estimate > 0 and lead.ci95[0] > 0 and lead.verdict == "proposal, tuned better"
    assert lead.dialogues == 10 and lead.replicates == 2000 and 0 < lead.p_value < 0.05
    record = result.to_record()
    assert record.resampling == "holdout"
