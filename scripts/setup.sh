#!/usr/bin/env bash
# Installs everything Goodhart Lab needs on a fresh Debian machine: the Debian packages for the
# browser test and the multi-machine tests (chromium, redis-server, postgresql), and a virtual
# environment with requirements.txt.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# PostgreSQL's programs live in /usr/lib/postgresql/N/bin (tests/pg_support.py finds them there).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
if [ "${#need_apt[@]}" -gt 0 ] && [ "${GOODHART_SKIP_APT:-0}" != 1 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # Debian starts redis-server and a PostgreSQL cluster as services; the tests start their own
  # servers on free ports (PostgreSQL as the package's unprivileged postgres user when root).
fi

if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtual environment .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # pip's own output (progress bars, resolver notes, "running as root") goes to a log, not the
  # terminal; on failure its end is shown.
  echo "Installing the Python packages (requirements.txt: torch, transformers, streamlit, ...)"
  echo "  first time: several minutes, mostly downloading torch; later starts skip this"
  if ! PIP_ROOT_USER_ACTION=ignore .venv/bin/pip install -q --disable-pip-version-check \
      --no-warn-script-location -r requirements.txt > .venv/pip.log 2>&1; then
    tail -n 30 .venv/pip.log >&2
    echo "error: pip could not install requirements.txt (the whole log: .venv/pip.log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
