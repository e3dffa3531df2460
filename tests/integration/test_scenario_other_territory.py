"""A whole rebond, as a new crisis cell would run it, in a Territoire d'industrie other than
the demo's: **ti-3209 Lens – Hénin** (CA de Lens-Liévin + CA d'Hénin-Carvin, 50 communes).

1. The territory's 25 real industrial sites (IREP, NAF section C; real SIRETs, NAF codes
   and communes, Lambert-93 positions) go in through the registry's Sirene import, from a
   file in the real StockEtablissement layout built from the real IREP list (its name
   says so: `tests/support/sirene_layout.py`). 25 real sites: no generated top-up.
2. The crisis cell declares a closure shock — a HYPOTHETICAL one, for the test — at the
   O-I Manufacturing glassworks in Wingles (280 jobs lost), staffs the campaign with
   three consultants of its own and reads who visits whom in the plan.
3. Twelve surveys (zero, one or two project leads each; two retried with their
   Idempotency-Key; one resubmitted with more jobs), at sites of two firms with two
   plants each (Nexans in Lens, Mecacorp in Lens and Libercourt), and two exogenous
   projects declared by the cell.
4. Detection, the ledger, funding's funder feed and every topic are then checked: one
   project per lead, the ledger's figures, no dead letter, consent respected, no
   personal data on any topic.

Survey answers, contacts, consultants and the two exogenous firms are FICTIONAL (made up
for this test); the sites are real.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.campaigns.bootstrap import Campaigns
from services.detection.bootstrap import Detection
from services.funding.bootstrap import Funding
from services.site_registry.adapters.geo import distance_km, lambert2e_to_wgs84
from services.site_registry.adapters.sirene import STOCK_ETABLISSEMENT_COLUMNS
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints import cli
from shared.events.catalogue import ALL_TOPICS, FUNDER_FEED, SURVEYS
from tests.support.dsl import FundingStack, Project, open_funding_stack, token
from tests.support.kafka import Message, read_all
from tests.support.sirene_layout import (
    PROVENANCE_MARK,
    irep_establishments,
    real_header,
    write_stock_etablissement,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TERRITORY = "ti-3209"
TERRITORY_NAME = "Lens – Hénin"
REGION = "32"  # Hauts-de-France
CLOSING = "33903070200072"  # O-I Manufacturing, Wingles (62895): a hypothetical closure
JOBS_LOST = 280
ANNOUNCED_ON = "2026-11-20"  # the Friday before the test clock's Monday (2026-11-23)
SHOCK_NOTE = "Note interne cellule : réunion préfecture confidentielle QX-7781"

#: the crisis cell's own consultants (fictional people; ids are e-mail addresses, as the
#: login subjects of a real deployment may be)
CONSULTANTS = (
    "amandine.wirth@cci-artois.example",
    "karim.bensaid@cci-artois.example",
    "lucie.vandamme@cci-artois.example",
)

# Two firms with two plants each in the territory (real IREP establishments).
NEXANS_TREFILERIE, NEXANS_COULEE = "42859323000314", "42859323000363"  # Lens
MECACORP_LENS, MECACORP_LIBERCOURT = "44269443600134", "44269443600068"
MCCAIN = "32044272600016"  # Harnes
MOY_PARK = "44457512000019"  # Hénin-Beaumont


def lead(
    kind: str, jobs: int, *, consent: bool, known: bool, capex: int | None = None
) -> dict[str, Any]:
    return {
        "lead_id": str(uuid.uuid4()),
        "kind": kind,
        "description": f"{kind.replace('_', ' ')} project (fictional answer)",
        "capex_eur": capex if capex is not None else 150_000 * max(jobs, 1),
        "jobs_to_create": jobs,
        "horizon_months": 18,
        "maturity": "study" if known else "ready",
        "known_to_public_actors": known,
        "obstacles": ["financing", "hiring_skills"] if jobs >= 10 else ["financing"],
        "funding_need_eur": 50_000 * max(jobs, 1),
        "consent_to_share": consent,
    }


#: the twelve surveyed sites and what each firm said (fictional answers)
SURVEY_PLAN: list[tuple[str, list[dict[str, Any]]]] = [
    (NEXANS_TREFILERIE, [lead("new_line", 18, consent=True, known=False)]),
    (NEXANS_COULEE, [lead("new_line", 11, consent=True, known=True)]),  # a look-alike
    (
        MECACORP_LENS,
        [
            lead("capacity_extension", 9, consent=False, known=False),
            lead("decarbonation_energy", 4, consent=True, known=True),
        ],
    ),
    (MECACORP_LIBERCOURT, [lead("rnd_innovation", 6, consent=True, known=False)]),
    (
        MCCAIN,
        [
            lead("capacity_extension", 25, consent=True, known=True),
            lead("decarbonation_energy", 3, consent=False, known=False),
        ],
    ),
    ("33004503000013", []),  # DURAND PRODUCTION: no project
    ("33359116200016", [lead("modernisation_automation", 14, consent=False, known=True)]),
    ("34938705000025", []),  # GALVANISATION DE L'ARTOIS: no project, a red flag
    (MOY_PARK, [lead("new_line", 30, consent=True, known=False)]),
    (
        "34511918400017",  # TT PLAST
        [
            lead("skills_training", 7, consent=False, known=False),
            lead("rnd_innovation", 2, consent=True, known=True),
        ],
    ),
    ("39009941400042", [lead("site_takeover", 12, consent=True, known=False)]),  # BENALU
    ("42155957600010", []),  # EUROROL: no project
]
RETRIED = {MECACORP_LENS, MOY_PARK}  # sent twice with the same Idempotency-Key
RESUBMITTED = MCCAIN  # later, same lead ids, more jobs
MORE_JOBS = {25: 32, 3: 5}

EXOGENOUS = [  # fictional outside investors
    {
        "firm_name": "Hydrogène Gohelle Énergies (fictional)",
        "kind": "new_site",
        "description": "Electrolyser assembly plant looking for 6 ha near the A21",
        "jobs_planned": 60,
        "capex_eur": 40_000_000,
        "land_needs_ha": 6.0,
        "consent_to_share": True,
    },
    {
        "firm_name": "Batteries Rives de la Deûle (fictional)",
        "kind": "site_takeover",
        "description": "Battery recycling line, interested in taking over the glassworks",
        "jobs_planned": 45,
        "capex_eur": 12_000_000,
        "consent_to_share": False,
    },
]


def contact_of(n: int) -> dict[str, str]:
    """Personal data that must stay in the campaigns database (fictional people)."""
    return {
        "contact_name": f"Mme Odile Sauvage-Marquis n°{n:02d}",
        "contact_phone": f"+33 6 71 42 93 {n:02d}",
        "comments": f"Le dirigeant préfère rester discret: commentaire confidentiel ZK-{n:04d}",
    }


def survey_body(n: int, leads: list[dict[str, Any]], *, red_flag: bool = False) -> dict[str, Any]:
    return {
        "questionnaire_version": "2026-1",
        "headcount": 40 + 10 * n,
        "projects": leads,
        "red_flags": [{"kind": "layoffs", "horizon_months": 6, "jobs_at_risk": 15}]
        if red_flag
        else [],
        **contact_of(n),
    }


@pytest.fixture
async def lens_stack(
    registry: SiteRegistry, campaigns: Campaigns, detection: Detection, funding: Funding
) -> AsyncIterator[FundingStack]:
    """The four services in-process, as `funding_stack` wires them, without the demo."""
    async with open_funding_stack(
        registry, campaigns, detection, funding, territory=TERRITORY, cell="cell-lens-henin"
    ) as st:
        yield st


async def topics_of_test(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


def leaks(message: Message, secrets: list[str]) -> list[str]:
    """The secrets found in a message's value or headers (raw or JSON-escaped)."""
    blob = (message.value or b"") + json.dumps(message.headers).encode()
    blob += json.dumps(message.headers, ensure_ascii=False).encode()
    found = []
    for secret in secrets:
        forms = {secret.encode(), json.dumps(secret)[1:-1].encode()}
        if any(f in blob for f in forms):
            found.append(secret)
    return found


