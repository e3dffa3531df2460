"""The crisis cell's projects page (/cellule/projets/): the pipeline's counts are the
API's, an exogenous project declared through the form is listed as exogenous, the cell
qualifies it, moves its stage and records its jobs through the page (the API's state
follows), a refused move is said in French, look-alikes are reviewed, the table exports
as CSV, and axe-core finds nothing serious with or without the modals open.

The running system is shared by every browser test file: each test makes its own data
with random names and compares the page with the API at the same moment."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

from tests.support.browser import Browser, RunningRebond, axe_violations, screenshot

STAGES = ("detected", "qualified", "in_funding", "funded", "launched", "jobs_created", "abandoned")
FAURECIA = ("07150239700020", "07150239700061")  # look-alikes of their own (smoke, detection)


def cell(rebond: RunningRebond) -> str:
    return rebond.token("--role", "crisis_cell", "--territory", "ti-3205", "--sub", "test-projets")


def detection(rebond: RunningRebond, method: str, path: str, body: object = None) -> Any:
    status, answer = rebond.call(method, f"{rebond.api('detection')}{path}", cell(rebond), body)
    assert status in (200, 201), (status, answer)
    return answer


def all_projects(rebond: RunningRebond, **query: str) -> list[dict[str, Any]]:
    params = "&".join(f"{k}={v}" for k, v in {"limit": "500", **query}.items())
    return detection(rebond, "GET", f"/projects?{params}")["items"]


def exogenous(rebond: RunningRebond, shock_id: str, firm: str, jobs: int = 40) -> dict[str, Any]:
    """Declared through the API without an Idempotency-Key: twice makes a look-alike."""
    return detection(
        rebond,
        "POST",
        "/projects/exogenous",
        {
            "territory_id": "ti-3205",
            "shock_id": shock_id,
            "firm_name": firm,
            "kind": "new_site",
            "description": "Usine de rechapage de pneus industriels",
            "jobs_planned": jobs,
        },
    )


def wait_until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.2)


def endogenous(rebond: RunningRebond, campaign: dict[str, Any]) -> dict[str, Any]:
    """A project found by a consultant's survey (as `deploy/local/run.py` smoke does), at
    a random planned visit, with a description of its own to find it by."""
    token = cell(rebond)
    status, plan = rebond.call(
        "GET", f"{rebond.api('campaigns')}/campaigns/{campaign['id']}/plan", token
    )
    assert status == 200, plan
    targets = [
        t
        for t in plan["targets"]
        if t.get("visit_id") and t.get("consultant_id") and t["site_id"] not in FAURECIA
    ]
    target = random.choice(targets)
    consultant = rebond.token(
        "--role", "consultant", "--territory", "ti-3205", "--sub", target["consultant_id"]
    )
    description = f"test projets {uuid.uuid4().hex[:8]}: ligne de recyclage"
    status, survey = rebond.call(
        "POST",
        f"{rebond.api('campaigns')}/visits/{target['visit_id']}/survey",
        consultant,
        {
            "questionnaire_version": "2026-1",
            "projects": [
                {
                    "kind": "decarbonation_energy",
                    "description": description,
                    "capex_eur": 800_000,
                    "jobs_to_create": 6,
                    "maturity": "study",
                    "known_to_public_actors": False,
                    "consent_to_share": True,
                }
            ],
            # The firm also warns of layoffs: the cell's list of red flags shows it.
            "red_flags": [{"kind": "layoffs", "horizon_months": 12, "jobs_at_risk": 321}],
        },
    )
    assert status in (200, 201), survey
    return wait_until(
        lambda: next((p for p in all_projects(rebond) if p["description"] == description), None),
        "the survey's project in detection",
    )


def page_counts(page: Any) -> dict[str, int]:
    texts = page.eval_on_selector_all(
        ".rb-pipeline a[data-stage]",
        "els => els.map(a => [a.dataset.stage, a.querySelector('.rb-figure').textContent])",
    )
    return {stage: int(text.replace("\u202f", "").replace("\xa0", "")) for stage, text in texts}


def row_of(page: Any, firm: str) -> Any:
    return page.locator("#table-projets tbody tr", has=page.get_by_role("button", name=firm))


def test_the_pipeline_counts_are_the_apis_at_the_same_moment(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any]
) -> None:
    found = endogenous(rebond, bethune_shock["campaign"])
    page = browser.login("crisis_cell")
    for _ in range(5):  # another file's data may land between two reads: read again
        before = detection(rebond, "GET", "/projects/stats")
        paint_ms = browser.open(page, "/cellule/projets/", name="cellule-projets")
        shown = page_counts(page)
        after = detection(rebond, "GET", "/projects/stats")
        if before == after:
            break
    assert before == after, "the projects kept changing"
    assert shown == {s: before["by_stage"].get(s, 0) for s in STAGES}
    print(f"[cellule-projets] first useful paint {paint_ms:.0f} ms")
    assert page.locator("nav.rb-subnav a[aria-current=page]").inner_text() == "Projets"
    # The survey's project is in the table, endogenous and hidden (unknown to public actors).
    firm = found["firm_name"] or f"SIREN {found['siren']}"
    row = page.locator(f"#table-projets tbody tr[data-project-id='{found['id']}']")
    assert row.locator(".rb-origin").inner_text().lower() == "endogène"
    assert "caché" in row.locator(".rb-hidden").inner_text().lower()
    assert firm in row.inner_text()
    # A filter goes in the URL, and the table follows it.
    page.select_option("#filtre-origine", "exogenous")
    page.click("#filtres button[type=submit]")
    page.wait_for_url("**/cellule/projets/?origin=exogenous")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#table-projets tbody tr')]"
        ".every(tr => tr.dataset.origin === 'exogenous')"
        " || document.querySelector('#aucun-projet')"
    )
    assert page.locator(f"tr[data-project-id='{found['id']}']").count() == 0
    # The survey's red flag, with what is at risk.
    flag = page.locator(f"#liste-alertes tr[data-site-id='{found['site_id']}'][data-kind=layoffs]")
    assert "321" in flag.inner_text() and "12 mois" in flag.inner_text()
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet, upright
    screenshot(page, "cellule-projets-tablet")
    assert page.errors == []  # type: ignore[attr-defined]


def test_an_exogenous_project_declared_then_qualified_moved_and_given_jobs(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any]
) -> None:
    firm = f"Blackstar {uuid.uuid4().hex[:6]}"
    page = browser.login("crisis_cell")
    browser.open(page, "/cellule/projets/", name="cellule-projets")
    page.click("#declarer-exogene")
    page.wait_for_selector("#modale-exogene[open] #form-exogene")
    page.fill("#exo-entreprise", firm)
    page.select_option("#exo-fermeture", bethune_shock["shock"]["id"])
    page.fill("#exo-description", "Usine de rechapage de pneus industriels cherchant un site")
    page.fill("#exo-emplois", "50")
    page.fill("#exo-capex", "12000000")
    page.click("label[for=exo-connu]")  # the DSFR label covers the box
    assert not page.is_checked("#exo-connu")
    assert axe_violations(page) == []  # the declaration modal open
    page.dblclick("#form-exogene button[type=submit]")  # one key: declared once
    page.wait_for_selector("#message-actions .fr-alert--success")
    assert firm in page.inner_text("#message-actions")
    row = row_of(page, firm)
    row.wait_for()
    assert row.locator(".rb-origin").inner_text().lower() == "exogène"
    listed = [p for p in all_projects(rebond, origin="exogenous") if p["firm_name"] == firm]
    assert len(listed) == 1, listed
    project = listed[0]
    assert project["origin"] == "exogenous" and project["hidden"] is True
    assert project["shock_id"] == bethune_shock["shock"]["id"]
    page.evaluate("document.querySelector('#pipeline').scrollIntoView()")
    screenshot(page, "cellule-projets-desktop")

    # A move the stage table refuses: the API's refusal, in French words.
    row.get_by_role("button", name=firm).click()
    page.wait_for_selector("#modale-projet[open] #historique")
    assert axe_violations(page) == []  # the detail modal open
    page.select_option("#etape-cible", "funded")
    page.click("#form-etape button[type=submit]")
    refusal = page.wait_for_selector("#form-etape-message .fr-alert--error")
    text = refusal.inner_text()
    assert "Refusé" in text and "qualifiez-le d'abord" in text, text
    assert "{" not in text
    assert detection(rebond, "GET", f"/projects/{project['id']}")["stage"] == "detected"

    # Qualified with the analyst's figure, then funded, then 7 jobs created.
    page.fill("#qualifier-emplois", "60")
    page.click("#form-qualifier button[type=submit]")
    page.wait_for_selector("#modale-message .fr-alert--success")
    state = detection(rebond, "GET", f"/projects/{project['id']}")
    assert (state["stage"], state["jobs_planned"]) == ("qualified", 60)
    assert page.locator("#form-qualifier").count() == 0
    page.select_option("#etape-cible", "funded")
    page.click("#form-etape button[type=submit]")
    page.wait_for_selector("#modale-message:has-text('Financé')")
    assert detection(rebond, "GET", f"/projects/{project['id']}")["stage"] == "funded"
    page.fill("#emplois-total", "7")
    page.click("#form-emplois button[type=submit]")
    page.wait_for_selector("#modale-message:has-text('7 emplois créés')")
    state = detection(rebond, "GET", f"/projects/{project['id']}")
    assert (state["stage"], state["jobs_created"]) == ("jobs_created", 7)
    timeline = page.inner_text("#historique")
    assert "Projet qualifié" in timeline and "Emplois créés déclarés" in timeline
    assert axe_violations(page) == []
    page.keyboard.press("Escape")
    page.wait_for_selector("#modale-projet:not([open])", state="attached")
    assert row.locator(".rb-jobs-created").inner_text() == "7"
    assert row.locator(".rb-stage").inner_text() == "Emplois créés"
    assert page.errors == []  # type: ignore[attr-defined]


def test_look_alikes_are_reviewed_not_a_duplicate_or_merged(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any]
) -> None:
    shock_id = bethune_shock["shock"]["id"]
    firm_a, firm_b = (f"Pneus {uuid.uuid4().hex[:6]}" for _ in range(2))
    kept_a, flagged_a = exogenous(rebond, shock_id, firm_a), exogenous(rebond, shock_id, firm_a)
    kept_b, flagged_b = exogenous(rebond, shock_id, firm_b), exogenous(rebond, shock_id, firm_b)
    assert flagged_a["possible_duplicate_of"] == kept_a["id"]
    assert flagged_b["possible_duplicate_of"] == kept_b["id"]
    page = browser.login("crisis_cell")
    browser.open(page, "/cellule/projets/", name="cellule-projets")
    item_a = page.locator(f"#liste-doublons li[data-project-id='{flagged_a['id']}']")
    item_b = page.locator(f"#liste-doublons li[data-project-id='{flagged_b['id']}']")
    assert firm_a in item_a.inner_text() and "Ressemble à" in item_a.inner_text()
    assert axe_violations(page) == []

    item_a.locator("input").fill("deux sites différents")
    item_a.get_by_role("button", name="Pas un doublon").click()
    item_a.wait_for(state="detached")
    assert "n'est plus signalé" in page.inner_text("#message-doublons")
    assert detection(rebond, "GET", f"/projects/{flagged_a['id']}")["possible_duplicate_of"] is None

    # (A CI run once found pair B missing from the list re-drawn after A's review: say
    # what the section showed instead, to find out why.)
    try:
        item_b.wait_for(state="visible", timeout=30_000)
    except Exception as exc:
        raise AssertionError(
            f"pair B not in the review list; the section shows: {page.inner_text('#doublons')}"
        ) from exc
    item_b.get_by_role("button", name="Fusionner").click()
    item_b.wait_for(state="detached")
    assert "fusionnés" in page.inner_text("#message-doublons")
    merged = detection(rebond, "GET", f"/projects/{flagged_b['id']}")
    assert merged["merged_into"] == kept_b["id"]
    assert page.locator(f"#table-projets tr[data-project-id='{flagged_b['id']}']").count() == 0
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_table_exports_as_csv_for_french_excel(
    browser: Browser, rebond: RunningRebond, bethune_shock: dict[str, Any]
) -> None:
    firm = f"Export {uuid.uuid4().hex[:6]}"
    exogenous(rebond, bethune_shock["shock"]["id"], firm, jobs=9)
    page = browser.login("crisis_cell")
    browser.open(page, "/cellule/projets/?origin=exogenous", name="cellule-projets")
    with page.expect_download() as download:
        page.click("#export-csv")
    raw = Path(download.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    lines = raw.decode("utf-8-sig").split("\r\n")
    assert lines[0].startswith("Identifiant;Entreprise;SIREN;Territoire;Origine;Type;Étape")
    mine = [line for line in lines if f";{firm};" in line]
    assert len(mine) == 1 and ";Exogène;" in mine[0] and ";9;" in mine[0], mine
    assert all(";Exogène;" in line for line in lines[1:] if line)
