"""Faults a search survives, each injected through JOYFUL_TUNE_FAULT (tune/runner/faults.py) into a real search.

Every search here runs `tune/search.py` as a subprocess with a private Ray (RAY_TMPDIR
under /tmp), tiny data and a tiny model; Ray workers inherit the fault from the
driver's environment. Trials are named by the number in their Ray folder name
(1 = the first trial created, the baseline).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml
from tune_helpers import (
    REPO,
    files_under,
    kill_processes,
    process_tree,
    ray_processes,
    remove_tree,
    reported,
    run_search,
    search_args,
    search_env,
    short_tmpdir,
    space_document,
    start_search,
    stop_ray,
    trial_dirs,
    trial_params,
    wait_for,
    write_data,
    write_space,
)

pytestmark = pytest.mark.slow

EPOCHS = 4


@pytest.fixture
def ray_tmp() -> Path:
    """A private Ray temp dir; whatever Ray left running under it is killed afterwards (by pid)."""
    folder = short_tmpdir()
    yield folder
    stop_ray(folder)
    remove_tree(folder)


def by_number(experiment: Path) -> dict[int, Path]:
    """Trial folders by trial number: Ray names them <trainable>_<trial id>_<number>_<params>_<time>."""
    return {int(p.name.split("_")[3]): p for p in trial_dirs(experiment)}


def trial_id(folder: Path) -> str:
    return folder.name.split("_")[2]


def test_trial_number_reads_ray_folder_names() -> None:
    from tune.runner.trial_names import trial_number

    name = "train_trial_131b97d9_18_drop_rate=0.2841,fusion=hierarchical_2026-11-29_12-08-02"
    assert trial_number(name, "131b97d9") == 18
    assert trial_number(name, "deadbeef") is None  # another trial's id
    assert trial_number("train_trial_131b97d9_x_params", "131b97d9") is None


def epochs(folder: Path) -> list[int]:
    return [line["epoch"] for line in reported(folder)]


def study(results: Path) -> dict:
    """The search's trials: Optuna's, read back from its journal with `optuna.load_study`, and Ray's."""
    from tune.records.store import ResultStore
    from tune.study.storage import load_study

    store = ResultStore(results)
    record = store.read_study("synthetic")
    optuna_study = load_study(store.journal_of(record), record.optuna_study)
    return {
        "optuna_trials": [
            {"number": t.number, "state": t.state.name, "user_attrs": t.user_attrs}
            for t in optuna_study.get_trials()
        ],
        "ray_trials": [t.to_dict() for t in record.trials],
    }


def rows(results: Path) -> dict[str, dict]:
    import csv

    with (results / "trials" / "synthetic.csv").open() as handle:
        return {row["trial_id"]: row for row in csv.DictReader(handle)}


def assert_clean_study(results: Path, num_samples: int) -> None:
    """Optuna knows every trial's outcome (none left RUNNING); every curve is epochs 1..n without gaps or repeats."""
    exported = study(results)
    assert len(exported["optuna_trials"]) == num_samples
    assert not [t for t in exported["optuna_trials"] if t["state"] in ("RUNNING", "WAITING")]
    for trial in exported["ray_trials"]:
        points = [p["epoch"] for p in trial["curve"]]
        assert points == list(range(1, len(points) + 1)), trial


# --- a failing trial, an exhausted one and a NaN one, all in one search --------------------------------


