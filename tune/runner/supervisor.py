"""A search's driver runs as a child of the command the user started, so that whatever kills it ends
in one line.

When the local Ray node dies (its raylet killed or out of memory) Ray ends the driver process
itself, from its C++ core, after pages of log output: no Python handler runs. So `tune/search.py`
starts the search's work in a child process and relays what it prints. Once Ray's output says that a
node died, the rest of it is kept out of the terminal (the driver's last lines go to a log file
instead), and when the child has ended the command prints one line naming what died and the exact
command that resumes the search (its trials, checkpoints and Optuna study are on disk), with exit
status 3. A child killed by a signal ends the same way. Ctrl-C reaches the child, which stops
cleanly and prints the resume command itself (status 130). The child dies with the command (Linux's
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
# What Ray prints when the driver's own node died (its raylet killed, crashed or out of memory):
# the driver cannot go on. Another node of a cluster dying is not that: its trials are retried
# elsewhere and the search goes on, so Ray's lines about it ("... has been marked dead because the
# detector has missed too many heartbeats") pass through.
NODE_DIED = re.compile(r"Raylet is terminated|raylet died|Owner's node has crashed")
# How long a child whose node died may take to end by itself before it is killed.
GRACE_S = 60.0
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
    died: list[str] = []
    kept: deque[str] = deque(maxlen=KEPT_LINES)
    relays = [
        threading.Thread(target=_relay, args=(stream, out, kept, died), daemon=True)
        for stream, out in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))
    ]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the child's to handle
    try:
        for relay in relays:
            relay.start()
        while True:
            try:
                code = child.wait(timeout=GRACE_S if died else None)
                break
            except subprocess.TimeoutExpired:  # a node died and the child does not end by itself
                child.kill()
        for relay in relays:
            relay.join(timeout=10)
    finally:
        signal.signal(signal.SIGINT, previous)
    if died:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join(kept))
        print(
            f"{prog}: error: a Ray node of the search died ({died[0][:160]}); the finished trials, "
            "their "
            f"checkpoints and the Optuna study are saved - resume with: {resume}   (Ray's output: "
            f"{log})",
            file=sys.stderr,
            flush=True,
        )
        return LOST_EXIT
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


def _relay(stream: Any, out: TextIO, kept: deque[str], died: list[str]) -> None:
    """Copy one of the child's streams to `out` until Ray says a node died (on either stream); keep
    the last lines of both for the log."""
    for line in stream:
        kept.append(line)
        if not died and NODE_DIED.search(line):
            died.append(re.sub(r"\x1b\[[0-9;]*m", "", line).strip())
        if not died:
            out.write(line)
            out.flush()
