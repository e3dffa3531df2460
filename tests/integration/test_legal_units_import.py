"""Sirene's legal units on the registry's sites, on the real database with the relay
publishing to real Kafka: the real 299-row establishment sample imported for its
communes, then the real legal-unit sample of its SIRENs."""

from __future__ import annotations

import argparse
import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints import cli
from services.site_registry.entrypoints.http import create_app
from services.site_registry.service_layer import batch_jobs, commands
from shared.auth import mint_token
from shared.events.catalogue import SITES
from shared.messaging.tables import OutboxEvent
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

ESTABLISHMENTS = "sirene_stock_etablissement_sample_299.csv"
LEGAL_UNITS = "sirene_stock_unite_legale_sample_for_etab_sample.csv"
SOLE_TRADER_SITE = "00032517500065"


def text(name: str) -> str:
    return data_file(name).read_text(encoding="utf-8")


def expected_names(sirets: set[str]) -> dict[str, tuple[str, bool]]:
    """The name rule, restated on the sample with csv.DictReader: every record is wholly
    diffusible; a denomination names a legal person, a sole trader is named by their
    usual first name and name."""
    by_siren = {r["siren"]: r for r in csv.DictReader(io.StringIO(text(LEGAL_UNITS)))}
    names: dict[str, tuple[str, bool]] = {}
    for siret in sirets:
        r = by_siren[siret[:9]]
        assert r["statutDiffusionUniteLegale"] == "O"
        if r["denominationUniteLegale"]:
            names[siret] = (r["denominationUniteLegale"], False)
        else:
            assert r["categorieJuridiqueUniteLegale"] == "1000"
            names[siret] = (f"{r['prenomUsuelUniteLegale']} {r['nomUniteLegale']}", True)
    return names


@pytest.fixture
async def sites(registry: SiteRegistry) -> SiteRegistry:
    sample = text(ESTABLISHMENTS)
    communes = {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(sample))}
    report = await batch_jobs.import_sirene(
        registry.uow,
        io.StringIO(sample, newline=""),
        commands.ImportScope(communes=frozenset(communes - {""})),
        registry.refs,
    )
    assert report.created == 7
    await registry.relay.publish_pending()
    return registry


@pytest.fixture
async def client(sites: SiteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(sites, run_workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c


def admin(registry: SiteRegistry) -> dict[str, str]:
    token = mint_token(registry.auth, subject="test-admin", roles=["admin"])
    return {"Authorization": f"Bearer {token}"}


async def outbox_count(registry: SiteRegistry) -> int:
    async with registry.session_factory() as s:
        return len((await s.exec(select(OutboxEvent.id))).all())


async def test_every_site_gets_its_firms_name_and_categories_and_a_repeat_changes_nothing(
    sites: SiteRegistry, client: httpx.AsyncClient
) -> None:
    report = await batch_jobs.import_legal_units(
        sites.uow, io.StringIO(text(LEGAL_UNITS), newline=""), batch_size=2
    )
    assert (report.rows_read, report.error_count) == (262, 0)
    assert (report.matched, report.sites_updated, report.events) == (6, 7, 7)

    resp = await client.get("/sites", params={"limit": 50}, headers=admin(sites))
    assert resp.status_code == 200, resp.text
    listed = {s["siret"]: s for s in resp.json()["items"]}
    assert len(listed) == 7
    expected = expected_names(set(listed))
    assert {k: (s["name"], s["name_is_person"]) for k, s in listed.items()} == expected
    assert all(s["firm_name"] == s["name"] for s in listed.values())  # no site names itself
    by_siren = {r["siren"]: r for r in csv.DictReader(io.StringIO(text(LEGAL_UNITS)))}
    for siret, s in listed.items():
        row = by_siren[siret[:9]]
        assert s["legal_category"] == row["categorieJuridiqueUniteLegale"]
        assert s["company_category"] == (row["categorieEntreprise"] or None)
    categories = [s["company_category"] for s in listed.values()]
    assert (categories.count("PME"), categories.count(None)) == (6, 1)

    card = await client.get(f"/sites/{SOLE_TRADER_SITE}", headers=admin(sites))
    assert card.status_code == 200, card.text
    trader = card.json()["site"]
    assert (trader["name"], trader["name_is_person"]) == ("THIERRY JANOYER", True)
    assert (trader["legal_category"], trader["company_category"]) == ("1000", "PME")
    assert trader["company_category_year"] == 2019

    await sites.relay.publish_pending()
    messages = await read_all(
        sites.settings.kafka_bootstrap_servers, SITES.physical(sites.settings.kafka_topic_prefix)
    )
    updates = [
        json.loads(m.value or b"")
        for m in messages
        if m.headers["ce_type"] == "rebond.site_registry.site_updated.v1"
    ]
    assert len(updates) == 7
    by_site = {u["site_id"]: u for u in updates}
    assert by_site[SOLE_TRADER_SITE]["name"] is None
    assert by_site[SOLE_TRADER_SITE]["changed_fields"] == ["legal_category", "company_category"]
    for siret, (name, is_person) in expected.items():
        assert by_site[siret]["name"] == (None if is_person else name)
    everything = b"".join((m.value or b"") + (m.key or b"") for m in messages)
    assert b"JANOYER" not in everything

    before = await outbox_count(sites)
    again = await batch_jobs.import_legal_units(
        sites.uow, io.StringIO(text(LEGAL_UNITS), newline="")
    )
    assert (again.sites_updated, again.events, again.unchanged) == (0, 0, 7)
    assert await outbox_count(sites) == before


async def test_the_cli_job_reads_the_zip_and_publishes_what_it_committed(
    sites: SiteRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "StockUniteLegale_utf8.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("StockUniteLegale_utf8.csv", text(LEGAL_UNITS))

    assert await cli._import_legal_units(sites, argparse.Namespace(path=archive)) == 0

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("rows_read", "matched", "sites_updated", "error_count")} == {
        "rows_read": 262,
        "matched": 6,
        "sites_updated": 7,
        "error_count": 0,
    }
    async with sites.session_factory() as s:
        unsent = (
            await s.exec(select(OutboxEvent.id).where(col(OutboxEvent.sent_at).is_(None)))
        ).all()
    assert unsent == []
