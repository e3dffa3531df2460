"""Async database engines and sessions (SQLModel over SQLAlchemy 2).

PostgreSQL (asyncpg) in production and in the tests; SQLite (aiosqlite) is the embedded
default of `make run`. One `AsyncSession` per request or message, `expire_on_commit=False`
because async code must never lazy-load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]


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


async def lock_for_transaction(session: AsyncSession, name: str) -> None:
    """Serialize a transaction with any other holding the same named lock (PostgreSQL
    advisory lock, released at commit). SQLite serializes writers already."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        await session.exec(text("SELECT pg_advisory_xact_lock(:k)").bindparams(k=key))  # type: ignore[call-overload]


async def ping(session: AsyncSession) -> None:
    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
