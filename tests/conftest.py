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
from typing import Any

import pytest

from tests.support import summary
from tests.support.infra import (
    Broker,
    Database,
    SqliteDatabases,
    start_broker,
    start_database,
)

BACKENDS = ("postgresql", "sqlite")


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    b = start_broker()
    summary.add("infra", ["Kafka broker", b.description])
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
    summary.add("infra", ["PostgreSQL", d.description])
    print(f"\n[infra] PostgreSQL: {d.description}")
    yield d
    d.stop()


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    d = SqliteDatabases(tmp_path_factory.mktemp("sqlite"))
    summary.add("infra", ["SQLite", d.description])
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


def _rank(item: pytest.Item) -> int:
    """Where a test goes in the run. Under `make test`'s workers (pytest-xdist,
    `--dist loadfile`) a test module is a work unit, so that its fixtures (a stack of
    services, a seeded database) are set up once, and units are handed out in this
    order: the slowest first (the fault suite, ~7 min), so that it never ends the run
    alone; the browser modules last, because Playwright keeps its event loop running on
    the worker's thread for the rest of its session, which no later async test could
    share (the SQLite page module, with its own Rebond, after the others)."""
    module = item.nodeid.split("::")[0]
    if module.startswith("tests/faults/"):
        return 0
    if module.startswith("tests/browser/"):
        return 3 if module.endswith("test_sqlite_default.py") else 2
    return 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # After the other hooks (pytest's own orders the tests by their fixtures'
    # parameters): a stable sort, which keeps that order within each rank.
    items.sort(key=_rank)


def pytest_sessionfinish(session: pytest.Session) -> None:
    summary.send(session.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist: a worker is done; its summary records join the controller's."""
    summary.receive(getattr(node, "workeroutput", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every end-of-run summary is printed from here: under xdist the controller loads
    this conftest only (it collects no test, so never tests/*/conftest.py). A worker
    runs this hook too, with only its own records: it writes and prints nothing."""
    if summary.is_worker(terminalreporter.config):
        return
    from tests.faults import harness
    from tests.support import browser

    harness.report(terminalreporter)
    browser.report(terminalreporter)
    # Each worker starts its own broker and servers: one line per distinct one.
    used = sorted({(what, description) for what, description in summary.records("infra")})
    if used:
        terminalreporter.section("real infrastructure used")
        for what, description in used:
            terminalreporter.write_line(f"{what}: {description}")
    elif os.environ.get("CI"):
        terminalreporter.write_line("no integration test ran: no broker or database started")
