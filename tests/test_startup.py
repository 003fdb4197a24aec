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
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )


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
            assert (
                len(message) == 1
                and ": error: " in message[0]
                and "--help` lists the options" in message[0]
            )


@pytest.mark.parametrize(
    ("module", "typo", "meant"),
    [
        ("joyful.cli", "--learning-rat", "--learning-rate"),
        ("tune.search", "--datset", "--dataset"),
        ("tune.confirm", "--confirm-seed", "--confirm-seeds"),
        ("joyful.predict", "--confg", "--config"),
    ],
)
def test_a_mistyped_flag_is_named_with_the_flag_it_was_meant_to_be(module, typo, meant) -> None:
    """Also where a required flag is missing: the typo is the mistake to fix. Abbreviations are refused, not
    guessed (`--learning-rat` would otherwise silently be --learning-rate)."""
    done = probe(module, [typo, "1"])
    *message, loaded = done.stderr.strip().splitlines()
    assert done.returncode == 2 and loaded.strip() == "LOADED" and len(message) == 1
    assert f"unrecognized argument {typo}; did you mean {meant}?" in message[0]


@pytest.mark.parametrize(
    ("module", "argv", "words"),
    [
        ("joyful.cli", ["--dataset", "nosuch"], "unknown data set 'nosuch'"),
        ("joyful.cli", ["--config", "/nonexistent/best.json"], "file not found"),
        ("joyful.cli", ["--dataset", "synthetic", "--data", "/nonexistent.pkl"], "does not exist"),
        ("tune.search", ["--dataset", "nosuch"], "unknown data set 'nosuch'"),
        (
            "tune.search",
            ["--dataset", "synthetic", "--num-samples", "0"],
            "--num-samples is 0, but must be >= 1",
        ),
        ("tune.search", ["--dataset", "synthetic", "--data", "/nonexistent.pkl"], "does not exist"),
    ],
)
def test_value_errors_are_answered_before_anything_heavy_loads(
    module, argv, words, tmp_path
) -> None:
    """The value errors of the README's examples: one line, exit 2, nothing heavy imported (so within a second)."""
    extra = (
        ["--results-dir", str(tmp_path / "r"), "--storage-path", str(tmp_path / "s")]
        if module == "tune.search"
        else []
    )
    done = probe(module, [*argv, *extra])
    *message, loaded = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(message) == 1 and words in message[0], done.stderr
    assert loaded.strip() == "LOADED", f"{argv} imported {loaded}"
