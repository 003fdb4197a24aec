#!/usr/bin/env bash
# Create .venv and install joyful-tune with the tuning, tracking, dashboard and test extras.
# TORCH_SPEC picks the torch build: the default pins 2.13.0, which on our CPU machines
# comes from local disk as a CPU build; on a GPU machine set e.g. TORCH_SPEC=torch to
# keep the CUDA build pip chooses (pyproject.toml itself does not pin torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -e ".[tune,tracking,dashboard,dev]"
.venv/bin/python -c "import torch, ray, optuna, torch_geometric; print(f'ready: torch {torch.__version__}, ray {ray.__version__}, optuna {optuna.__version__}')"
