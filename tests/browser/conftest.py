"""Browser tests: headless Chromium from Debian's package, driven by Playwright for
Python, against the whole system as `make run` starts it (its script), on the session's
real Kafka broker and PostgreSQL. One running Rebond for the module's tests; the Béthune
demo (ti-3205, 165 sites) is loaded by the registry at start, the Bridgestone shock is
declared once (`bethune_shock`) and the campaign it starts is what the pages show."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import (
    Browser,
    PageFigures,
    RunningRebond,
    ensure_chromium,
    playwright_session,
    start_rebond,
    stop_rebond,
)
from tests.support.infra import Broker, Database

BRIDGESTONE = "36120038900019"
SERVICES = ("site_registry", "campaigns", "detection", "funding")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests (the root conftest runs them last)."""
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="session")
async def rebond_databases(postgres: Database) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return {name: await postgres.create_database(f"web_{name}_{suffix}") for name in SERVICES}


@pytest.fixture(scope="session")
def rebond(
    chromium: Path,
    broker: Broker,
    rebond_databases: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningRebond]:
    running = start_rebond(
        broker.bootstrap_servers, rebond_databases, tmp_path_factory.mktemp("make-run")
    )
    try:
        yield running
    finally:
        stop_rebond(running)


@pytest.fixture(scope="session")
def bethune_shock(rebond: RunningRebond) -> dict[str, Any]:
    return declare_bethune_shock(rebond)


def declare_bethune_shock(rebond: RunningRebond) -> dict[str, Any]:
    """The Bridgestone closure (900 jobs, 16 September 2020) declared by the crisis cell,
    and the campaign it starts: {"shock": …, "campaign": …}."""
    cell = rebond.token("--role", "crisis_cell", "--territory", "ti-3205", "--sub", "setup-cell")
    status, shock = rebond.call(
        "POST",
        f"{rebond.api('registry')}/closure-shocks",
        cell,
        {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900},
    )
    assert status in (200, 201), shock
    deadline = time.monotonic() + 60
    while True:
        status, campaigns = rebond.call("GET", f"{rebond.api('campaigns')}/campaigns", cell)
        if status == 200 and campaigns and campaigns[0]["targets"] >= 164:
            break
        assert time.monotonic() < deadline, f"no campaign for the shock: {campaigns}"
        time.sleep(0.2)
    deadline = time.monotonic() + 60
    while True:  # the ledger knows the shock once detection has read it
        status, ledger = rebond.call(
            "GET", f"{rebond.api('detection')}/shocks/{shock['id']}/ledger", cell
        )
        if status == 200:
            break
        assert time.monotonic() < deadline, f"no ledger for the shock: {ledger}"
        time.sleep(0.2)
    return {"shock": shock, "campaign": campaigns[0]}


@pytest.fixture(scope="session")
def page_figures() -> PageFigures:
    # Written to bench-results/web-pages.md at the end of the run, from every worker's
    # rows (tests/support/browser.py, `report`).
    return PageFigures()


@pytest.fixture(scope="session")
def playwright(chromium: Path, broker: Broker, rebond_databases: dict[str, str]) -> Iterator[Any]:
    # The sync Playwright leaves its event loop running on this thread: the session's
    # async fixtures (the broker, the databases) must be set up before it starts.
    with playwright_session() as session:
        yield session


@pytest.fixture(scope="session")
def browser(playwright: Any, rebond: RunningRebond, page_figures: PageFigures) -> Iterator[Browser]:
    b = Browser(playwright, rebond, page_figures)
    try:
        yield b
    finally:
        b.close()
