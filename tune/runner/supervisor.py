"""A search's driver runs as a child of the command the user started, so that whatever kills it ends
in one line.

When the local Ray node dies (its raylet killed or out of memory) Ray ends the driver process
itself, from its C++ core, after pages of log output: no Python handler runs. So `tune/search.py`
starts the search's work in a child process and relays what it prints. Once Ray's output says that
a raylet died, the rest of it is held back; when the child then ends (not by finishing), the held
lines go to a log file and the command prints one line naming what died and the exact command that
resumes the search (its trials, checkpoints and Optuna study are on disk), with exit status 3.
Another node of a cluster dying reads the same on a loopback cluster, but the driver lives on and
its trials are retried elsewhere: after HOLD_S the held lines are shown and the relay goes on. A
child killed by a signal ends with status 3 too. Ctrl-C reaches the child, which stops cleanly and
prints the resume command itself (status 130). The child dies with the command (Linux's
parent-death signal): killing the command kills the search, as it did when the two were one process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CHILD_ENV", "NODE_DIED", "is_child", "supervise"]

CHILD_ENV = "JOYFUL_TUNE_DRIVER"
LOST_EXIT = 3
# What Ray prints when a raylet died (killed, crashed or out of memory): the driver's own node, or
# another node of the cluster. Ray's heartbeat message about another node ("... has been marked
# dead because the detector has missed too many heartbeats") is not matched.
NODE_DIED = re.compile(r"Raylet is terminated|raylet died|Owner's node has crashed")
# How long the child may live on after Ray said a node died before that node counts as another
# one of the cluster: when the search's own node dies, Ray ends the driver within seconds.
HOLD_S = 45.0
# The driver's last output lines kept for the log written when a node died.
KEPT_LINES = 5000


def is_child() -> bool:
    return os.environ.get(CHILD_ENV) == "1"


def supervise(command: list[str], *, resume: str, log: Path, prog: str) -> int:
    """Run `command` (this search, as a child), relay its output, and turn a lost Ray node or a
    killed child into one line with `resume` (see the module docstring); returns the exit status."""
    # Both streams are relayed: Ray's log monitor prints the raylet's last words on either.
    # Unbuffered, so that the child's progress lines reach the terminal as they are printed.
    child = subprocess.Popen(
        command,
        env={**os.environ, CHILD_ENV: "1", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        errors="replace",
        preexec_fn=_die_with_parent,
    )
    relay = _Relay()
    threads = [
        threading.Thread(target=relay.copy, args=(stream, out), daemon=True)
        for stream, out in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))
    ]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the child's to handle
    try:
        for thread in threads:
            thread.start()
        while True:
            try:
                code = child.wait(timeout=HOLD_S if relay.died else None)
                break
            except subprocess.TimeoutExpired:
                # The search goes on: the node that died was another one of the cluster (whose
                # raylet's last words read the same), and its trials are retried elsewhere.
                relay.release()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        signal.signal(signal.SIGINT, previous)
    if relay.died and code not in (0, 2, 130):
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(relay.kept))
        print(
            f"{prog}: error: a Ray node of the search died ({relay.died[:160]}); the finished "
            "trials, their checkpoints and the Optuna study are saved - resume with: "
            f"{resume}   (Ray's output: {log})",
            file=sys.stderr,
            flush=True,
        )
        return LOST_EXIT
    relay.release()  # the search ended by itself: what was held back is shown after all
    if code == -signal.SIGINT:  # Ctrl-C before the child could handle it (e.g. while it imports)
        print(f"{prog}: interrupted - resume with: {resume}", file=sys.stderr, flush=True)
        return 130
    if code < 0:
        name = (
            signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        )
        print(
            f"{prog}: error: the search's driver process was killed ({name}); the finished trials "
            f"are saved - resume with: {resume}",
            file=sys.stderr,
            flush=True,
        )
        return LOST_EXIT
    return code


def _die_with_parent() -> None:
    """In the child, before it runs: ask Linux for SIGKILL when the parent ends (elsewhere:
    nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _Relay:
    """Copies the child's streams to the terminal. Once Ray says a node died (on either stream),
    it holds the output back: if the search's own node died the child ends, and the held lines go
    to the log instead of the terminal; if the child lives on, `release` shows them."""

    def __init__(self) -> None:
        self.died = ""  # the line that said a node died, while that is unresolved
        self.kept: deque[str] = deque(maxlen=KEPT_LINES)
        self._held: list[tuple[TextIO, str]] = []
        self._lock = threading.Lock()

    def copy(self, stream: Any, out: TextIO) -> None:
        for line in stream:
            with self._lock:
                self.kept.append(line)
                if not self.died and NODE_DIED.search(line):
                    self.died = re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
                if self.died:
                    self._held.append((out, line))
                else:
                    out.write(line)
                    out.flush()

    def release(self) -> None:
        """Show what was held back and relay as before."""
        with self._lock:
            for out, line in self._held:
                out.write(line)
                out.flush()
            self._held.clear()
            self.died = ""
