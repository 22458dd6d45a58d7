#!/usr/bin/env bash
# Install Terapi into .venv (once) and run every service in one process: `terapi up`.
# Arguments go to `terapi up` (e.g. --port 4000). No database or broker needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/terapi ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
exec .venv/bin/terapi up "$@"
