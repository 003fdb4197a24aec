"""Ray start-up and the checks that must pass before any trial runs.

* storage: a local path must be creatable and writable; a URI must be one pyarrow understands; on a
  cluster of several nodes a local path must be visible from every node (checked with a marker file
  read by a task pinned to each node), since Ray no longer syncs trial folders to the head node;
* resources: a trial must fit on at least one node (GPUs and CPUs), otherwise it would stay PENDING
  forever;
* start-up: an --address whose port answers no TCP connect is refused within CONNECT_TIMEOUT_S, and
  a local Ray that fails to start is one line, not a traceback;
* one machine, one Ray: a search that would start a private local Ray beside another Ray instance on
  the same machine is refused. Each would take every CPU and neither's memory monitor would see the
  other's trials, so they slow or kill each other; several searches share one machine through one
  cluster (`ray start --head`, then `--address auto` for each).

It also holds :class:`GracefulStop`, the driver's Ctrl-C handling around ``Tuner.fit``."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from joyful.errors import UserError


def is_uri(path: str) -> bool:
    return "://" in path


def check_storage_path(storage_path: str) -> str:
    """Return the storage path in the form Ray wants (absolute local path or URI), or raise."""
    if is_uri(storage_path):
        import pyarrow.fs

        try:
            pyarrow.fs.FileSystem.from_uri(storage_path)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            raise UserError(
                f"--storage-path {storage_path}: not a storage URI pyarrow can open ({exc})"
            ) from None
        return storage_path
    path = Path(storage_path).expanduser().resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"--storage-path {storage_path}: {probe} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        marker = path / f".write-test-{uuid.uuid4().hex}"
        marker.write_text("ok")
        marker.unlink()
    except OSError as exc:
        raise UserError(
            f"--storage-path {storage_path}: not writable ({exc.strerror}); choose another folder"
        ) from None
    return str(path)


# How long the head's port may take to accept a TCP connection before --address is refused: Ray's
# own connect loop retries for minutes (more than 5 with 127.0.0.1:1), which looks like a hang.
CONNECT_TIMEOUT_S = 20.0


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse a `host:port` (or `ray://host:port`) address whose port accepts no TCP connection in
    time."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        # 'auto', 'local' or a bare host: Ray resolves these itself and fails fast when nothing runs
        return
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=min(5.0, timeout)):
                return
        except OSError as exc:
            last_error = exc.strerror or type(exc).__name__
            time.sleep(1.0)
    raise UserError(
        f"--address {address}: no Ray cluster answers there (TCP connect to {host}:{port} for "
        f"{timeout:.0f} s: {last_error}); check that `ray start --head` runs on that host, the "
        "port (default 6379) is open from here, or drop --address to start a local Ray"
    )


def start_ray(
    address: str | None, dashboard_host: str = "127.0.0.1", quiet: bool = False
) -> dict[str, Any]:
    """Join `address` (or RAY_ADDRESS) when given, else start a private local instance. `quiet`:
    Ray's own warnings and the workers' output stay out of the terminal (they remain in Ray's
    session logs).

    Every start-up failure is a one-line :class:`UserError` (exit 2), never a traceback.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if quiet:
        # Ray Tune's newer console output prints a configuration box and a TensorBoard hint even at
        # verbose 0; the classic reporter prints nothing at verbose 0.
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        # MLflow logs INFO lines (its database set-up) to the terminal unless told otherwise; the
        # workers inherit it.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    common = dict(
        logging_level="ERROR" if quiet else "WARNING",
        log_to_driver=not quiet,
        configure_logging=True,
    )
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **common)
        except (ConnectionError, TimeoutError) as exc:
            raise UserError(
                f"--address {address}: cannot connect to a Ray cluster ({_first_line(exc)})"
            ) from None
        except (
            Exception
        ) as exc:  # Ray raises plain Exception/RuntimeError for many start-up problems
            raise UserError(
                f"--address {address}: joining the Ray cluster failed ({_first_line(exc)})"
            ) from None
    else:
        check_no_other_ray()
        try:
            # "local" forces a fresh instance even if a stale cluster file from a killed `ray start`
            # exists.
            ray.init(
                address="local", include_dashboard=False, dashboard_host=dashboard_host, **common
            )
        except (
            Exception
        ) as exc:  # e.g. "The current node timed out during startup" on an overloaded machine
            if ray.is_initialized():
                ray.shutdown()
            raise UserError(
                f"the local Ray did not start ({_first_line(exc)}); if the machine is busy, retry "
                "when the load drops, or join a running cluster with --address"
            ) from None
    return {"address": address or "local", "nodes": len(alive_nodes())}


