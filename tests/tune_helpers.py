"""Helpers of the tuning-service tests: tiny data and space files, CLI runs, Ray clean-up.

A plain module (not a conftest): ``from tune_helpers import ...`` in tests/.
Searches here use tiny data (about 16 dialogues) and a tiny model, so a trial
takes a second or two and most of a search is Ray's start-up.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from joyful.data.synthetic import generate

REPO = Path(__file__).resolve().parents[1]
TINY_DIMS = {"a": 8, "t": 16, "v": 12}
TINY_FIXED = {
    "modalities": "atv",
    "seqcontext_nlayer": 1,
    "fusion_pool_dim": 16,
    "fusion_hidden": 32,
    "fusion_latent": 16,
    "hidden_size": 16,
    "gnn_nheads": 2,
    "learning_rate": 1.0e-3,
}
# One searched float: trials differ, and the baseline (0.03) marks trial 0 exactly.
TINY_PARAMETERS = {"encoder_loss_weight": {"type": "float", "low": 0.01, "high": 0.1, "log": True}}
TINY_BASELINE = {"encoder_loss_weight": 0.03}


# --- records ---------------------------------------------------------------------------

SHA_A = "a" * 64
SHA_B = "b" * 64


def best_document(
    value: float = 0.7,
    *,
    sha256: str = SHA_A,
    metric: str = "dev_weighted_f1",
    mode: str = "max",
    dataset: str = "synthetic",
    learning_rate: float = 1e-4,
    search: str = "s1",
) -> dict:
    """A valid best-config document (as a search writes it, unconfirmed) of an AutoFusion baseline."""
    from joyful.config import JoyfulConfig
    from tune.records import BEST_CONFIG_KIND, BEST_CONFIG_SCHEMA_VERSION

    config = JoyfulConfig(
        dataset=dataset, seqcontext_nlayer=1, learning_rate=learning_rate
    ).to_dict()
    data_path = f"data/{dataset}/data_{dataset}.pkl"
    searched = {"fusion": "autofusion", "encoder_loss_weight": 0.03}
    return {
        "schema_version": BEST_CONFIG_SCHEMA_VERSION,
        "kind": BEST_CONFIG_KIND,
        "dataset": dataset,
        "modalities": config["modalities"],
        "data": {"path": data_path, "sha256": sha256},
        "config": config,
        "searched": searched,
        "metric": {"name": metric, "mode": mode, "value": value, "best_epoch": 7},
        "test": {"weighted_f1": 0.5, "accuracy": 0.55},
        "single_trial_best": {
            "trial_id": "t0001",
            "config": config,
            "searched": searched,
            "value": value,
            "best_epoch": 7,
            "checkpoint": None,
        },
        "confirmation": None,
        "study": {
            "name": search,
            "experiment": f"ray_results/{search}/{dataset}",
            "space_file": "search_spaces/synthetic.yaml",
            "space_sha256": "c" * 64,
            "space_fingerprint": "d" * 64,
            "optuna_storage": "results/studies/x.journal",
            "optuna_study": search,
            "num_samples": 4,
            "searcher": {"kind": "optuna-tpe", "seed": 0, "baseline_first": searched},
            "scheduler": {
                "kind": "asha",
                "time_attr": "epoch",
                "max_t": 8,
                "grace_period": 2,
                "reduction_factor": 2,
            },
            "resources": {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "max_concurrent": 2},
            "trials": {"completed": 4, "early_stopped": 0, "errored": 0, "non_finite": 0},
            "started_at": "2025-01-01T00:00:00+00:00",
            "ended_at": "2025-01-01T01:00:00+00:00",
            "search_seconds": 3600.0,
            "storage_path": "ray_results",
        },
        "versions": {
            "python": "3.11",
            "torch": "2.4",
            "ray": "2.60.0",
            "optuna": "5.0.0",
            "joyful_tune": "0.1.0",
        },
        "rerun_command": f"python train.py --config results/best_configs/{dataset}.json",
        "checkpoint": None,
        "written_at": "2025-01-01T01:00:00+00:00",
        "rerun": {"ran": False, "reason": "--no-rerun was given"},
        "resampling": {
            "kind": "holdout",
            "folds": None,
            "reason": "the space file's choice",
            "dev_noise": None,
        },
    }


def confirmation_entry(label: str, values: dict[int, float], config: Any = None) -> Any:
    """A confirmed configuration (`ConfigRuns`) with one run per seed scoring `values` (test = dev - 0.01)."""
    from joyful.config import JoyfulConfig
    from tune.stats.confirmation import ConfigRuns, SeedRun

    runs = [
        SeedRun(
            seed=s,
            best_dev_weighted_f1=v,
            best_epoch=2,
            epochs_run=3,
            test_weighted_f1=v - 0.01,
            test_accuracy=v,
            dev_weighted_f1=[v - 0.1, v, v - 0.01],
            train_loss=[1.0, 0.8, 0.7],
            train_nll=[0.9, 0.7, 0.6],
            precision="fp32",
        )
        for s, v in values.items()
    ]
    return ConfigRuns(label, config or JoyfulConfig(learning_rate=0.001 * (1 + len(label))), runs)


# --- files -----------------------------------------------------------------------------


def tiny_data(seed: int = 0, dims: dict[str, int] | None = None) -> dict:
    """The tiny synthetic data set (processed layout: train/dev/test lists of Sample records)."""
    return generate(seed=seed, scale=0.1, dims=dims or TINY_DIMS)


def write_data(path: Path, content: Any = None, protocol: int = 4) -> Path:
    """Pickle `content` (default: the tiny synthetic data) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(tiny_data() if content is None else content, protocol=protocol))
    return path


