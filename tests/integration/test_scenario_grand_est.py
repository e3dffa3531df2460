"""A rebond outside Pas-de-Calais ("All of France"): **ti-4408 Nord Lorraine**, Grand Est.

Why this territory: the Lorraine steel basin — the Fensch valley (Florange, Hayange),
Thionville, Metz, Longwy — where closure shocks are the territory's history; it lies
far from the demo's Pas-de-Calais and spans **two départements** (195 communes of
Moselle, 57, and the 23 of Grand Longwy Agglomération in Meurthe-et-Moselle, 54), with
ten groupements among which Metz Métropole: 218 communes in the derived membership
(`services/site_registry/data/territoires_industrie_communes_2023_derived.csv`).

1. A StockEtablissement file in the real layout (the 53 columns INSEE publishes, one CSV
   in a zip as INSEE distributes it) is built with 45 GENERATED manufacturing
   establishments (NAF rév. 2 section C, active, valid SIRETs, a headcount band,
   Lambert-93 positions around their commune's centroid) in communes of both
   départements, and 18 rows the import must leave out: closed ones, other NAF
   sections, legacy nomenclatures in the territory; manufacturing in a commune of no
   territory next door (Val de Briey, Verdun), of other territories (Nancy, Saint-Avold,
   Béthune). It goes in through the registry's `import-sirene` job.
2. The crisis cell of Nord Lorraine sees the 45 sites in its territory, declares a
   HYPOTHETICAL closure shock at one of them (a generated steelworks in Florange, 400
   jobs lost), and the campaign is launched over the territory.
3. The three consultants see the 44 visits of the plan (every site but the closing one)
   in their agendas; none of the 18 left-out rows became a site; no dead letter.

EVERY row of the file is GENERATED (synthetic SIRETs, names, streets, bands, dates):
each name starts with "GENERATED" and the file's name says so. The commune codes,
names, postal codes and centroids, the NAF codes and the territory are the real ones.
"""

from __future__ import annotations

