#!/usr/bin/env bash
# Set up on first use (see scripts/setup.sh), then run every check CI runs: ruff, the full test
# suite headless, and the non-GUI tests again with Qt made unimportable. Extra arguments go to
# the main pytest run, e.g.  bash scripts/test.sh -k predictor
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
.venv/bin/python -m pytest -q -m "not gui and not slow" --no-qt -p no:pytest-qt \
  -W ignore::pytest.PytestConfigWarning
