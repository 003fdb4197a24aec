"""Cross-validation folds by dialogue over train + dev (joyful/data/folds.py), and runs that train on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config, without_timing

from joyful.data.folds import assign_folds, fold_data
from joyful.errors import UserError
from joyful.run import RunOptions, build_coach, train


def test_folds_cover_train_and_dev_once_and_never_test(synthetic_data) -> None:
    pool = synthetic_data.splits["train"] + synthetic_data.splits["dev"]
    folds = [fold_data(synthetic_data, 3, f) for f in (1, 2, 3)]
    held_out = [d.vid for fold in folds for d in fold.splits["dev"]]
    assert sorted(held_out) == sorted(d.vid for d in pool)  # every dialogue held out exactly once
    for fold in folds:
        assert {d.vid for d in fold.splits["train"]}.isdisjoint(d.vid for d in fold.splits["dev"])
        assert len(fold.splits["train"]) + len(fold.splits["dev"]) == len(pool)
        assert (
            fold.splits["test"] is synthetic_data.splits["test"]
            and fold.sha256 == synthetic_data.sha256
        )


def test_folds_are_balanced_by_label_and_size_and_depend_on_the_data_alone(synthetic_data) -> None:
    pool = synthetic_data.splits["train"] + synthetic_data.splits["dev"]
    assignment = assign_folds(pool, 3)
    assert assignment == assign_folds(pool, 3)  # no seed: every run of a search sees the same folds
    sizes = np.bincount(assignment, weights=[len(d) for d in pool])
    assert sizes.max() - sizes.min() <= max(
        len(d) for d in pool
    )  # within one dialogue of each other
    dominant = [int(np.bincount(d.labels).argmax()) for d in pool]
    for label in set(dominant):  # each label's dialogues spread over the folds
        per_fold = np.bincount(
            [f for f, g in zip(assignment, dominant, strict=True) if g == label], minlength=3
        )
        assert per_fold.max() - per_fold.min() <= max(1, int(per_fold.sum() // 2))


@pytest.mark.parametrize(
    "folds, fold, words",
    [(1, 1, "at least 2 folds"), (500, 1, "hold only"), (3, 4, "must be 0..3")],
)
def test_impossible_folds_are_refused_naming_the_flag(synthetic_data, folds, fold, words) -> None:
    with pytest.raises(UserError, match=words):
        fold_data(synthetic_data, folds, fold)


def test_a_run_on_a_fold_trains_on_the_others_and_reruns_exactly(
    synthetic_path, synthetic_data
) -> None:
    config = tiny_config(synthetic_path, cv_folds=3, cv_fold=2, epochs=2)
    coach = build_coach(config, synthetic_data, torch.device("cpu"))
    expected = fold_data(synthetic_data, 3, 2)
    assert [d.vid for d in coach.data.splits["dev"]] == [d.vid for d in expected.splits["dev"]]
    first = train(config, RunOptions(device="cpu"), log=lambda message: None)
    again = train(config, RunOptions(device="cpu"), log=lambda message: None)
    assert without_timing(first["history"]) == without_timing(again["history"])
    assert first["data"]["splits"]["dev"]["dialogues"] == len(expected.splits["dev"])


def test_select_last_keeps_the_last_epoch(synthetic_path, synthetic_data) -> None:
    summary = build_coach(
        tiny_config(synthetic_path, epochs=3, select_epoch="last"),
        synthetic_data,
        torch.device("cpu"),
    ).fit(evaluate_test=False)
    assert (
        summary["best_epoch"] == 3
        and summary["best_dev_weighted_f1"] == summary["history"][-1]["dev_weighted_f1"]
    )


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"cv_folds": 1}, "--cv_folds is 1"),
        ({"cv_folds": 3, "cv_fold": 4}, "--cv_fold is 4, but must be 0..3"),
    ],
)
def test_fold_settings_are_checked_naming_the_flag(synthetic_path, changes, words) -> None:
    with pytest.raises(UserError, match=words):
        tiny_config(synthetic_path, **changes).validate()


def test_another_fold_seed_draws_another_assignment_with_the_same_balance(synthetic_data) -> None:
    """A confirmation scores on a fresh assignment (`--cv_fold_seed`), so that what it publishes is
    not what the search selected on; the new assignment is as balanced and as reproducible."""
    pool = synthetic_data.splits["train"] + synthetic_data.splits["dev"]
    first, other = assign_folds(pool, 3), assign_folds(pool, 3, seed=1)
    assert other != first and other == assign_folds(pool, 3, seed=1)
    sizes = np.bincount(other, weights=[len(d) for d in pool])
    assert sizes.max() - sizes.min() <= max(len(d) for d in pool)
    held_out = [
        d.vid for f in (1, 2, 3) for d in fold_data(synthetic_data, 3, f, seed=1).splits["dev"]
    ]
    assert sorted(held_out) == sorted(d.vid for d in pool)


def test_fold_zero_is_a_refit_on_all_of_train_and_dev(synthetic_path, synthetic_data) -> None:
    """--cv_fold 0 trains on every dialogue of train + dev, has no dev split to select on, keeps its
    last epoch, and still tests once."""
    refit = fold_data(synthetic_data, 3, 0)
    pool = synthetic_data.splits["train"] + synthetic_data.splits["dev"]
    assert [d.vid for d in refit.splits["train"]] == [d.vid for d in pool] and not refit.splits[
        "dev"
    ]
    with pytest.raises(UserError, match="pass --select_epoch last"):
        tiny_config(synthetic_path, cv_folds=3, cv_fold=0)
    config = tiny_config(synthetic_path, cv_folds=3, cv_fold=0, select_epoch="last", epochs=2)
    summary = build_coach(config, synthetic_data, torch.device("cpu")).fit(evaluate_test=True)
    assert summary["best_epoch"] == 2 and [r["epoch"] for r in summary["history"]] == [1, 2]
    assert all(np.isnan(r["dev_weighted_f1"]) for r in summary["history"])
    assert 0 <= summary["test"]["weighted_f1"] <= 1
