#!/usr/bin/env bash
# The README's first command: set up (idempotent), then start a local worker and the app on the
# embedded default (toy world, SQLite under ./data). Ctrl-C stops both.
#
# The app listens on 127.0.0.1 only: nobody else can reach it. Serving it to others is a
# deliberate setting that needs an access mode (docs/serving.md):
#   GOODHART_ADDRESS=0.0.0.0 GOODHART_ACCESS=read-only bash scripts/start.sh
#   GOODHART_ADDRESS=0.0.0.0 GOODHART_ACCESS=token GOODHART_TOKEN=... bash scripts/start.sh
set -euo pipefail
cd "$(dirname "$0")/.."
address=${GOODHART_ADDRESS:-127.0.0.1}
export GOODHART_ACCESS=${GOODHART_ACCESS:-local}
case "$address" in
  127.*|::1|localhost) loopback=1 ;;
  *) loopback=0 ;;
esac
if [ "$loopback" = 0 ] && [ "$GOODHART_ACCESS" = local ]; then
  echo "error: GOODHART_ADDRESS=$address serves the app to other machines; choose who may change" \
    "things with GOODHART_ACCESS=read-only or GOODHART_ACCESS=token (docs/serving.md)" >&2
  exit 2
fi
case "$GOODHART_ACCESS" in
  local|read-only) ;;
  token)
    token=${GOODHART_TOKEN:-}
    if [ "${#token}" -lt 16 ]; then
      echo "error: GOODHART_ACCESS=token needs GOODHART_TOKEN of 16 or more characters" >&2
      exit 2
    fi ;;
  *)
    echo "error: GOODHART_ACCESS must be local, read-only or token; got '$GOODHART_ACCESS'" >&2
    exit 2 ;;
esac
port=${GOODHART_PORT:-8501}
echo "Goodhart Lab: setting up (skipped when already done)"
GOODHART_SKIP_APT=${GOODHART_SKIP_APT:-1} bash scripts/setup.sh  # the app needs no Debian packages
export GOODHART_DATA_DIR=${GOODHART_DATA_DIR:-$PWD/data}
mkdir -p "$GOODHART_DATA_DIR"
echo "Starting a worker, which runs the experiments you submit (it loads torch: 10-30 s)"
echo "Starting the app: open http://$address:$port in a browser (ready in a few seconds;"
echo "  Learn shows real results at once, a default experiment takes a few minutes). Ctrl-C stops both."
.venv/bin/python -m backend worker &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
.venv/bin/python -m streamlit run app/main.py --server.headless true \
  --server.address "$address" --server.port "$port" \
  --browser.gatherUsageStats false --logger.level warning
