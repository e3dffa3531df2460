"""Territories everywhere in France, on the real database (both backends) with the relay
publishing to real Kafka: the 183 with their communes, which territories a commune is
in, the commune outlines of a territory, and a reference reload that keeps the sites.

Territories outside Pas-de-Calais used here: ti-4406 Moselle-Est (Lorraine, 232
communes), ti-0101 Basse-Terre (Guadeloupe, 17), ti-0401 Est Réunion Industries
(La Réunion, 6), ti-1101 (a Grand Paris EPT), ti-9401 (Corsica); and ti-3205's Nord
communes (CC Flandre Lys: Estaires 59212…)."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import select

from services.site_registry.adapters import reference_data
from services.site_registry.adapters.orm import TerritoryCommuneRow
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.domain.model import SiteSource
from services.site_registry.domain.siret import make_siret
from services.site_registry.entrypoints.http import create_app
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import SiteInput
from shared.auth import mint_token
from shared.events.catalogue import SITES
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

ESTAIRES = "59212"  # Nord, CC Flandre Lys: ti-3205
FORBACH = "57227"  # Moselle, CA Forbach Porte de France: ti-4406 Moselle-Est
BAILLIF = "97104"  # Guadeloupe, CA Grand Sud Caraïbe: ti-0101 Basse-Terre
STRASBOURG = "67482"  # in no Territoire d'industrie


@pytest.fixture
async def client(registry: SiteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(registry, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c


def bearer(registry: SiteRegistry, role: str, territories: tuple[str, ...] = ()) -> dict[str, str]:
    token = mint_token(registry.auth, subject=f"test-{role}", roles=[role], territories=territories)
    return {"Authorization": f"Bearer {token}"}


async def test_the_database_holds_every_territorys_communes(registry: SiteRegistry) -> None:
    async with registry.session_factory() as session:
        rows = (await session.exec(select(TerritoryCommuneRow))).all()
    known: dict[str, set[str]] = {}
    for row in rows:
        known.setdefault(row.territory_id, set()).add(row.commune_insee)
    expected = {t: set(c) for t, c in reference_data.load_territory_communes().items()}
    assert len(known) == 183 and known == expected


async def test_the_183_territories_with_their_commune_and_epci_counts(
    registry: SiteRegistry, client: httpx.AsyncClient
) -> None:
    r = await client.get("/territories", headers=bearer(registry, "funder"))
    assert r.status_code == 200
    body = {t["id"]: t for t in r.json()}
    assert len(body) == 183 and all(t["commune_count"] > 0 for t in body.values())
    expected = reference_data.load_territory_communes()
    assert {ti: t["commune_count"] for ti, t in body.items()} == {
        ti: len(c) for ti, c in expected.items()
    }
    assert (body["ti-3205"]["commune_count"], body["ti-3205"]["epci_count"]) == (108, 2)
    assert (body["ti-4406"]["commune_count"], body["ti-4406"]["epci_count"]) == (232, 8)
    assert (body["ti-0101"]["commune_count"], body["ti-0101"]["epci_count"]) == (17, 2)
    # A Grand Paris EPT counts as an intercommunality; single communes do not.
    assert body["ti-1101"]["epci_count"] == 1
    assert {g["kind"] for g in body["ti-1101"]["groupements"]} == {"EPT"}
    assert body["ti-7506"]["epci_count"] == len(
        [g for g in body["ti-7506"]["groupements"] if g["kind"] != "commune"]
    )


@pytest.mark.parametrize(
    ("commune", "territories"),
    [
        (ESTAIRES, ["ti-3205"]),
        ("62119", ["ti-3205"]),  # Béthune
        (FORBACH, ["ti-4406"]),
        (BAILLIF, ["ti-0101"]),
        ("97409", ["ti-0401"]),  # Saint-André, La Réunion
        ("92025", ["ti-1101"]),  # Colombes, EPT Boucle Nord de Seine
        ("2B033", ["ti-9401"]),  # Bastia
        ("97411", []),  # Saint-Denis de La Réunion: in no territory
        (STRASBOURG, []),
        ("99999", []),  # well-formed, not a commune
    ],
)
async def test_which_territories_a_commune_belongs_to(
    registry: SiteRegistry, client: httpx.AsyncClient, commune: str, territories: list[str]
) -> None:
    r = await client.get(
        "/territories", params={"commune": commune}, headers=bearer(registry, "consultant")
    )
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()] == territories
    assert all(t["commune_count"] > 0 for t in r.json())


@pytest.mark.parametrize("commune", ["5921", "592120", "ABCDE", "2C033", "59 12", ""])
async def test_a_malformed_commune_code_is_refused(
    registry: SiteRegistry, client: httpx.AsyncClient, commune: str
) -> None:
    r = await client.get(
        "/territories", params={"commune": commune}, headers=bearer(registry, "funder")
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "query.commune"


@pytest.mark.parametrize(("territory", "count"), [("ti-4406", 232), ("ti-0101", 17)])
async def test_a_territorys_commune_outlines(
    registry: SiteRegistry, client: httpx.AsyncClient, territory: str, count: int
) -> None:
    headers = bearer(registry, "crisis_cell", (territory,))
    r = await client.get(f"/territories/{territory}/communes.geojson", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["territory"] == territory
    codes = [f["properties"]["code"] for f in body["features"]]
    assert codes == sorted(reference_data.load_territory_communes()[territory])
    assert len(codes) == count and body["communes_without_outline"] == []
    assert all(f["properties"]["nom"] for f in body["features"])
    assert {f["geometry"]["type"] for f in body["features"]} <= {"Polygon", "MultiPolygon"}
    # 5 decimals at most, and where the territory is (Moselle-Est / Guadeloupe)
    assert not re.search(r"\d\.\d{6,}", r.text)
    lons = [p[0] for f in body["features"] for p in _points(f["geometry"])]
    lats = [p[1] for f in body["features"] for p in _points(f["geometry"])]
    box = {"ti-4406": (6.2, 7.7, 48.7, 49.3), "ti-0101": (-62.0, -61.4, 15.8, 16.6)}[territory]
    assert box[0] < min(lons) and max(lons) < box[1]
    assert box[2] < min(lats) and max(lats) < box[3]

    # Revalidation: the same ETag gives a 304 without a body.
    etag = r.headers["etag"]
    assert r.headers["cache-control"] == "private, no-cache"
    again = await client.get(
        f"/territories/{territory}/communes.geojson",
        headers={**headers, "If-None-Match": etag},
    )
    assert again.status_code == 304 and again.content == b""


async def test_the_largest_territorys_outlines_fit_a_phone(
    registry: SiteRegistry, client: httpx.AsyncClient
) -> None:
    counts = {t: len(c) for t, c in reference_data.load_territory_communes().items()}
    largest = max(counts, key=lambda t: counts[t])
    assert (largest, counts[largest]) == ("ti-7510", 561)
    url = f"/territories/{largest}/communes.geojson"
    headers = bearer(registry, "funder")
    plain = await client.get(url, headers={**headers, "Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert len(plain.content) < 140_000  # 130,965 bytes when measured
    zipped = await client.get(url, headers={**headers, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    # httpx decodes it; the wire size is the compressed one.
    assert zipped.content == plain.content
    assert len(gzip.compress(plain.content)) < 25_000  # 20,956 bytes when measured
    assert zipped.headers["etag"] != plain.headers["etag"]


async def test_outlines_of_an_unknown_territory_and_without_a_token(
    registry: SiteRegistry, client: httpx.AsyncClient
) -> None:
    r = await client.get(
        "/territories/ti-9999/communes.geojson", headers=bearer(registry, "funder")
    )
    assert r.status_code == 404
    r = await client.get("/territories/ti-3205/communes.geojson")
    assert r.status_code == 401


async def test_the_openapi_document_describes_the_outlines(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/territories/{territory_id}/communes.geojson"]["get"]
    assert sorted(op["x-roles"]) == ["admin", "consultant", "crisis_cell", "funder"]
    assert "application/geo+json" in op["responses"]["200"]["content"]
    assert {"304", "401", "403", "404"} <= set(op["responses"])
    listing = doc["paths"]["/territories"]["get"]
    (commune,) = [p for p in listing["parameters"] if p["name"] == "commune"]
    assert commune["in"] == "query"


async def test_a_site_in_a_nord_commune_of_ti_3205_is_placed_in_it(
    registry: SiteRegistry, client: httpx.AsyncClient
) -> None:
    cell = bearer(registry, "crisis_cell", ("ti-3205",))
    siret = make_siret("91000001", "0001")
    body = {"siret": siret, "naf_code": "25.62A", "commune_insee": ESTAIRES}
    r = await client.post("/sites", json=body, headers=cell)
    assert r.status_code == 201, r.text
    assert r.json()["territory_ids"] == ["ti-3205"]
    r = await client.get("/sites", params={"commune": ESTAIRES}, headers=cell)
    assert [s["siret"] for s in r.json()["items"]] == [siret]
    card = (await client.get(f"/sites/{siret}", headers=cell)).json()
    assert card["commune"]["name"] == "Estaires"
    assert 2.6 < card["commune"]["lon"] < 2.8 and 50.6 < card["commune"]["lat"] < 50.7
    # A crisis cell of Moselle-Est registers in its own territory, not in ti-3205.
    moselle = bearer(registry, "crisis_cell", ("ti-4406",))
    r = await client.post("/sites", json={**body, "commune_insee": FORBACH}, headers=moselle)
    assert r.status_code == 403  # the site is ti-3205's now
    other = make_siret("91000002", "0001")
    r = await client.post(
        "/sites", json={**body, "siret": other, "commune_insee": FORBACH}, headers=moselle
    )
    assert r.status_code == 201 and r.json()["territory_ids"] == ["ti-4406"]


async def test_a_reference_reload_keeps_the_sites_and_moves_them(
    registry: SiteRegistry,
) -> None:
    """An older reference set (the Pas-de-Calais-only commune list of before), a site
    registered in Estaires while it held (in no territory then), and today's packaged
    set loaded again: the site is still there, now in ti-3205, with one update event."""
    territories = reference_data.load_territories()
    communes = reference_data.load_communes()
    older = {
        ti: [c for c in codes if c.startswith("62")]
        for ti, codes in reference_data.load_territory_communes().items()
    }
    await batch_jobs.load_reference_data(registry.uow, territories, communes, older)
    siret = make_siret("91000003", "0001")
    bethune = make_siret("91000004", "0001")
    sites = [
        SiteInput(siret=siret, naf_code="25.62A", commune_insee=ESTAIRES, source=SiteSource.MANUAL),
        SiteInput(
            siret=bethune, naf_code="22.11Z", commune_insee="62119", source=SiteSource.MANUAL
        ),
    ]
    await batch_jobs.load_sites(registry.uow, sites, registry.refs)
    async with registry.uow() as uow:
        before = await uow.sites.get(siret)
        assert before is not None and before.territory_ids == ()

    counts = await registry.load_reference_data()
    assert counts["sites_moved"] == 1
    assert (await registry.load_reference_data())["sites_moved"] == 0  # again: nothing

    async with registry.uow() as uow:
        moved = await uow.sites.get(siret)
        kept = await uow.sites.get(bethune)
    assert moved is not None and moved.territory_ids == ("ti-3205",) and moved.version == 2
    assert kept is not None and kept.territory_ids == ("ti-3205",) and kept.version == 1

    await registry.relay.publish_pending()
    topic = SITES.physical(registry.settings.kafka_topic_prefix)
    messages = [
        m for m in await read_all(registry.settings.kafka_bootstrap_servers, topic) if m.key
    ]
    updates = [m for m in messages if m.headers["ce_type"].endswith("site_updated.v1")]
    assert [m.key for m in updates] == [siret.encode()]
    payload = json.loads(updates[0].value or b"")
    assert payload["changed_fields"] == ["territory_ids"]
    assert payload["territory_ids"] == ["ti-3205"] and payload["version"] == 2


def _points(geometry: dict) -> list[list[float]]:
    polygons = (
        [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    )
    return [p for polygon in polygons for ring in polygon for p in ring]
