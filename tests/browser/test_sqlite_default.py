"""The pages on `make run`'s embedded default: every service on SQLite (in the run's data
dir), the session's real Kafka broker. The paths a newcomer takes first: the crisis cell
declares the closure and sees the API's ledger and the campaign's map, a consultant sends
a survey from the phone, and its project reaches the dashboard's figures.

(The other browser modules run on PostgreSQL; this module's Rebond runs before theirs
starts and stops after its last test, so the two never load the machine together.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import declare_bethune_shock
from tests.browser.test_cellule import expected_cells, page_cells
from tests.browser.test_terrain import (
    CONSULTANT,
    TERRITORY,
    planned_week,
    send_survey_online,
    visit_now,
    wait_until,
)
from tests.support.browser import (
    PHONE,
    Browser,
    PageFigures,
    RunningRebond,
    start_rebond,
    stop_rebond,
)
from tests.support.infra import Broker


@pytest.fixture(scope="module")
def sqlite_rebond(
    chromium: Path, broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningRebond]:
    running = start_rebond(broker.bootstrap_servers, {}, tmp_path_factory.mktemp("sqlite-run"))
    try:
        assert "database: SQLite" in running.log.read_text(errors="replace")
        yield running
    finally:
        stop_rebond(running)


@pytest.fixture(scope="module")
def sqlite_shock(sqlite_rebond: RunningRebond) -> dict[str, Any]:
    return declare_bethune_shock(sqlite_rebond)


@pytest.fixture(scope="module")
def sqlite_browser(
    playwright: Any, sqlite_rebond: RunningRebond, page_figures: PageFigures
) -> Iterator[Browser]:
    b = Browser(playwright, sqlite_rebond, page_figures)
    try:
        yield b
    finally:
        b.close()


def ledger_of(rebond: RunningRebond, shock_id: str) -> dict[str, Any]:
    cell = rebond.token("--role", "crisis_cell", "--territory", TERRITORY, "--sub", "sqlite-cell")
    status, ledger = rebond.call("GET", f"{rebond.api('detection')}/shocks/{shock_id}/ledger", cell)
    assert status == 200, ledger
    return ledger  # type: ignore[no-any-return]


def test_on_sqlite_the_dashboard_shows_the_apis_ledger_and_the_campaign_map(
    sqlite_browser: Browser, sqlite_rebond: RunningRebond, sqlite_shock: dict[str, Any]
) -> None:
    shock_id = sqlite_shock["shock"]["id"]
    page = sqlite_browser.login("crisis_cell")
    sqlite_browser.open(page, f"/cellule/?choc={shock_id}", name="cellule (SQLite)")
    page.wait_for_selector("#ledger-table [data-ledger-stage=lost]")
    assert page_cells(page) == expected_cells(ledger_of(sqlite_rebond, shock_id))
    targets = sqlite_shock["campaign"]["targets"]
    page.wait_for_selector("#campaign-map svg circle[data-site-id]")
    assert page.locator("#campaign-map svg circle[data-site-id]").count() == targets
    assert page.locator("#campaign-map svg path[data-commune]").count() == 108
    assert page.errors == []  # type: ignore[attr-defined]


def test_on_sqlite_a_survey_from_the_phone_reaches_the_dashboards_figures(
    sqlite_browser: Browser, sqlite_rebond: RunningRebond, sqlite_shock: dict[str, Any]
) -> None:
    shock_id = sqlite_shock["shock"]["id"]
    before = ledger_of(sqlite_rebond, shock_id)["endogenous"]["detected"]
    week, (visit,) = planned_week(sqlite_rebond, sqlite_shock["campaign"], 1)
    phone = sqlite_browser.login(
        "consultant", viewport=PHONE, subject=CONSULTANT, territory=TERRITORY
    )
    send_survey_online(phone, week, visit["id"])
    after = visit_now(sqlite_rebond, visit)
    assert (after["status"], after.get("outcome")) == ("completed", "reached")

    # Through Kafka to detection, and onto the crisis cell's open dashboard.
    wait_until(
        lambda: ledger_of(sqlite_rebond, shock_id)["endogenous"]["detected"] == before + 6,
        "the survey's 6 jobs in the ledger",
        timeout=30,
    )
    cell = sqlite_browser.login("crisis_cell")
    cell.goto(f"/cellule/?choc={shock_id}")
    cell.wait_for_selector("#ledger-table [data-ledger-stage=lost]")
    cell_value = "#ledger-table [data-ledger-stage=detected][data-ledger-origin=endogenous]"
    assert int("".join(c for c in cell.inner_text(cell_value) if c.isdigit())) == before + 6
    assert phone.errors == [] and cell.errors == []  # type: ignore[attr-defined]
