"""A real, throwaway Superalign deployment for tests and benchmarks: a temp database, gunicorn,
`manage.py worker` processes and seed data, each in its own OS process.

The concurrency, crash and load checks must not share the test runner's in-process database:
they need separate processes that really race for SQLite's (or PostgreSQL's) locks. Each
deployment gets a database of its own (`deployment_env`): a SQLite file in its directory, or,
when the caller's DATABASE_URL is PostgreSQL, a fresh database on that server, dropped when the
deployment ends. Import it as `scripts.live_server` (the repository root on sys.path); seed
data comes from scripts/live_seed.py, run inside the deployment by `seed(env, ...)`.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import psycopg
import requests
from psycopg import sql

from scripts.live_redis import redis_database

REPO = Path(__file__).resolve().parent.parent
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() \
    else sys.executable
SETTINGS = "scripts.live_settings"
PASSWORD = "correct-horse-battery-staple"


def app_env(workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for every process of one throwaway deployment rooted at `workdir`.

    DATABASE_URL is the caller's when it has one (PostgreSQL for the load benchmark), otherwise
    a SQLite file in `workdir`; `deployment_env` then gives the deployment a database of its own.
    The task queue is the caller's too (TASKS_BACKEND, REDIS_URL; the database worker when
    unset), so the whole suite can run once more on PostgreSQL with RQ workers.
    """
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{workdir / 'db.sqlite3'}",
        "DATA_DIR": str(workdir / "data"),
        "DEBUG": "false",
        # Plain HTTP on 127.0.0.1: cookies must travel without TLS.
        "SECURE_COOKIES": "false",
        "SECURE_HSTS_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "TASKS_BACKEND": os.environ.get("TASKS_BACKEND") or "db",
        # The test runner may have set this for its own in-process server; ours are real.
        "DJANGO_ALLOW_ASYNC_UNSAFE": "false",
    })
    env.update(extra)
    return env


@contextmanager
def deployment_env(workdir: Path, *, template_dir: Path,
                   **extra: str) -> Iterator[dict[str, str]]:
    """Yield `app_env(workdir, **extra)` with DATABASE_URL pointing at a migrated database that
    belongs to this deployment alone.

    SQLite: a copy of a template file migrated once per `template_dir` (it goes with `workdir`).
    PostgreSQL: a new database on the caller's server, cloned from a template database migrated
    once per process, and dropped (connections and all) when the block ends, failed or not;
    deployments sharing one database would see each other's slugs, queued jobs and leftovers.
    The PostgreSQL role needs CREATEDB. With TASKS_BACKEND=rq the deployment's queue is a Redis
    database of its own, leased for the block (scripts/live_redis.py) for the same reason.
    """
    env = app_env(workdir, **extra)
    with ExitStack() as stack:
        if env["TASKS_BACKEND"] == "rq":
            env["REDIS_URL"] = stack.enter_context(redis_database(
                env.get("REDIS_URL") or "redis://127.0.0.1:6379/0"))
        yield stack.enter_context(_deployment_database(env, template_dir))


@contextmanager
def _deployment_database(env: dict[str, str], template_dir: Path) -> Iterator[dict[str, str]]:
    if not is_postgres(env["DATABASE_URL"]):
        _migrated_sqlite(env, template_dir)
        yield env
        return
    server_url = env["DATABASE_URL"]
    name = _postgres_name(server_url, "live")
    with _postgres_admin(server_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(_postgres_template(env))))
    try:
        yield {**env, "DATABASE_URL": _with_database(server_url, name)}
    finally:
        postgres_drop(server_url, name)


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run one manage.py command to completion; raise with its output when it fails."""
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def query(env: dict[str, str], statement: str, *params: object) -> list[tuple]:
    """Run one SQL statement on the deployment's database directly (not through the app) and
    return its rows. Placeholders are `?`, for SQLite and PostgreSQL alike; PostgreSQL returns
    JSON columns decoded, SQLite as text (`json_value` reads both)."""
    url = env["DATABASE_URL"]
    if not is_postgres(url):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as connection:
            return connection.execute(statement, params).fetchall()
    # psycopg's placeholder is %s, so a literal % must be doubled.
    statement = statement.replace("%", "%%").replace("?", "%s")
    with psycopg.connect(**_postgres_params(url), autocommit=True) as connection:
        return connection.execute(statement, params).fetchall()


def json_value(value: object) -> object:
    """A JSON column's value as `query` returned it: text from SQLite, decoded from PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


# -- one database per deployment ------------------------------------------------------------------


def is_postgres(url: str) -> bool:
    return dj_database_url.parse(url)["ENGINE"].startswith(
        ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"))


def postgres_exists(url: str, name: str) -> bool:
    """Whether the server of `url` has a database called `name`."""
    with _postgres_admin(url) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                             (name,)).fetchone() is not None


