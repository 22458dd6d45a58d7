#!/usr/bin/env bash
# Install what the tests need and run every tier: lint, unit, integration, end-to-end.
# Usage: scripts/test.sh [pytest arguments]   (e.g. -m "not e2e" for the fast tiers)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 120); do port_open "$1" && return 0; sleep 0.5; done
  echo "nothing listens on 127.0.0.1:$1" >&2; return 1
}

ensure_postgres() {
  port_open 5432 && return 0
  log "starting PostgreSQL"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_port 5432
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  log "starting RabbitMQ"
  if ! command -v rabbitmq-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  rabbitmq-server -detached
  wait_port 5672
  rabbitmqctl await_startup >/dev/null
}

ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  log "installing Node.js and npm"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
}

ensure_chromium() {
  # Browser tests drive Debian's Chromium; Playwright never downloads a browser here.
  [ -x "${TERAPI_CHROMIUM:-/usr/bin/chromium}" ] && return 0
  log "installing Chromium"
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
}

ensure_python_env() {
  log "installing Python packages"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # A current pip resolves the OpenTelemetry family quickly; the venv's bundled one may not.
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
}

ensure_postgres
ensure_rabbitmq
ensure_node
ensure_chromium
ensure_python_env

log "lint"
.venv/bin/ruff check libs services cli tests bench examples
.venv/bin/lint-imports --no-cache >/dev/null

log "frontend SDK tests"
node --test sdks/frontend/test/
# The published type declarations, checked against documented uses with TypeScript.
npm ci --prefix sdks/frontend --no-audit --no-fund --loglevel=error >/dev/null
sdks/frontend/node_modules/.bin/tsc -p sdks/frontend/types-test/tsconfig.json

log "tests"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