import json
import random
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.campaigns.bootstrap import Campaigns
from services.detection.bootstrap import Detection
from services.site_registry.adapters.geo import distance_km, lambert93_to_wgs84
from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    load_communes,
    load_naf,
    load_territory_communes,
)
from services.site_registry.adapters.sirene import STOCK_ETABLISSEMENT_COLUMNS
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints import cli
from shared.events.catalogue import ALL_TOPICS
from tests.support.dsl import TODAY, Stack, Visit, open_stack, token
from tests.support.kafka import Message, read_all
from tests.support.sirene_layout import (
    GENERATED_MARK,
    GeneratedEstablishment,
    generated_establishment,
    generated_siret,
    real_header,
    write_generated_stock_etablissement,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TERRITORY = "ti-4408"
TERRITORY_NAME = "Nord Lorraine"
TERRITORY_COMMUNES = 218
CONSULTANTS = ("consultant-1", "consultant-2", "consultant-3")  # the default roster
JOBS_LOST = 400
ANNOUNCED_ON = "2026-11-20"  # the Friday before the test clock's Monday (2026-11-23)
SEED = 4408

#: communes of the territory that get sites: Moselle (57) and Meurthe-et-Moselle (54)
SITE_COMMUNES = (
    "57221",  # Florange
    "57306",  # Hayange
    "57672",  # Thionville
    "57463",  # Metz
    "57206",  # Fameck
    "57757",  # Yutz
    "57480",  # Montigny-lès-Metz
    "57751",  # Woippy
    "57433",  # Maizières-lès-Metz
    "57019",  # Amnéville
    "57591",  # Rombas
    "57283",  # Hagondange
    "57683",  # Uckange
    "54323",  # Longwy
    "54580",  # Villerupt
    "54382",  # Mont-Saint-Martin
)
#: section C sub-classes of the generated plants (metals, mechanics, cars, food, …)
NAF_CODES = (
    "24.10Z",
    "24.20Z",
    "24.51Z",
    "25.11Z",
    "25.50A",
    "25.61Z",
    "25.62B",
    "28.22Z",
    "29.32Z",
    "22.29A",
    "20.59Z",
    "10.71A",
    "11.05Z",
    "16.23Z",
    "33.12Z",
)
BANDS = ("03", "11", "11", "12", "12", "12", "21", "21", "22", "31", "32")
IN_SCOPE = 45  # active NAFRev2 section C establishments in the territory, the closing one too
CLOSING_LABEL = "aciérie de Florange (hypothetical closure)"

#: rows the import must leave out, outside the territory: commune → (label, NAF code)
ELSEWHERE = {
    "54099": "Val de Briey, in no territory",
    "55545": "Verdun, in no territory",
    "54395": "Nancy, ti-4420 Val de Lorraine",
    "57606": "Saint-Avold, ti-4406 Moselle-Est",
    "62119": "Béthune, ti-3205 (the demo's)",
}
#: other sections in the territory: wholesale, electricians, engineering, software, trade
OTHER_SECTIONS = ("46.69B", "43.21A", "71.12B", "62.01Z", "47.11F")
#: codes of older nomenclatures that look like rév. 2 ones
LEGACY = (("NAFRev1", "27.1Y"), ("NAF1993", "28.5D"))


def communes_by_code() -> dict[str, CommuneRecord]:
    return {c.insee_code: c for c in load_communes()}


def build_file_rows() -> tuple[list[GeneratedEstablishment], list[GeneratedEstablishment]]:
    """The generated rows: (in scope, the closing plant first; left out)."""
    rng = random.Random(SEED)
    communes = communes_by_code()
    naf = {c.code: c for c in load_naf()}
    firm = 0

    def siret() -> str:
        nonlocal firm
        firm += 1
        return generated_siret(firm)

    in_scope = [
        generated_establishment(
            siret(), communes["57221"], "24.10Z", CLOSING_LABEL, rng=rng, headcount_band="41"
        )
    ]
    for i in range(IN_SCOPE - 2):
        commune = communes[SITE_COMMUNES[i % len(SITE_COMMUNES)]]
        code = NAF_CODES[i % len(NAF_CODES)]
        in_scope.append(
            generated_establishment(
                siret(),
                commune,
                code,
                f"{naf[code].label} n°{i + 1:02d} ({commune.name})",
                rng=rng,
                headcount_band=BANDS[i % len(BANDS)],
                street="DES FORGES",
            )
        )
    # A second plant of the last firm (same SIREN), partially diffusible: Sirene hides its
    # address and position ([ND]); it is still a site, without coordinates.
    in_scope.append(
        generated_establishment(
            generated_siret(firm, 2),
            communes["54323"],
            "25.62B",
            "second plant, partially diffusible (Longwy)",
            rng=rng,
            headcount_band="12",
            diffused=False,
            head_office=False,
        )
    )

    out: list[GeneratedEstablishment] = []
    for i in range(4):  # closed manufacturing in the territory
        commune = communes[SITE_COMMUNES[i]]
        out.append(
            generated_establishment(
                siret(),
                commune,
                "25.62B",
                f"closed workshop ({commune.name})",
                rng=rng,
                headcount_band="11",
                active=False,
            )
        )
    for code in OTHER_SECTIONS:  # active, in the territory, not manufacturing
        out.append(
            generated_establishment(
                siret(), communes["57672"], code, naf[code].label, rng=rng, headcount_band="12"
            )
        )
    for nomenclature, code in LEGACY:  # active, in the territory, legacy nomenclature
        out.append(
            generated_establishment(
                siret(),
                communes["57306"],
                code,
                f"{nomenclature} {code}",
                rng=rng,
                headcount_band="21",
                nomenclature=nomenclature,
            )
        )
    for insee, label in ELSEWHERE.items():  # active manufacturing, outside the territory
        for code in ("24.10Z", "25.62B") if insee in ("54099", "54395") else ("22.11Z",):
            out.append(
                generated_establishment(
                    siret(), communes[insee], code, label, rng=rng, headcount_band="21"
                )
            )
    return in_scope, out


async def topics_of_test(bootstrap: str, prefix: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))
    finally:
        await admin.close()


@pytest.fixture
async def nord_lorraine(
    registry: SiteRegistry, campaigns: Campaigns, detection: Detection
) -> AsyncIterator[Stack]:
    """Registry, campaigns and detection in-process, as the crisis cell of Nord Lorraine
    (no demo data)."""
    async with open_stack(
        registry, campaigns, detection, territory=TERRITORY, cell="cell-nord-lorraine"
    ) as st:
        yield st