def space_document(
    *,
    num_samples: int = 2,
    max_epochs: int = 3,
    grace_period: int | None = None,
    reduction_factor: int = 2,
    max_concurrent: int = 2,
    fixed: dict | None = None,
    parameters: dict | None = None,
    baseline: dict | None = None,
    resampling: str | dict = "holdout",
) -> dict:
    """A search-space document for data set 'synthetic' with the tiny model (no ASHA stops by default), scored on
    the dev split unless `resampling` says otherwise (the tiny data's dev split is noisy: `auto` would pick cv)."""
    return copy.deepcopy(
        {
            "dataset": "synthetic",
            "metric": "dev_weighted_f1",
            "mode": "max",
            "resampling": resampling,
            "budget": {
                "num_samples": num_samples,
                "max_epochs": max_epochs,
                "grace_period": max_epochs if grace_period is None else grace_period,
                "reduction_factor": reduction_factor,
                "cpus_per_trial": 1,
                "gpus_per_trial": 0,
                "max_concurrent": max_concurrent,
            },
            "fixed": {**TINY_FIXED, **(fixed or {})},
            "parameters": TINY_PARAMETERS if parameters is None else parameters,
            "baseline": TINY_BASELINE if baseline is None else baseline,
        }
    )


def write_space(path: Path, **budget_and_keys: Any) -> Path:
    """Write `space_document(...)` as YAML to `path`."""
    path.write_text(yaml.safe_dump(space_document(**budget_and_keys), sort_keys=False))
    return path


def files_under(folder: Path) -> list[Path]:
    """Every regular file below `folder` (empty when it does not exist)."""
    return (
        sorted(p for p in Path(folder).rglob("*") if p.is_file()) if Path(folder).exists() else []
    )


# --- running the CLIs ------------------------------------------------------------------


def search_args(data: Path, space: Path, root: Path, name: str = "exp", *extra: str) -> list[str]:
    """Arguments of `tune/search.py` with results and storage under `root`.

    Confirmation is off here: these tests are about the search itself (confirmation has its
    own tests), and with it on the published metric would be a confirmed run, not the trial's.
    """
    return [
        "--dataset",
        "synthetic",
        "--data",
        str(data),
        "--space",
        str(space),
        "--results-dir",
        str(root / "results"),
        "--storage-path",
        str(root / "ray"),
        "--name",
        name,
        "--quiet",
        "--confirm-top",
        "0",
        *extra,
    ]


