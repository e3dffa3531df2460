"""Transient or not: is a failure the infrastructure's (retry until it returns) or the
message's (the same message would fail again)?

The consumer runner, the relay and the HTTP error handler ask the same question, and
must answer it the same way. Transient: the database or the broker cannot be reached,
a connection was reset, the server is shutting down or starting up, a serialization
failure, a deadlock or a lock timeout, a pool or network timeout. Everything else —
a bug, a constraint the message violates, a refused domain rule — would happen again
with the same message.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import asyncpg.exceptions as pg_exc
import sqlalchemy.exc as sa_exc
from aiokafka.errors import KafkaError as _KafkaError

_PG_TRANSIENT: tuple[type[BaseException], ...] = (
    pg_exc.PostgresConnectionError,  # connection failure, does not exist, rejected
    pg_exc.OperatorInterventionError,  # admin/crash shutdown, cannot connect now
    pg_exc.TransactionRollbackError,  # serialization failure, deadlock detected
    pg_exc.LockNotAvailableError,  # lock timeout
    pg_exc.InsufficientResourcesError,  # too many connections, disk full
    pg_exc.InterfaceError,  # the connection is closed / in an unusable state
)

# SQLite's transient conditions all arrive as sqlite3.OperationalError with these texts.
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "unable to open database")


_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ETIMEDOUT,
        errno.EPIPE,
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])


def is_transient(exc: BaseException) -> bool:
    """True when the failure is the infrastructure's, not the message's."""
    for e in _chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sa_exc.DisconnectionError | sa_exc.TimeoutError):
            return True  # pool checkout timeout, pre-ping found the server gone
        if isinstance(e, sa_exc.InterfaceError):
            return True
        if isinstance(e, _PG_TRANSIENT):
            return True
        if isinstance(e, _KafkaError) and e.retriable:
            return True
        if type(e).__name__ == "OperationalError" and type(e).__module__.startswith("sqlite3"):
            text = str(e).lower()
            if any(marker in text for marker in _SQLITE_TRANSIENT):
                return True
        if isinstance(e, ConnectionError | TimeoutError):
            return True  # refused, reset, aborted; a network or driver timeout
        if isinstance(e, socket.gaierror) or (
            isinstance(e, OSError) and e.errno in _NETWORK_ERRNOS
        ):
            return True  # no route to host, network unreachable, name not resolved
    return False


def describe(exc: BaseException) -> str:
    """One line for logs and readiness: the outermost type and its message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
