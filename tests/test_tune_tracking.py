"""Experiment tracking (a real local MLflow store, W&B offline runs, Ray's TensorBoard event files) and
start-up failures that explain themselves (a real unreachable address)."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from joyful.errors import UserError
from tests.tune_helpers import (
    REPO,
    remove_tree,
    search_args,
    search_env,
    short_tmpdir,
    stop_ray,
    write_data,
    write_space,
)

pytestmark = pytest.mark.slow


def _events(path: Path) -> list:
    """The Event records of a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    from tensorboardX.proto.event_pb2 import Event

    records, raw, offset = [], path.read_bytes(), 0
    while offset + 12 <= len(raw):
        (length,) = struct.unpack("<Q", raw[offset : offset + 8])
        records.append(Event.FromString(raw[offset + 12 : offset + 12 + length]))
        offset += 12 + length + 4
    return records


@pytest.fixture(scope="module")
def tracked_search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("tracked")
    data, space = (
        write_data(root / "tiny.pkl"),
        write_space(root / "space.yaml", num_samples=2, max_epochs=3),
    )
    args = search_args(
        data,
        space,
        root,
        "tracked",
        "--mlflow",
        "--wandb-project",
        "joyful-test",
        "--wandb-mode",
        "offline",
        "--no-rerun",
    )
    ray_tmp = short_tmpdir()  # Ray's socket paths must stay below 107 bytes
    env = {**search_env(ray_tmp), "WANDB_SILENT": "true"}
    try:
        done = subprocess.run(
            [sys.executable, "tune/search.py", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
        )
    finally:
        stop_ray(ray_tmp)
        remove_tree(ray_tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    # --quiet is quiet for the trackers too: MLflow's INFO lines (its database set-up) stay out of the terminal.
    assert " INFO mlflow" not in done.stdout + done.stderr
    return {
        "root": root,
        "results": root / "results",
        "experiment": root / "ray" / "tracked" / "synthetic",
    }


@pytest.mark.timeout(600)
def test_mlflow_holds_a_parent_run_per_search_and_a_child_run_per_trial(
    tracked_search: dict,
) -> None:
    from mlflow.tracking import MlflowClient

    from tune.records.store import ResultStore

    client = MlflowClient(
        tracking_uri=f"sqlite:///{(tracked_search['results'] / 'mlflow.db').resolve()}"
    )
    experiment = client.get_experiment_by_name("joyful-tune-synthetic")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags.get("kind") == "search"]
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    assert len(runs) == 3 and len(children) == 2 and parent.info.run_name == "tracked"
    assert parent.info.status == "FINISHED"
    # The fixed settings: with a child's searched ones, every setting of its trial.
    assert (
        parent.data.params["fixed.fusion_hidden"] == "32"
        and parent.data.params["budget.max_epochs"] == "3"
    )
    record = ResultStore(tracked_search["results"]).read_study("synthetic")
    by_id = {t.trial_id: t for t in record.trials}
    for child in children:
        tags, params = child.data.tags, child.data.params
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        trial = by_id[tags["ray_trial_id"]]
        assert tags["optuna_number"] == str(trial.optuna_number)
        assert (tags["state"], tags["stop_reason"], tags["epochs_run"]) == (
            "COMPLETE",
            trial.stop_reason,
            "3",
        )
        assert (
            params["encoder_loss_weight"] == str(trial.params["encoder_loss_weight"])
            and params["seed"] == "24"
        )
        history = client.get_metric_history(child.info.run_id, "dev_weighted_f1")
        assert sorted(m.step for m in history) == [1, 2, 3]  # one point per epoch
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == [
            p["dev_weighted_f1"] for p in trial.curve
        ]
        bookkeeping = {
            "pid",
            "timestamp",
            "time_this_iter_s",
            "training_iteration",
            "done",
            "iterations_since_restore",
        }
        assert not bookkeeping & set(child.data.metrics)
        assert "train_loss/total" in child.data.metrics
    winner = [c for c in children if c.data.tags.get("winner") == "true"]
    assert (
        len(winner) == 1 and parent.data.tags["winner_trial"] == winner[0].data.tags["ray_trial_id"]
    )
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"synthetic.json", "synthetic.md"} <= artifacts
    # The local store keeps its artifacts beside it, not in the working folder's ./mlruns.
    assert (tracked_search["results"] / "mlflow-artifacts").is_dir() and not (
        REPO / "mlruns"
    ).exists()


