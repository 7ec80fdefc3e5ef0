#!/usr/bin/env bash
# The README's first command: set up (idempotent), then start a local worker and the app on the
# embedded default (toy world, SQLite under ./data). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
GOODHART_SKIP_APT=${GOODHART_SKIP_APT:-1} bash scripts/setup.sh  # the app needs no Debian packages
export GOODHART_DATA_DIR=${GOODHART_DATA_DIR:-$PWD/data}
mkdir -p "$GOODHART_DATA_DIR"
.venv/bin/python -m backend worker &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
.venv/bin/python -m streamlit run app/main.py --server.headless true \
  --server.port "${GOODHART_PORT:-8501}" --browser.gatherUsageStats false
