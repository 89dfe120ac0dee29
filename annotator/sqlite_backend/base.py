"""Django's SQLite backend, with write transactions that take turns fairly under load.

Every transaction here starts with BEGIN IMMEDIATE (settings.py), which takes SQLite's one
write lock up front. While another connection holds it, SQLite's own busy handler sleeps
1, 2, 5, 10, 15, 20, 25 ... then 100 ms between tries, so a request that has already waited
keeps missing the few milliseconds the lock is free, while newcomers get it. Under the load
benchmark (50 experts, gunicorn 2 workers x 4 threads) that made BEGIN wait 40 ms on average,
0.2 s at the 95th percentile and up to 2.7 s, for transactions that hold the lock ~3 ms. So:

1. The threads of one process take turns on a Python lock first: a waiting thread sleeps
   without holding the GIL and starts as soon as the transaction before it ends.
2. That one thread then competes with the other processes (the other gunicorn workers, the
   task worker) by trying again every half millisecond instead of backing off, for as long as
   SQLite's busy timeout allows; then it fails with "database is locked" as before.

Writes outside a transaction and in-memory databases (the test suite's) are left as they are.
"""

from __future__ import annotations

import os
import threading
import time

from django.db.backends.sqlite3 import base
from django.db.backends.utils import debug_transaction

Database = base.Database

# One write transaction at a time per process (each thread has its own connection).
_WRITER = threading.Lock()


def _new_writer_lock() -> None:
    # A forked child (gunicorn worker) starts with no transaction, so with a free lock.
    global _WRITER
    _WRITER = threading.Lock()


os.register_at_fork(after_in_child=_new_writer_lock)
# How long to wait between two tries of BEGIN IMMEDIATE while another process writes.
RETRY_SECONDS = 0.0005


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_writer = False

    def _start_transaction_under_autocommit(self) -> None:
        if self.transaction_mode != "IMMEDIATE" or self.is_in_memory_db():
            super()._start_transaction_under_autocommit()
            return
        raw = self.connection
        (busy_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
        deadline = time.monotonic() + busy_ms / 1000
        # 1. Our turn in this process (if that takes the whole timeout, try SQLite anyway once).
        self._holds_writer = _WRITER.acquire(timeout=busy_ms / 1000)
        try:
            # 2. SQLite's write lock, tried every RETRY_SECONDS instead of its busy handler.
            with debug_transaction(self, "BEGIN IMMEDIATE"), self.wrap_database_errors:
                raw.execute("PRAGMA busy_timeout = 0")
                try:
                    while True:
                        try:
                            raw.execute("BEGIN IMMEDIATE")
                            return
                        except Database.OperationalError as error:
                            busy = error.sqlite_errorcode & 0xFF == Database.SQLITE_BUSY
                            if not busy or time.monotonic() >= deadline:
                                raise
                        time.sleep(RETRY_SECONDS)
                finally:
                    raw.execute(f"PRAGMA busy_timeout = {int(busy_ms)}")
        except BaseException:
            self._release_writer()
            raise

    def _release_writer(self) -> None:
        if self._holds_writer:
            self._holds_writer = False
            _WRITER.release()

    # A transaction ends with a commit, a rollback or a closed connection: each gives the
    # process's turn to the next thread.
    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer()
