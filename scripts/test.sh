#!/usr/bin/env bash
# `make test`: the whole suite. Browser tests need Debian's chromium; install it when we can.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "WARNING: chromium is not installed (sudo apt-get install chromium); browser tests will be skipped." >&2
  fi
fi
$PY manage.py collectstatic --noinput -v0
$PY manage.py check
$PY manage.py makemigrations --check --dry-run >/dev/null || {
  echo "Models changed without a migration: run scripts/remake_migrations.sh" >&2; exit 1; }
exec $PY -m pytest "$@"
