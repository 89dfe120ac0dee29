#!/usr/bin/env bash
# `make test-services`: the suite's second run, on the production stack: PostgreSQL
# (DATABASE_URL), and RQ workers on Redis (TASKS_BACKEND=rq, REDIS_URL) wherever the tests
# start workers. `scripts/services.sh start` starts throwaway ones and prints the settings.
#
# What runs: everything but the tests of alignment_core (tests/core: it never imports Django,
# so no database or queue can change what they do), the tests marked real_model or browser and
# the vLLM tests (tests/vllm). Those exercise the ML code, the model, the browser and the
# inference server, whose code paths do not change with the database or the queue, and they
# are most of the first run's time. Every database, queue, worker, live-server, concurrency,
# crash-recovery, API and load-smoke test runs again here.
#
# It cannot pass by running nothing: REQUIRE_SERVICES=1 stops it before the first test unless
# PostgreSQL and Redis answer (tests/services.py), and pytest fails when nothing is selected.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL=postgres://user:pass@host:port/name (a role with CREATEDB); scripts/services.sh start prints one}"
export TASKS_BACKEND=rq REQUIRE_SERVICES=1
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
exec scripts/test.sh -m "not real_model and not browser" --ignore=tests/core --ignore=tests/vllm "$@"