def search_env(ray_tmp: Path | str, fault: Any = None) -> dict[str, str]:
    """Environment of a search subprocess: a private Ray temp dir and, optionally, a fault to inject.

    Ray workers of a locally started Ray inherit the driver's environment, so the
    fault reaches the trials.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("JOYFUL_TUNE_FAULT", "RAY_ADDRESS")}
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    if fault is not None:
        env["JOYFUL_TUNE_FAULT"] = json.dumps(fault)
    return env


def run_search(
    args: list[str], env: dict[str, str], timeout: float = 280
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tune/search.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_search(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a search in the background; its stdout and stderr go to `log`."""
    handle = log.open("w")
    # A session of its own, like a search started from a terminal: os.killpg(pid, SIGINT) is Ctrl-C.
    return subprocess.Popen(
        [sys.executable, "tune/search.py", *args],
        cwd=REPO,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def short_tmpdir(prefix: str = "jt-") -> Path:
    """A short temporary folder: Ray's socket paths under it must stay below the 107-byte limit."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


_SERVER = r"""
import json, os, runpy, sys, tempfile, time, traceback
sys.path.insert(0, os.getcwd())
import joyful.cli, tune.search  # the slow imports (torch, ray, optuna), once for all cases
for line in sys.stdin:
    request = json.loads(line)
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [request["script"], *request["args"]]
        code = 0
        try:
            runpy.run_path(request["script"], run_name="__main__")
        except SystemExit as exc:
            if isinstance(exc.code, int) or exc.code is None:
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    deadline = time.monotonic() + request["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
        time.sleep(0.02)
    texts = []
    for handle in (out, err):
        handle.seek(0)
        texts.append(handle.read().decode(errors="replace"))
    reply = {"returncode": os.waitstatus_to_exitcode(status), "stdout": texts[0], "stderr": texts[1]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class CliRunner:
    """Run `python train.py ...` / `python tune/search.py ...` and return the exit status and output.

    Each case runs the real script as ``__main__`` in a fresh process forked from
    one that imported torch, ray and optuna once: the same code path as a new
    interpreter, without paying ~5 s of imports per case (dozens of cases on
    2 cores). Set JOYFUL_TEST_REAL_SUBPROCESS=1 to start a new interpreter for every case instead.
    """

    def __init__(self) -> None:
        self.real = os.environ.get("JOYFUL_TEST_REAL_SUBPROCESS") == "1"
        self.server: subprocess.Popen | None = None
        if not self.real:
            self.server = subprocess.Popen(
                [sys.executable, "-c", _SERVER],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )

    def __call__(
        self, script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, **(env or {})}
        env.pop("JOYFUL_TUNE_FAULT", None)
        if self.server is None:
            return subprocess.run(
                [sys.executable, script, *args],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        request = {
            "script": script,
            "args": list(args),
            "env": env,
            "cwd": str(REPO),
            "timeout": timeout,
        }
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        reply = json.loads(self.server.stdout.readline())
        return subprocess.CompletedProcess(
            [script, *args], reply["returncode"], reply["stdout"], reply["stderr"]
        )

    def close(self) -> None:
        if self.server is not None:
            self.server.stdin.close()
            self.server.wait(timeout=30)


# --- Ray experiment folders --------------------------------------------------------------


def trial_dirs(experiment: Path) -> list[Path]:
    """The trial folders of a Tune experiment (each holds result.json and checkpoints)."""
    return sorted(
        p for p in Path(experiment).iterdir() if p.is_dir() and (p / "params.json").exists()
    )


def reported(trial_dir: Path) -> list[dict]:
    """Every result Ray logged for a trial (one JSON line per report), in order."""
    path = trial_dir / "result.json"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line being written right now
    return lines


def trial_params(trial_dir: Path) -> dict:
    return json.loads((trial_dir / "params.json").read_text())


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` (and the log) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the process ended (status {process.returncode}) before {what}:\n"
                + (log.read_text()[-3000:] if log else "")
            )
        time.sleep(0.25)
    raise AssertionError(
        f"timed out after {timeout:g} s waiting for {what}:\n"
        + (log.read_text()[-3000:] if log else "")
    )


# --- processes -------------------------------------------------------------------------------


def process_tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def ray_processes(temp_dir: Path | str) -> list[psutil.Process]:
    """Processes of the Ray instance(s) whose temp dir is `temp_dir`, with their descendants.

    Ray's daemons name their session folder on the command line; workers rename
    themselves (ray::...) but are children of a raylet. Only this temp dir counts,
    so Ray instances of other users of the machine are never touched.
    """
    marker = str(temp_dir)
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or []):
                for member in [process, *process.children(recursive=True)]:
                    found[member.pid] = member
        except psutil.Error:
            continue
    return list(found.values())


def kill_processes(processes: list[psutil.Process]) -> None:
    """SIGKILL these processes (by pid) and wait for them to go."""
    for process in processes:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.Error:
            pass
    psutil.wait_procs(processes, timeout=10)


def stop_ray(temp_dir: Path | str) -> None:
    """`ray stop --force`, scoped to one temp dir (plain `ray stop` kills every Ray on the machine)."""
    kill_processes(ray_processes(temp_dir))


def remove_tree(folder: Path | str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