async def test_lens_henin_rebond_from_sirene_import_to_funders(
    lens_stack: FundingStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = lens_stack
    cell = st.cell
    prefix = st.registry.settings.kafka_topic_prefix
    bootstrap = st.registry.settings.kafka_bootstrap_servers

    # --- 1. the territory and its real sites, imported from a Sirene-layout file ---------
    territories = (await st.r.get("/territories", headers=cell)).json()
    summary = next(t for t in territories if t["id"] == TERRITORY)
    assert summary["name"] == TERRITORY_NAME and summary["commune_count"] == 50
    detail = (await st.r.get(f"/territories/{TERRITORY}", headers=cell)).json()
    communes = {c["insee"] for c in detail["communes"]}
    assert len(communes) == 50

    establishments = irep_establishments(communes)
    assert len(establishments) == 25  # >= 12: no generated top-up needed
    assert CLOSING in {e.siret for e in establishments}
    assert tuple(real_header()) == STOCK_ETABLISSEMENT_COLUMNS  # the real INSEE layout
    path = write_stock_etablissement(tmp_path, TERRITORY, establishments)
    assert PROVENANCE_MARK in path.name

    capsys.readouterr()
    assert (
        await cli._import(st.registry, cli.ImportRequest(path=path, territories=(TERRITORY,))) == 0
    )  # `import-sirene`
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["rows_read"] == report["in_scope"] == report["created"] == 25, report
    assert report["error_count"] == 0, report

    sites = (
        await st.r.get("/sites", params={"territory": TERRITORY, "limit": 500}, headers=cell)
    ).json()["items"]
    by_siret = {s["siret"]: s for s in sites}
    assert set(by_siret) == {e.siret for e in establishments}
    for e in establishments:
        site = by_siret[e.siret]
        assert (site["source"], site["status"]) == ("sirene", "active")
        assert (site["naf_code"], site["commune_insee"]) == (e.naf_code, e.commune_insee)
        assert TERRITORY in site["territory_ids"]
        # Lambert II étendu (IREP) → Lambert-93 (file) → WGS84 (registry): the same point.
        lon, lat = lambert2e_to_wgs84(*e.irep_lambert2e)
        assert distance_km(site["lon"], site["lat"], lon, lat) < 0.005, site

    # --- 2. the shock, the campaign, its roster and plan -----------------------------------
    resp = await st.r.post(
        "/closure-shocks",
        json={
            "site_id": CLOSING,
            "announced_on": ANNOUNCED_ON,
            "planned_closure_on": "2027-06-30",
            "jobs_lost": JOBS_LOST,
            "note": SHOCK_NOTE,
        },
        headers=cell,
    )
    assert resp.status_code == 201, resp.text
    shock_id = resp.json()["id"]
    assert TERRITORY in resp.json()["territory_ids"]
    await st.registry.relay.publish_pending()

    campaigns = await eventually(
        lambda: st.c.get("/campaigns", headers=cell),
        lambda r: r.status_code == 200 and len(r.json()) == 1,
        what="the campaign launched",
    )
    campaign = campaigns.json()[0]
    assert (campaign["shock_id"], campaign["territory_id"]) == (shock_id, TERRITORY)
    resp = await st.c.post(
        f"/campaigns/{campaign['id']}/consultants",
        json={"add": list(CONSULTANTS), "remove": ["consultant-1", "consultant-2", "consultant-3"]},
        headers=cell,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["roster"] == sorted(CONSULTANTS)

    async def plan() -> dict[str, Any]:
        resp = await st.c.get(f"/campaigns/{campaign['id']}/plan", headers=cell)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def staffed(p: dict[str, Any]) -> bool:
        planned = [t for t in p["targets"] if t["status"] == "planned"]
        return len(planned) == 24 and all(t["consultant_id"] in CONSULTANTS for t in planned)

    targets = {t["site_id"]: t for t in (await eventually(plan, staffed, what="plan"))["targets"]}
    assert CLOSING not in targets  # the closing site is never a target
    assert {targets[s]["consultant_id"] for s in targets} == set(CONSULTANTS)

    # --- 3. twelve surveys, two retries, two exogenous projects, one resubmission --------
    def consultant_of(site: str) -> dict[str, str]:
        return st.consultant(targets[site]["consultant_id"])

    async def submit(site: str, body: dict[str, Any], key: str) -> httpx.Response:
        return await st.c.post(
            f"/visits/{targets[site]['visit_id']}/survey",
            json=body,
            headers={**consultant_of(site), "Idempotency-Key": key},
        )

    bodies: dict[str, dict[str, Any]] = {}
    for n, (site, leads) in enumerate(SURVEY_PLAN, start=1):
        body = survey_body(n, leads, red_flag=site == "34938705000025")
        bodies[site] = body
        key = str(uuid.uuid4())
        first = await submit(site, body, key)
        assert first.status_code == 201, first.text
        assert first.headers.get("Idempotent-Replayed") is None
        assert first.json()["revision"] == 1
        assert first.json()["lead_ids"] == [p["lead_id"] for p in leads]
        if site in RETRIED:  # the phone lost the answer and sends the same request again
            again = await submit(site, body, key)
            assert again.status_code == 201, again.text
            assert again.headers.get("Idempotent-Replayed") == "true"
            assert again.json() == first.json()

    exogenous = []
    for project in EXOGENOUS:
        resp = await st.d.post(
            "/projects/exogenous",
            json={"territory_id": TERRITORY, "shock_id": shock_id, **project},
            headers=cell,
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["origin"] == "exogenous"
        exogenous.append(resp.json())

    resubmitted = json.loads(json.dumps(bodies[RESUBMITTED]))
    for p in resubmitted["projects"]:
        p["jobs_to_create"] = MORE_JOBS[p["jobs_to_create"]]
    resp = await submit(RESUBMITTED, resubmitted, str(uuid.uuid4()))
    assert resp.status_code == 201, resp.text
    assert resp.json()["revision"] == 2
    bodies[RESUBMITTED] = resubmitted

    progress = await eventually(
        lambda: st.c.get(f"/campaigns/{campaign['id']}/progress", headers=cell),
        lambda r: r.status_code == 200 and r.json()["visited"] == len(SURVEY_PLAN),
        what="the campaign's progress",
    )
    assert progress.json()["reached"] == len(SURVEY_PLAN)
    assert progress.json()["projects"] == sum(len(b["projects"]) for b in bodies.values())
    assert progress.json()["red_flags"] == 1

    # --- 4. detection: one project per lead, the latest figures ---------------------------
    reported = {site: list(body["projects"]) for site, body in bodies.items()}
    lead_count = sum(len(v) for v in reported.values())
    assert lead_count == 12
    endogenous_jobs = sum(p["jobs_to_create"] for v in reported.values() for p in v)
    exogenous_jobs = sum(p["jobs_planned"] for p in EXOGENOUS)
    assert (endogenous_jobs, exogenous_jobs) == (150, 105)

    def settled(ps: list[Project]) -> bool:
        return len(ps) == lead_count + 2 and sum(p["jobs_planned"] for p in ps) == (
            endogenous_jobs + exogenous_jobs
        )

    found = await eventually(st.projects, settled, what="one project per lead, latest figures")
    by_site: dict[str | None, list[Project]] = {}
    for p in found:
        by_site.setdefault(p["site_id"], []).append(p)
    for site, site_leads in reported.items():
        expected = Counter(
            (p["kind"], p["jobs_to_create"], p["consent_to_share"], not p["known_to_public_actors"])
            for p in site_leads
        )
        got = Counter(
            (p["kind"], p["jobs_planned"], p["consent_to_share"], p["hidden"])
            for p in by_site.get(site, [])
        )
        assert got == expected, site
        assert all(p["origin"] == "endogenous" for p in by_site.get(site, []))
        assert all(p["shock_id"] == shock_id for p in by_site.get(site, []))
    assert {p["id"] for p in by_site[None]} == {p["id"] for p in exogenous}
    assert sorted(p["jobs_planned"] for p in by_site[RESUBMITTED]) == [5, 32]  # revision 2

    # Nexans' two plants reported a new line each: two projects, the later one flagged.
    nexans = by_site[NEXANS_TREFILERIE] + by_site[NEXANS_COULEE]
    flagged = [p for p in found if p["possible_duplicate_of"] is not None]
    assert len(flagged) == 1 and flagged[0] in nexans
    assert flagged[0]["possible_duplicate_of"] in {p["id"] for p in nexans} - {flagged[0]["id"]}
    # Mecacorp's two plants reported different kinds: nothing flagged.

    # --- the ledger ----------------------------------------------------------------------
    async def ledger() -> dict[str, Any]:
        resp = await st.d.get(f"/shocks/{shock_id}/ledger", headers=cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    led = await eventually(
        ledger,
        lambda x: x.get("total", {}).get("detected") == endogenous_jobs + exogenous_jobs,
        what="the ledger's detected jobs",
    )
    assert led["jobs_lost"] == JOBS_LOST and led["territory_id"] == TERRITORY
    assert led["endogenous"]["detected"] == endogenous_jobs
    assert led["exogenous"]["detected"] == exogenous_jobs
    assert (led["endogenous"]["projects"], led["exogenous"]["projects"]) == (lead_count, 2)
    assert led["total"]["projects_under_review"] == 1
    assert led["total"]["jobs_under_review"] == flagged[0]["jobs_planned"]

    # --- qualification, funding and the funder feed ---------------------------------------
    for p in found:
        resp = await st.d.post(f"/projects/{p['id']}/qualify", json={}, headers=cell)
        assert resp.status_code == 200, resp.text
    await eventually(
        ledger,
        lambda x: x["total"]["qualified"] == endogenous_jobs + exogenous_jobs,
        what="every project qualified in the ledger",
    )

    async def matches(project_id: str) -> dict[str, Any]:
        resp = await st.f.get(f"/projects/{project_id}/matches", headers=cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    eligible: dict[str, bool] = {}
    for p in found:
        m = await eventually(
            lambda p=p: matches(p["id"]),
            lambda m: m.get("stage") == "qualified",
            what=f"funding sees {p['id']} qualified",
        )
        assert m["region_code"] == REGION
        eligible[p["id"]] = bool(m["eligible"])
    consented = {p["id"] for p in found if p["consent_to_share"]}
    private = {p["id"] for p in found} - consented
    assert len(consented) == 9 and len(private) == 5

    await st.drained()
    feed = await read_all(bootstrap, FUNDER_FEED.physical(prefix))
    on_feed = {json.loads(m.value or b"{}")["project_id"] for m in feed}
    assert on_feed <= consented, on_feed & private
    assert on_feed == {pid for pid in consented if eligible[pid]}
    assert on_feed, "no consented project was proposed to funders"

    funder = token(
        st.funding.auth, "funder", "hdf-region", regions=[REGION], org="Région Hauts-de-France"
    )
    resp = await st.f.get("/funder/projects", headers=funder)
    assert resp.status_code == 200, resp.text
    listed = {p["project_id"] for p in resp.json()}
    assert listed and listed <= consented, listed & private
    for pid in private:
        hidden = await st.f.get(f"/projects/{pid}/matches", headers=funder)
        assert hidden.status_code == 404, (pid, hidden.status_code)

    # --- every topic: no dead letter, no personal data, retries created nothing -----------
    await st.drained()
    topics = await topics_of_test(bootstrap, prefix)
    assert {t.physical(prefix) for t in ALL_TOPICS} <= set(topics)
    dead: list[Message] = []
    for topic in ALL_TOPICS:
        if topic.physical_dlq(prefix) in topics:
            dead += await read_all(bootstrap, topic.physical_dlq(prefix))
    assert dead == [], [
        (m.topic, m.headers.get("ce_type"), m.headers.get("dlq_reason")) for m in dead
    ]

    secrets = [*CONSULTANTS, *(c.split("@")[0] for c in CONSULTANTS), SHOCK_NOTE]
    for n in range(1, len(SURVEY_PLAN) + 1):
        secrets += list(contact_of(n).values())
    everything = [m for name in topics for m in await read_all(bootstrap, name)]
    found_leaks = [
        (m.topic, m.headers.get("ce_type"), hits) for m in everything if (hits := leaks(m, secrets))
    ]
    assert found_leaks == [], found_leaks
    # The scan does find what is meant to travel (a firm's name, raw or JSON-escaped).
    public = [str(EXOGENOUS[0]["firm_name"]), "(fictional answer)"]
    seen = {hit for m in everything for hit in leaks(m, public)}
    assert seen == set(public)

    surveys_topic = await read_all(bootstrap, SURVEYS.physical(prefix))
    submitted = [
        m for m in surveys_topic if m.headers.get("ce_type", "").endswith("survey_submitted.v1")
    ]
    # 12 surveys + 1 resubmission; the two replayed retries published nothing
    assert len({m.headers["ce_id"] for m in submitted}) == len(SURVEY_PLAN) + 1
    revisions = Counter(json.loads(m.value or b"{}")["revision"] for m in submitted)
    assert revisions == {1: len(SURVEY_PLAN), 2: 1}
