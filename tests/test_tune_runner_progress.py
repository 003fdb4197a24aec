"""The search's progress lines under --quiet: the expected time once epochs are measured, one line per finished
trial (with why a stopped one stopped), and a heartbeat with each running trial's folds and the expected end."""

import io
import pickle
import time
from types import SimpleNamespace

from tune.forecast import Pace, SearchShape
from tune.runner.progress import ProgressLine

SHAPE = SearchShape.of(
    trials=4,
    epochs=2,
    folds=3,
    concurrency=2,
    grace_period=1,
    reduction_factor=2,
    stops_early=True,
    confirmation_runs=0,
    rerun=False,
)


def _trial(trial_id: str, status: str, **last_result: float) -> SimpleNamespace:
    """What ProgressLine reads of a Ray trial: its id, status and last reported result."""
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=last_result)


def _progress(pace: Pace | None = None, **kwargs) -> tuple[ProgressLine, io.StringIO]:
    out = io.StringIO()
    settings = dict(time_attr="fold", max_budget=3, out=out, heartbeat_seconds=0.05)
    return ProgressLine("meld", SHAPE, pace or Pace(), **{**settings, **kwargs}), out


def test_the_expected_time_is_printed_once_the_first_epochs_are_measured_before_any_trial_ends():
    pace = Pace()
    progress, out = _progress(pace)
    running = _trial("aaaa", "RUNNING", fold=0, progress=True, fold_epoch=1)
    pace.add_epoch("aaaa", 3.0)
    progress.on_trial_result(0, [running], running, {})
    assert out.getvalue() == ""  # a trial's first epoch (start-up) alone says little
    # The first epochs run beside the search's start-up: each running trial measures 4 past its
    # first before the estimate.
    for trial_id, seconds in (("aaaa", 1.0), ("bbbb", 2.0), ("bbbb", 1.0)):
        pace.add_epoch(trial_id, seconds)
    progress.on_trial_result(0, [running], running, {})
    assert out.getvalue() == ""
    for trial_id in ("aaaa", "aaaa", "aaaa", "bbbb", "bbbb", "bbbb"):
        pace.add_epoch(trial_id, 1.0)
    progress.on_trial_result(0, [running], running, {})
    progress.on_trial_result(0, [running], running, {})
    [line] = out.getvalue().splitlines()
    # 4 trials x 3 folds x 2 epochs at 1.0 s, 2 at a time, with the overhead: 16 s in full, 11 s as ASHA stops
    assert (
        line.startswith("[meld] expected time ")
        and "4 trials x 6 epochs at 1.0 s a fold-epoch, 2 at a time" in line
    )


def test_a_heartbeat_shows_each_running_trial_its_fold_scores_the_best_and_the_expected_end():
    pace = Pace()
    for seconds in (2.0, 1.0, 1.0):
        pace.add_epoch("aaaa", seconds)
    progress, out = _progress(pace)
    trials = [
        _trial("aaaa", "TERMINATED", fold=3, search_score=0.41, fold_scores=[0.4, 0.42, 0.41]),
        _trial(
            "bbbb",
            "RUNNING",
            fold=1,
            search_score=0.38,
            fold_scores=[0.38],
            progress=True,
            fold_epoch=1,
        ),
        _trial("cccc", "RUNNING"),
        _trial("dddd", "PENDING"),
        # Its first fold just reported: it is starting its second.
        _trial("eeee", "RUNNING", fold=1, search_score=0.39, fold_scores=[0.39]),
    ]
    progress.on_step_end(0, trials)
    assert out.getvalue() == ""  # the first heartbeat waits its interval
    progress.on_trial_complete(0, trials, trials[0])
    time.sleep(0.06)
    progress.on_step_end(1, trials)
    progress.on_step_end(2, trials)  # within the interval of the last line: silent
    done, beat = out.getvalue().splitlines()
    assert done.startswith(
        "[meld] trial aaaa ran 3/3 folds, score 0.4100; 1/4 trials done (0 stopped early, "
        "0 failed), 3 running; best mean over folds 0.4100 (aaaa); "
    )
    assert beat.startswith(
        "[meld] 1/4 trials done; running: bbbb fold 2/3 epoch 1 (folds done: 0.380); cccc "
        "starting; eeee fold 2/3 starting (folds done: 0.390); best mean over folds 0.4100 (aaaa); "
        "0m00s elapsed, ~"
    )
    assert "left (trials end ~" in beat


