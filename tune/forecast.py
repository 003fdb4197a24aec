"""How long a search will take, from the speed its trials show, and whether another trial fits its
time budget.

A trial's work is counted in epochs ("units": with cross-validation, every fold's epochs). `Pace`
collects the seconds each epoch took as the trials report them (under the search's real concurrency,
so the slowdown of trials sharing a machine is in the figure); a trial's first epoch (kernels built,
data moved) is left out once later ones exist. `SearchShape` is what the plan knows of the work:
trials, epochs per trial, how many run at once, and how much successive halving is expected to cut.
`Forecast` combines the two.

Successive halving makes the total uncertain: between every trial running in full and the scheduler
stopping as many as plain ASHA would (1 - 1/eta of the trials at each rung). The estimate is the
middle of that range, and the range is printed with it.

No Ray, no clock of its own: the searcher and the progress line pass the time in.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from tune.space import rungs, words_of_duration

__all__ = ["Forecast", "Pace", "SearchShape", "TRIAL_OVERHEAD_S", "TimeBudget"]

# Seconds a trial costs beyond its epochs (a worker started or reused, the model built,
# checkpoints), until finished trials measure it.
TRIAL_OVERHEAD_S = 3.0


@dataclass
class Pace:
    """Seconds per epoch as measured by the trials, and each trial's epochs done so far."""

    epochs: dict[str, list[float]] = field(
        default_factory=dict
    )  # trial id -> seconds of each epoch it ran
    overheads: list[float] = field(
        default_factory=list
    )  # finished trials' wall time beyond their epochs

    def add_epoch(self, trial_id: str, seconds: float) -> None:
        if seconds >= 0:
            self.epochs.setdefault(trial_id, []).append(float(seconds))

    def add_finished(self, trial_id: str, wall_seconds: float) -> None:
        """A finished trial's wall time: what it took beyond its epochs is the per-trial
        overhead."""
        spent = sum(self.epochs.get(trial_id, []))
        if wall_seconds > 0 and spent > 0:
            self.overheads.append(max(0.0, wall_seconds - spent))

    @property
    def measured(self) -> bool:
        return any(self.epochs.values())

    def epoch_seconds(self) -> float | None:
        """The median epoch: every trial's epochs after its first, or the first ones while there are
        no others."""
        later = [s for times in self.epochs.values() for s in times[1:]]
        first = [times[0] for times in self.epochs.values() if times]
        sample = later if len(later) >= 2 else later + first
        return statistics.median(sample) if sample else None

    def overhead(self) -> float:
        return statistics.median(self.overheads) if self.overheads else TRIAL_OVERHEAD_S

    def units_done(self) -> int:
        return sum(len(times) for times in self.epochs.values())


@dataclass(frozen=True)
class SearchShape:
    """The work of a search: `trials` of up to `units` epochs each (folds x epochs with
    cross-validation), `concurrency` at once, scheduler rungs at `rung_units` (epochs into a trial)
    with `reduction_factor` (none: every trial runs in full); the confirmation's runs and their
    epochs; the winner's re-run."""

    trials: int
    units: int
    concurrency: int
    folds: int = 0
    rung_units: tuple[int, ...] = ()
    reduction_factor: int = 2
    confirmation_runs: int = 0
    confirmation_epochs: int = 0
    rerun_epochs: int = 0
    reference_runs: int = 0  # the references' runs, when no earlier search of the data ran them
    reference_epochs: int = 0

    @classmethod
    def of(
        cls,
        *,
        trials: int,
        epochs: int,
        folds: int,
        concurrency: int,
        grace_period: int,
        reduction_factor: int,
        stops_early: bool,
        confirmation_runs: int = 0,
        rerun: bool = True,
        reference_runs: int = 0,
        reference_epochs: int = 0,
    ) -> SearchShape:
        """The shape of a search with `folds` (0: the dev split) and a scheduler that `stops_early`
        or not."""
        per_fold = epochs if folds else 1
        scheduled = (
            rungs(1 if folds else grace_period, reduction_factor, folds or epochs)
            if stops_early
            else []
        )
        return cls(
            trials=trials,
            units=epochs * max(folds, 1),
            concurrency=max(1, min(concurrency, trials)),
            folds=folds,
            rung_units=tuple(r * per_fold for r in scheduled),
            reduction_factor=reduction_factor,
            confirmation_runs=confirmation_runs,
            confirmation_epochs=epochs if confirmation_runs else 0,
            rerun_epochs=epochs if rerun else 0,
            reference_runs=reference_runs if confirmation_runs else 0,
            reference_epochs=reference_epochs,
        )

    def least_share(self) -> float:
        """The share of a trial's epochs it runs on average if the scheduler stops as many as plain
        ASHA."""
        if not self.rung_units:
            return 1.0
        bounds = [0, *self.rung_units, self.units]
        survive, share = 1.0, 0.0
        for start, end in zip(bounds, bounds[1:], strict=False):
            share += survive * (end - start)
            survive /= self.reduction_factor
        return share / self.units


