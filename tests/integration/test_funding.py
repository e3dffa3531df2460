"""Funding through the real services: a survey's decarbonation project, qualified in
detection, matched in funding against the real seed catalogue; a funder's award moves the
project to funded and the ledger's funded jobs."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import pytest

from services.funding.adapters.seed import load_seed
from services.funding.bootstrap import bootstrap as funding_bootstrap
from services.funding.settings import FundingSettings
from services.site_registry.adapters.reference_data import data_file
from services.site_registry.service_layer import batch_jobs
from tests.integration.conftest import settings_for
from tests.support.dsl import ADEME_ECODESIGN, OTHER_REGION, FundingStack, token
from tests.support.infra import Broker, Database
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def test_qualified_project_is_matched_explained_planned_and_funded(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    shock_id, (project,) = await st.surveyed_projects(consent=True)
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200, resp.text
    await st.detection.relay.publish_pending()

    async def matches() -> dict:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    found = await eventually(matches, lambda m: bool(m.get("eligible")), what="matches")
    assert found["firm_size"] == "sme" and found["region_code"] == "32"
    assert found["firm_size_source"] == "headcount_band"  # no legal units imported here
    eligible = {m["scheme_id"]: m for m in found["eligible"]}
    assert ADEME_ECODESIGN in eligible
    ademe = eligible[ADEME_ECODESIGN]
    assert {c["criterion"]: c["status"] for c in ademe["criteria"]}["perimeter"] == "pass"
    assert all(c["reason"] for c in ademe["criteria"])
    scheme = (await st.f.get(f"/schemes/{ADEME_ECODESIGN}", headers=st.cell)).json()
    assert (scheme["rate_min_pct"], scheme["rate_max_pct"]) == (15.0, 55.0)

    # Why the other schemes do not fit: computed only when asked.
    assert found["rejected"] is None
    assert found["eligible_total"] == len(found["eligible"])
    catalogue = (await st.f.get("/schemes", headers=st.cell)).json()
    assert found["rejected_total"] == len(catalogue) - len(found["eligible"]) > 0
    url = f"/projects/{project['id']}/matches"
    explained = (await st.f.get(url, params={"rejected": "true"}, headers=st.cell)).json()
    assert len(explained["rejected"]) == found["rejected_total"]
    assert explained["eligible"] == found["eligible"]
    rejected = {m["scheme_id"]: m for m in explained["rejected"]}
    perimeter = next(c for c in rejected[OTHER_REGION]["criteria"] if c["criterion"] == "perimeter")
    assert perimeter["status"] == "fail"
    assert "84" in perimeter["reason"] and "32" in perimeter["reason"]
    # one funder's schemes, one scheme, the first eligible only
    region = "Région Auvergne-Rhône-Alpes"
    theirs = {s["id"] for s in catalogue if region in s["funders"]} - set(eligible)
    only = {"rejected": "true", "funder": region}
    mine = (await st.f.get(url, params=only, headers=st.cell)).json()["rejected"]
    assert OTHER_REGION in theirs and {m["scheme_id"] for m in mine} == theirs
    one = {"rejected": "true", "scheme_id": OTHER_REGION}
    alone = (await st.f.get(url, params=one, headers=st.cell)).json()["rejected"]
    assert alone == [rejected[OTHER_REGION]]
    first = (await st.f.get(url, params={"limit": 1}, headers=st.cell)).json()
    assert first["eligible"] == found["eligible"][:1]
    assert first["eligible_total"] == found["eligible_total"]

    plan = (await st.f.get(f"/projects/{project['id']}/plan", headers=st.cell)).json()["plan"]
    assert plan["base_eur"] == 1_200_000
    assert plan["grant_equivalent_eur"] <= plan["cap_eur"]
    assert plan["total_eur"] <= 600_000
    assert plan["cap_eur"] == round(1_200_000 * plan["cap_pct"] / 100)

    ademe_funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    listed = (await st.f.get("/funder/projects", headers=ademe_funder)).json()
    assert [p["project_id"] for p in listed] == [project["id"]]

    async def apply() -> str:
        resp = await st.f.post(
            "/applications",
            json={
                "project_id": project["id"],
                "scheme_id": ADEME_ECODESIGN,
                "amount_requested_eur": 300_000,
            },
            headers={**ademe_funder, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async def stage() -> str:
        resp = await st.d.get(f"/projects/{project['id']}", headers=st.cell)
        return str(resp.json()["stage"])

    # A first application is refused: the project goes back to qualified.
    first = await apply()
    await st.funding.relay.publish_pending()
    await eventually(stage, lambda s: s == "in_funding", what="project in funding")
    refusal = await st.f.post(
        f"/applications/{first}/refusal",
        json={"reason": "envelope exhausted for this round", "decided_on": "2023-06-05"},
        headers=ademe_funder,
    )
    assert refusal.status_code == 200, refusal.text
    await st.funding.relay.publish_pending()
    await eventually(stage, lambda s: s == "qualified", what="back to qualified")

    # A second one is granted, then paid in part; overpaying is refused.
    second = await apply()
    award = await st.f.post(
        f"/applications/{second}/award",
        json={"amount_eur": 250_000, "decided_on": "2023-06-10"},
        headers=ademe_funder,
    )
    assert award.status_code == 200, award.text
    paid = await st.f.post(
        f"/applications/{second}/payments",
        json={"amount_eur": 100_000, "paid_on": "2023-07-01"},
        headers=ademe_funder,
    )
    assert paid.status_code == 200 and paid.json()["amount_paid_eur"] == 100_000
    too_much = await st.f.post(
        f"/applications/{second}/payments",
        json={"amount_eur": 200_000, "paid_on": "2023-08-01"},
        headers=ademe_funder,
    )
    assert too_much.status_code == 409 and "exceed" in too_much.json()["detail"]
    # The project's applications, as the funder's desk lists them (oldest first; this
    # test's clock is frozen, so both were submitted at the same instant).
    for reader in (ademe_funder, st.cell):
        listed_apps = await st.f.get(f"/projects/{project['id']}/applications", headers=reader)
        assert {a["id"]: (a["status"], a["amount_paid_eur"]) for a in listed_apps.json()} == {
            first: ("refused", 0),
            second: ("granted", 100_000),
        }
    other_region = token(st.funding.auth, "funder", "ademe-paca", regions=["93"], org="ADEME")
    unseen = await st.f.get(f"/projects/{project['id']}/applications", headers=other_region)
    assert unseen.status_code == 404
    await st.funding.relay.publish_pending()

    await eventually(stage, lambda s: s == "funded", what="project funded in detection")
    await st.detection.relay.publish_pending()

    async def ledger() -> dict:
        resp = await st.d.get(f"/shocks/{shock_id}/ledger", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    led = await eventually(
        ledger, lambda x: x.get("total", {}).get("funded") == 8, what="funded jobs in the ledger"
    )
    assert led["endogenous"]["funded"] == 8


async def test_funders_never_see_a_project_without_consent(funding_stack: FundingStack) -> None:
    st = funding_stack
    _, (project,) = await st.surveyed_projects(consent=False)
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200
    await st.detection.relay.publish_pending()

    async def matched() -> dict:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    await eventually(matched, lambda m: bool(m.get("eligible")), what="matched anyway")
    funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    assert (await st.f.get("/funder/projects", headers=funder)).json() == []
    hidden = await st.f.get(f"/projects/{project['id']}/matches", headers=funder)
    assert hidden.status_code == 404
    refused = await st.f.post(
        "/applications",
        json={
            "project_id": project["id"],
            "scheme_id": ADEME_ECODESIGN,
            "amount_requested_eur": 1000,
        },
        headers=funder,
    )
    assert refused.status_code == 404


LEGAL_UNITS = "sirene_stock_unite_legale_sample_for_etab_sample.csv"


def _large_firm_legal_unit(siren: str) -> str:
    """A StockUniteLegale file (the real sample's header) with one legal unit, made up for
    the test: the demo site's firm as a large enterprise (categorieEntreprise GE)."""
    header = next(csv.reader(io.StringIO(data_file(LEGAL_UNITS).read_text(encoding="utf-8"))))
    row = dict.fromkeys(header, "")
    row.update(
        siren=siren,
        statutDiffusionUniteLegale="O",
        denominationUniteLegale="GROUPE INDUSTRIEL DU NORD (generated)",
        categorieJuridiqueUniteLegale="5710",
        categorieEntreprise="GE",
        anneeCategorieEntreprise="2022",
        etatAdministratifUniteLegale="A",
    )
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerow(row)
    return out.getvalue()


async def test_a_site_of_a_large_firm_gets_the_large_firm_intensity(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    _, (project,) = await st.surveyed_projects(consent=True)
    site_id = project["site_id"]
    assert site_id is not None
    # The registry learns from Sirene's legal units that the SME-sized site (by its
    # band) belongs to a large enterprise; funding hears it from the site's update.
    report = await batch_jobs.import_legal_units(
        st.registry.uow, io.StringIO(_large_firm_legal_unit(site_id[:9]), newline="")
    )
    assert (report.matched, report.error_count) == (1, 0) and report.events >= 1
    await st.registry.relay.publish_pending()

    async def company_category() -> str | None:
        async with st.funding.uow() as uow:
            site = await uow.sites.get(site_id)
        return site.company_category if site else None

    await eventually(company_category, lambda c: c == "GE", what="the category in funding")

    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200, resp.text
    await st.detection.relay.publish_pending()

    async def plan() -> dict:
        resp = await st.f.get(f"/projects/{project['id']}/plan", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    planned = (await eventually(plan, lambda p: bool(p.get("plan")), what="the plan"))["plan"]
    # Outside assisted areas GBER art. 17 gives a large firm no investment aid (an SME
    # by its band would have had the medium cap, 10 %).
    assert planned["cap_pct"] == 0.0 and planned["cap_eur"] == 0
    assert planned["grant_equivalent_eur"] == 0
    assert any(
        "firm size large (from the firm's INSEE company category)" in note
        for note in planned["notes"]
    )
    found = (
        await st.f.get(
            f"/projects/{project['id']}/matches", params={"rejected": "true"}, headers=st.cell
        )
    ).json()
    assert (found["firm_size"], found["firm_size_source"]) == ("large", "company_category")
    beneficiaries = [
        c["reason"]
        for m in [*found["eligible"], *found["rejected"]]
        for c in m["criteria"]
        if c["criterion"] == "beneficiary" and c["status"] != "pass"
    ]
    assert beneficiaries and all(
        r.endswith("the firm is not a large firm (by its INSEE company category)")
        for r in beneficiaries
    )


async def test_two_replicas_starting_together_load_the_seed_once(
    broker: Broker, database: Database, topic_prefix: str
) -> None:
    """Two funding pods starting at once on an empty catalogue (a first deployment, a
    scale from zero): the seed's lock makes one load it and the other find it done."""
    url = await database.create_database(f"test_fd_{uuid.uuid4().hex[:10]}")
    settings = settings_for(FundingSettings, broker, url, topic_prefix)
    first, second = (funding_bootstrap(settings) for _ in range(2))
    await first.migrate()
    try:
        changed = await asyncio.gather(first.load_seed(), second.load_seed())
        assert sorted(changed) == [0, len(load_seed())]
        assert await first.load_seed() == 0
    finally:
        await first.aclose()
        await second.aclose()
