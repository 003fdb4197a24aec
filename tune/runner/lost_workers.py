"""A trial worker lost from outside (Ray's memory monitor, a dead node) is a trial failure, not a
crash.

Ray Tune retries a trial from its last checkpoint when its actor dies (`RayActorError`, e.g.
SIGKILL). But when Ray's memory monitor kills a worker the actor's task fails with
`OutOfMemoryError`, and a lost node or crashed worker with `NodeDiedError` / `WorkerCrashedError`;
none of them is an actor or task error, so Ray 2.60's actor manager raises ``RuntimeError("Caught
unexpected exception ...")`` out of ``Tuner.fit()`` and the whole search ends in a traceback
(reproduced by `tests/test_reliability_faults.py::
test_a_worker_killed_by_the_memory_monitor_is_retried_and_the_search_finishes`). The worker is dead
in every one of these cases, so `treat_lost_workers_as_trial_failures` hands the actor manager an
actor error in their place: the trial is retried within ``--max-failures`` like any other dead
actor.

`lost_worker_cause` recognises the error when it still escapes (a Ray version whose internals
differ), so the CLI can stop with one line and the resume command instead of a traceback.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lost_worker_cause", "treat_lost_workers_as_trial_failures"]

_PATCHED = "_joyful_lost_workers_are_actor_errors"


def _lost_worker_errors() -> tuple[type[BaseException], ...]:
    from ray.exceptions import NodeDiedError, OutOfMemoryError, WorkerCrashedError

    return OutOfMemoryError, NodeDiedError, WorkerCrashedError


def _first_line(exception: BaseException) -> str:
    text = str(exception).strip()
    return text.splitlines()[0] if text else type(exception).__name__


def treat_lost_workers_as_trial_failures() -> None:
    """Make the driver's actor manager treat a worker killed from outside as a dead actor
    (idempotent)."""
    from ray.air.execution._internal.actor_manager import RayActorManager
    from ray.exceptions import RayActorError

    original = RayActorManager._actor_task_failed
    if getattr(original, _PATCHED, False):
        return
    lost = _lost_worker_errors()

    def actor_task_failed(self: Any, tracked_actor_task: Any, exception: Exception) -> None:
        if isinstance(exception, lost):
            dead = RayActorError(error_msg=f"trial worker lost: {_first_line(exception)}")
            dead.__cause__ = exception
            exception = dead
        return original(self, tracked_actor_task, exception)

    setattr(actor_task_failed, _PATCHED, True)
    RayActorManager._actor_task_failed = actor_task_failed


def lost_worker_cause(exception: BaseException) -> str | None:
    """One line naming why a worker was lost, when `exception` (or what caused it) says one was;
    else None."""
    lost = _lost_worker_errors()
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, lost):
            return _first_line(current)
        current = current.__cause__ or current.__context__
    text = str(exception)
    if "running low on memory" in text or "Caught unexpected exception" in text:
        return _first_line(exception).removeprefix("Caught unexpected exception: ")
    return None
