"""The tables are declared twice — as SQLModel rows (what the code reads and writes) and
as Alembic migrations (what a database is made of). This test migrates a fresh database
of every service to head, on PostgreSQL and on SQLite, and asks Alembic's autogenerate
what a new migration would have to change to match the models: nothing, or the test
names each difference."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from shared import migrations
from shared.idempotency import IdempotencyRecord
from shared.messaging.tables import InboxMessage, OutboxEvent, RelayLease

SERVICES = ("site_registry", "campaigns", "detection", "funding")
SHARED_TABLES = {
    m.__tablename__
    for m in (OutboxEvent, InboxMessage, RelayLease, IdempotencyRecord)  # type: ignore[attr-defined]
}


def service_metadata(service: str) -> sa.MetaData:
    """The tables of one service's database: its own rows and the shared ones."""
    importlib.import_module(f"services.{service}.adapters.orm")
    prefix = f"services.{service}."
    owned = set(SHARED_TABLES)
    for mapper in SQLModel._sa_registry.mappers:  # type: ignore[attr-defined]
        cls = mapper.class_
        if cls.__module__.startswith(prefix):
            owned.add(cls.__tablename__)
    metadata = sa.MetaData()
    for name in sorted(owned):
        SQLModel.metadata.tables[name].to_metadata(metadata)
    return metadata


def _diff(connection: sa.Connection, metadata: sa.MetaData) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": False,
            "include_object": lambda obj, name, kind, reflected, compare_to: (
                not (kind == "table" and name == "alembic_version")
            ),
        },
    )
    return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("service", SERVICES)
async def test_models_and_migrations_agree(service: str, database_url: str) -> None:
    module = importlib.import_module(f"services.{service}.bootstrap")
    await migrations.upgrade(module.MIGRATIONS, database_url)
    metadata = service_metadata(service)
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff, metadata)
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: the migrations and the models differ:\n" + "\n".join(
        map(repr, diff)
    )
