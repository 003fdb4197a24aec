"""tune/reporting/plots.py (the trivial-level line) and tune/reporting/optuna_plots.py (Optuna's views), on a study built in memory (no Ray)."""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from joyful.errors import UserError
from tune.records import ConfigurationRecord, Confirmation, RunRecord, Summary
from tune.reporting import optuna_plots, plots
from tune.reporting.optuna_plots import (
    plot_contour,
    plot_parallel_coordinate,
    plot_slices,
    write_interactive_html,
)
from tune.reporting.plots import (
    draw_trivial_level,
    plot_confirmation,
    plot_curves,
    plot_history,
    plot_parameter,
)
from tune.space import Parameter

matplotlib.use("Agg")
PNG = b"\x89PNG\r\n\x1a\n"
TRIVIAL = ("always neutral", 0.2523)
SPACE = {
    "fusion": CategoricalDistribution(("autofusion", "hierarchical")),
    "reconstruction_loss": CategoricalDistribution(("mse", "smooth_l1")),
    "learning_rate": FloatDistribution(1e-5, 1e-2, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "hidden_size": IntDistribution(64, 512, step=64),
    "gate_reg_weight": FloatDistribution(
        1e-4, 1e-1, log=True
    ),  # only when fusion == "hierarchical"
}


def _params(rng: np.random.Generator, index: int) -> dict[str, Any]:
    params = {
        "fusion": ("autofusion", "hierarchical")[index % 2],
        "reconstruction_loss": ("mse", "smooth_l1")[(index // 2) % 2],
        "learning_rate": float(10 ** rng.uniform(-5, -2)),
        "dropout": float(rng.uniform(0, 0.5)),
        "hidden_size": int(64 * rng.integers(1, 9)),
    }
    if params["fusion"] == "hierarchical":
        params["gate_reg_weight"] = float(10 ** rng.uniform(-4, -1))
    return params


def make_study(complete: int = 7, pruned: int = 4, failed: int = 1) -> optuna.Study:
    """`complete` COMPLETE trials with scores, `pruned` PRUNED with per-epoch scores, `failed` FAIL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name="meld_text")
    rng = np.random.default_rng(0)
    states = (
        [TrialState.COMPLETE] * complete + [TrialState.PRUNED] * pruned + [TrialState.FAIL] * failed
    )
    for index, state in enumerate(rng.permutation(np.array(states, dtype=object))):
        params = _params(rng, index)
        distributions = {name: SPACE[name] for name in params}
        if state == TrialState.COMPLETE:
            trial = create_trial(
                state=state,
                value=float(rng.uniform(0.25, 0.62)),
                params=params,
                distributions=distributions,
                intermediate_values={1: 0.3, 2: 0.4},
            )
        elif state == TrialState.PRUNED:
            trial = create_trial(
                state=state,
                params=params,
                distributions=distributions,
                intermediate_values={1: 0.26, 2: 0.27},
            )
        else:
            trial = create_trial(state=state, params=params, distributions=distributions)
        study.add_trial(trial)
    return study


# --- the trivial level ------------------------------------------------------------------------


@pytest.fixture
def ax() -> Any:
    fig, axes = plt.subplots()
    yield axes
    plt.close(fig)


def _trivial_lines(ax: Any, level: float) -> list[Any]:
    return [
        line
        for line in ax.get_lines()
        if line.get_linestyle() == "--" and list(line.get_ydata()) == [level, level]
    ]


def test_draw_trivial_level_draws_a_labelled_line_inside_the_y_limits(ax: Any) -> None:
    ax.scatter(
        [0, 1, 2], [0.249, 0.2505, 0.2512]
    )  # the MELD case: every trial predicts the majority class
    draw_trivial_level(ax, TRIVIAL)
    (line,) = _trivial_lines(ax, 0.2523)
    assert line.get_label() == "always neutral (dev wF1 0.252)"
    low, high = ax.get_ylim()
    assert low <= 0.249 and high > 0.2523 + 0.02 * (
        high - low
    )  # a margin above the line, not on the border
    assert "always neutral (dev wF1 0.252)" in [t.get_text() for t in ax.legend().get_texts()]


def test_draw_trivial_level_widens_limits_set_before_it(ax: Any) -> None:
    ax.plot([1, 2, 3], [0.55, 0.58, 0.61])
    ax.set_ylim(0.5, 0.65)  # fixed limits: no autoscaling would bring the line in
    draw_trivial_level(ax, ("always neutral", 0.2))
    low, high = ax.get_ylim()
    assert low < 0.2 - 0.01 and high >= 0.65


def test_draw_trivial_level_none_draws_nothing_and_bad_levels_fail(ax: Any) -> None:
    ax.plot([0, 1], [0.3, 0.4])
    draw_trivial_level(ax, None)
    assert len(ax.get_lines()) == 1
    for bad in (("always neutral", math.nan), ("", 0.25), ("always neutral", "0.25")):
        with pytest.raises(ValueError, match="trivial level"):
            draw_trivial_level(ax, bad)


def test_the_confirmation_plot_is_scaled_to_the_runs_and_names_a_trivial_level_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The confirmed runs differ by hundredths: widening the axis down to always-neutral (0.25) squashed them
    (a line that covered the data). The level is named at the axis edge instead of drawn."""
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: saved.append(fig))
    plot_confirmation(_confirmation(), tmp_path / "c.png", trivial=TRIVIAL)
    (fig,) = saved
    for axes in fig.axes:
        low, high = axes.get_ylim()
        assert low > 0.40 and high < 0.60 and not _trivial_lines(axes, 0.2523)
        assert "always neutral (dev wF1 0.252): below this axis" in [
            t.get_text() for t in axes.texts
        ]
    plt.close(fig)


def _records() -> list[dict[str, Any]]:
    return [
        {
            "trial_id": f"t{n}",
            "status": ("TERMINATED", "EARLY_STOPPED")[n % 2],
            "learning_rate": 10 ** (-4 + n / 3),
            "best_dev_weighted_f1": 0.249 + 0.0005 * n,
            "curve": [
                {"epoch": e, "dev_weighted_f1": 0.249 + 0.0001 * (e + n)} for e in range(1, 5)
            ],
        }
        for n in range(6)
    ]


def _confirmation() -> Confirmation:
    def config(label: str, base: float) -> ConfigurationRecord:
        runs = [
            RunRecord(
                seed=s,
                best_dev_weighted_f1=base + 0.01 * s,
                dev_weighted_f1=[base - 0.05, base, base],
            )
            for s in range(3)
        ]
        return ConfigurationRecord(
            label=label,
            config={},
            runs=runs,
            test_weighted_f1=Summary(),
            dev_weighted_f1=Summary(n=3, mean=base + 0.01, ci95=[base, base + 0.02]),
        )

    return Confirmation(
        configurations=[config("search best", 0.55), config("runner-up", 0.5)],
        winner="search best",
        metric="dev_weighted_f1",
        seeds=[0, 1, 2],
        winner_seed=1,
        selection="highest mean",
        wall_seconds=1.0,
        experiment="x",
        finished_at="2026-01-01T00:00:00+00:00",
    )


@pytest.mark.parametrize("draw", ["history", "parameter", "curves"])
def test_report_plots_draw_the_trivial_level_on_every_dev_f1_axis(
    draw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: saved.append(fig))
    path = tmp_path / "plot.png"
    if draw == "history":
        plot_history(_records(), path, trivial=TRIVIAL)
    elif draw == "parameter":
        parameter = Parameter("learning_rate", "float", low=1e-5, high=1e-2, log=True)
        plot_parameter("learning_rate", parameter, _records(), "t2", path, trivial=TRIVIAL)
    else:
        plot_curves(_records()[:3], [1, 2], path, trivial=TRIVIAL)
    (fig,) = saved
    for axes in fig.axes:
        assert len(_trivial_lines(axes, 0.2523)) == 1, axes.get_title()
        low, high = axes.get_ylim()
        assert low < 0.2523 < high
        assert "always neutral (dev wF1 0.252)" in [
            t.get_text() for t in axes.get_legend().get_texts()
        ]
    plt.close(fig)


def test_report_plots_without_trivial_draw_no_dashed_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plot_history(_records(), tmp_path / "history.png")  # the positional form callers use
    assert (tmp_path / "history.png").read_bytes().startswith(PNG)
    saved = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: saved.append(fig))
    plot_history(_records(), tmp_path / "history.png")
    assert [line for line in saved[0].axes[0].get_lines() if line.get_linestyle() == "--"] == []
    plt.close(saved[0])


# --- Optuna-native plots ----------------------------------------------------------------------


DRAW = {
    "parallel": lambda study, path: plot_parallel_coordinate(study, path),
    "slices": lambda study, path: plot_slices(study, path),
    "contour": lambda study, path: plot_contour(
        study, path, ["learning_rate", "fusion", "gate_reg_weight"]
    ),
}


@pytest.mark.parametrize("kind", sorted(DRAW))
def test_optuna_plots_write_a_png_of_a_study_with_conditional_pruned_and_failed_trials(
    kind: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{kind}.png"
    assert DRAW[kind](make_study(), path) is True
    data = path.read_bytes()
    assert data.startswith(PNG) and len(data) > 10_000
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("complete", [0, 1])
@pytest.mark.parametrize("kind", sorted(DRAW))
def test_optuna_plots_return_false_and_write_nothing_below_two_complete_trials(
    kind: str, complete: int, tmp_path: Path
) -> None:
    study = make_study(complete=complete, pruned=3, failed=1)
    if (
        kind == "contour" and complete == 0
    ):  # its params must exist in the study; a pruned trial holds them
        assert plot_contour(study, tmp_path / "c.png", ["learning_rate", "dropout"]) is False
    else:
        assert DRAW[kind](study, tmp_path / f"{kind}.png") is False
    assert list(tmp_path.iterdir()) == []


def test_contour_needs_two_parameters_that_vary(tmp_path: Path) -> None:
    study = make_study()
    assert plot_contour(study, tmp_path / "c.png", ["learning_rate"]) is False
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE,
            value=0.3,
            params={"only_once": 1.0},
            distributions={"only_once": FloatDistribution(0, 2)},
        )
    )
    assert plot_contour(study, tmp_path / "c.png", ["learning_rate", "only_once"]) is False
    assert list(tmp_path.iterdir()) == []
    assert plot_contour(study, tmp_path / "c.png", ["dropout", "learning_rate"]) is True


