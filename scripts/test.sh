#!/usr/bin/env bash
# `make test`: the whole suite. Browser tests need Debian's chromium; install it when we can.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Lint first: it takes a second, and a finding fails the run before minutes of tests.
$PY -m ruff check . || {
  echo "ruff check found the problems above: fix them ($PY -m ruff check --fix . for the safe ones)" >&2
  exit 1; }
# Services and tasks (and every other pair of project modules) must not import each other.
$PY scripts/check_imports.py
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
