"""The code's own hygiene, checked by the tools the style guide names: ruff's lint (lines <= 100 columns in
joyful/ and tune/) and its formatter, over the whole project."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install 'joyful-tune[dev]')")
@pytest.mark.parametrize(
    "command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"]
)
def test_ruff_finds_nothing(command: list[str]) -> None:
    done = subprocess.run([RUFF, *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_no_file_of_the_tuning_service_is_longer_than_350_lines() -> None:
    """One concept per module: a file of tune/ past 350 lines holds more than one."""
    long = {
        str(p.relative_to(REPO)): n
        for p in REPO.glob("tune/**/*.py")
        if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long, long