def test_the_generated_file_is_what_the_scenario_says() -> None:
    """The file's rows, checked without the services: what the scenario's counts rest on."""
    in_scope, out = build_file_rows()
    territory = set(load_territory_communes()[TERRITORY])
    assert len(territory) == TERRITORY_COMMUNES
    assert len(in_scope) == IN_SCOPE and len(out) == 18
    everything = in_scope + out
    assert len({e.siret for e in everything}) == len(everything)
    assert all(e.name.startswith(f"{GENERATED_MARK} — ") for e in everything)
    section_c = {c.code for c in load_naf().codes_in_section("C")}
    for e in in_scope:
        assert e.active and e.nomenclature == "NAFRev2" and e.naf_code in section_c
        assert e.commune_insee in territory and e.headcount_band
    assert {e.commune_insee[:2] for e in in_scope} == {"54", "57"}
    for e in out:
        kept = (
            e.active
            and e.nomenclature == "NAFRev2"
            and e.naf_code in section_c
            and e.commune_insee in territory
        )
        assert not kept, e
    assert Counter(e.commune_insee in territory for e in out) == {True: 11, False: 7}


async def test_nord_lorraine_rebond_from_a_generated_sirene_file(
    nord_lorraine: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    st = nord_lorraine
    cell = st.cell
    admin = token(st.registry.auth, "admin", "admin-e2e")
    prefix = st.registry.settings.kafka_topic_prefix
    bootstrap = st.registry.settings.kafka_bootstrap_servers

    # --- 1. the territory, and its sites imported from a Sirene-layout file --------------
    territories = (await st.r.get("/territories", headers=cell)).json()
    summary = next(t for t in territories if t["id"] == TERRITORY)
    assert summary["name"] == TERRITORY_NAME
    assert summary["commune_count"] == TERRITORY_COMMUNES
    detail = (await st.r.get(f"/territories/{TERRITORY}", headers=cell)).json()
    communes = {c["insee"] for c in detail["communes"]}
    assert communes == set(load_territory_communes()[TERRITORY])
    assert {c[:2] for c in communes} == {"54", "57"}  # two départements, none of them 62

    in_scope, out = build_file_rows()
    closing = in_scope[0].siret
    path = write_generated_stock_etablissement(tmp_path, TERRITORY, in_scope + out)
    assert GENERATED_MARK in path.name
    with zipfile.ZipFile(path) as archive:
        (member,) = archive.namelist()
        assert GENERATED_MARK in member
        first_line = archive.read(member).decode("utf-8").splitlines()[0]
    assert first_line.split(",") == list(STOCK_ETABLISSEMENT_COLUMNS) == real_header()
    assert len(STOCK_ETABLISSEMENT_COLUMNS) == 53

    capsys.readouterr()
    assert (
        await cli._import(st.registry, cli.ImportRequest(path=path, territories=(TERRITORY,))) == 0
    )  # `import-sirene`
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    closed_in_territory = sum(
        1 for e in out if not e.active and e.commune_insee in communes and e.naf_code[:2] == "25"
    )
    assert report["rows_read"] == len(in_scope) + len(out) == 63, report
    # In scope = the territory's NAFRev2 section C rows, closed ones too (4, skipped: a
    # closed establishment the registry never knew is nothing to track).
    assert report["in_scope"] == IN_SCOPE + closed_in_territory, report
    assert report["created"] == IN_SCOPE, report
    assert report["skipped"] == closed_in_territory == 4, report
    assert (report["updated"], report["closed"], report["error_count"]) == (0, 0, 0), report

    sites = (
        await st.r.get("/sites", params={"territory": TERRITORY, "limit": 500}, headers=cell)
    ).json()["items"]
    by_siret = {s["siret"]: s for s in sites}
    assert set(by_siret) == {e.siret for e in in_scope}
    records = communes_by_code()
    for e in in_scope:
        site = by_siret[e.siret]
        assert (site["source"], site["status"]) == ("sirene", "active")
        assert site["name"] == e.name and site["name"].startswith(GENERATED_MARK)
        assert (site["naf_code"], site["naf_section"]) == (e.naf_code, "C")
        assert (site["commune_insee"], site["headcount_band"]) == (
            e.commune_insee,
            e.headcount_band,
        )
        assert site["territory_ids"] == [TERRITORY]
        if e.lambert93 is None:  # "[ND]" in the file: no position
            assert site["lon"] is None and site["lat"] is None
            continue
        # Lambert-93 (file) → WGS84 (registry): the same point, near the commune's centroid.
        lon, lat = lambert93_to_wgs84(*e.lambert93)
        assert distance_km(site["lon"], site["lat"], lon, lat) < 0.005, site
        commune = records[e.commune_insee]
        assert commune.lon is not None and commune.lat is not None
        assert distance_km(site["lon"], site["lat"], commune.lon, commune.lat) < 1.0, site
    assert Counter(s["commune_insee"][:2] for s in sites) == {"57": 38, "54": 7}

    # None of the left-out rows became a site, in any territory (admin sees them all).
    everywhere = (await st.r.get("/sites", params={"limit": 500}, headers=admin)).json()
    assert {s["siret"] for s in everywhere["items"]} == set(by_siret)
    for e in out:
        resp = await st.r.get(f"/sites/{e.siret}", headers=admin)
        assert resp.status_code == 404, (e.name, resp.status_code)

    # --- 2. the closure shock, and the campaign it launches --------------------------------
    resp = await st.r.post(
        "/closure-shocks",
        json={
            "site_id": closing,
            "announced_on": ANNOUNCED_ON,
            "planned_closure_on": "2027-09-30",
            "jobs_lost": JOBS_LOST,
        },
        headers=cell,
    )
    assert resp.status_code == 201, resp.text
    shock_id = resp.json()["id"]
    assert resp.json()["territory_ids"] == [TERRITORY]
    await st.registry.relay.publish_pending()

    campaigns = await eventually(
        lambda: st.c.get("/campaigns", headers=cell),
        lambda r: r.status_code == 200 and len(r.json()) == 1,
        what="the campaign launched",
    )
    campaign = campaigns.json()[0]
    assert (campaign["shock_id"], campaign["territory_id"]) == (shock_id, TERRITORY)
    assert campaign["closing_site_id"] == closing
    assert campaign["roster"] == list(CONSULTANTS)

    # --- 3. the visits, in the consultants' agendas ----------------------------------------
    expected = {e.siret for e in in_scope} - {closing}  # the closing site is never visited
    assert len(expected) == IN_SCOPE - 1 == 44

    async def agendas() -> dict[str, list[Visit]]:
        agenda: dict[str, list[Visit]] = {}
        for consultant in CONSULTANTS:
            resp = await st.c.get(
                "/me/visits",
                params={"from": TODAY.date().isoformat(), "days": 31, "limit": 200},
                headers=st.consultant(consultant),
            )
            assert resp.status_code == 200, resp.text
            assert resp.json().get("next_cursor") is None
            agenda[consultant] = list(resp.json()["items"])
        return agenda

    def complete(a: dict[str, list[Visit]]) -> bool:
        return sum(len(v) for v in a.values()) == len(expected)

    visits = await eventually(agendas, complete, what="every visit in the consultants' agendas")
    visited = [v["site_id"] for vs in visits.values() for v in vs]
    assert len(visited) == len(set(visited)) == len(expected)
    assert set(visited) == expected
    assert all(visits.values()), {c: len(v) for c, v in visits.items()}  # all three staffed
    for consultant, mine in visits.items():
        for v in mine:
            assert v["status"] == "planned", v
            assert v["campaign_id"] == campaign["id"], v
            assert v["name"] == by_siret[v["site_id"]]["name"], v
            assert v["naf"] == by_siret[v["site_id"]]["naf_code"], (consultant, v)

    plan = (await st.c.get(f"/campaigns/{campaign['id']}/plan", headers=cell)).json()
    statuses = Counter(t["status"] for t in plan["targets"])
    assert statuses == {"planned": len(expected)}, statuses
    assert {t["site_id"] for t in plan["targets"]} == expected

    # --- no dead letter on any topic -------------------------------------------------------
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
