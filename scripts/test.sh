#!/usr/bin/env bash
# Set up, then run every check CI runs: lint, format, types, and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== ruff check" && .venv/bin/ruff check .
echo "== ruff format --check" && .venv/bin/ruff format --check .
echo "== mypy" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest -n 2 --dist loadfile "$@"
