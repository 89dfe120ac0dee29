"""The SQLite backend's write transactions (annotator/sqlite_backend) on a real database file.

The suite's own database is in memory, where the backend changes nothing, so these tests open
their own connections to a file, the way each gunicorn thread does.
"""

import sqlite3
import threading
import time

import pytest
from django.db import OperationalError
from django.db.utils import ConnectionHandler

from annotator.settings import database_from_url


@pytest.fixture
def connections(tmp_path, django_db_blocker):
    """Per-thread connections to a fresh WAL database file, with a 300 ms busy timeout."""
    config = database_from_url(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    config["OPTIONS"]["init_command"] = config["OPTIONS"]["init_command"].replace(
        "busy_timeout=20000", "busy_timeout=300")
    handler = ConnectionHandler({"default": config})
    with django_db_blocker.unblock():
        with handler["default"].cursor() as cursor:
            cursor.execute("CREATE TABLE counter (n INTEGER)")
            cursor.execute("INSERT INTO counter VALUES (0)")
        yield handler
        handler.close_all()


def _increment(connection, *, fail: bool = False) -> None:
    """One write transaction, started as transaction.atomic() starts one."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE counter SET n = n + 1")
        if fail:
            raise ValueError("boom")
        connection.commit()
    except ValueError:
        connection.rollback()
    finally:
        connection.set_autocommit(True)


def _count(connections) -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT n FROM counter")
        return cursor.fetchone()[0]


def test_it_is_the_engine_for_sqlite_files(connections):
    connection = connections["default"]
    assert type(connection).__module__ == "annotator.sqlite_backend.base"
    assert connection.vendor == "sqlite"


def test_threads_writing_at_once_all_commit(connections, django_db_blocker):
    errors = []

    def work() -> None:
        with django_db_blocker.unblock():
            try:
                for _ in range(25):
                    _increment(connections["default"])
            except Exception as error:  # noqa: BLE001 (reported below)
                errors.append(error)
            finally:
                connections["default"].close()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _count(connections) == 200


def test_the_turn_is_given_back_by_commit_rollback_and_close(connections):
    from annotator.sqlite_backend import base

    connection = connections["default"]
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    assert base._WRITER.locked()  # the other threads of this process wait for their turn
    connection.commit()
    connection.set_autocommit(True)
    assert not base._WRITER.locked()
    _increment(connection, fail=True)  # rolled back
    assert not base._WRITER.locked()
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    connection.close()  # in the middle of a transaction
    assert not base._WRITER.locked()
    assert _count(connections) == 0


def test_it_waits_for_another_process_then_gives_up_after_the_busy_timeout(connections):
    path = connections["default"].settings_dict["NAME"]
    # Another process's writer (a plain connection: it does not take the process's turn).
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(OperationalError, match="locked"):
        _increment(connections["default"])
    assert time.monotonic() - started >= 0.25
    # The busy timeout is SQLite's again for writes outside a transaction.
    with connections["default"].cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 300

    # Released within the timeout: the waiting transaction goes through.
    threading.Timer(0.1, other.rollback).start()
    _increment(connections["default"])
    assert _count(connections) == 1
    other.close()
