"""Signing in: the development login page for each role lands on that role's page, with
the role and scope in the header; an unsigned visit goes to the login page; logging out
ends the session; a state-changing call from another site is refused."""

from __future__ import annotations

import pytest

from tests.support.browser import PHONE, Browser, axe_violations, screenshot

HOMES = {
    "crisis_cell": ("/cellule/", "Cellule de crise"),
    "consultant": ("/terrain/", "Consultant de terrain"),
    "funder": ("/financeur/", "Financeur"),
    "admin": ("/cellule/", "Administrateur"),
}


def test_an_unsigned_visit_goes_to_the_login_page(browser: Browser) -> None:
    page = browser.context().new_page()
    page.goto("/cellule/")
    page.wait_for_url("**/connexion/?next=%2Fcellule%2F")
    page.wait_for_selector("#connexion-dev")
    assert axe_violations(page) == []
    screenshot(page, "connexion-desktop")


@pytest.mark.parametrize("role", sorted(HOMES))
def test_each_role_signs_in_through_the_form_and_lands_on_its_page(
    browser: Browser, role: str
) -> None:
    home, label = HOMES[role]
    page = browser.login(role, via_form=True, subject=f"test-{role}")
    page.wait_for_url(f"**{home}")
    page.wait_for_selector("main[aria-busy=false]")
    who = page.inner_text(".fr-header__tools-links .rb-who")
    assert label in who and f"test-{role}" in who, who
    if role in ("crisis_cell", "consultant"):
        assert "ti-3205" in who
    if role == "funder":
        assert "région 32" in who
    assert page.errors == []  # type: ignore[attr-defined]


def test_a_refused_login_says_why_in_french(browser: Browser) -> None:
    page = browser.context(PHONE).new_page()
    page.goto("/connexion/")
    page.select_option("#role", "consultant")
    page.fill("#territory", "")
    page.click("#connexion-dev button[type=submit]")
    message = page.wait_for_selector("#message-connexion .fr-alert")
    assert "territoire" in message.inner_text()
    assert "{" not in message.inner_text()  # words, never raw JSON


def test_logging_out_ends_the_session(browser: Browser) -> None:
    page = browser.login("crisis_cell")
    page.wait_for_selector("main[aria-busy=false]")
    page.click("text=Se déconnecter")
    page.wait_for_url("**/connexion/")
    assert page.request.get("/auth/session").status == 401
    page.goto("/cellule/")
    page.wait_for_url("**/connexion/**")


def test_a_write_from_another_site_is_refused(browser: Browser) -> None:
    page = browser.login("crisis_cell")
    answer = page.request.post(
        "/api/detection/projects/exogenous",
        data={},
        headers={"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status == 403
    assert "autre site" in answer.json()["detail"]
