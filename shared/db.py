"""Async database engines and sessions (SQLModel over SQLAlchemy 2).

PostgreSQL (asyncpg) in production and in the tests; SQLite (aiosqlite) is the embedded
default of `make run`. One `AsyncSession` per request or message, `expire_on_commit=False`
because async code must never lazy-load.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


class NaiveDatetimeError(ValueError):
    """A datetime without offset reached the database: whose clock it reads is unknown."""


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Every timestamp column of every service: stored as UTC, read back timezone-aware.

    PostgreSQL's `timestamptz` already round-trips aware datetimes, but SQLite has no
    timezone type: SQLAlchemy's `DateTime` drops the offset on write and returns naive
    values, so code comparing them with `datetime.now(UTC)` breaks only on the embedded
    default. This type normalises both backends: a naive value is refused on write
    (never guessed), an aware one is converted to UTC (and stored offset-free on SQLite),
    and every value read is UTC-aware.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(f"naive datetime {value.isoformat()} refused: give its offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # SQLite: stored as UTC by process_bind_param
        return value.astimezone(UTC)


def utc_column(*, nullable: bool = False) -> sa.Column[datetime]:
    """A `UtcDateTime` column (for SQLModel's `sa_column=`)."""
    return sa.Column(UtcDateTime(), nullable=nullable)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the HTTP app, the relay and the consumers of `make run` share one file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def lock_for_transaction(session: AsyncSession, name: str, *, shared: bool = False) -> None:
    """Serialize a transaction with any other holding the same named lock, until it
    commits: what it reads after the lock, another holder has committed or not begun.

    PostgreSQL: an advisory transaction lock; `shared` holders do not wait on each
    other, only on (and for) an exclusive one. SQLite: the database's write lock, taken
    now (`BEGIN IMMEDIATE`), whatever the name, shared or not. SQLite has one writer at
    a time, but that is not enough: the driver runs a transaction's reads before its
    first write outside any transaction, so two could both read "absent", then insert
    one after the other (two funding replicas loading the seed). A transaction that has
    written already holds the write lock."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        fn = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        await session.exec(text(f"SELECT {fn}(:k)").bindparams(k=key))  # type: ignore[call-overload]
    elif bind is not None and bind.dialect.name == "sqlite":
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection  # aiosqlite's
        if driver is not None and not driver.in_transaction:
            # Waits for another writer up to the busy timeout (30 s, `_sqlite_pragmas`).
            await connection.exec_driver_sql("BEGIN IMMEDIATE")


async def ping(session: AsyncSession) -> None:
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
