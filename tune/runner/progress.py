"""The progress lines of a search, printed also under --quiet: the expected time once the first
epochs are measured, a line per finished trial (with why a stopped one stopped), and a heartbeat
while trials run that shows each running trial's fold scores, the best score so far and the expected
end."""

from __future__ import annotations

import math
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from ray import tune

from tune.forecast import Forecast, Pace, SearchShape, TimeBudget

__all__ = ["HEARTBEAT_SECONDS", "ProgressLine", "clock"]

HEARTBEAT_SECONDS = 60.0
# Epochs past its first each running trial has measured before the search's estimate is printed.
ESTIMATE_EPOCHS = 4
SEARCH_SCORE = "search_score"


def clock(seconds: float) -> str:
    """`seconds` as a progress line shows it: 4m05s, 1h12m."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


class ProgressLine(tune.Callback):
    """See the module docstring. `pace` is the one the searcher feeds, `shape` the search's work,
    `scheduler` the one that stops trials (for its reasons), `time_budget` the search's limit (None:
    none)."""

    def __init__(
        self,
        dataset: str,
        shape: SearchShape,
        pace: Pace,
        *,
        time_attr: str,
        max_budget: int,
        scheduler: Any = None,
        time_budget: TimeBudget | None = None,
        out: Any = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.dataset, self.shape, self.pace, self.scheduler = dataset, shape, pace, scheduler
        self.time_attr, self.max_budget, self.time_budget = time_attr, max_budget, time_budget
        self.out, self.heartbeat_seconds = out, heartbeat_seconds
        self.started = self.last_line = time.monotonic()
        self.estimated = False

    def __setstate__(self, state: dict) -> None:
        # Tune pickles its callbacks with the experiment and a resume unpickles them into this
        # process, where the monotonic clock of the interrupted one means nothing: times restart
        # with this invocation.
        self.__dict__.update(state)
        self.started = self.last_line = time.monotonic()
        self.estimated = False

    def _print(self, text: str) -> None:
        print(f"[{self.dataset}] {text}", file=self.out or sys.stdout, flush=True)
        self.last_line = time.monotonic()

    # --- Tune's calls
    # ------------------------------------------------------------------------------------
    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if not self.estimated and self._enough_measured():
            self.estimated = True
            forecast = Forecast.of(self.shape, self.pace)
            if forecast is not None:
                self._print(forecast.words(self.time_budget.seconds if self.time_budget else 0.0))

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self.last_line < self.heartbeat_seconds:
            return
        done = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
        running = [t for t in trials if t.status == "RUNNING"]
        where = "; ".join(self._where(t) for t in running) or "none"
        self._print(
            f"{len(done)}/{self.shape.trials} trials done; running: {where}; "
            f"{self._best([t for t in done if t.status == 'TERMINATED'] + running)}; "
            f"{self._times(len(done))}"
        )

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trials, trial, errored=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finished(trials, trial, errored=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        done = (trial.last_result or {}).get(self.time_attr, 0)
        self._print(
            f"trial {trial.trial_id} failed after {self.time_attr} {done}; retrying it from its "
            "last checkpoint"
        )

    # --- the lines
    # -----------------------------------------------------------------------------------------
    def _enough_measured(self) -> bool:
        """ESTIMATE_EPOCHS epochs past its first from each of the first trials that run at once (at
        most two), or any epoch once a minute has passed. The first epochs of a search run while
        Ray and the other trials start on the same cores: on the quick start they took twice the
        steady time, and an estimate from one of them each was 80% too long."""
        later = sorted(
            (max(0, len(times) - 1) for times in self.pace.epochs.values()), reverse=True
        )
        slots = min(2, self.shape.concurrency)
        return (len(later) >= slots and later[slots - 1] >= ESTIMATE_EPOCHS) or (
            self.pace.measured and time.monotonic() - self.started > self.heartbeat_seconds
        )

    def _where(self, trial: Any) -> str:
        last = trial.last_result or {}
        if not last:
            return f"{trial.trial_id} starting"
        if self.time_attr == "fold":
            scores = ", ".join(f"{s:.3f}" for s in last.get("fold_scores") or [])
            # `fold` counts the folds done (in a fold's report and in the epochs' progress
            # reports alike): the trial trains the next one, from its first epoch after a report.
            fold = int(last.get("fold") or 0) + 1
            epoch = (
                f" epoch {int(last['fold_epoch'])}"
                if last.get("progress") and "fold_epoch" in last
                else " starting"
                if fold <= self.max_budget
                else ""  # its last fold reported: ending
            )
            return (
                f"{trial.trial_id} fold {min(fold, self.max_budget)}/{self.max_budget}{epoch}"
                + (f" (folds done: {scores})" if scores else "")
            )
        epoch = int(last.get("epoch") or 0)
        score = last.get("dev_weighted_f1")
        return f"{trial.trial_id} epoch {epoch}/{self.max_budget}" + (
            f" ({score:.3f})" if _finite(score) else ""
        )

    def _best(self, trials: list, none: str = "no score yet") -> str:
        """The best search score so far, read from the trials themselves so that it survives a
        resume."""
        scored = [
            (float(s), t.trial_id)
            for t in trials
            if _finite(s := (t.last_result or {}).get(SEARCH_SCORE))
        ]
        if not scored:
            return none
        score, trial_id = max(scored)
        return (
            f"best {'mean over folds' if self.time_attr == 'fold' else 'dev wF1'} {score:.4f} "
            f"({trial_id})"
        )

    def _times(self, finished: int) -> str:
        elapsed = time.monotonic() - self.started
        forecast = Forecast.of(self.shape, self.pace)
        if forecast is None:
            return f"{clock(elapsed)} elapsed"
        left = forecast.remaining_search_seconds(self.pace.units_done(), finished)
        if self.time_budget is not None:
            left = min(left, max(0.0, self.time_budget.search_deadline(forecast) - elapsed))
        end = datetime.now(UTC) + timedelta(seconds=left)
        return f"{clock(elapsed)} elapsed, ~{clock(left)} left (trials end ~{end:%H:%M} UTC)"

    def _finished(self, trials: list, trial: Any, errored: bool) -> None:
        # Tune calls back before it sets the trial's own status, so `trial` counts as finished here.
        others = [t for t in trials if t is not trial]
        finished = [(t, t.status == "ERROR") for t in others if t.status in ("TERMINATED", "ERROR")]
        finished.append((trial, errored))
        last = trial.last_result or {}
        failed = sum(
            error or bool((t.last_result or {}).get("non_finite")) for t, error in finished
        )
        stopped = sum(
            not error
            and not (t.last_result or {}).get("non_finite")
            and int((t.last_result or {}).get(self.time_attr, 0)) < self.max_budget
            for t, error in finished
        )
        why = self.scheduler.stopped.get(trial.trial_id) if self.scheduler is not None else None
        ended = (
            "failed"
            if errored or last.get("non_finite")
            else why
            if why
            else f"ran {int(last.get(self.time_attr, 0))}/{self.max_budget} {self.time_attr}s"
        )
        score = last.get(SEARCH_SCORE)
        self._print(
            f"trial {trial.trial_id} {ended}"
            + (f", score {score:.4f}" if _finite(score) else "")
            + f"; {len(finished)}/{self.shape.trials} trials done ({stopped} stopped early, "
            f"{failed} failed), {sum(t.status == 'RUNNING' for t in others)} running; "
            f"{self._best([t for t, error in finished if not error])}; {self._times(len(finished))}"
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class ConfirmationProgress(tune.Callback):
    """Progress lines of a confirmation (or of the refits or references: `stage`), also under
    --quiet: when a run finishes, and at most once a minute while epochs finish (runs done, epochs
    done, the best mean dev score so far, elapsed, estimated rest)."""

    def __init__(
        self,
        runs: int,
        epochs: int,
        labels: list[str],
        every_s: float = 60.0,
        stage: str = "confirmation",
    ) -> None:
        self.runs, self.epochs, self.labels, self.every_s = runs, epochs, labels, every_s
        self.stage = stage
        self.started = self.last = time.monotonic()
        self.epochs_done: dict[str, int] = {}
        self.finished: dict[str, tuple[str, float | None]] = {}  # trial id -> (label, best dev)

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        if "epoch" in result:
            self.epochs_done[trial.trial_id] = int(result["epoch"])
        if time.monotonic() - self.last >= self.every_s:
            self._line()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        label = self.labels[int(trial.config["config_index"])]
        self.finished[trial.trial_id] = (label, last.get("best_dev_weighted_f1"))
        self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        elapsed = self.last - self.started
        done = sum(self.epochs_done.values())
        scores: dict[str, list[float]] = {}
        for label, value in self.finished.values():
            if isinstance(value, (int, float)) and math.isfinite(value):
                scores.setdefault(label, []).append(value)
        best = max(((sum(v) / len(v), label) for label, v in scores.items()), default=None)
        best_text = (
            f"best mean dev wF1 {best[0]:.4f} ({best[1]})"
            if best
            else "no dev score (refits train on dev)"
            if self.finished
            else "no run finished yet"
        )
        rest = elapsed / done * (self.epochs - done) if done else 0.0
        print(
            f"[{self.stage}] {len(self.finished)}/{self.runs} runs done, {done}/{self.epochs} "
            f"epochs; {best_text}; {clock(elapsed)} elapsed, ~{clock(rest)} left",
            flush=True,
        )
