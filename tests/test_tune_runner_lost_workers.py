"""A worker lost from outside (tune/runner/lost_workers.py): recognised in the errors Ray raises, and a search that
cannot replace it stops with one line, the resume command and exit status 3. The real memory-monitor kill, retried
and survived, is in tests/test_reliability_faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from tune_helpers import short_tmpdir, stop_ray, write_data, write_space

from tune.runner.lost_workers import lost_worker_cause


def _as_ray_raises_it(error: BaseException) -> RuntimeError:
    """The error Ray 2.60's actor manager raises out of Tuner.fit for an error that is neither an actor's nor a
    task's (ray/air/execution/_internal/actor_manager.py)."""
    try:
        try:
            raise error
        except BaseException as cause:
            raise RuntimeError(f"Caught unexpected exception: {cause}") from cause
    except RuntimeError as raised:
        return raised


def test_the_cause_of_a_lost_worker_is_one_line() -> None:
    from ray.exceptions import NodeDiedError, OutOfMemoryError

    oom = OutOfMemoryError(
        "1 worker(s) were killed due to the node running low on memory. Memory on the node was "
        "3.80GB used / 23.54GB limit\nOOM kill reason: ...\nTop 10 memory users: ..."
    )
    assert lost_worker_cause(_as_ray_raises_it(oom)) == (
        "1 worker(s) were killed due to the node running low on memory. Memory on the node was 3.80GB used / "
        "23.54GB limit"
    )
    assert (
        lost_worker_cause(_as_ray_raises_it(NodeDiedError("node 10.0.0.2 died")))
        == "node 10.0.0.2 died"
    )
    assert lost_worker_cause(ValueError("a bug of ours")) is None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_lost_worker_that_escapes_stops_the_search_with_the_resume_command(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """Were Ray to raise it anyway (another Ray version), the search says so in one line and exits 3."""
    from ray.exceptions import OutOfMemoryError

    import tune.search

    def lost(*args: object, **kwargs: object) -> int:
        raise _as_ray_raises_it(
            OutOfMemoryError(
                "1 worker(s) were killed due to the node running low on memory\n(180 more lines)"
            )
        )

    monkeypatch.setattr(tune.search, "run_dataset", lost)
    monkeypatch.setenv(
        "JOYFUL_TUNE_DRIVER", "1"
    )  # the search's own process, where the monkeypatch holds
    ray_tmp = short_tmpdir()
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    data, space = write_data(tmp_path / "tiny.pkl"), write_space(tmp_path / "space.yaml")
    try:
        code = tune.search.main(
            [
                "--dataset",
                "synthetic",
                "--data",
                str(data),
                "--space",
                str(space),
                "--results-dir",
                str(tmp_path / "results"),
                "--storage-path",
                str(tmp_path / "ray"),
                "--name",
                "lost",
                "--quiet",
            ]
        )
    finally:
        stop_ray(ray_tmp)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 3
    assert line.startswith(
        "tune/search.py: error: a trial worker was lost and could not be replaced (1 worker(s) were "
        "killed due to the node running low on memory); the finished trials are saved - resume "
        "with: "
    )
    assert "--name lost" in line and line.endswith("--resume")