def other_rays() -> list[str]:
    """The Ray instances this user runs on this machine, as `pid <n> (session <folder>)` of their
    raylets."""
    import getpass

    import psutil

    found, me = [], getpass.getuser()
    for process in psutil.process_iter(["pid", "name", "cmdline", "username"]):
        if process.info.get("username") not in (None, me):
            continue  # another user's Ray cannot be joined; only this user's can be shared
        command = process.info.get("cmdline") or []
        if process.info.get("name") == "raylet" or (command and command[0].endswith("/raylet")):
            session = next(
                (a.split("=", 1)[1] for a in command if a.startswith("--session_dir=")), "?"
            )
            found.append(f"pid {process.info['pid']} (session {Path(session).name})")
    return found


def check_no_other_ray() -> None:
    """Refuse to start a private local Ray beside another Ray instance on this machine (module
    docstring)."""
    others = other_rays()
    if others:
        raise UserError(
            f"another Ray instance runs on this machine (raylet {', '.join(others)}); two private "
            "Ray instances would each take every CPU and neither's memory monitor sees the other's "
            "trials - "
            "share one: `ray start --head`, then pass --address auto to each search (or wait for "
            "the other to end)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_trial_fits(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """A trial must fit on one node; say what the cluster has instead of pending forever."""
    nodes = alive_nodes()
    most_gpus = max((n["Resources"].get("GPU", 0.0) for n in nodes), default=0.0)
    most_cpus = max((n["Resources"].get("CPU", 0.0) for n in nodes), default=0.0)
    total_gpus = sum(n["Resources"].get("GPU", 0.0) for n in nodes)
    if gpus_per_trial > most_gpus:
        raise UserError(
            f"--gpus-per-trial {gpus_per_trial}: no node has that many GPUs (largest node: "
            f"{most_gpus:g}, cluster: {total_gpus:g}); lower it, or use 0 to train on CPU"
        )
    if cpus_per_trial > most_cpus:
        raise UserError(
            f"--cpus-per-trial {cpus_per_trial}: no node has that many CPUs (largest node: "
            f"{most_cpus:g}); lower it"
        )


def _marker_visible(path: str) -> tuple[str, bool]:
    import ray

    return ray.get_runtime_context().get_node_id(), os.path.exists(path)


def check_shared_storage(storage_path: str) -> None:
    """On a multi-node cluster, every node must see the local storage path (NFS or similar)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    if is_uri(storage_path) or len(nodes) < 2:
        return
    marker = Path(storage_path) / f".shared-check-{uuid.uuid4().hex}"
    marker.write_text("joyful-tune")
    try:
        probe = ray.remote(num_cpus=0)(_marker_visible)
        futures = [
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(marker))
            for n in nodes
        ]
        answers = ray.get(futures, timeout=120)
    finally:
        marker.unlink(missing_ok=True)
    blind = [node for node, seen in answers if not seen]
    if blind:
        raise UserError(
            f"--storage-path {storage_path} is not shared: node(s) "
            f"{', '.join(b[:12] for b in blind)} "
            "cannot see it; use a shared file system (NFS) or an s3:// / gs:// URI"
        )


class GracefulStop:
    """Around ``Tuner.fit()``: the first Ctrl-C (SIGINT) stops the search cleanly and is remembered.

    Ray Tune's own SIGINT handler stops the run and saves the experiment state, but
    ``fit()`` then returns as if it had finished: the trial it stopped looks TERMINATED
    (only the saved state says RUNNING). So this handler takes SIGINT instead
    (``TUNE_DISABLE_SIGINT_HANDLER``), records it in :attr:`requested` and asks Tune
    for the same clean stop through SIGUSR1, the other signal Tune handles that way.
    A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> GracefulStop:
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        # Tune installs its SIGUSR1 handler when the run starts; until then a stop request is a
        # KeyboardInterrupt.
        self.previous_usr1 = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested or signal.getsignal(signal.SIGUSR1) in (
            signal.SIG_DFL,
            signal.SIG_IGN,
            None,
        ):
            raise KeyboardInterrupt
        self.requested = True
        os.kill(os.getpid(), signal.SIGUSR1)

    def __exit__(self, *exc_info: Any) -> None:
        signal.signal(signal.SIGINT, self.previous)
        signal.signal(signal.SIGUSR1, self.previous_usr1)
