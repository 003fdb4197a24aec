"""The GPU-machine scripts: benchmarks/device_bundle.sh (offline Ray/Optuna bundle) and benchmarks/gpu_check.sh.

Static checks only (no network, no GPU): both parse, the check fits the device tool's limits on what
comes back (at most 8 files under $OUT, plain names), its parts' time budgets fit inside its deadline,
the bundle folder is ignored by git (it travels as a carried path), and the bundle never leaves out
the parts of Ray that a search loads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "benchmarks" / "device_bundle.sh"
CHECK = REPO / "benchmarks" / "gpu_check.sh"


@pytest.mark.parametrize("script", [BUNDLE, CHECK], ids=lambda p: p.name)
def test_scripts_parse_and_print_help(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    shown = subprocess.run(
        ["bash", str(script), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "GPU" in shown and not shown.startswith("#")


def test_gpu_check_refuses_an_unknown_device() -> None:
    proc = subprocess.run(["bash", str(CHECK), "--device", "tpu"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--device cuda or cpu" in proc.stderr


def test_gpu_check_writes_at_most_eight_plainly_named_files() -> None:
    names = set(re.findall(r'\$OUT/([^"\s/)]+)"', CHECK.read_text()))
    names |= set(re.findall(r'os\.path\.join\(out, "([^"]+)"\)', CHECK.read_text()))
    assert 1 <= len(names) <= 8, names
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in names), names


def test_gpu_check_budgets_fit_the_deadline() -> None:
    shares = [int(n) for n in re.findall(r"TOTAL \* (\d+) / 1000", CHECK.read_text())]
    assert len(shares) == 5 and sum(shares) <= 950
    assert "GPU_CHECK_SECONDS:-540" in CHECK.read_text()  # 9 minutes on the GPU machine


def test_bundle_prunes_only_what_a_search_never_loads() -> None:
    text = BUNDLE.read_text()
    block = text[text.index("PRUNE=(") :]
    pruned = re.findall(r"^\s+(ray/\S+)", block[: block.index("\n)")], flags=re.M)
    assert "ray/jars" in pruned and "ray/dashboard/client/build" in pruned
    # Files a 2-trial search opened (device_bundle.sh --verify lists them): none may be pruned.
    loaded = [
        "ray/_raylet.so",
        "ray/core/src/ray/raylet/raylet",
        "ray/core/src/ray/gcs/gcs_server",
        "ray/tune/tune.py",
        "ray/train/__init__.py",
        "ray/data/dataset.py",
        "ray/dashboard/modules/__init__.py",
        "ray/_private/runtime_env/agent/main.py",
        "ray/_private/thirdparty/pynvml/__init__.py",
    ]
    for path in pruned:
        assert not any(f"{file}/".startswith(f"{path}/") for file in loaded), path


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout"
)
def test_bundle_folder_is_ignored_by_git() -> None:
    probe = subprocess.run(
        ["git", "check-ignore", "-q", ".device_bundle/ray-optuna-cp312.tar.xz"], cwd=REPO
    )
    assert probe.returncode == 0