@dataclass(frozen=True)
class Forecast:
    """Expected seconds of a search's parts at the measured pace (see the module docstring)."""

    shape: SearchShape
    epoch_seconds: float
    overhead: float = TRIAL_OVERHEAD_S

    @classmethod
    def of(cls, shape: SearchShape, pace: Pace) -> Forecast | None:
        seconds = pace.epoch_seconds()
        return None if seconds is None else cls(shape, seconds, pace.overhead())

    def trial_seconds(self, share: float | None = None) -> float:
        """One trial's expected wall time, running `share` of its epochs (default: the middle
        estimate)."""
        share = self.middle_share() if share is None else share
        return self.shape.units * share * self.epoch_seconds + self.overhead

    def middle_share(self) -> float:
        return (self.shape.least_share() + 1.0) / 2

    def search_seconds(self, share: float | None = None, trials: int | None = None) -> float:
        """The trial phase of `trials` (default: the shape's) on `concurrency` slots."""
        trials = self.shape.trials if trials is None else trials
        return trials * self.trial_seconds(share) / self.shape.concurrency

    def search_range(self) -> tuple[float, float]:
        return self.search_seconds(self.shape.least_share()), self.search_seconds(1.0)

    def remaining_search_seconds(self, units_done: int, trials_finished: int) -> float:
        """What is left of the trial phase once `units_done` epochs ran and `trials_finished` trials
        ended."""
        expected_units = self.shape.trials * self.shape.units * self.middle_share()
        units_left = max(0.0, expected_units - units_done)
        overheads = max(0, self.shape.trials - trials_finished) * self.overhead
        return (units_left * self.epoch_seconds + overheads) / self.shape.concurrency

    def confirmation_seconds(self, runs: int | None = None) -> float:
        runs = self.shape.confirmation_runs if runs is None else runs
        per_run = self.shape.confirmation_epochs * self.epoch_seconds + self.overhead
        return runs * per_run / self.shape.concurrency if runs else 0.0

    def rerun_seconds(self) -> float:
        return self.shape.rerun_epochs * self.epoch_seconds

    def reference_seconds(self) -> float:
        """The reference runs (trained once per data file, alongside the confirmation): a run's
        epoch on the train split is taken as one epoch of the trials."""
        runs, epochs = self.shape.reference_runs, self.shape.reference_epochs
        per_run = epochs * self.epoch_seconds + self.overhead
        return runs * per_run / self.shape.concurrency if runs else 0.0

    def after_trials_seconds(self) -> float:
        """What follows the trials: the winner's re-run, the confirmation and, the first time, the
        references."""
        return self.rerun_seconds() + self.confirmation_seconds() + self.reference_seconds()

    def trials_within(self, seconds: float) -> int:
        """How many trials the trial phase can run in `seconds`."""
        return max(0, int(seconds * self.shape.concurrency // self.trial_seconds()))

    def words(self, time_budget: float = 0.0) -> str:
        """The estimate line: total, its parts and range, the work it assumes, and what a budget
        would run."""
        low, high = self.search_range()
        search = self.search_seconds()
        confirmation = self.rerun_seconds() + self.confirmation_seconds()
        references = self.reference_seconds()
        unit = "a fold-epoch" if self.shape.folds else "an epoch"
        # Without early stopping every trial runs its whole budget: there is no range to give.
        spread = (
            f" ({words_of_duration(low)} if the scheduler stops as many trials as plain ASHA, "
            f"{words_of_duration(high)} if none)"
            if self.shape.rung_units
            else ""
        )
        line = (
            f"expected time {words_of_duration(search + confirmation + references)}: the trials "
            f"{words_of_duration(search)}{spread} - {self.shape.trials} "
            f"trials x {self.shape.units} epochs at {self.epoch_seconds:.1f} s {unit}, "
            f"{self.shape.concurrency} at a time; then the re-run and confirmation "
            f"{words_of_duration(confirmation)}"
        )
        if references:
            line += (
                f", and the references {words_of_duration(references)} ("
                f"{self.shape.reference_runs} runs of {self.shape.reference_epochs} epochs, once "
                "for this data, outside any time budget)"
            )
        if time_budget > 0:
            fits = self.trials_within(max(0.0, time_budget - confirmation))
            line += (
                f"; the time budget {words_of_duration(time_budget)} runs about "
                f"{min(fits, self.shape.trials)} of them"
            )
        else:
            line += (
                f"; --time-budget {_minutes(search + confirmation)} would run all of them, "
                f"--time-budget {_minutes((search + confirmation) / 2)} about "
                f"{self.trials_within(max(0.0, (search + confirmation) / 2 - confirmation))}"
            )
        return line


@dataclass(frozen=True)
class TimeBudget:
    """A search's wall-time limit: `seconds` in all, of which `spent` went to earlier invocations'
    trials (a resumed search keeps what is left). Times are seconds since this invocation's trials
    started."""

    seconds: float
    spent: float = 0.0

    def search_deadline(self, forecast: Forecast) -> float:
        """When the last trial should end: what is left, less the expected re-run and
        confirmation."""
        # The references are not the search's: trained once per data file, outside its budget.
        return (
            self.seconds - self.spent - forecast.rerun_seconds() - forecast.confirmation_seconds()
        )

    def decide(self, elapsed: float, forecast: Forecast | None, started: int, slots: int) -> str:
        """What to do with a new trial: "start" it when it is expected to end by the search's
        deadline, "done" when none will any more; before any epoch was measured the first wave
        starts (one trial per slot) and the rest "wait"."""
        if elapsed >= self.seconds - self.spent:
            return "done"
        if forecast is None:
            return "start" if started < slots else "wait"
        return (
            "start"
            if elapsed + forecast.trial_seconds() <= self.search_deadline(forecast)
            else "done"
        )


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))}m"
