"""What a search records in its Optuna study beyond the trials, so that optuna-dashboard, `optuna
best-trial` and the report tell one story.

The trials themselves (states, curves, `epochs_run` or `folds_run`, `stop_reason`, `ray_trial_id`)
are written live by the searcher (tune/runner/searcher.py). Optuna refuses to change a
finished trial, so what is decided after the trials lives in the study's attributes. `optuna
studies` prints every *user* attribute in its table, so those stay short: the fingerprints a warm
start matches (`dataset`, `data_sha256`, `space_fingerprint`, `space_file`), `sampler_seed`,
`started_at` (the search's creation, which no --resume changes), and once it has published
`finished_at` (which tells `--resume` there is nothing left to do) and `summary` (one line). The
rest are *system* attributes named `joyful:<key>` (Optuna's storage keeps them; the dashboard and
`optuna studies` do not list them):

* at creation: `budget`, `strategy` and `resampling` (what `--resume` continues with),
  `ranking_rule`;
* at every invocation of `tune/search.py` on it: one entry of `invocations` (`start_invocation`),
  its end and the seconds its trials took added when it ends (`end_invocation`);
* the winner's re-run once done (`winner_rerun`, so a resumed publish stage does not train it
  again);
* how the trials were proposed (`sampling`) and how the trial phase ended (`ending`), when it ends;
* after the search: `search_winner` and, when Optuna's own `best_trial` (COMPLETE trials only) is
  another trial, `optuna_best_trial_differs` saying why;
* after confirmation and publishing: `confirmation` and `published`.

With optuna-dashboard installed the same story is the study's note (Markdown on the dashboard's
study page)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from tune.common import utc_now
from tune.records import (
    RANKING_RULE,
    Invocation,
    Rerun,
    TestScores,
)
from tune.space import Budget, Resampling, Strategy

__all__ = [
    "creation_attrs",
    "creation_details",
    "details",
    "end_invocation",
    "finished",
    "recall_rerun",
    "remember_rerun",
    "search_times",
    "set_details",
    "start_invocation",
    "stored_budget",
    "stored_resampling",
    "stored_strategy",
    "trial_times",
]

PREFIX = "joyful:"


def details(study: Any) -> dict[str, Any]:
    """The study's system attributes this module writes (`joyful:<key>`), by key."""
    stored = study._storage.get_study_system_attrs(
        study._study_id
    )  # Optuna keeps no public reader for them
    return {key[len(PREFIX) :]: value for key, value in stored.items() if key.startswith(PREFIX)}


