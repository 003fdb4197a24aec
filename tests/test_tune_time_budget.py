"""A real search with a time budget far below what its trials would take: it stops starting trials
when the next would not end in time, ranks, confirms and publishes what ran, exits 0, and its
report says why it ended."""

from __future__ import annotations

import pickle
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from joyful.data.synthetic import generate
from joyful.io import atomic_write
from tune.records.store import ResultStore

REPO = Path(__file__).resolve().parents[1]
TINY_DIMS = {"a": 8, "t": 16, "v": 12}
BUDGET_S = 45


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_search_far_over_its_time_budget_ends_on_time_and_publishes(tmp_path: Path) -> None:
    data = tmp_path / "tiny.pkl"
    atomic_write(
        data, lambda out: pickle.dump(generate(0, scale=0.1, dims=TINY_DIMS), out), binary=True
    )
    space = yaml.safe_load((REPO / "search_spaces" / "synthetic.yaml").read_text())
    space["resampling"] = "holdout"
    # 40 trials of 10 epochs, 2 at a time: several minutes of trials against a 45 s budget.
    space["budget"] = {
        "num_samples": 40,
        "max_epochs": 10,
        "grace_period": 10,
        "reduction_factor": 2,
        "cpus_per_trial": 1,
        "gpus_per_trial": 0,
        "max_concurrent": 2,
    }
    space["references"] = {"seeds": 2}
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(space))
    results = tmp_path / "results"
    command = [
        sys.executable,
        "tune/search.py",
        "--dataset",
        "synthetic",
        "--data",
        str(data),
        "--space",
        str(space_file),
        "--results-dir",
        str(results),
        "--storage-path",
        str(tmp_path / "ray"),
        "--name",
        "budgeted",
        "--time-budget",
        f"{BUDGET_S}s",
        "--confirm-top",
        "1",
        "--confirm-seeds",
        "2",
        "--quiet",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-12000:]
    store = ResultStore(results)
    record = store.read_study("synthetic")
    ending = record.ending
    assert ending is not None and ending.kind == "time budget", ending
    assert ending.trials_started < 40 and ending.trials_not_started == 40 - ending.trials_started
    # On time: the trials and the confirmation within the budget, give or take one trial's length
    # (a trial started in time may end past it; the estimate behind the decision is a measurement).
    trial_seconds = max(
        (datetime.fromisoformat(t.ended_at) - datetime.fromisoformat(t.started_at)).total_seconds()
        for t in record.trials
        if t.started_at and t.ended_at
    )
    best = store.read_best("synthetic")
    assert best is not None and best.confirmation is not None
    spent = record.search_seconds + best.confirmation.wall_seconds
    assert spent <= BUDGET_S + trial_seconds + 10, (spent, trial_seconds)
    report = (results / "reports" / "synthetic.md").read_text()
    assert "Ended on its time budget" in report
    assert f"{ending.trials_not_started} left out" in report
    assert "time budget" in done.stdout + done.stderr