def test_a_stopped_trial_says_why_in_the_scheduler_words():
    scheduler = SimpleNamespace(
        stopped={"bbbb": "stopped at the fold-1 rung: 0.2000, below the cutoff 0.4000"}
    )
    progress, out = _progress(scheduler=scheduler)
    trial = _trial("bbbb", "RUNNING", fold=1, search_score=0.2)
    progress.on_trial_complete(0, [trial], trial)
    assert out.getvalue().startswith(
        "[meld] trial bbbb stopped at the fold-1 rung: 0.2000, below the cutoff 0.4000, "
        "score 0.2000; 1/4 trials done (1 stopped early, 0 failed)"
    )


def test_on_the_dev_split_a_heartbeat_counts_epochs():
    progress, out = _progress(time_attr="epoch", max_budget=8, heartbeat_seconds=0.0)
    progress.on_step_end(
        0,
        [
            _trial("aaaa", "RUNNING", epoch=5, dev_weighted_f1=0.5),
            _trial("bbbb", "RUNNING", epoch=2),
        ],
    )
    assert out.getvalue() == (
        "[meld] 0/4 trials done; running: aaaa epoch 5/8 (0.500); bbbb epoch 2/8; "
        "no score yet; 0m00s elapsed\n"
    )


def test_a_resumed_search_unpickles_its_progress_line_with_fresh_clocks_and_finds_the_best_so_far():
    # Tune pickles callbacks with the experiment; --resume unpickles them in a new process, whose monotonic
    # clock has nothing to do with the interrupted one's.
    progress, _ = _progress()
    progress.out = None
    state = pickle.loads(pickle.dumps(progress)).__dict__
    state["started"] = -1e9  # the interrupted process's monotonic clock
    restored = ProgressLine.__new__(ProgressLine)
    restored.__setstate__(state)
    restored.out = out = io.StringIO()
    restored.heartbeat_seconds = 0.0
    restored.on_step_end(
        0,
        [
            _trial("e9cfe1aa", "TERMINATED", fold=3, search_score=0.5393),
            _trial("aaaa", "TERMINATED", fold=1, search_score=0.4612),
            _trial("bbbb", "RUNNING", fold=2),
        ],
    )
    assert out.getvalue() == (
        "[meld] 2/4 trials done; running: bbbb fold 3/3 starting; best mean over folds 0.5393 "
        "(e9cfe1aa); 0m00s elapsed\n"
    )


def test_reference_runs_trained_the_first_time_are_in_the_estimate_but_outside_the_time_budget():
    from tune.forecast import Forecast, TimeBudget

    def shape(reference_runs: int) -> SearchShape:
        return SearchShape.of(
            trials=4,
            epochs=2,
            folds=0,
            concurrency=2,
            grace_period=1,
            reduction_factor=2,
            stops_early=False,
            confirmation_runs=6,
            rerun=False,
            reference_runs=reference_runs,
            reference_epochs=50,
        )

    first, reused = Forecast(shape(6), 1.0, overhead=0.0), Forecast(shape(0), 1.0, overhead=0.0)
    # 6 runs of 50 one-second epochs, 2 at a time.
    assert first.reference_seconds() == 150.0 and reused.reference_seconds() == 0.0
    assert first.after_trials_seconds() - reused.after_trials_seconds() == 150.0
    assert "and the references 2 min (6 runs of 50 epochs, once for this data" in first.words()
    assert "references" not in reused.words()
    # They are trained once per data file, outside the search's time budget.
    budget = TimeBudget(seconds=200.0)
    assert budget.search_deadline(reused) == budget.search_deadline(first)
    # With no confirmation there are no references to train either.
    none = SearchShape.of(
        trials=4,
        epochs=2,
        folds=0,
        concurrency=2,
        grace_period=1,
        reduction_factor=2,
        stops_early=False,
        reference_runs=6,
        reference_epochs=50,
    )
    assert Forecast(none, 1.0).reference_seconds() == 0.0


def test_the_refits_and_references_progress_lines_name_their_stage(capsys):
    """The confirmation, the refits and the references train through one grid; each one's lines say
    which it is (the references' lines used to read "[confirmation]")."""
    from tune.runner.progress import ConfirmationProgress

    progress = ConfirmationProgress(2, 10, ["defaults", "strong untuned"], stage="references")
    run = SimpleNamespace(
        trial_id="r1", config={"config_index": 1}, last_result={"best_dev_weighted_f1": 0.51}
    )
    progress.on_trial_result(0, [run], run, {"epoch": 5})
    progress.on_trial_complete(0, [run], run)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(
        "[references] 1/2 runs done, 5/10 epochs; best mean dev wF1 0.5100 (strong untuned)"
    )
    assert ConfirmationProgress(1, 1, ["baseline"]).stage == "confirmation"
