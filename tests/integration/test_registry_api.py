"""The registry's HTTP API on the real database, with the relay publishing to real Kafka."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.entrypoints.http import create_app
from services.site_registry.service_layer import batch_jobs
from shared.auth import mint_token
from shared.events.catalogue import SITES
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration

BRIDGESTONE = "36120038900019"


@pytest.fixture
async def demo(registry: SiteRegistry) -> SiteRegistry:
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    return registry


@pytest.fixture
async def client(demo: SiteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(demo, run_workers=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as c:
        yield c


def bearer(registry: SiteRegistry, role: str, territories: tuple[str, ...] = ()) -> dict[str, str]:
    token = mint_token(registry.auth, subject=f"test-{role}", roles=[role], territories=territories)
    return {"Authorization": f"Bearer {token}"}


async def test_territories_are_the_183_real_ones(demo: SiteRegistry, client: httpx.AsyncClient):
    r = await client.get("/territories", headers=bearer(demo, "funder"))
    assert r.status_code == 200
    body = r.json()
    assert len(body) == 183
    bethune = next(t for t in body if t["id"] == "ti-3205")
    assert bethune["name"] == "Béthune-Bruay et Flandre-Lys"
    assert {g["siren"] for g in bethune["groupements"]} == {"245900758", "200072460"}

    r = await client.get("/territories/ti-3205", headers=bearer(demo, "consultant", ("ti-3205",)))
    detail = r.json()
    assert len(detail["communes"]) == 108  # 104 in Pas-de-Calais, 4 in the Nord
    assert detail["site_counts"] == {"active": 165}


async def test_site_search_pages_through_the_territory(
    demo: SiteRegistry, client: httpx.AsyncClient
):
    headers = bearer(demo, "crisis_cell", ("ti-3205",))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/sites", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [s["siret"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 165 == len(set(seen))
    assert seen == sorted(seen)

    r = await client.get("/sites", params={"naf": "22.11Z"}, headers=headers)
    assert BRIDGESTONE in [s["siret"] for s in r.json()["items"]]
    assert all(s["naf_code"] == "22.11Z" for s in r.json()["items"])

    r = await client.get("/sites", params={"band": "41", "source": "irep"}, headers=headers)
    assert [s["siret"] for s in r.json()["items"]] == [BRIDGESTONE]


async def test_scopes_are_enforced(demo: SiteRegistry, client: httpx.AsyncClient):
    elsewhere = bearer(demo, "consultant", ("ti-3209",))
    r = await client.get(f"/sites/{BRIDGESTONE}", headers=elsewhere)
    assert r.status_code == 403
    r = await client.get("/sites", params={"territory": "ti-3205"}, headers=elsewhere)
    assert r.status_code == 403
    r = await client.get("/sites", headers=elsewhere)
    assert r.json()["items"] == []  # no site of the demo is in ti-3209
    r = await client.get("/sites", headers=bearer(demo, "funder"))  # territories: not a funder's
    assert r.status_code == 403
    r = await client.get("/sites")
    assert r.status_code == 401
    r = await client.get("/sites", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401


async def test_site_card_has_labels_and_territories(demo: SiteRegistry, client: httpx.AsyncClient):
    r = await client.get(f"/sites/{BRIDGESTONE}", headers=bearer(demo, "consultant", ("ti-3205",)))
    card = r.json()
    assert card["site"]["commune_insee"] == "62119"
    assert card["naf_label"] == "Fabrication et rechapage de pneumatiques"
    assert card["commune"]["name"] == "Béthune"
    assert card["territories"] == [{"id": "ti-3205", "name": "Béthune-Bruay et Flandre-Lys"}]
    assert 2.5 < card["site"]["lon"] < 2.8 and 50.4 < card["site"]["lat"] < 50.6


async def test_closure_shock_rules(demo: SiteRegistry, client: httpx.AsyncClient):
    cell = bearer(demo, "crisis_cell", ("ti-3205",))
    shock = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900}

    r = await client.post("/closure-shocks", json={**shock, "jobs_lost": 0}, headers=cell)
    assert r.status_code == 422 and "jobs_lost" in r.json()["detail"]
    r = await client.post(
        "/closure-shocks", json={**shock, "site_id": "36120038900018"}, headers=cell
    )
    assert r.status_code == 404 and "36120038900018" in r.json()["detail"]
    r = await client.post(
        "/closure-shocks", json=shock, headers=bearer(demo, "crisis_cell", ("ti-3209",))
    )
    assert r.status_code == 403
    r = await client.post(
        "/closure-shocks", json=shock, headers=bearer(demo, "consultant", ("ti-3205",))
    )
    assert r.status_code == 403
    r = await client.post(
        "/closure-shocks",
        json={**shock, "planned_closure_on": "2019-01-01"},
        headers=cell,
    )
    assert r.status_code == 422 and "before" in r.json()["detail"]

    r = await client.post("/closure-shocks", json=shock, headers=cell)
    assert r.status_code == 201, r.text
    assert r.json()["jobs_lost"] == 900
    r = await client.post("/closure-shocks", json=shock, headers=cell)
    assert r.status_code == 409 and r.json()["code"] == "open_shock_exists"

    r = await client.get(f"/sites/{BRIDGESTONE}", headers=cell)
    assert r.json()["site"]["status"] == "closure_announced"
    assert len(r.json()["closure_shocks"]) == 1

    other = (
        await client.get("/sites", params={"limit": 1, "source": "generated"}, headers=cell)
    ).json()["items"][0]
    r = await client.post(
        f"/sites/{other['siret']}/closure", json={"closed_on": "2021-01-01"}, headers=cell
    )
    assert r.status_code == 200 and r.json()["status"] == "closed"
    r = await client.post(
        "/closure-shocks", json={**shock, "site_id": other["siret"]}, headers=cell
    )
    assert r.status_code == 409 and r.json()["code"] == "site_closed"

    # Exactly one closure announcement reached the topic, with its job count.
    await demo.relay.publish_pending()
    topic = SITES.physical(demo.settings.kafka_topic_prefix)
    messages = await read_all(demo.settings.kafka_bootstrap_servers, topic)
    announced = [m for m in messages if m.headers["ce_type"].endswith("closure_announced.v1")]
    assert len(announced) == 1
    payload = json.loads(announced[0].value or b"")
    assert payload["site_id"] == BRIDGESTONE and payload["jobs_lost"] == 900
    assert payload["territory_ids"] == ["ti-3205"]


async def test_bad_input_is_explained(demo: SiteRegistry, client: httpx.AsyncClient):
    cell = bearer(demo, "crisis_cell", ("ti-3205",))
    body = {"siret": "36120038900018", "naf_code": "22.11Z", "commune_insee": "62119"}
    r = await client.post("/sites", json=body, headers=cell)
    assert r.status_code == 422 and "Luhn" in r.json()["detail"]
    r = await client.post(
        "/sites", json={**body, "siret": BRIDGESTONE, "naf_code": "99.99Z"}, headers=cell
    )
    assert r.status_code == 422 and "99.99Z" in r.json()["detail"]
    r = await client.post(
        "/sites", json={**body, "siret": BRIDGESTONE, "headcount_band": "77"}, headers=cell
    )
    assert r.status_code == 422 and "77" in r.json()["detail"]
    r = await client.post("/sites", json={"siret": BRIDGESTONE}, headers=cell)
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"naf_code", "commune_insee"}
    r = await client.get("/sites", params={"cursor": "%%%"}, headers=cell)
    assert r.status_code == 400


async def test_every_post_replays_its_first_answer_for_a_retried_idempotency_key(
    demo: SiteRegistry, client: httpx.AsyncClient
):
    cell = bearer(demo, "crisis_cell", ("ti-3205",))
    site = {"siret": "90000001900019", "naf_code": "25.62A", "commune_insee": "62119"}
    shock = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900}
    posts = [  # path, body, another body, status
        ("/sites", site, {**site, "name": "ACME"}, 201),
        ("/closure-shocks", shock, {**shock, "jobs_lost": 901}, 201),
        ("/sites/90000001900019/closure", {"closed_on": "2021-01-01"}, {}, 200),
    ]
    for n, (path, body, other, status) in enumerate(posts):
        headers = {**cell, "Idempotency-Key": f"retry-{n}"}
        first = await client.post(path, json=body, headers=headers)
        assert first.status_code == status, first.text
        retry = await client.post(path, json=body, headers=headers)
        assert (retry.status_code, retry.json()) == (status, first.json())
        assert retry.headers["Idempotent-Replayed"] == "true"
        reused = await client.post(path, json=other, headers=headers)
        assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"

    card = (await client.get(f"/sites/{BRIDGESTONE}", headers=cell)).json()
    assert len(card["closure_shocks"]) == 1
    await demo.relay.publish_pending()
    messages = await read_all(
        demo.settings.kafka_bootstrap_servers, SITES.physical(demo.settings.kafka_topic_prefix)
    )
    keys = [m.key.decode() for m in messages if m.key]
    assert keys.count("90000001900019") == 2  # registered, closed: once each
    assert keys.count(BRIDGESTONE) == 2  # the demo's registration, the announcement


async def test_writing_outside_the_callers_territories_is_refused(
    demo: SiteRegistry, client: httpx.AsyncClient
):
    elsewhere = bearer(demo, "crisis_cell", ("ti-3209",))
    body = {"siret": BRIDGESTONE, "naf_code": "22.11Z", "commune_insee": "62119"}
    r = await client.post("/sites", json=body, headers=elsewhere)
    assert r.status_code == 403 and r.json()["code"] == "out_of_scope"
    r = await client.post(f"/sites/{BRIDGESTONE}/closure", json={}, headers=elsewhere)
    assert r.status_code == 403 and "ti-3205" in r.json()["detail"]
    r = await client.post("/sites/36120038900027/closure", json={}, headers=elsewhere)
    assert r.status_code == 404
