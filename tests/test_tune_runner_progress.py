"""The search's progress lines under --quiet: one per finished trial, and a heartbeat while trials run long."""

import io
import pickle
import time
from types import SimpleNamespace

from tune.runner.tuner import ProgressLine


def _trial(trial_id: str, status: str, **last_result: float) -> SimpleNamespace:
    """What ProgressLine reads of a Ray trial: its id, status and last reported result."""
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=last_result)


def test_a_heartbeat_says_where_running_trials_are_when_no_line_came_for_a_while():
    out = io.StringIO()
    progress = ProgressLine("meld", num_samples=4, max_budget=3, time_attr="fold", out=out, heartbeat_seconds=0.05)
    trials = [_trial("aaaa", "TERMINATED", fold=3, search_score=0.41), _trial("bbbb", "RUNNING", fold=1),
              _trial("cccc", "RUNNING"), _trial("dddd", "PENDING")]
    progress.on_step_end(0, trials)
    assert out.getvalue() == ""  # the first heartbeat waits its interval
    progress.on_trial_complete(0, trials, trials[0])
    time.sleep(0.06)
    progress.on_step_end(1, trials)
    progress.on_step_end(2, trials)  # within the interval of the last line: silent
    done, beat = out.getvalue().splitlines()
    assert done.startswith("[meld] 1/4 trials done (0 stopped early, 0 failed), 2 running; best mean over folds 0.4100")
    assert beat.startswith("[meld] 1/4 trials done; running: bbbb 1/3 folds, cccc 0/3 folds; best mean over folds "
                           "0.4100 (aaaa); 0m00s elapsed")


def test_a_heartbeat_before_any_trial_finished_counts_epochs_on_the_dev_split():
    out = io.StringIO()
    progress = ProgressLine("synthetic", num_samples=2, max_budget=8, out=out, heartbeat_seconds=0.0)
    progress.on_step_end(0, [_trial("aaaa", "RUNNING", epoch=5), _trial("bbbb", "RUNNING", epoch=2)])
    assert out.getvalue() == ("[synthetic] 0/2 trials done; running: aaaa 5/8 epochs, bbbb 2/8 epochs; "
                              "no trial finished yet; 0m00s elapsed\n")


def test_a_resumed_search_unpickles_its_progress_line_with_fresh_clocks_and_finds_the_best_so_far():
    # Tune pickles callbacks with the experiment; --resume unpickles them in a new process, possibly from an
    # older version of this class (no heartbeat fields): that must not end the search in an AttributeError.
    progress = ProgressLine("meld", num_samples=4, max_budget=3, time_attr="fold")
    state = pickle.loads(pickle.dumps(progress)).__dict__
    for field in ("last_line", "heartbeat_seconds"):
        del state[field]
    state["started"] = -1e9  # the interrupted process's monotonic clock
    restored = ProgressLine.__new__(ProgressLine)
    restored.__setstate__(state)
    restored.out = out = io.StringIO()
    restored.heartbeat_seconds = 0.0
    restored.on_step_end(0, [_trial("e9cfe1aa", "TERMINATED", fold=3, search_score=0.5393),
                             _trial("aaaa", "TERMINATED", fold=1, search_score=0.4612), _trial("bbbb", "RUNNING", fold=2)])
    assert out.getvalue() == ("[meld] 2/4 trials done; running: bbbb 2/3 folds; best mean over folds 0.5393 "
                              "(e9cfe1aa); 0m00s elapsed\n")
