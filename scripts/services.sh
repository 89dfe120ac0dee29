#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis for `make test-services` (CI, or a developer without them).
#
#   scripts/services.sh start   # install (root + apt only) and start both; print the exports
#   scripts/services.sh env     # print the exports again
#   scripts/services.sh stop    # stop both (their data stays in SERVICES_DIR until you delete it)
#
# Both listen on 127.0.0.1 only, without systemd: PostgreSQL as a private cluster made by initdb
# (run as the `postgres` user when we are root: initdb refuses root), Redis with --daemonize.
# Ports and the data folder are settings, so they never collide with a server you already run:
# SERVICES_DIR (default /tmp/superalign-services-$PG_PORT), PG_PORT (5432), REDIS_PORT (6379).
# The role `superalign` (password `superalign`) has CREATEDB: pytest-django and the live
# deployments of scripts/live_server.py create and drop databases of their own.
set -euo pipefail
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
SERVICES_DIR="${SERVICES_DIR:-/tmp/superalign-services-$PG_PORT}"
PG_DATA="$SERVICES_DIR/postgres"
ROLE=superalign

pg_bin() {
  # Debian keeps the server programs out of PATH, one folder per major version; take the newest.
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$dir" ]; then echo "$dir"; else dirname "$(command -v initdb)"; fi
}

as_owner() {
  # Run a PostgreSQL program as the cluster's owner: `postgres` when we are root, else ourselves.
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_missing() {
  local wanted=()
  [ -x "$(pg_bin)/initdb" ] || wanted+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || wanted+=(redis-server)
  [ ${#wanted[@]} -eq 0 ] && return
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing ${wanted[*]} from Debian's packages..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
  else
    echo "Missing ${wanted[*]}: install them (sudo apt-get install ${wanted[*]})." >&2
    exit 1
  fi
}

print_env() {
  echo "export DATABASE_URL=postgres://$ROLE:$ROLE@127.0.0.1:$PG_PORT/$ROLE"
  echo "export TASKS_BACKEND=rq"
  echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

start_postgres() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$SERVICES_DIR"
  chmod 755 "$SERVICES_DIR"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = "0" ] && chown postgres: "$PG_DATA"
    # Trust on the private socket folder only (for the setup below); TCP needs the password.
    as_owner "$bin/initdb" -D "$PG_DATA" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    # 200 connections: gunicorn's threads, the workers and pytest's live deployments at once.
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start -o \
      "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_DATA -c max_connections=200" \
      >/dev/null
  fi
  local psql=("$bin/psql" -h "$PG_DATA" -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ -z "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    as_owner "${psql[@]}" -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$ROLE'"
  fi
  if [ -z "$(as_owner "${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$ROLE'")" ]; then
    as_owner "${psql[@]}" -c "CREATE DATABASE $ROLE OWNER $ROLE"
  fi
  echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT ($PG_DATA)" >&2
}

start_redis() {
  mkdir -p "$SERVICES_DIR/redis"
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    echo "Redis already answers on 127.0.0.1:$REDIS_PORT" >&2
    return
  fi
  # No persistence: the queue of a test run is worth nothing afterwards. 64 databases: every
  # live deployment of the tests leases one of its own (scripts/live_redis.py).
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --databases 64 \
    --save "" --appendonly no --dir "$SERVICES_DIR/redis" \
    --pidfile "$SERVICES_DIR/redis/redis.pid" --logfile "$SERVICES_DIR/redis/redis.log"
  for _ in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null
  echo "Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2) on 127.0.0.1:$REDIS_PORT" >&2
}

stop_all() {
  local bin
  bin=$(pg_bin)
  if [ -f "$PG_DATA/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    echo "PostgreSQL on port $PG_PORT stopped" >&2
  fi
  if [ -f "$SERVICES_DIR/redis/redis.pid" ] && redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    echo "Redis on port $REDIS_PORT stopped" >&2
  fi
}

case "${1:-}" in
  start) install_missing; start_postgres; start_redis; print_env ;;
  env) print_env ;;
  stop) stop_all ;;
  *) echo "usage: $0 start|env|stop" >&2; exit 2 ;;
esac
