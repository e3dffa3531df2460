"""Transient or the message's fault: one classification for consumers, relay and APIs;
and repeated failures logged once per interval, with a count."""

from __future__ import annotations

import errno
import logging
import sqlite3

import asyncpg.exceptions as pg
import pytest
import sqlalchemy.exc as sa_exc
from aiokafka.errors import KafkaConnectionError, ProducerFenced

from shared.errors import DomainError
from shared.logging import RepeatFilter, Throttled
from shared.messaging.consumer import PermanentError
from shared.transient import describe, is_transient

pytestmark = pytest.mark.unit


def wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.OperationalError("SELECT 1", {}, orig)  # as SQLAlchemy raises it


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
        ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        TimeoutError("timed out"),
        OSError(errno.EHOSTUNREACH, "no route to host"),
        KafkaConnectionError("broker down"),
        pg.CannotConnectNowError("the database system is starting up"),
        pg.AdminShutdownError("terminating connection due to administrator command"),
        pg.SerializationError("could not serialize access"),
        pg.DeadlockDetectedError("deadlock detected"),
        pg.LockNotAvailableError("lock timeout"),
        pg.TooManyConnectionsError("too many clients"),
        wrapped(sqlite3.OperationalError("database is locked")),
        wrapped(sqlite3.OperationalError("unable to open database file")),
        sa_exc.TimeoutError("QueuePool limit reached"),
        sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:30],
)
def test_infrastructure_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


def test_a_cause_deep_in_the_chain_counts() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("could not load the project") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad value"),
        TypeError("can't compare offset-naive and offset-aware datetimes"),
        KeyError("site"),
        PermanentError("unknown project"),
        DomainError("jobs_lost must be positive"),
        FileNotFoundError(errno.ENOENT, "no such file"),
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key value")),
        wrapped(sqlite3.OperationalError("no such table: projects")),
        pg.UniqueViolationError("duplicate key"),
        ProducerFenced(),  # not retriable: the relay stops publishing, it does not retry
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_the_same_message_would_cause_again_is_not(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_describe_is_one_line() -> None:
    assert describe(ValueError("first line\nsecond")) == "ValueError: first line"
    assert describe(TimeoutError()) == "TimeoutError"


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))

    info = warning


def test_a_repeated_failure_is_logged_once_per_interval_with_a_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("shared.logging.time.monotonic", lambda: now[0])
    log = Recorder()
    throttled = Throttled(log, interval_s=30)
    for _ in range(50):  # a broker outage: fifty failures in ten seconds
        throttled.failure("relay", "publish failed", error="KafkaConnectionError")
        now[0] += 0.2
    assert len(log.lines) == 1
    now[0] += 25
    throttled.failure("relay", "publish failed", error="KafkaConnectionError")
    assert log.lines[-1][1]["repeated"] == 50
    throttled.recovered("relay", "publish recovered")
    assert log.lines[-1] == ("publish recovered", {"failures": 51})
    assert not throttled.failing("relay")


def test_library_records_are_rate_limited_by_template(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr("shared.logging.time.monotonic", lambda: now[0])
    keep = RepeatFilter(interval_s=30)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, None, None)

    passed = [keep.filter(record("Unable connect to node with id %s")) for _ in range(100)]
    assert passed.count(True) == 1
    assert keep.filter(record("another message"))
    now[0] = 31
    later = record("Unable connect to node with id %s")
    assert keep.filter(later) and "99 more like it" in str(later.msg)