def test_contour_of_equal_scores_is_not_drawn_but_slices_are(tmp_path: Path) -> None:
    # The MELD case: every trial predicts the majority class; a contour would only show rounding noise.
    study = optuna.create_study(direction="maximize")
    for trial in make_study().get_trials():
        study.add_trial(
            create_trial(
                state=trial.state,
                params=trial.params,
                distributions=trial.distributions,
                value=0.2523 if trial.state == TrialState.COMPLETE else None,
            )
        )
    assert plot_contour(study, tmp_path / "c.png", ["dropout", "learning_rate"]) is False
    assert plot_slices(study, tmp_path / "s.png") is True


def test_parameters_only_unfinished_trials_hold_are_left_out(tmp_path: Path) -> None:
    study = make_study()
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"warmup": 128},
            distributions={"warmup": SPACE["hidden_size"]},
        )
    )
    assert plot_slices(study, tmp_path / "s.png", ["warmup"]) is False
    assert plot_parallel_coordinate(study, tmp_path / "p.png", ["warmup", "dropout"]) is True
    assert not (tmp_path / "s.png").exists()


def test_optuna_plots_name_unknown_parameters(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\['learning_rte'\]; known: .*'learning_rate'"):
        plot_slices(make_study(), tmp_path / "s.png", ["learning_rte"])


def test_optuna_plots_are_deterministic_and_leave_the_global_style_alone(tmp_path: Path) -> None:
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        before = dict(matplotlib.rcParams)
        for name in ("a.png", "b.png"):
            plot_slices(make_study(), tmp_path / name)
            plot_contour(make_study(), tmp_path / f"c{name}", ["learning_rate", "dropout"])
            plot_parallel_coordinate(make_study(), tmp_path / f"p{name}")
        assert dict(matplotlib.rcParams) == before  # Optuna calls plt.style.use("ggplot")
    for name in ("a.png", "ca.png", "pa.png"):
        assert (tmp_path / name).read_bytes() == (
            tmp_path / name.replace("a.png", "b.png")
        ).read_bytes()


def test_titles_say_which_trial_states_are_shown() -> None:
    assert optuna_plots._shown(make_study()) == (
        "7 COMPLETE trials (ran all epochs); not shown: 1 FAIL, 4 PRUNED (stopped early)"
    )
    assert (
        optuna_plots._shown(make_study(complete=1, pruned=0, failed=0))
        == "1 COMPLETE trial (ran all epochs)"
    )


# --- the interactive page ---------------------------------------------------------------------


def test_interactive_html_is_self_contained_and_holds_every_figure(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    from plotly.offline import get_plotlyjs

    path = write_interactive_html(make_study(), tmp_path / "study.html")
    page = path.read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()) == 1
    assert "<script src=" not in page
    # The bundle names a CDN for geo maps it never loads here; outside it the page links nothing.
    assert re.search(r"https?://", page.replace(get_plotlyjs(), "")) is None
    for key in ("history", "parallel", "slice", "importance"):
        assert f'id="figure-{key}"' in page, key
    assert "not shown: 1 FAIL, 4 PRUNED (stopped early)" in page
    assert (
        write_interactive_html(make_study(), tmp_path / "again.html").read_bytes()
        == path.read_bytes()
    )


def test_interactive_html_of_a_study_with_nothing_or_little_to_plot(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    page = write_interactive_html(make_study(complete=0), tmp_path / "study.html").read_text(
        encoding="utf-8"
    )
    assert "Nothing to plot" in page and 'id="figure-' not in page
    page = write_interactive_html(make_study(complete=1), tmp_path / "study.html").read_text(
        encoding="utf-8"
    )
    assert (
        'id="figure-history"' in page
        and 'id="figure-slice"' not in page
        and "at least 2 trials" in page
    )


def test_interactive_html_without_plotly_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # makes `import plotly` raise ImportError
    with pytest.raises(UserError, match="pip install plotly"):
        write_interactive_html(make_study(), tmp_path / "study.html")
    assert not (tmp_path / "study.html").exists()
