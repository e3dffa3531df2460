"""Alembic, driven from code: each service keeps its own `migrations/` folder and calls
`upgrade(script_location, url)` at start-up (the prestart step) or from its CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db import is_sqlite

MIGRATION_LOCK = 0x7265626F6E64  # "rebond": one key for all services (one DB each)


def alembic_config(script_location: Path, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(script_location: Path, url: str, revision: str = "head") -> None:
    # Alembic's API is synchronous and its env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(command.upgrade, alembic_config(script_location, url), revision)


def run_env() -> None:
    """The body of every service's `migrations/env.py` (online mode, async engine)."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is set by alembic_config()"

    def do_run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Two replicas starting together would both create the same tables: the
            # second waits here, then finds the schema at head and does nothing.
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        context.configure(
            connection=connection,
            target_metadata=None,
            render_as_batch=is_sqlite(url),  # SQLite alters tables by copying them
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())
