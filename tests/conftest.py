"""Fixtures: one real broker and one real PostgreSQL server per test session; per test,
a fresh database and a random topic prefix (so tests never see each other's data)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.infra import Broker, Database, start_broker, start_database

_used: dict[str, str] = {}


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = start_broker()
    _used["Kafka broker"] = b.description
    print(f"\n[infra] Kafka: {b.description}")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    d = start_database()
    _used["PostgreSQL"] = d.description
    print(f"\n[infra] PostgreSQL: {d.description}")
    yield d
    d.stop()


@pytest.fixture
def topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
async def database_url(database: Database) -> AsyncIterator[str]:
    yield await database.create_database(f"test_{uuid.uuid4().hex[:12]}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _used:
        terminalreporter.section("real infrastructure used")
        for what, description in _used.items():
            terminalreporter.write_line(f"{what}: {description}")
    elif os.environ.get("CI"):
        terminalreporter.write_line("no integration test ran: no broker or database started")
