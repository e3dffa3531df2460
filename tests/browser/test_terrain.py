"""The consultant's field app (/terrain/), on a phone: the week's visits in route order as
the API gives them, a survey sent online, a refused answer said beside its field, and the
offline day — the page reloaded without network, two reports queued, then sent through
/sync when the network returns, each answer shown (and a report resent: "Déjà reçu").

The running Rebond is shared by every browser test file: this one works as the last
consultant of the roster (`consultant-3`), reads the API at the same moment as the page,
and picks the visits still planned when each test starts."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

import pytest

from tests.support.browser import (
    DESKTOP,
    PHONE,
    Browser,
    RunningRebond,
    axe_violations,
    screenshot,
)

CONSULTANT = "consultant-3"
TERRITORY = "ti-3205"


def consultant_token(rebond: RunningRebond) -> str:
    return rebond.token("--role", "consultant", "--territory", TERRITORY, "--sub", CONSULTANT)


def my_visits(rebond: RunningRebond, token: str, start: str, days: int) -> list[dict[str, Any]]:
    """GET /me/visits as the page asks it (completed visits included), every page."""
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        url = f"{rebond.api('campaigns')}/me/visits?from={start}&days={days}&limit=200&done=true"
        status, page = rebond.call("GET", url + (f"&cursor={cursor}" if cursor else ""), token)
        assert status == 200, page
        items += page["items"]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return items


def monday_of(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def planned_week(rebond: RunningRebond, campaign: dict[str, Any], n: int) -> tuple[str, list[Any]]:
    """The first week of the campaign where the consultant still has `n` planned visits."""
    token = consultant_token(rebond)
    start = date.fromisoformat(campaign["starts_on"])
    for k in range(0, 8):
        first = (start + timedelta(days=31 * k)).isoformat()
        weeks: dict[str, list[Any]] = {}
        for v in my_visits(rebond, token, first, 31):
            if v["status"] == "planned":
                weeks.setdefault(monday_of(v["day"]), []).append(v)
        for week in sorted(weeks):
            if len(weeks[week]) >= n:
                return week, weeks[week][:n]
    raise AssertionError(f"{CONSULTANT} has no week with {n} planned visits")


def visit_now(rebond: RunningRebond, visit: dict[str, Any]) -> dict[str, Any]:
    items = my_visits(rebond, consultant_token(rebond), visit["day"], 1)
    return next(v for v in items if v["id"] == visit["id"])


def wait_until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.2)


def phone(browser: Browser, timezone: str | None = None) -> Any:
    return browser.login(
        "consultant", viewport=PHONE, subject=CONSULTANT, territory=TERRITORY, timezone=timezone
    )


def open_visit(page: Any, week: str, visit_id: str) -> None:
    page.goto(f"/terrain/#semaine={week}")
    page.wait_for_selector("main[aria-busy=false]")
    page.click(f"#semaine .rb-visite[data-visit-id='{visit_id}'] .rb-open")
    page.wait_for_selector("#visite-titre:focus")


def fill_one_project(page: Any, description: str = "Nouvelle ligne d'extrusion") -> None:
    page.click("#q-projects-ajouter")
    page.select_option("#q-projects-e0-kind", "new_line")
    page.fill("#q-projects-e0-description", description)
    page.fill("#q-projects-e0-jobs_to_create", "6")
    page.fill("#q-projects-e0-capex_eur", "1 200 000")
    page.select_option("#q-projects-e0-maturity", "study")
    page.check("#q-projects-e0-known_to_public_actors-false", force=True)
    page.check("#q-projects-e0-consent_to_share", force=True)


def send_survey_online(page: Any, week: str, visit_id: str) -> None:
    """Open the visit, answer with one project (6 jobs) and 42 employees, send it, and
    see it accepted."""
    open_visit(page, week, visit_id)
    fill_one_project(page)
    page.fill("#q-headcount", "42")
    page.click("#questionnaire button[type=submit]")
    result = page.wait_for_selector("#resultat-visite:focus .fr-alert--success")
    assert "Envoyé" in result.inner_text()


@pytest.fixture
def campaign(bethune_shock: dict[str, Any]) -> dict[str, Any]:
    return bethune_shock["campaign"]


def test_the_week_shows_my_visits_in_route_order_as_the_api_does(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    page = phone(browser)
    browser.open(page, "/terrain/", name="terrain", viewport="phone")
    week = page.get_attribute("#semaine", "data-from")
    assert week and week == monday_of(week)
    shown = page.eval_on_selector_all(
        "#semaine .rb-visite", "els => els.map(e => e.dataset.visitId)"
    )
    expected = [v["id"] for v in my_visits(rebond, consultant_token(rebond), week, 7)]
    assert shown == expected
    # Today: its visits, or the words saying there are none.
    today = page.inner_text("#aujourdhui")
    assert "Aujourd'hui" in today
    if not page.query_selector("#aujourdhui li"):
        assert "Aucune visite aujourd'hui" in today
    if expected:
        # The site card comes after the first paint: the NAF label and the commune's name.
        page.wait_for_function(
            "() => [...document.querySelectorAll('#semaine .rb-facts dd')]"
            ".some(d => / — /.test(d.textContent))"
        )
        assert page.query_selector("#semaine .rb-weekmap svg[role=img] title")
    assert page.inner_text("#compteur-attente")
    assert axe_violations(page) == []
    screenshot(page, "terrain-phone")
    assert page.errors == []  # type: ignore[attr-defined]

    desk = browser.login("consultant", viewport=DESKTOP, subject=CONSULTANT, territory=TERRITORY)
    browser.open(desk, "/terrain/", name="terrain", viewport="desktop")
    assert axe_violations(desk) == []
    screenshot(desk, "terrain-desktop")


def test_the_week_navigation_moves_within_the_campaign(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    page = phone(browser)
    page.goto("/terrain/")
    page.wait_for_selector("main[aria-busy=false]")
    week = page.get_attribute("#semaine", "data-from")
    page.click("#semaine-suivante")
    following = (date.fromisoformat(week) + timedelta(days=7)).isoformat()
    page.wait_for_selector(f"#semaine[data-from='{following}']")
    page.wait_for_selector("#titre-semaine:focus")
    shown = page.eval_on_selector_all(
        "#semaine .rb-visite", "els => els.map(e => e.dataset.visitId)"
    )
    assert shown == [v["id"] for v in my_visits(rebond, consultant_token(rebond), following, 7)]
    # Before the campaign's first week, there is no previous week to go to.
    first = monday_of(campaign["starts_on"])
    page.goto(f"/terrain/#semaine={first}")
    page.wait_for_selector(f"#semaine[data-from='{first}']")
    assert page.is_disabled("#semaine-precedente")


def test_a_survey_sent_online_reports_the_visit_and_its_project(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    week, (visit,) = planned_week(rebond, campaign, 1)
    page = phone(browser)
    send_survey_online(page, week, visit["id"])
    after = visit_now(rebond, visit)
    assert (after["status"], after.get("outcome")) == ("completed", "reached")
    # The survey's project reaches detection (through Kafka).
    cell = rebond.token("--role", "crisis_cell", "--territory", TERRITORY, "--sub", "terrain-cell")

    def project() -> Any:
        status, projects = rebond.call("GET", f"{rebond.api('detection')}/projects", cell)
        return status == 200 and next(
            (p for p in projects["items"] if p["site_id"] == visit["site_id"]), None
        )

    found = wait_until(project, "the survey's project in detection")
    assert found["jobs_planned"] == 6 and found["consent_to_share"] is True
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_refused_answer_is_said_in_french_beside_its_field_without_sending(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    week, (visit,) = planned_week(rebond, campaign, 1)
    page = phone(browser)
    sent: list[str] = []
    page.on(
        "request", lambda r: sent.append(r.url) if r.method == "POST" and "/api/" in r.url else None
    )
    open_visit(page, week, visit["id"])
    fill_one_project(page, description="ab")
    page.fill("#q-projects-e0-jobs_to_create", "-3")
    page.fill("#q-headcount", "douze")
    page.click("#questionnaire button[type=submit]")
    page.wait_for_selector("#questionnaire-erreurs:focus .fr-alert--error")
    description = page.inner_text("#q-projects-e0-description-msg")
    assert "au moins 3 caractères" in description
    assert "au moins 0" in page.inner_text("#q-projects-e0-jobs_to_create-msg")
    assert "nombre entier" in page.inner_text("#q-headcount-msg")
    assert page.get_attribute("#q-projects-e0-description", "aria-invalid") == "true"
    assert sent == []
    assert page.get_attribute("#compteur-attente", "data-count") == "0"
    assert axe_violations(page) == []

    # The API's own 422 (as /sync answers it) is shown beside the fields too.
    status, refusal = rebond.call(
        "POST",
        f"{rebond.api('campaigns')}/sync",
        consultant_token(rebond),
        {
            "items": [
                {
                    "client_id": "00000000-0000-4000-8000-000000000001",
                    "type": "survey",
                    "visit_id": visit["id"],
                    "recorded_at": "2026-01-01T10:00:00Z",
                    "survey": {
                        "questionnaire_version": "2026-1",
                        "projects": [{"kind": "new_line", "description": "x"}],
                    },
                }
            ]
        },
    )
    assert status == 422, refusal
    page.route(
        "**/api/campaigns/sync",
        lambda route: route.fulfill(
            status=422, json=refusal, headers={"content-type": "application/problem+json"}
        ),
    )
    page.fill("#q-projects-e0-description", "Assez longue")
    page.fill("#q-projects-e0-jobs_to_create", "3")
    page.fill("#q-headcount", "12")
    page.click("#questionnaire button[type=submit]")
    page.wait_for_selector("#resultat-visite .fr-alert--error")
    assert "Refusé" in page.inner_text("#resultat-visite")
    page.wait_for_selector("#q-projects-e0-maturity-msg:not([hidden])")
    assert "obligatoire" in page.inner_text("#q-projects-e0-maturity-msg")
    assert page.input_value("#q-projects-e0-description") == "Assez longue"  # kept
    assert page.get_attribute("#compteur-attente", "data-count") == "0"  # final: not kept
    assert visit_now(rebond, visit)["status"] == "planned"


def test_offline_reports_wait_on_the_phone_then_leave_through_sync(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    week, (first, second) = planned_week(rebond, campaign, 2)
    # A consultant in French Polynesia: eleven hours behind Paris, the phone's calendar is
    # on the day before Paris's every morning (the reports were once refused then).
    page = phone(browser, timezone="Pacific/Tahiti")
    context = page.context
    page.goto(f"/terrain/#semaine={week}")
    page.wait_for_selector("main[aria-busy=false]")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.wait_for_selector("body[data-offline-ready=true]")

    context.set_offline(True)
    page.reload()
    page.wait_for_selector("main[aria-busy=false]")  # from the service worker's cache
    page.wait_for_selector("#etat-reseau[data-state=offline]")
    assert "Hors ligne" in page.inner_text("#etat-reseau")
    shown = page.eval_on_selector_all(
        "#semaine .rb-visite", "els => els.map(e => e.dataset.visitId)"
    )
    assert first["id"] in shown and second["id"] in shown

    # 1. an outcome: unreachable, with its reason
    page.click(f"#semaine .rb-visite[data-visit-id='{first['id']}'] .rb-open")
    page.click("[data-outcome=unreachable]")
    page.click("#enregistrer-issue")  # no reason yet: said, not queued
    assert "obligatoire" in page.inner_text("#motif-issue-msg")
    page.fill("#motif-issue", "Portail fermé, personne ne répond")
    page.click("#enregistrer-issue")
    page.wait_for_selector("#resultat-visite:focus .fr-alert")
    assert "Enregistré sur ce téléphone" in page.inner_text("#resultat-visite")
    # 2. a survey
    page.click("#retour-liste")
    page.click(f"#semaine .rb-visite[data-visit-id='{second['id']}'] .rb-open")
    page.wait_for_selector("#questionnaire")
    fill_one_project(page, description="Agrandissement de l'atelier")
    page.click("#questionnaire button[type=submit]")
    page.wait_for_selector("#resultat-visite:focus .fr-alert")
    page.wait_for_selector("#compteur-attente[data-count='2']")
    assert "2 rapports" in page.inner_text("#etat-reseau")
    page.click("#retour-liste")
    page.wait_for_selector(f".rb-visite[data-visit-id='{first['id']}'][data-status=pending]")
    assert axe_violations(page) == []
    waiting = page.evaluate("() => import('/terrain/queue.js').then((q) => q.all())")
    assert {r["visit_id"] for r in waiting} == {first["id"], second["id"]}
    assert all(r["client_id"] for r in waiting)
    assert visit_now(rebond, first)["status"] == "planned"  # nothing left the phone

    context.set_offline(False)
    page.wait_for_selector("#compteur-attente[data-count='0']")
    results = page.eval_on_selector_all(
        "#resultats-synchro li[data-status]",
        "els => els.map(e => [e.dataset.clientId, e.dataset.status, e.textContent])",
    )
    assert sorted(r[0] for r in results) == sorted(r["client_id"] for r in waiting)
    assert all(status == "accepted" and "Envoyé" in text for _, status, text in results), results
    assert (visit_now(rebond, first)["status"], visit_now(rebond, first)["outcome"]) == (
        "completed",
        "unreachable",
    )
    assert visit_now(rebond, second)["outcome"] == "reached"

    # The same report sent again (an answer lost on the way): "Déjà reçu", nothing changes.
    outcome = next(r for r in waiting if r["type"] == "outcome")
    page.evaluate("(r) => import('/terrain/queue.js').then((q) => q.put(r))", outcome)
    page.reload()
    page.wait_for_selector("main[aria-busy=false]")
    page.wait_for_selector(f"#resultats-synchro li[data-client-id='{outcome['client_id']}']")
    item = page.query_selector(f"#resultats-synchro li[data-client-id='{outcome['client_id']}']")
    assert item.get_attribute("data-status") == "duplicate"
    assert "Déjà reçu" in item.inner_text()
    assert page.get_attribute("#compteur-attente", "data-count") == "0"
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_expired_session_keeps_the_queue_and_says_to_sign_in_again(
    browser: Browser, rebond: RunningRebond, campaign: dict[str, Any]
) -> None:
    week, (visit,) = planned_week(rebond, campaign, 1)
    page = phone(browser)
    page.goto(f"/terrain/#semaine={week}")
    page.wait_for_selector("body[data-offline-ready=true]")
    page.context.set_offline(True)
    open_visit(page, week, visit["id"])
    page.click("[data-outcome=site_closed]")
    page.click("#enregistrer-issue")
    page.wait_for_selector("#compteur-attente[data-count='1']")
    page.context.clear_cookies()  # the session has expired meanwhile
    page.context.set_offline(False)
    page.wait_for_selector("#etat-reseau[data-state=session]")
    banner = page.inner_text("#etat-reseau")
    assert "Reconnectez-vous pour envoyer votre rapport en attente" in banner
    assert page.get_attribute("#lien-reconnexion", "href").startswith("/connexion/")
    assert page.get_attribute("#compteur-attente", "data-count") == "1"
    assert page.url.endswith(f"visite={visit['id']}")  # no redirect: the report stays
    assert visit_now(rebond, visit)["status"] == "planned"
