"""A Redis database of its own for each throwaway deployment (and for the test process).

PostgreSQL deployments get a fresh database each (scripts/live_server.py); the RQ queue needs
the same: deployments sharing one Redis database would take each other's jobs, and jobs left
over from one test would run in the next. A Redis server has numbered databases (16 by
default; scripts/services.sh starts one with 64), so a deployment leases a free one: a number
other than the caller's whose database is empty, marked with a lease key naming the holder.
The lease ends with FLUSHDB. A process killed outright leaves its database marked; the next
lease on the same host reclaims it once that process is gone. A non-empty database without our
mark is never touched.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import redis

LEASE_KEY = "superalign:live-lease"
# Atomically: take an empty database, or one whose lease names a holder known to be dead.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if redis.call('DBSIZE') == 0 or (holder and holder == ARGV[2]) then
  redis.call('FLUSHDB')
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


class NoFreeDatabase(RuntimeError):
    pass


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_holder(value: bytes | None) -> str:
    """The lease value if it names a process of this host that no longer runs, else ""."""
    if not value:
        return ""
    host, _, pid = value.decode().rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return ""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return value.decode()
    except PermissionError:
        return ""
    return ""


def with_db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


def _database_count(client: redis.Redis) -> int:
    try:
        return int(client.config_get("databases")["databases"])
    except (redis.ResponseError, KeyError):  # CONFIG is often disabled on managed servers
        return 16


def redis_lease(url: str) -> str:
    """Lease a free database on the server of `url`; return its URL. Release with redis_release."""
    client = redis.Redis.from_url(url)
    own = client.connection_pool.connection_kwargs.get("db", 0)
    count = _database_count(client)
    client.close()
    for number in range(1, count):
        if number == own:
            continue
        candidate = redis.Redis.from_url(with_db(url, number))
        try:
            dead = _dead_holder(candidate.get(LEASE_KEY))
            if candidate.eval(_CLAIM, 1, LEASE_KEY, _holder(), dead or "\0"):
                return with_db(url, number)
        finally:
            candidate.close()
    raise NoFreeDatabase(f"no empty database left on the Redis server of {url} (of {count}); "
                         "start one with more (redis-server --databases 64)")


def redis_reset(url: str) -> None:
    """Empty a leased database but keep the lease (between two tests of one process)."""
    client = redis.Redis.from_url(url)
    try:
        holder = client.get(LEASE_KEY)
        with client.pipeline() as pipe:
            pipe.flushdb()
            if holder:
                pipe.set(LEASE_KEY, holder)
            pipe.execute()
    finally:
        client.close()


def redis_release(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@contextmanager
def redis_database(url: str) -> Iterator[str]:
    """Yield the URL of a Redis database leased for the block, emptied afterwards."""
    leased = redis_lease(url)
    try:
        yield leased
    finally:
        redis_release(leased)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