@pytest.mark.timeout(600)
def test_mlflow_ui_serves_the_store(tracked_search: dict) -> None:
    """`mlflow ui`, as the README documents it, from the installed `tracking` extra."""
    import json
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow = Path(sys.executable).with_name("mlflow")
    store = f"sqlite:///{(tracked_search['results'] / 'mlflow.db').resolve()}"
    server = subprocess.Popen(
        [
            str(mlflow),
            "ui",
            "--backend-store-uri",
            store,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, answer = time.monotonic() + 120, None
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=joyful-tune-synthetic"
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        assert answer is not None, (
            f"mlflow ui did not answer: {server.stderr.read() if server.poll() else ''}"
        )
        assert answer["experiment"]["name"] == "joyful-tune-synthetic"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


@pytest.mark.timeout(600)
def test_wandb_offline_runs_are_written(tracked_search: dict) -> None:
    runs = sorted((tracked_search["results"] / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    assert all(list(run.glob("*.wandb")) for run in runs)


@pytest.mark.timeout(600)
def test_tensorboard_event_files_carry_the_per_epoch_metrics(tracked_search: dict) -> None:
    trials = [
        p
        for p in tracked_search["experiment"].iterdir()
        if p.is_dir() and p.name.startswith("train_trial")
    ]
    assert len(trials) == 2
    for trial in trials:
        files = list(trial.glob("events.out.tfevents.*"))
        assert files, f"no TensorBoard event file in {trial.name}"
        points = {}
        for event in (e for f in files for e in _events(f)):
            for value in event.summary.value:
                if value.tag.endswith("dev_weighted_f1") and "best" not in value.tag:
                    points[event.step] = value.simple_value
        assert sorted(points) == [1, 2, 3], points


@pytest.mark.timeout(120)
def test_an_unreachable_address_fails_fast_with_one_line(tmp_path: Path) -> None:
    data, space = write_data(tmp_path / "tiny.pkl"), write_space(tmp_path / "space.yaml")
    root = (
        tmp_path / "fresh"
    )  # neither storage nor results exist yet: a refused search must not create them
    args = search_args(data, space, root, "unreachable", "--address", "127.0.0.1:1")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "tune/search.py", *args],
        cwd=REPO,
        env=search_env(tmp_path / "rt"),
        capture_output=True,
        text=True,
        timeout=100,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--address 127.0.0.1:1: no Ray cluster answers there" in lines[0]
    assert "ray start --head" in lines[0] and elapsed < 45
    assert not root.exists(), sorted(str(p) for p in root.rglob("*"))


def test_a_local_ray_that_does_not_start_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's 30 s raylet wait cannot be triggered on purpose; its exception is raised in its place."""
    import ray

    from tune.runner.cluster import start_ray

    def overloaded(*args, **kwargs):
        raise Exception(
            "The current node timed out during startup. This could happen because some of the "
            "raylet failed to startup or the GCS has become overloaded.\nmore detail"
        )

    monkeypatch.setattr(ray, "init", overloaded)
    with pytest.raises(UserError) as caught:
        start_ray(None)
    message = str(caught.value)
    assert (
        "\n" not in message
        and "the local Ray did not start (The current node timed out during startup" in message
    )


def test_wandb_mode_without_a_project_is_refused(tmp_path: Path) -> None:
    data, space = write_data(tmp_path / "tiny.pkl"), write_space(tmp_path / "space.yaml")
    args = search_args(data, space, tmp_path / "r", "x", "--wandb-mode", "offline")
    done = subprocess.run(
        [sys.executable, "tune/search.py", *args],
        cwd=REPO,
        env=search_env(tmp_path / "rt"),
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 2 and "--wandb-mode goes with --wandb-project" in done.stderr
    assert not (tmp_path / "r").exists()
