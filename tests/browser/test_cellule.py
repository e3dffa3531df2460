"""The crisis cell's dashboard (/cellule/): the ledger's figures are the API's and follow
it without a reload, the campaign map draws every commune and every placed target (and
the list every target), axe-core finds nothing serious, a declaration refused and a
campaign action are answered in words, on a desktop and on a tablet."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest

from tests.support.browser import Browser, RunningRebond, axe_violations, screenshot

TABLET = {"width": 820, "height": 1180}
STAGES = ("detected", "qualified", "funded", "created")
ORIGINS = ("total", "endogenous", "exogenous")


@pytest.fixture(scope="module")
def cell(rebond: RunningRebond) -> str:
    return rebond.token("--role", "crisis_cell", "--territory", "ti-3205", "--sub", "test-cellule")


def get(rebond: RunningRebond, api: str, path: str, token: str) -> Any:
    status, body = rebond.call("GET", rebond.api(api) + path, token)
    assert status == 200, (path, status, body)
    return body


def expected_cells(ledger: dict[str, Any]) -> dict[tuple[str, str], int]:
    cells = {("lost", "total"): ledger["jobs_lost"]}
    for stage in STAGES:
        for origin in ORIGINS:
            cells[stage, origin] = ledger[origin][stage]
    return cells


def page_cells(page: Any) -> dict[tuple[str, str], int]:
    raw = page.evaluate(
        """() => [...document.querySelectorAll('#ledger-table [data-ledger-stage]')]
             .map(c => [c.dataset.ledgerStage, c.dataset.ledgerOrigin, c.textContent])"""
    )
    return {(s, o): int(re.sub(r"\D", "", text) or "-1") for s, o, text in raw}


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def open_dashboard(browser: Browser, shock_id: str, viewport: dict[str, int] | None = None) -> Any:
    page = browser.login("crisis_cell", **({"viewport": viewport} if viewport else {}))
    page.goto(f"/cellule/?choc={shock_id}")
    page.wait_for_selector("main[aria-busy=false]", timeout=30_000)
    page.wait_for_selector("#ledger-table", timeout=30_000)
    return page


def test_the_ledger_is_the_apis_and_follows_it_without_a_reload(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any], cell: str
) -> None:
    shock_id = bethune_shock["shock"]["id"]
    page = browser.login("crisis_cell", subject="test-cellule")
    paint = browser.open(page, f"/cellule/?choc={shock_id}", name="cellule", viewport="desktop")
    print(f"[cellule] first useful paint, desktop: {paint:.0f} ms")
    page.wait_for_selector("#ledger-table [data-ledger-stage=lost]")
    assert page.locator("#choc").input_value() == shock_id

    # The page and the API at the same moment (another test may move the ledger between
    # two reads: read both again until they agree).
    ledger_path = f"/shocks/{shock_id}/ledger"
    deadline = time.monotonic() + 20
    while True:
        ledger = get(rebond, "detection", ledger_path, cell)
        shown = page_cells(page)
        if shown == expected_cells(ledger):
            break
        assert time.monotonic() < deadline, (shown, expected_cells(ledger))
        page.click("#refresh")
        page.wait_for_timeout(500)
    assert len(shown) == 1 + len(STAGES) * len(ORIGINS)
    rate = page.inner_text("#compensation-rate")
    assert digits(rate) == str(round((ledger["compensation_rate"] or 0) * 100)), rate
    words = page.inner_text("#compensation-text")
    assert "perdus" in words and digits(str(ledger["jobs_lost"])) in digits(words), words
    rows = page.locator("#ledger-series-table tbody tr").count()
    assert rows == len(ledger["series"])
    assert page.locator("#ledger-chart svg path[data-series]").count() == 5

    # An exogenous project of the crisis cell: the figures move on the open page.
    jobs = 37
    status, project = rebond.call(
        "POST",
        rebond.api("detection") + "/projects/exogenous",
        cell,
        {
            "territory_id": "ti-3205",
            "shock_id": shock_id,
            "firm_name": f"Test cellule {uuid.uuid4().hex[:8]}",
            "description": "projet exogène du test de la cellule",
            "jobs_planned": jobs,
        },
    )
    assert status == 201, project
    before = ledger["exogenous"]["detected"]
    deadline = time.monotonic() + 30
    while ledger["exogenous"]["detected"] < before + jobs:
        assert time.monotonic() < deadline, "the ledger never counted the exogenous project"
        time.sleep(0.3)
        ledger = get(rebond, "detection", ledger_path, cell)
    page.wait_for_function(
        """(n) => {
          const c = document.querySelector(
            '#ledger-table [data-ledger-stage=detected][data-ledger-origin=exogenous]');
          return c && Number(c.textContent.replace(/\\D/g, '')) >= n;
        }""",
        arg=before + jobs,
        timeout=25_000,  # the page refreshes every ~15 s by itself
    )
    assert (
        page_cells(page)["detected", "exogenous"]
        == get(rebond, "detection", ledger_path, cell)["exogenous"]["detected"]
    )
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_map_draws_every_commune_and_target_and_the_list_every_target(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any], cell: str
) -> None:
    campaign_id = bethune_shock["campaign"]["id"]
    page = open_dashboard(browser, bethune_shock["shock"]["id"])
    page.wait_for_selector("#campaign-map svg circle[data-site-id]", timeout=30_000)
    page.wait_for_selector("#campaign-list table tbody tr", state="attached")

    outlines = get(rebond, "registry", "/territories/ti-3205/communes.geojson", cell)
    communes = page.locator("#campaign-map svg path[data-commune]").count()
    print(f"[cellule] map: {communes} commune outlines (API: {len(outlines['features'])})")
    assert communes == len(outlines["features"]) == 108

    plan = get(rebond, "campaigns", f"/campaigns/{campaign_id}/plan", cell)
    sites: dict[str, Any] = {}
    cursor = None
    while True:
        path = "/sites?territory=ti-3205&limit=500" + (f"&cursor={cursor}" if cursor else "")
        answer = get(rebond, "registry", path, cell)
        sites.update({s["siret"]: s for s in answer["items"]})
        cursor = answer["next_cursor"]
        if not cursor:
            break
    placed = {
        t["site_id"]
        for t in plan["targets"]
        if t["site_id"] in sites and sites[t["site_id"]]["lon"] is not None
    }
    circles = page.evaluate(
        "() => [...document.querySelectorAll('#campaign-map svg circle')]"
        ".map(c => c.dataset.siteId)"
    )
    print(f"[cellule] map: {len(circles)} sites placed, {len(plan['targets'])} targets")
    assert sorted(circles) == sorted(placed) and len(circles) >= 160
    assert page.locator("#campaign-list table tbody tr").count() == len(plan["targets"])
    planned = sum(1 for t in plan["targets"] if t["status"] == "planned" and t["site_id"] in placed)
    assert page.locator("#campaign-map circle[data-status=planned]").count() == planned
    # The list view, through the toggle.
    assert page.is_hidden("#campaign-list")
    page.click("label[for=vue-liste]")
    assert page.is_visible("#campaign-list table") and page.is_hidden("#campaign-map")
    assert page.errors == []  # type: ignore[attr-defined]


def test_axe_finds_nothing_serious_on_the_map_and_list_views_and_desktop_screenshot(
    browser: Browser, bethune_shock: dict[str, Any]
) -> None:
    page = open_dashboard(browser, bethune_shock["shock"]["id"])
    page.wait_for_selector("#campaign-map svg circle[data-site-id]", timeout=30_000)
    page.wait_for_selector("#progress-consultants")
    page.wait_for_selector("#plan-table")
    screenshot(page, "cellule-desktop")
    assert axe_violations(page) == []
    page.click("label[for=vue-liste]")
    page.wait_for_selector("#campaign-list table", state="visible")
    assert axe_violations(page) == []
    # The accordions open (the chart's table alternative, progress per commune).
    page.click("button[aria-controls=ledger-series]")
    page.wait_for_selector("#ledger-series-table", state="visible")
    assert axe_violations(page) == []


def test_on_a_tablet_the_dashboard_fits_and_paints(
    browser: Browser, bethune_shock: dict[str, Any]
) -> None:
    page = browser.login("crisis_cell", viewport=TABLET)
    paint = browser.open(
        page, f"/cellule/?choc={bethune_shock['shock']['id']}", name="cellule", viewport="tablet"
    )
    print(f"[cellule] first useful paint, tablet 820×1180: {paint:.0f} ms")
    page.wait_for_selector("#campaign-map svg circle[data-site-id]", timeout=30_000)
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px on a tablet"
    box = page.locator("#campaign-map svg").bounding_box()
    assert box and box["width"] <= TABLET["width"]
    screenshot(page, "cellule-tablet")
    assert axe_violations(page) == []


def test_a_territory_without_shock_says_so_and_a_refused_declaration_says_why(
    browser: Browser, rebond: RunningRebond, cell: str
) -> None:
    territories = get(rebond, "registry", "/territories", cell)
    other = next(t["id"] for t in territories if t["id"] != "ti-3205")
    page = browser.login("crisis_cell", territory=other)
    page.wait_for_selector("main[aria-busy=false]", timeout=30_000)
    assert "Aucune fermeture déclarée sur ce territoire" in page.inner_text("main")
    assert axe_violations(page) == []
    # Checked in the page first: a SIRET has 14 digits.
    page.fill("#declare-siret", "1234")
    page.click("#form-declare button[type=submit]")
    page.wait_for_selector("#declare-siret[aria-invalid=true]")
    assert "14 chiffres" in page.inner_text("#form-declare")
    # The registry's refusal: Bridgestone is outside this crisis cell's territory.
    page.fill("#declare-siret", "361 200 389 00019")
    page.fill("#declare-date", "2020-09-16")
    page.fill("#declare-jobs", "900")
    page.click("#form-declare button[type=submit]")
    message = page.wait_for_selector("#declare-result .fr-alert--error")
    text = message.inner_text()
    print(f"[cellule] refused declaration: {text!r}")
    assert "n'a pas été déclarée" in text and "{" not in text
    assert axe_violations(page) == []


def test_a_campaign_action_through_the_forms_is_answered_in_words(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any], cell: str
) -> None:
    campaign_id = bethune_shock["campaign"]["id"]
    before = get(rebond, "campaigns", f"/campaigns/{campaign_id}", cell)
    page = open_dashboard(browser, bethune_shock["shock"]["id"])
    page.wait_for_selector("#form-terms")
    # Refused by the campaign: an end date years away.
    page.fill("#terms-ends", "2040-01-01")
    page.click("#form-terms button[type=submit]")
    refusal = page.wait_for_selector("#action-result .fr-alert--error")
    text = refusal.inner_text()
    print(f"[cellule] refused terms: {text!r}")
    assert "n'a pas été modifiée" in text and "{" not in text
    after = get(rebond, "campaigns", f"/campaigns/{campaign_id}", cell)
    assert after["ends_on"] == before["ends_on"]
    # Accepted: ten more consultant-days; the answer in words, the figures follow.
    budget = before["budget_days"] + 10
    try:
        page.fill("#terms-ends", before["ends_on"])
        page.fill("#terms-budget", str(budget).replace(".0", ""))
        page.click("#form-terms button[type=submit]")
        done = page.wait_for_selector("#action-result .fr-alert--success")
        print(f"[cellule] terms changed: {done.inner_text()!r}")
        assert "Plan n°" in done.inner_text()
        assert get(rebond, "campaigns", f"/campaigns/{campaign_id}", cell)["budget_days"] == budget
        page.wait_for_function(
            "(b) => (document.querySelector('#progress-days') || {}).textContent"
            "?.replace(/\\s/g, '').endsWith('/' + b)",
            arg=str(int(budget)),
            timeout=15_000,
        )
        assert page.input_value("#terms-budget") in (str(budget), str(int(budget)))
        assert axe_violations(page) == []
    finally:  # the shared campaign back as the other tests expect it
        status, body = rebond.call(
            "PATCH",
            rebond.api("campaigns") + f"/campaigns/{campaign_id}/terms",
            cell,
            {"budget_days": before["budget_days"]},
        )
        assert status == 200, body
    assert page.errors == []  # type: ignore[attr-defined]