@pytest.fixture(scope="module")
def faulty_search(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("faulty")
    data = write_data(root / "tiny.pkl")
    space = write_space(root / "space.yaml", num_samples=4, max_epochs=EPOCHS, max_concurrent=2)
    faults = [
        {
            "kind": "raise",
            "epoch": 2,
            "times": 1,
            "trial": 1,
            "state_dir": str(root / "raised-1"),
        },  # recovers
        {
            "kind": "raise",
            "epoch": 2,
            "times": 100,
            "trial": 2,
            "state_dir": str(root / "raised-2"),
        },  # never does
        {"kind": "nan", "epoch": 2, "trial": 3},
    ]
    ray_tmp = short_tmpdir()
    try:
        done = run_search(
            search_args(data, space, root, "faults", "--max-failures", "2", "--no-rerun"),
            search_env(ray_tmp, faults),
        )
    finally:
        stop_ray(ray_tmp)
        remove_tree(ray_tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    trials = by_number(root / "ray" / "faults" / "synthetic")
    return {
        "root": root,
        "done": done,
        "results": root / "results",
        "trials": trials,
        "ids": {n: trial_id(folder) for n, folder in trials.items()},
    }


@pytest.mark.timeout(400)
def test_search_completes_despite_failing_trials(faulty_search: dict) -> None:
    results = faulty_search["results"]
    assert len(faulty_search["trials"]) == 4
    assert len(rows(results)) == 4
    best = json.loads((results / "best_configs" / "synthetic.json").read_text())
    assert best["single_trial_best"]["trial_id"] in (
        faulty_search["ids"][1],
        faulty_search["ids"][4],
    )
    assert best["study"]["trials"] == {
        "completed": 2,
        "early_stopped": 0,
        "errored": 1,
        "non_finite": 1,
    }
    assert_clean_study(results, 4)


@pytest.mark.timeout(400)
def test_failed_trial_is_retried_from_its_last_checkpoint(faulty_search: dict) -> None:
    trial = faulty_search["trials"][1]
    assert (
        len(list((faulty_search["root"] / "raised-1").iterdir())) == 1
    )  # it failed once, after epoch 2
    row = rows(faulty_search["results"])[faulty_search["ids"][1]]
    assert (row["status"], row["epochs_run"], row["error"]) == ("TERMINATED", str(EPOCHS), "")
    # Ray logged each epoch once: the retry went on from the epoch-2 checkpoint (a restart from
    # scratch would have logged epochs 1 and 2 twice).
    assert epochs(trial) == [1, 2, 3, 4]
    [exported] = [
        t
        for t in study(faulty_search["results"])["ray_trials"]
        if t["trial_id"] == faulty_search["ids"][1]
    ]
    assert [p["epoch"] for p in exported["curve"]] == [1, 2, 3, 4]
    # The retry is said in the progress lines, also under --quiet.
    assert (
        f"trial {faulty_search['ids'][1]} failed after epoch 2; retrying it from its last checkpoint"
        in faulty_search["done"].stdout
    )


@pytest.mark.timeout(400)
def test_trial_failing_more_than_max_failures_is_errored_with_its_error(
    faulty_search: dict,
) -> None:
    number, results = 2, faulty_search["results"]
    assert (
        len(list((faulty_search["root"] / f"raised-{number}").iterdir())) == 3
    )  # 1 try + --max-failures 2
    row = rows(results)[faulty_search["ids"][number]]
    assert row["status"] == "ERROR"
    assert row["error"] == "tune.runner.faults.InjectedFault: injected failure after epoch 2"
    assert (
        "error: tune.runner.faults.InjectedFault: injected failure after epoch 2"
        in faulty_search["done"].stdout
    )
    [optuna_trial] = [
        t
        for t in study(results)["optuna_trials"]
        if t["user_attrs"]["ray_trial_id"] == faulty_search["ids"][number]
    ]
    assert optuna_trial["state"] == "FAIL" and optuna_trial["user_attrs"]["outcome"] == "errored"


@pytest.mark.timeout(400)
def test_non_finite_loss_ends_trial_as_non_finite_and_never_best(faulty_search: dict) -> None:
    number, results = 3, faulty_search["results"]
    row = rows(results)[faulty_search["ids"][number]]
    assert row["status"] == "NON_FINITE"
    assert row["stop_reason"].startswith("non-finite training loss at epoch 2")
    [optuna_trial] = [
        t
        for t in study(results)["optuna_trials"]
        if t["user_attrs"]["ray_trial_id"] == faulty_search["ids"][number]
    ]
    assert optuna_trial["state"] == "FAIL"
    assert optuna_trial["user_attrs"]["stop_reason"].startswith(
        "non-finite training loss at epoch 2"
    )
    best = json.loads((results / "best_configs" / "synthetic.json").read_text())
    assert best["single_trial_best"]["trial_id"] != faulty_search["ids"][number]
    assert f"{faulty_search['ids'][number]:<18}NON_FINITE" in faulty_search["done"].stdout


# --- the driver dies ---------------------------------------------------------------------------------------


def _stalled(experiment: Path, number: int, finished_others: int):
    """A condition: trial `number` has reported 2 epochs (and sleeps); `finished_others` others have all epochs."""

    def check() -> dict | None:
        if not experiment.exists():
            return None
        trials = by_number(experiment)
        done = [
            n for n, folder in trials.items() if n != number and len(reported(folder)) == EPOCHS
        ]
        if number in trials and len(reported(trials[number])) == 2 and len(done) >= finished_others:
            return trials
        return None

    return check


def _start_stalling_search(
    tmp_path: Path, ray_tmp: Path, name: str, max_concurrent: int, stalled_trial: int
) -> tuple[list[str], Path, Path, subprocess.Popen]:
    """A 4-trial search in the background whose trial `stalled_trial` sleeps after epoch 2.

    Returns its arguments (to resume it), its Ray experiment folder, its log and the process."""
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(
        tmp_path / "space.yaml", num_samples=4, max_epochs=EPOCHS, max_concurrent=max_concurrent
    )
    args = search_args(data, space, tmp_path, name, "--no-rerun")
    log = tmp_path / "first.log"
    fault = {"kind": "sleep", "epoch": 2, "seconds": 300, "trial": stalled_trial}
    search = start_search(args, search_env(ray_tmp, fault), log)
    return args, tmp_path / "ray" / name / "synthetic", log, search


@pytest.mark.timeout(500)
def test_driver_killed_with_sigkill_resumes_without_rerunning_or_losing_trials(
    tmp_path: Path, ray_tmp: Path
) -> None:
    # Trial 1 stalls after epoch 2, so the kill lands while it is mid-training.
    args, experiment, log, search = _start_stalling_search(
        tmp_path, ray_tmp, "killed", max_concurrent=2, stalled_trial=1
    )
    tree: list[psutil.Process] = []
    try:
        wait_for(
            _stalled(experiment, 1, finished_others=1),
            240,
            "trial 1 to stall and another to finish",
            search,
            log,
        )
        time.sleep(2)  # let Tune save the experiment state after the finished trial
        tree = process_tree(search.pid)
        commands = [p.cmdline() for p in tree if p.is_running()]
        dashboards = [
            c for c in commands if any(part.endswith("dashboard/dashboard.py") for part in c)
        ]
        assert dashboards and all(
            "--host=127.0.0.1" in c for c in dashboards
        )  # listens on loopback only
        finished = {
            n: folder.joinpath("result.json").read_bytes()
            for n, folder in by_number(experiment).items()
            if len(reported(folder)) == EPOCHS
        }
        search.send_signal(signal.SIGKILL)
        search.wait(timeout=30)
        # The stalled trial's worker goes with its driver (no orphan keeps writing to the experiment).
        wait_for(
            lambda: (
                not [
                    p
                    for p in tree
                    if p.is_running()
                    and p.status() != psutil.STATUS_ZOMBIE
                    and p.name().startswith("ray::ImplicitFunc")
                ]
            ),
            60,
            "the trial workers to exit",
        )
    finally:
        if search.poll() is None:
            search.kill()
        kill_processes(tree)  # Ray's agents can outlive a killed driver for a while
    # Nothing published by the killed search; only its Optuna journal, where the study lives while it runs.
    assert [p.name for p in files_under(tmp_path / "results") if p.suffix != ".journal"] == []

    done = run_search([*args, "--resume"], search_env(ray_tmp))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    trials = by_number(experiment)
    assert sorted(trials) == [1, 2, 3, 4]  # no trial lost or started twice
    for number, content in finished.items():  # finished trials were not re-run
        assert trials[number].joinpath("result.json").read_bytes() == content, (
            f"trial {number} was re-run"
        )
    # The interrupted trial went on from its epoch-2 checkpoint: each epoch logged once.
    assert epochs(trials[1]) == [1, 2, 3, 4]
    assert all(epochs(folder) == [1, 2, 3, 4] for folder in trials.values())
    assert {row["status"] for row in rows(tmp_path / "results").values()} == {"TERMINATED"}
    assert (tmp_path / "results" / "best_configs" / "synthetic.json").exists()
    assert_clean_study(tmp_path / "results", 4)


@pytest.mark.timeout(600)
def test_a_dead_local_ray_node_is_one_line_with_the_resume_command_and_the_resume_finishes(
    tmp_path: Path, ray_tmp: Path
) -> None:
    """The local raylet SIGKILLed mid-trial: Ray ends the driver from its C++ core after pages of logs. The command
    says what died and how to resume in one line (exit 3), Ray's output goes to a log, and the resume finishes."""
    args, experiment, log, search = _start_stalling_search(
        tmp_path, ray_tmp, "nodeloss", max_concurrent=2, stalled_trial=1
    )
    tree: list[psutil.Process] = []
    try:
        wait_for(
            _stalled(experiment, 1, finished_others=1),
            240,
            "trial 1 to stall and another to finish",
            search,
            log,
        )
        time.sleep(2)  # let Tune save the experiment state after the finished trial
        tree = process_tree(search.pid)
        raylets = [p for p in ray_processes(ray_tmp) if p.name() == "raylet"]
        assert len(raylets) == 1
        raylets[0].send_signal(signal.SIGKILL)
        status = search.wait(timeout=180)
    finally:
        if search.poll() is None:
            search.kill()
        kill_processes(tree)
        stop_ray(ray_tmp)
    output = log.read_text()
    assert status == 3, output[-3000:]
    errors = [
        line for line in output.splitlines() if "error" in line.lower() or "Traceback" in line
    ]
    [line] = [e for e in errors if e.startswith("tune/search.py: error:")]
    assert (
        "a Ray node of the search died" in line and "--name nodeloss" in line and "--resume" in line
    )
    assert "Raylet is terminated" not in output.replace(line, "") and "Traceback" not in output
    assert (tmp_path / "ray" / "nodeloss" / "driver.log").read_text()  # Ray's own words are kept
    command = line.split("resume with: ")[1].split("   (Ray's output")[0]

    done = subprocess.run(
        shlex.split(command),
        cwd=REPO,
        env=search_env(ray_tmp),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    trials = by_number(experiment)
    assert sorted(trials) == [1, 2, 3, 4]
    assert all(epochs(folder) == [1, 2, 3, 4] for folder in trials.values())
    assert (tmp_path / "results" / "best_configs" / "synthetic.json").exists()
    assert_clean_study(tmp_path / "results", 4)


@pytest.mark.timeout(500)
def test_ctrl_c_stops_cleanly_and_the_printed_command_resumes(
    tmp_path: Path, ray_tmp: Path
) -> None:
    args, experiment, log, search = _start_stalling_search(
        tmp_path, ray_tmp, "interrupted", max_concurrent=1, stalled_trial=2
    )
    tree: list[psutil.Process] = []
    try:
        wait_for(_stalled(experiment, 2, finished_others=1), 240, "trial 2 to stall", search, log)
        tree = process_tree(search.pid)
        finished = by_number(experiment)[1].joinpath("result.json").read_bytes()
        os.killpg(search.pid, signal.SIGINT)  # Ctrl-C in a terminal signals the whole process group
        status = search.wait(timeout=120)
    finally:
        if search.poll() is None:
            search.kill()
    output = log.read_text()
    assert status == 130, output[-3000:]
    assert "search interrupted; state saved in" in output
    lines = output.splitlines()
    command = lines[lines.index("resume with:") + 1].strip()
    assert "--resume" in command and "--name interrupted" in command
    first_reason = next(line for line in lines if line.startswith("synthetic: resampling: "))
    # A partial search publishes nothing; only its Optuna journal, where the study lives while it runs.
    assert [p.name for p in files_under(tmp_path / "results") if p.suffix != ".journal"] == []
    time.sleep(1)
    assert not [
        p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    ]  # Ray was shut down

    done = subprocess.run(
        shlex.split(command),
        cwd=REPO,
        env=search_env(ray_tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    trials = by_number(experiment)
    assert sorted(trials) == [1, 2, 3, 4]
    assert trials[1].joinpath("result.json").read_bytes() == finished
    assert epochs(trials[2]) == [1, 2, 3, 4]  # went on from its epoch-2 checkpoint
    assert {row["status"] for row in rows(tmp_path / "results").values()} == {"TERMINATED"}
    assert (tmp_path / "results" / "best_configs" / "synthetic.json").exists()
    assert_clean_study(tmp_path / "results", 4)
    # The resumed search keeps the resampling and the reason given when it started, in what it says and records.
    assert first_reason in done.stdout.splitlines()
    recorded = json.loads((tmp_path / "results" / "studies" / "synthetic.json").read_text())[
        "resampling"
    ]["reason"]
    assert f"synthetic: {recorded}" == first_reason


@pytest.mark.timeout(500)
def test_resume_of_several_data_sets_starts_those_not_reached(
    tmp_path: Path, ray_tmp: Path
) -> None:
    """A search over several data sets stops at an interruption, so only its first data sets have
    experiments: --resume continues those and starts the rest. A gap in that order or a wrong
    --name is refused with exit status 2 and creates nothing."""
    data = write_data(tmp_path / "tiny.pkl")
    spaces = {"synthetic": write_space(tmp_path / "synthetic.yaml")}
    # The synthetic data has IEMOCAP-4's labels and two speakers, so it also serves as 'iemocap_4'.
    spaces["iemocap_4"] = tmp_path / "iemocap_4.yaml"
    spaces["iemocap_4"].write_text(
        yaml.safe_dump({**space_document(), "dataset": "iemocap_4"}, sort_keys=False)
    )
    first = run_search(
        search_args(data, spaces["synthetic"], tmp_path, "two", "--no-rerun"), search_env(ray_tmp)
    )
    assert first.returncode == 0, first.stderr[-3000:]
    storage = tmp_path / "ray"
    finished = {
        n: f.joinpath("result.json").read_bytes()
        for n, f in by_number(storage / "two" / "synthetic").items()
    }

    def resume(order: list[str], name: str = "two") -> subprocess.CompletedProcess:
        args = [
            a
            for d in order
            for a in ("--dataset", d, "--data", str(data), "--space", str(spaces[d]))
        ]
        return run_search(
            [
                *args,
                "--results-dir",
                str(tmp_path / "results"),
                "--storage-path",
                str(storage),
                "--name",
                name,
                "--quiet",
                "--confirm-top",
                "0",
                "--no-rerun",
                "--resume",
            ],
            search_env(ray_tmp),
        )

    gap = resume(["iemocap_4", "synthetic"])
    assert gap.returncode == 2 and gap.stderr.count("\n") == 1, gap.stderr[-3000:]
    assert "synthetic's experiment exists but iemocap_4's" in gap.stderr
    wrong = resume(["synthetic", "iemocap_4"], name="nope")
    assert wrong.returncode == 2 and "no experiment to resume" in wrong.stderr, wrong.stderr[-3000:]
    assert (
        sorted(p.name for p in storage.iterdir()) == ["two"]
        and not (storage / "two" / "iemocap_4").exists()
    )

    done = resume(["synthetic", "iemocap_4"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "iemocap_4: the interrupted search had not started it; starting it now" in done.stdout
    trials = by_number(storage / "two" / "synthetic")
    assert {
        n: f.joinpath("result.json").read_bytes() for n, f in trials.items()
    } == finished  # nothing re-run
    assert sorted(by_number(storage / "two" / "iemocap_4")) == [1, 2]
    assert (tmp_path / "results" / "best_configs" / "iemocap_4.json").exists()


@pytest.mark.timeout(500)
def test_resume_of_a_finished_search_changes_nothing(tmp_path: Path, ray_tmp: Path) -> None:
    """--resume takes the budget the search started with from its Optuna study: a finished search resumed
    without the budget flags it ran with rewrites nothing (every result file byte for byte), and a budget
    flag that differs from the stored one is refused with one line."""
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(tmp_path / "space.yaml", num_samples=3, max_epochs=3)
    args = search_args(data, space, tmp_path, "budgeted", "--no-rerun")
    first = run_search(
        [*args, "--num-samples", "2", "--max-epochs", "2", "--grace-period", "2"],
        search_env(ray_tmp),
    )
    assert first.returncode == 0, first.stderr[-3000:]
    results = tmp_path / "results"
    before = {p: p.read_bytes() for p in files_under(results)}
    assert {row["status"] for row in rows(results).values()} == {
        "TERMINATED"
    }  # 2 of 2 epochs: complete

    again = run_search([*args, "--resume"], search_env(ray_tmp))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "search 'budgeted' finished at " in again.stdout and "nothing to resume" in again.stdout
    assert {p: p.read_bytes() for p in files_under(results)} == before

    conflicting = run_search([*args, "--resume", "--max-epochs", "5"], search_env(ray_tmp))
    assert conflicting.returncode == 2 and conflicting.stderr.count("\n") == 1, conflicting.stderr[
        -3000:
    ]
    assert (
        "continues search 'budgeted' with the budget and strategy it started with; drop --max-epochs 5 (it ran with 2)"
        in conflicting.stderr
    )
    assert {p: p.read_bytes() for p in files_under(results)} == before


# --- results integrity, end to end -------------------------------------------------------------------------


@pytest.mark.timeout(500)
def test_worse_search_keeps_the_best_config_and_overwrite_replaces_it(
    tmp_path: Path, ray_tmp: Path
) -> None:
    data = write_data(tmp_path / "tiny.pkl")
    best = tmp_path / "results" / "best_configs" / "synthetic.json"
    # Deterministic on CPU: lr 1e-2 over 4 epochs of 2-dialogue batches learns something; lr 1e-5 for 1 epoch does not.
    good = write_space(
        tmp_path / "good.yaml",
        num_samples=1,
        max_epochs=4,
        fixed={"learning_rate": 1.0e-2, "batch_size": 2},
    )
    worse = write_space(
        tmp_path / "worse.yaml",
        num_samples=1,
        max_epochs=1,
        fixed={"learning_rate": 1.0e-5, "batch_size": 2},
    )

    first = run_search(search_args(data, good, tmp_path, "good", "--no-rerun"), search_env(ray_tmp))
    assert first.returncode == 0, first.stderr[-3000:]
    published = best.read_bytes()
    good_value = json.loads(published)["metric"]["value"]

    second = run_search(
        search_args(data, worse, tmp_path, "worse", "--no-rerun"), search_env(ray_tmp)
    )
    assert second.returncode == 0, second.stderr[-3000:]
    history = [
        json.loads(line)
        for line in best.with_name("synthetic.history.jsonl").read_text().splitlines()
    ]
    worse_value = history[-1]["metric"]["value"]
    assert worse_value < good_value  # the premise of this test
    assert best.read_bytes() == published  # byte for byte
    assert [h["outcome"] for h in history] == ["published", "kept-earlier"]
    assert "synthetic: kept" in second.stdout
    # The report of the search that did not publish says what is published and why, and the last lines name it.
    report = (tmp_path / "results" / "reports" / "synthetic.md").read_text()
    assert "**Published:** the result of the earlier search `good`" in report
    assert "this search's result was not published: kept earlier result of search 'good'" in report
    assert "synthetic: published (search 'good' (kept))" in second.stdout

    third = run_search(
        search_args(data, worse, tmp_path, "worse-again", "--no-rerun", "--overwrite"),
        search_env(ray_tmp),
    )
    assert third.returncode == 0, third.stderr[-3000:]
    replaced = json.loads(best.read_text())
    assert replaced["metric"]["value"] == worse_value and replaced["study"]["name"] == "worse-again"
    history = [
        json.loads(line)
        for line in best.with_name("synthetic.history.jsonl").read_text().splitlines()
    ]
    assert [h["outcome"] for h in history] == ["published", "kept-earlier", "published"]
    assert history[-1]["reason"].startswith("overwrite requested")


# --- workers lost from outside: the memory monitor, a killed confirmation run -------------------------------


@pytest.mark.timeout(500)
def test_a_worker_killed_by_the_memory_monitor_is_retried_and_the_search_finishes(
    tmp_path: Path, ray_tmp: Path
) -> None:
    """Ray's memory monitor kills a trial worker that needs more than the node has left: Ray 2.60 raised that out
    of Tuner.fit and ended the search in a traceback. Here trial 2 takes 6 GB after its epoch 2, with
    the monitor's threshold set 3 GB above what the machine uses: the worker is killed, the trial is retried from
    its epoch-2 checkpoint, and the search finishes with every trial accounted for."""
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(tmp_path / "space.yaml", num_samples=4, max_epochs=EPOCHS, max_concurrent=2)
    hog = {
        "kind": "hog",
        "epoch": 2,
        "trial": 2,
        "megabytes": 6000,
        "seconds": 60,
        "times": 1,
        "state_dir": str(tmp_path / "hogged"),
    }
    env = search_env(ray_tmp, [hog])
    memory = psutil.virtual_memory()
    env["RAY_memory_usage_threshold"] = (
        f"{(memory.total - memory.available + 3 * 2**30) / memory.total:.3f}"
    )
    env["RAY_memory_monitor_refresh_ms"] = "100"
    done = run_search(
        search_args(data, space, tmp_path, "oom", "--max-failures", "2", "--no-rerun"), env
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "Caught unexpected exception" not in done.stdout + done.stderr
    assert "failed after epoch 2; retrying it from its last checkpoint" in done.stdout
    trials = by_number(tmp_path / "ray" / "oom" / "synthetic")
    assert sorted(trials) == [1, 2, 3, 4] and (tmp_path / "hogged" / "fired-0").exists()
    assert all(epochs(folder)[-1] == EPOCHS for folder in trials.values())
    assert {row["status"] for row in rows(tmp_path / "results").values()} == {"TERMINATED"}
    assert_clean_study(tmp_path / "results", 4)


def _confirmation_runs(experiment: Path) -> dict[tuple[int, int], Path]:
    """A confirmation experiment's run folders by (configuration index, seed)."""
    return {
        (trial_params(f)["config_index"], trial_params(f)["seed"]): f
        for f in trial_dirs(experiment)
    }


@pytest.mark.timeout(600)
def test_a_search_killed_in_its_confirmation_resumes_without_repeating_finished_work(
    tmp_path: Path, ray_tmp: Path
) -> None:
    """The search's re-run and the confirmation's finished runs are done once: killed while the candidate's
    confirmation runs stall, the search resumes with the baseline's finished runs kept, the re-run taken from
    the Optuna study, and the stalled runs continued."""
    data = write_data(tmp_path / "tiny.pkl")
    space = write_space(tmp_path / "space.yaml", num_samples=2, max_epochs=2)
    args = search_args(
        data, space, tmp_path, "confirming", "--confirm-top", "1", "--confirm-seeds", "2"
    )
    stall = {
        "kind": "sleep",
        "epoch": 1,
        "seconds": 300,
        "match": {"confirmation": True, "config_index": 1},
    }
    log = tmp_path / "first.log"
    search = start_search(args, search_env(ray_tmp, stall), log)
    experiment = tmp_path / "ray" / "confirming" / "synthetic-confirm"

    def baseline_done_candidate_stalled() -> bool:
        if not experiment.exists():
            return False
        runs = _confirmation_runs(experiment)
        finished = [
            f
            for (index, _), f in runs.items()
            if index == 0 and any("best_dev_weighted_f1" in line for line in reported(f))
        ]
        stalled = [f for (index, _), f in runs.items() if index == 1 and reported(f)]
        return len(finished) == 2 and len(stalled) >= 1

    tree: list[psutil.Process] = []
    try:
        wait_for(
            baseline_done_candidate_stalled,
            300,
            "the baseline's runs to finish, a candidate run to stall",
            search,
            log,
        )
        time.sleep(2)  # let Tune save the experiment state after the finished runs
        tree = process_tree(search.pid)
        finished = {
            key: folder.joinpath("result.json").read_bytes()
            for key, folder in _confirmation_runs(experiment).items()
            if key[0] == 0
        }
        search.send_signal(signal.SIGKILL)
        search.wait(timeout=30)
    finally:
        if search.poll() is None:
            search.kill()
        kill_processes(tree)
    first = log.read_text()
    assert first.count("re-training the winner") == 1
    assert not (tmp_path / "results" / "best_configs" / "synthetic.json").exists()

    done = run_search([*args, "--resume"], search_env(ray_tmp))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert (
        "re-training the winner" not in done.stdout
        and "done before the interruption" in done.stdout
    )
    assert "confirmation: resuming" in done.stdout
    runs = _confirmation_runs(experiment)
    assert sorted(runs) == [(0, 1024), (0, 1025), (1, 1024), (1, 1025)]  # no run started twice
    for key, content in finished.items():
        assert runs[key].joinpath("result.json").read_bytes() == content, f"run {key} was repeated"
    best = json.loads((tmp_path / "results" / "best_configs" / "synthetic.json").read_text())
    assert [len(c["runs"]) for c in best["confirmation"]["configurations"]] == [2, 2]
    assert best["rerun"]["ran"] and best["rerun"]["reproduced"]
    assert not list(
        (tmp_path / "ray").rglob("checkpoint_*")
    )  # nothing left that the published result does not need
    # The records stay true across the resume: the search's start is its creation, both invocations are kept (the
    # killed one with the end of its trials, which finished before the kill), and its duration adds their trial phases.
    from tune.records.store import ResultStore
    from tune.study.storage import load_study

    record = ResultStore(tmp_path / "results").read_study("synthetic")
    study = load_study(ResultStore(tmp_path / "results").journal_of(record), record.optuna_study)
    assert record.started_at == study.user_attrs["started_at"] == best["study"]["started_at"]
    first, second = record.invocations
    assert (
        not first.resumed
        and first.ended_at is not None
        and second.resumed
        and second.ended_at is not None
    )
    assert record.started_at <= first.started_at < second.started_at
    assert (
        record.search_seconds >= second.seconds > 0
        and record.search_seconds == best["study"]["search_seconds"]
    )
    assert record.ended_at <= second.started_at  # the trials had all ended before the resume
