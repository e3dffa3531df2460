"""Fixtures: one real broker and one real PostgreSQL server per test session; per test,
a fresh database and a random topic prefix (so tests never see each other's data).

Every test that takes `database` (or `database_url`) runs twice: on PostgreSQL, what
production runs, and on SQLite, the embedded default `make run` gives a newcomer — what
runs there is tested there too. `TEST_BACKENDS=postgresql` (or `sqlite`) narrows a local
run; CI runs both. A test that is about PostgreSQL itself (advisory locks, a server
restart) takes `postgres` instead."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.infra import (
    Broker,
    Database,
    SqliteDatabases,
    start_broker,
    start_database,
)

BACKENDS = ("postgresql", "sqlite")

_used: dict[str, str] = {}


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = start_broker()
    _used["Kafka broker"] = b.description
    print(f"\n[infra] Kafka: {b.description}")
    yield b
    b.stop()


def _backends() -> list[str]:
    wanted = [b.strip() for b in os.environ.get("TEST_BACKENDS", ",".join(BACKENDS)).split(",")]
    unknown = sorted(set(wanted) - set(BACKENDS) - {""})
    if unknown:
        raise pytest.UsageError(f"TEST_BACKENDS: unknown backends {unknown}; known: {BACKENDS}")
    if os.environ.get("CI") and set(wanted) != set(BACKENDS):
        raise pytest.UsageError("CI runs every backend: unset TEST_BACKENDS")
    return [b for b in BACKENDS if b in wanted]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Database]:
    d = start_database()
    _used["PostgreSQL"] = d.description
    print(f"\n[infra] PostgreSQL: {d.description}")
    yield d
    d.stop()


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    d = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    _used["SQLite"] = d.description
    return d


@pytest.fixture(scope="session", params=_backends())
def database(request: pytest.FixtureRequest) -> Database | SqliteDatabases:
    """The database server of a test: PostgreSQL, then SQLite (the embedded default)."""
    name = "postgres" if request.param == "postgresql" else "sqlite_databases"
    backend: Database | SqliteDatabases = request.getfixturevalue(name)
    return backend


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def database_url(database: Database | SqliteDatabases) -> AsyncIterator[str]:
    yield await database.create_database(f"test_{uuid.uuid4().hex[:12]}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _used:
        terminalreporter.section("real infrastructure used")
        for what, description in _used.items():
            terminalreporter.write_line(f"{what}: {description}")
    elif os.environ.get("CI"):
        terminalreporter.write_line("no integration test ran: no broker or database started")
