#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, the slow integration tests included.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/python -m pytest -q "$@"
