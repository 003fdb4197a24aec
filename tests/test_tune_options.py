"""The typed options of tune/search.py and tune/confirm.py: the parsers come from them, they check their flag
combinations, and a search's resume command parses back to the same search."""

from __future__ import annotations

import dataclasses

import pytest

from joyful.errors import UserError
from tune.options import ConfirmOptions, space_flags
from tune.search import parse_search_options
from tune.space import Budget, Strategy


def test_every_budget_and_strategy_field_is_a_flag_of_its_group() -> None:
    """A setting of the space file's `budget` or `strategy` is one field there: its flag follows from it."""
    groups = dict(space_flags())
    assert [[f.name for f in fields] for fields in groups.values()] == [
        [f.name for f in dataclasses.fields(Budget)],
        [f.name for f in dataclasses.fields(Strategy)],
    ]
    parser_flags = {
        a.option_strings[0] for a in __import__("tune.search").search.build_parser()._actions
    }
    assert {
        "--time-budget",
        "--sampler",
        "--startup-trials",
        "--scheduler",
        "--num-samples",
    } <= parser_flags


def test_the_parsed_flags_are_typed_options() -> None:
    options = parse_search_options(
        [
            "--dataset",
            "synthetic",
            "--dataset",
            "meld",
            "--data",
            "a.pkl",
            "--data",
            "b.pkl",
            "--cpus-per-trial",
            "2",
            "--warm-start",
            "--mlflow",
            "--time-budget",
            "1h30m",
            "--sampler",
            "gp",
        ]
    )
    assert (
        options.dataset == ("synthetic", "meld")
        and options.data == ("a.pkl", "b.pkl")
        and options.space == ()
    )
    assert options.warm_start == "auto" and options.seed == 0
    assert options.datasets() == [("synthetic", "a.pkl", None), ("meld", "b.pkl", None)]
    assert options.section_overrides("budget") == {"cpus_per_trial": 2.0, "time_budget": 5400.0}
    assert options.section_overrides("strategy") == {"sampler": "gp"}
    assert options.tracking.mlflow and options.tracking.results_dir == options.results_dir
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "a", "--dataset", "a"], "--dataset lists a data set twice"),
        (["--dataset", "a", "--max-failures", "-2"], "--max-failures is -2, but must be >= -1"),
        (
            ["--dataset", "a", "--confirm-seeds", "0"],
            "--confirm-top is 2 and --confirm-seeds 0, but they must be",
        ),
        (["--dataset", "a", "--warm-start", "--resume"], "--warm-start starts a new search"),
        (["--dataset", "a", "--wandb-mode", "offline"], "--wandb-mode goes with --wandb-project"),
        (["--dataset", "a", "--name", "a/b"], "data-set name 'a/b' must be a plain name"),
        (
            ["--dataset", "a", "--space", "x", "--space", "y"],
            "--space given 2 time(s) for 1 --dataset",
        ),
        (
            ["--dataset", "a", "--dataset", "b", "--write-space", "f.yaml"],
            "--write-space writes the space of one",
        ),
    ],
)
def test_wrong_flag_combinations_are_refused_by_the_options(argv: list[str], message: str) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_search_options(argv)


def test_the_resume_command_continues_the_same_search() -> None:
    argv = [
        "--dataset",
        "synthetic",
        "--dataset",
        "meld",
        "--data",
        "a.pkl",
        "--data",
        "b.pkl",
        "--space",
        "s1",
        "--space",
        "s2",
        "--num-samples",
        "5",
        "--gpus-per-trial",
        "0.25",
        "--address",
        "auto",
        "--dataset-spec",
        "spec.json",
        "--optuna-storage",
        "sqlite:///o.db",
        "--mlflow-uri",
        "sqlite:///m.db",
        "--wandb-project",
        "p",
        "--wandb-mode",
        "offline",
        "--seed",
        "3",
        "--confirm-top",
        "0",
        "--dashboard-host",
        "0.0.0.0",
        "--overwrite",
        "--no-rerun",
        "--quiet",
        "--mlflow",
        "--warm-start",
    ]
    options = parse_search_options(argv)
    resumed = parse_search_options(options.resume_argv("search-1"))
    # The same search, named, resumed; a warm start belongs to its first run only.
    assert resumed == dataclasses.replace(options, name="search-1", resume=True, warm_start=None)


def test_the_resume_command_of_a_plain_search() -> None:
    options = parse_search_options(
        [
            "--dataset",
            "synthetic",
            "--storage-path",
            "/s",
            "--results-dir",
            "/r",
            "--max-epochs",
            "4",
            "--quiet",
        ]
    )
    assert options.resume_argv("exp") == [
        "--dataset",
        "synthetic",
        "--storage-path",
        "/s",
        "--name",
        "exp",
        "--results-dir",
        "/r",
        "--seed",
        "0",
        "--max-failures",
        "2",
        "--confirm-top",
        "2",
        "--quiet",
        "--max-epochs",
        "4",
        "--resume",
    ]


def test_confirm_options_check_their_names() -> None:
    assert ConfirmOptions("meld").resources() == {}
    assert ConfirmOptions("meld", gpus_per_trial=0.5).resources() == {"gpus_per_trial": 0.5}
    with pytest.raises(UserError, match="data-set name '../x' must be a plain name"):
        ConfirmOptions("meld", name="../x")
