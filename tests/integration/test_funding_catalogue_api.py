"""The funding catalogue through its API, on PostgreSQL: validation, who may change a
scheme, calls and their selection rounds, and the served AsyncAPI document."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.funding.adapters.seed import DATA_DIR
from services.funding.bootstrap import Funding
from services.funding.entrypoints.http import create_app
from tests.support.dsl import token

pytestmark = pytest.mark.integration

COMMITTED_ASYNCAPI = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json").read_text("utf-8")
)
DROME = "aides_departement_drome_format_api_aides_territoires.json"
SCHEME = {
    "id": "hdf-test-scheme",
    "name": "Aide régionale de test (generated for this test)",
    "funders": ["Région Hauts-de-France"],
    "perimeter": {"scale": "region", "codes": ["32"]},
    "aid_type": "grant",
    "beneficiaries": ["sme"],
    "themes": ["modernisation"],
    "rate_min_pct": 10,
    "rate_max_pct": 40,
    "amount_max_eur": 500_000,
    "opens_on": "2023-01-01",
    "closes_on": "2027-12-31",
    "source": "generated test data",
}


@pytest.fixture
async def client(funding: Funding) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(funding, run_workers=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://funding") as c:
        yield c


async def test_catalogue_validation_ownership_calls_and_rounds(
    funding: Funding, client: httpx.AsyncClient
) -> None:
    region = token(funding.auth, "funder", "hdf", regions=["32"], org="Région Hauts-de-France")
    ademe = token(funding.auth, "funder", "ademe", regions=["32"], org="ADEME")

    bad = await client.put(
        "/schemes/hdf-test-scheme",
        json={**SCHEME, "closes_on": "2022-01-01", "rate_max_pct": 140},
        headers=region,
    )
    assert bad.status_code == 422
    detail = bad.json()["detail"]
    assert "clos" in detail and "100" in detail  # both problems, named

    refused = await client.put("/schemes/hdf-test-scheme", json=SCHEME, headers=ademe)
    assert refused.status_code == 403

    created = await client.put("/schemes/hdf-test-scheme", json=SCHEME, headers=region)
    assert created.status_code == 200, created.text
    assert created.json()["changed"] is True
    again = await client.put("/schemes/hdf-test-scheme", json=SCHEME, headers=region)
    assert again.json()["changed"] is False
    listed = (
        await client.get("/schemes", params={"funder": "Région Hauts-de-France"}, headers=region)
    ).json()
    assert "hdf-test-scheme" in {s["id"] for s in listed}

    call = {
        "id": "hdf-test-call",
        "scheme_id": "hdf-test-scheme",
        "name": "Appel à projets de test",
        "rounds": [{"name": "vague 1", "closes_on": "2024-03-01", "quota": 50}],
    }
    assert (await client.put("/calls/hdf-test-call", json=call, headers=region)).status_code == 200
    result = {
        "round": "vague 1",
        "decided_on": "2024-04-01",
        "applications": 50,
        "selected": 18,
        "per_territory": {"ti-3205": 18},
    }
    ok = await client.post("/calls/hdf-test-call/results", json=result, headers=region)
    assert ok.status_code == 200, ok.text
    impossible = await client.post(
        "/calls/hdf-test-call/results", json={**result, "selected": 60}, headers=region
    )
    assert impossible.status_code == 409 and "60" in impossible.json()["detail"]
    calls = (await client.get("/calls", headers=region)).json()
    mine = next(c for c in calls if c["id"] == "hdf-test-call")
    assert mine["results"][0]["selected"] == 18
    assert mine["results"][0]["per_territory"] == {"ti-3205": 18}


async def test_an_aides_territoires_document_is_imported_once_per_key(
    funding: Funding, client: httpx.AsyncClient
) -> None:
    admin = token(funding.auth, "admin", "admin")
    drome = json.loads((DATA_DIR / DROME).read_text("utf-8"))["results"]  # none for firms
    for_business = {
        **drome[0],
        "targeted_audiences": ["Communes", "Entreprises privées"],  # made up for the test
        "aid_types": ["Subvention"],
        "submission_deadline": "2025-06-30",
    }
    document = {"count": 4, "results": [*drome, for_business]}
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}

    first = await client.post("/schemes/import/aides-territoires", json=document, headers=keyed)
    assert first.status_code == 200, first.text
    assert (first.json()["schemes"], first.json()["changed"]) == (1, 1)
    assert len(first.json()["problems"]) == 3
    replayed = await client.post("/schemes/import/aides-territoires", json=document, headers=keyed)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.json() == first.json()
    again = await client.post("/schemes/import/aides-territoires", json=document, headers=admin)
    assert again.json()["changed"] == 0

    imported = (await client.get(f"/schemes/at-{drome[0]['id']}", headers=admin)).json()
    assert imported["version"] == 1 and imported["source"].startswith("Aides-territoires")
    funder = token(funding.auth, "funder", "hdf", regions=["32"], org="Région Hauts-de-France")
    refused = await client.post("/schemes/import/aides-territoires", json=document, headers=funder)
    assert refused.status_code == 403


async def test_asyncapi_document_is_served_as_committed(client: httpx.AsyncClient) -> None:
    served = (await client.get("/asyncapi.json")).json()
    assert served == COMMITTED_ASYNCAPI
    assert served["asyncapi"].startswith("3.")
