"""Every command answers --help, --version and argument errors at once: nothing heavy is imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray", "optuna", "matplotlib", "sklearn", "mlflow", "wandb", "torch_geometric")
# (how a user starts it, the module whose main() it runs, a bad argument)
COMMANDS = [
    ("train.py", "joyful.cli", ["--epochs", "x"]),
    ("tune/search.py", "tune.search", ["--dataset", "x", "--num-samples", "y"]),
    ("tune/confirm.py", "tune.confirm", ["--dataset", "x", "--confirm-seeds", "y"]),
    ("tune/report.py", "tune.report", ["--bogus"]),
    ("python -m joyful.predict", "joyful.predict", ["--config", "a", "--model", "b"]),
    ("joyful-synth", "joyful.data.synthetic", ["--scale", "x"]),
]
PROBE = """
import sys
sys.path.insert(0, {repo!r})
from {module} import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
loaded = [name for name in {heavy!r} if name in sys.modules]
print("LOADED", ",".join(loaded), file=sys.stderr)
sys.exit(code)
"""


def probe(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    code = PROBE.format(repo=str(REPO), module=module, argv=argv, heavy=HEAVY)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("command", "module", "bad"), COMMANDS, ids=[c[0] for c in COMMANDS])
def test_help_version_and_argument_errors_import_nothing_heavy(command, module, bad) -> None:
    for argv in (["--help"], ["--version"], bad):
        done = probe(module, argv)
        *message, loaded = done.stderr.strip().splitlines()
        assert loaded.strip() == "LOADED", f"{command} {argv} imported {loaded}"
        if argv == ["--version"]:
            assert done.returncode == 0 and done.stdout.startswith("joyful-tune ")
        elif argv == ["--help"]:
            assert done.returncode == 0 and "usage:" in done.stdout
        else:  # one line: the reason and where to look, not the usage
            assert done.returncode == 2 and done.stdout == ""
            assert len(message) == 1 and ": error: " in message[0] and "--help` lists the options" in message[0]