def set_details(study: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        study._storage.set_study_system_attr(study._study_id, PREFIX + key, value)


def creation_attrs(fingerprints: dict[str, str], sampler_seed: int) -> dict[str, Any]:
    """The (short) user attributes a search's study gets when it is created."""
    return {**fingerprints, "sampler_seed": sampler_seed, "started_at": utc_now()}


def creation_details(
    budget: Budget, strategy: Strategy, resampling: Resampling, resampling_reason: str = ""
) -> dict[str, Any]:
    """The system attributes a search's study gets when it is created."""
    return {
        "budget": dataclasses.asdict(budget),
        "strategy": dataclasses.asdict(strategy),
        "resampling": dataclasses.asdict(resampling),
        "resampling_reason": resampling_reason,
        "ranking_rule": RANKING_RULE,
    }


def stored_strategy(study: Any) -> Strategy | None:
    """The strategy a study was created with (None for a study written before it was recorded)."""
    stored = details(study).get("strategy")
    return Strategy(**stored) if isinstance(stored, dict) else None


def stored_resampling(study: Any) -> tuple[Resampling, str] | None:
    """The resampling a study was created with (what `--resume` continues with) and why it was
    chosen then."""
    stored = details(study)
    if not isinstance(stored.get("resampling"), dict):
        return None
    return Resampling(**stored["resampling"]), str(stored.get("resampling_reason") or "")


def start_invocation(study: Any, resumed: bool) -> int:
    """Record that `tune/search.py` starts (or resumes) the search of `study` now; returns the
    entry's index."""
    invocations = list(details(study).get("invocations") or [])
    invocations.append(Invocation(started_at=utc_now(), resumed=resumed).to_dict())
    set_details(study, {"invocations": invocations})
    return len(invocations) - 1


def end_invocation(study: Any, index: int, seconds: float) -> None:
    """Record that invocation `index` of the search of `study` ended now, its trials having taken
    `seconds`."""
    invocations = list(details(study).get("invocations") or [])
    invocations[index] = {**invocations[index], "ended_at": utc_now(), "seconds": round(seconds, 1)}
    set_details(study, {"invocations": invocations})


def search_times(study: Any) -> dict[str, Any]:
    """When search `study` started (its creation) and ended (its last trial), the seconds its
    invocations' trials took, and the invocations: what a study record holds. An invocation killed
    before it could record its end counts until the last trial that ended within it."""
    trials = study.get_trials(deepcopy=False)
    ends = sorted(t.datetime_complete for t in trials if t.datetime_complete is not None)
    invocations = [Invocation.from_dict(i) for i in details(study).get("invocations") or []]
    seconds = 0.0
    for index, invocation in enumerate(invocations):
        if invocation.seconds is not None:
            seconds += invocation.seconds
            continue
        start = _time(invocation.started_at)
        until = _time(invocations[index + 1].started_at) if index + 1 < len(invocations) else None
        within = [end for end in ends if end >= start and (until is None or end < until)]
        if within:
            seconds += (within[-1] - start).total_seconds()
    started = study.user_attrs.get("started_at") or (
        invocations[0].started_at if invocations else ""
    )
    return {
        "started_at": started,
        "ended_at": _iso(ends[-1]) if ends else "",
        "search_seconds": round(seconds, 1),
        "invocations": invocations,
    }


def trial_times(study: Any) -> dict[str, tuple[str | None, str | None]]:
    """Ray trial id -> (when the searcher sampled it, when it ended), from the Optuna trials
    (UTC)."""
    return {
        t.user_attrs["ray_trial_id"]: (_iso(t.datetime_start), _iso(t.datetime_complete))
        for t in study.get_trials(deepcopy=False)
        if "ray_trial_id" in t.user_attrs
    }


def _time(text: str) -> datetime:
    """An ISO time as Optuna's trial times are: naive local time (Optuna stores
    `datetime.now()`)."""
    return datetime.fromisoformat(text).astimezone().replace(tzinfo=None)


def _iso(moment: datetime | None) -> str | None:
    """Optuna's naive local time as an ISO 8601 UTC string, like every other time in the records."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def stored_budget(study: Any) -> Budget | None:
    """The budget a study was created with (None for a study written before it was recorded)."""
    stored = details(study).get("budget")
    return Budget(**stored) if isinstance(stored, dict) else None


def remember_rerun(study: Any, trial_id: str, rerun: Rerun, test: TestScores | None) -> None:
    """Keep the winner's re-run in the search's study, so that a resumed publish stage does not
    train it again."""
    set_details(
        study,
        {
            "winner_rerun": {
                "trial_id": trial_id,
                "rerun": rerun.to_dict(),
                "test": test.to_dict() if test else None,
            }
        },
    )


def recall_rerun(study: Any, trial_id: str) -> tuple[Rerun, TestScores | None] | None:
    """The re-run `remember_rerun` kept in the search's study for winner `trial_id`, or None."""
    kept = details(study).get("winner_rerun")
    if not isinstance(kept, dict) or kept.get("trial_id") != trial_id:
        return None
    return Rerun.from_dict(kept["rerun"]), TestScores.from_dict(kept["test"]) if kept.get(
        "test"
    ) else None


def finished(study: Any) -> str | None:
    """When the search of `study` finished publishing (None while it has not)."""
    return study.user_attrs.get("finished_at")
