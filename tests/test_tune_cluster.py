"""A real 2-node Ray cluster on this machine: one search's trials run on both nodes, and survive losing one.

The cluster is two `ray start` nodes of 1 CPU each under a private temp dir (the
head with --port, the worker joining it); searches join it with --address. Ray
2.60 swaps 127.0.0.1 for the machine's own address, but both nodes run here.
Clean-up kills every process of that temp dir by pid: plain `ray stop` would
kill every Ray on the machine, other users' included.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from tune_helpers import (
    free_port,
    ray_processes,
    remove_tree,
    reported,
    run_search,
    search_args,
    search_env,
    short_tmpdir,
    start_search,
    stop_ray,
    trial_dirs,
    wait_for,
    write_data,
    write_space,
)

pytestmark = pytest.mark.slow
RAY = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())"]


def _raylet(temp_dir: Path, head: bool) -> tuple[psutil.Process, str]:
    for process in ray_processes(temp_dir):
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if process.name() == "raylet" and ("--head" in command) == head:
            node_id = next(
                part.split("=", 1)[1] for part in command if part.startswith("--node_id=")
            )
            return process, node_id
    raise AssertionError(f"no {'head' if head else 'worker'} raylet under {temp_dir}")


@pytest.fixture(scope="module")
def cluster() -> dict:
    temp_dir = short_tmpdir("jtc-")
    port = free_port()
    # Ray 2.60 turns on token authentication for a cluster it starts; every node and driver must agree.
    env = {**search_env(temp_dir), "RAY_AUTH_MODE": "token"}
    # Trial workers inherit the environment of their node's raylet, not the driver's: the nodes
    # read their faults from a file that each test writes.
    faults = temp_dir / "faults.json"
    node_env = {**env, "JOYFUL_TUNE_FAULT": f"@{faults}"}
    address = f"127.0.0.1:{port}"
    try:
        for command in (
            [
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--temp-dir={temp_dir}/ray",
                "--node-ip-address=127.0.0.1",
                "--disable-usage-stats",
                f"--dashboard-agent-listen-port={free_port()}",
            ],
            [
                "start",
                f"--address={address}",
                "--num-cpus=1",
                "--node-ip-address=127.0.0.1",
                f"--dashboard-agent-listen-port={free_port()}",
            ],
        ):
            done = subprocess.run(
                [*RAY, *command], env=node_env, capture_output=True, text=True, timeout=180
            )
            assert done.returncode == 0, (
                f"ray {' '.join(command)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
        (_, head_id), (worker, worker_id) = (
            _raylet(temp_dir, head=True),
            _raylet(temp_dir, head=False),
        )
        yield {
            "address": address,
            "env": env,
            "head": head_id,
            "worker": worker_id,
            "worker_raylet": worker,
            "faults": faults,
        }
    finally:
        stop_ray(temp_dir)
        remove_tree(temp_dir)


def _nodes_of(folder: Path) -> list[str]:
    return [line["node_id"] for line in reported(folder)]


def _statuses(results: Path) -> list[str]:
    with (results / "trials" / "synthetic.csv").open() as handle:
        return [row["status"] for row in csv.DictReader(handle)]


@pytest.mark.timeout(400)
def test_trials_of_one_search_run_on_both_nodes(cluster: dict, tmp_path: Path) -> None:
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(tmp_path / "space.yaml", num_samples=4, max_epochs=3, max_concurrent=2)
    # Trial 1 holds its node a few seconds, so the next trial must be placed on the other one.
    cluster["faults"].write_text(
        json.dumps({"kind": "sleep", "epoch": 1, "seconds": 5, "trial": 1})
    )
    done = run_search(
        search_args(data, space, tmp_path, "spread", "--no-rerun", "--address", cluster["address"]),
        cluster["env"],
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert f"Ray: {cluster['address']} with 2 node(s)" in done.stdout
    trials = trial_dirs(tmp_path / "ray" / "spread" / "synthetic")
    used = {node for folder in trials for node in _nodes_of(folder)}
    assert used == {cluster["head"], cluster["worker"]}
    assert _statuses(tmp_path / "results") == ["TERMINATED"] * 4


@pytest.mark.timeout(500)
def test_trials_survive_losing_a_worker_node(cluster: dict, tmp_path: Path) -> None:
    data = write_data(tmp_path / "tiny.pkl")
    epochs = 4
    space = write_space(tmp_path / "space.yaml", num_samples=4, max_epochs=epochs, max_concurrent=2)
    # The first two trials (one per node) stall once after epoch 2: the worker dies under one of them.
    cluster["faults"].write_text(
        json.dumps(
            [
                {
                    "kind": "sleep",
                    "epoch": 2,
                    "seconds": 15,
                    "trial": n,
                    "state_dir": str(tmp_path / f"slept-{n}"),
                }
                for n in (1, 2)
            ]
        )
    )
    experiment = tmp_path / "ray" / "node-loss" / "synthetic"
    log = tmp_path / "search.log"
    search = start_search(
        search_args(
            data,
            space,
            tmp_path,
            "node-loss",
            "--no-rerun",
            "--max-failures",
            "3",
            "--address",
            cluster["address"],
        ),
        cluster["env"],
        log,
    )
    try:

        def stalled_on_worker() -> Path | None:
            if not experiment.exists():
                return None
            for folder in trial_dirs(experiment):
                if _nodes_of(folder) == [cluster["worker"]] * 2:
                    return folder
            return None

        victim = wait_for(
            stalled_on_worker, 240, "a trial to stall on the worker node", search, log
        )
        cluster["worker_raylet"].kill()  # the node dies: its raylet, then its workers
        status = search.wait(timeout=400)
    finally:
        if search.poll() is None:
            search.kill()
    output = log.read_text()
    assert status == 0, output[-5000:]
    assert _statuses(tmp_path / "results") == ["TERMINATED"] * 4
    # The victim went on from its epoch-2 checkpoint on the surviving node.
    assert [line["epoch"] for line in reported(victim)] == list(range(1, epochs + 1))
    assert _nodes_of(victim) == [cluster["worker"]] * 2 + [cluster["head"]] * (epochs - 2)
    assert (tmp_path / "results" / "best_configs" / "synthetic.json").exists()


@pytest.mark.timeout(120)
def test_a_second_private_ray_on_the_machine_is_refused_with_the_supported_way(
    cluster: dict, tmp_path: Path
) -> None:
    """With a Ray instance running (the cluster's), a search that would start its own local Ray is
    refused before anything is written, naming the way to share one cluster."""
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(tmp_path / "space.yaml", num_samples=2, max_epochs=1)
    done = run_search(search_args(data, space, tmp_path, "second", "--no-rerun"), cluster["env"])
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    [line] = [x for x in done.stderr.splitlines() if x.strip()]
    assert line.startswith("tune/search.py: error: another Ray instance runs on this machine")
    assert "`ray start --head`" in line and "--address auto" in line
    assert not (tmp_path / "results" / "best_configs").exists()
    assert not (tmp_path / "ray" / "second").exists()