def postgres_drop(url: str, name: str) -> None:
    """Drop database `name` on the server of `url`, closing whatever is still connected to it
    (a gunicorn thread's kept connection, a SIGKILLed worker's): WITH (FORCE), PostgreSQL 13+."""
    with _postgres_admin(url) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def _postgres_params(url: str) -> dict:
    config = dj_database_url.parse(url)
    params = {"dbname": config["NAME"], "user": config["USER"], "password": config["PASSWORD"],
              "host": config["HOST"], "port": config["PORT"], **config.get("OPTIONS", {})}
    return {key: value for key, value in params.items() if value not in ("", None)}


def _postgres_admin(url: str) -> psycopg.Connection:
    """A connection for CREATE/DROP DATABASE: to the database named in the caller's URL (the
    role may not be allowed into the `postgres` maintenance database), outside a transaction,
    as those statements require."""
    return psycopg.connect(**_postgres_params(url), autocommit=True)


def _postgres_name(url: str, kind: str) -> str:
    """`<the URL's database>_<kind>_<random hex>`, within PostgreSQL's 63-byte identifiers."""
    base = dj_database_url.parse(url)["NAME"][:30]
    return f"{base}_{kind}_{secrets.token_hex(6)}"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


_TEMPLATES: dict[str, Path] = {}
_POSTGRES_TEMPLATES: dict[str, str] = {}


def _postgres_template(env: dict[str, str]) -> str:
    """A database on the server of env's DATABASE_URL, migrated once per process and dropped
    when the process exits; CREATE DATABASE ... TEMPLATE copies it in a second, where migrating
    each deployment from scratch would take half a minute."""
    url = env["DATABASE_URL"]
    if url not in _POSTGRES_TEMPLATES:
        name = _postgres_name(url, "livetemplate")
        with _postgres_admin(url) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        atexit.register(postgres_drop, url, name)
        # The migrate process has exited when this returns: nobody stays connected to the
        # template, which CREATE DATABASE ... TEMPLATE requires.
        manage({**env, "DATABASE_URL": _with_database(url, name)}, "migrate", "--noinput")
        _POSTGRES_TEMPLATES[url] = name
    return _POSTGRES_TEMPLATES[url]


def _migrated_sqlite(env: dict[str, str], cache_dir: Path) -> None:
    """Create the deployment's SQLite database, migrated, by copying a template migrated once.

    Migrating from scratch costs half a minute on a small machine; a file copy costs nothing.
    """
    target = Path(env["DATABASE_URL"].removeprefix("sqlite:///"))
    key = str(cache_dir)
    if key not in _TEMPLATES:
        cache_dir.mkdir(parents=True, exist_ok=True)
        template = cache_dir / "template.sqlite3"
        manage({**env, "DATABASE_URL": f"sqlite:///{template}"}, "migrate", "--noinput")
        # Fold the WAL into the main file so one file copy carries everything.
        with sqlite3.connect(template) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _TEMPLATES[key] = template
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATES[key], target)


def seed(env: dict[str, str], *args: str) -> dict:
    """Run a scripts/live_seed.py command in the deployment's environment; return its JSON."""
    done = subprocess.run([PYTHON, str(REPO / "scripts" / "live_seed.py"), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seed {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.RequestException:  # refused while booting, or a slow first answer
            time.sleep(0.2)
    raise TimeoutError(f"nothing answered at {url} within {timeout} s")


@contextmanager
def gunicorn(env: dict[str, str], *, workers: int = 2, threads: int = 4,
             log_path: Path | None = None) -> Iterator[str]:
    """Serve the app with gunicorn on a free local port; yield its base URL ("http://host:port")."""
    port = free_port()
    with ExitStack() as stack:
        log = stack.enter_context(open(log_path, "w")) if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "annotator.wsgi",
             "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--graceful-timeout", "5",
             "--config", str(REPO / "scripts" / "gunicorn_live.py"),
             "--env", f"DJANGO_SETTINGS_MODULE={env['DJANGO_SETTINGS_MODULE']}"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base + "/accounts/login/", process)
            yield base
        finally:
            stop(process)


def start_worker(env: dict[str, str], *, log_path: Path, batch: bool = False,
                 interval: float = 0.1) -> subprocess.Popen:
    """Start `manage.py worker` (stale-job recovery, then the task queue) in its own session."""
    args = [PYTHON, "manage.py", "worker", "--interval", str(interval)]
    if batch:
        args.append("--batch")
    # The worker writes to its own copy of the file descriptor; ours can close at once.
    with open(log_path, "a") as log:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def worker_ready_line(env: dict[str, str]) -> str:
    """What a worker of the deployment's queue logs once it waits for jobs (at LOG_LEVEL=INFO)."""
    return "Listening on" if env["TASKS_BACKEND"] == "rq" else "Starting worker"


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Stop a process we started (and its children) with SIGTERM, then SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def login_session(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    """A requests.Session logged in through the real login form (CSRF cookie and all)."""
    session = requests.Session()
    page = session.get(f"{base}/accounts/login/", timeout=30)
    page.raise_for_status()
    answer = session.post(f"{base}/accounts/login/", timeout=30, allow_redirects=False, data={
        "username": username, "password": password,
        "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/accounts/login/"})
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise RuntimeError(f"login as {username} failed: {answer.status_code}")
    return session
