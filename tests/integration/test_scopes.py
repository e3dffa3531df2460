"""Issue 10's scope leaks, over HTTP on the real database and broker: nobody sees or
changes what is not theirs, whatever the claims their token carries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.cli import demo_sites
from services.site_registry.entrypoints.http import create_app
from services.site_registry.service_layer import batch_jobs
from tests.support.dsl import BRIDGESTONE, TODAY, FundingStack, token
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

IN_TI_3209 = "62427"  # a commune of ti-3209, not of ti-3205 (Bridgestone's)


@pytest.fixture
async def registry_client(registry: SiteRegistry) -> AsyncIterator[httpx.AsyncClient]:
    await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
    app = create_app(registry, run_workers=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry"
    ) as client:
        yield client


async def test_a_crisis_cell_cannot_take_over_another_territorys_site(
    registry: SiteRegistry, registry_client: httpx.AsyncClient
) -> None:
    # The SIRET of ti-3205's site with a commune of ti-3209 answered 201 and moved it.
    other_cell = token(registry.auth, "crisis_cell", "cell-3209", territories=["ti-3209"])
    body = {"siret": BRIDGESTONE, "naf_code": "22.11Z", "commune_insee": IN_TI_3209}
    r = await registry_client.post("/sites", json=body, headers=other_cell)

    assert r.status_code == 403, r.text
    problem = r.json()
    assert problem["code"] == "out_of_scope" and "ti-3205" in problem["detail"]
    own_cell = token(registry.auth, "crisis_cell", "cell-3205", territories=["ti-3205"])
    card = await registry_client.get(f"/sites/{BRIDGESTONE}", headers=own_cell)
    assert card.status_code == 200
    assert card.json()["site"]["territory_ids"] == ["ti-3205"]


async def test_a_funder_token_with_territories_sees_no_unconsented_project(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    _, (project,) = await st.surveyed_projects(consent=False)
    resp = await st.d.post(f"/projects/{project['id']}/qualify", json={}, headers=st.cell)
    assert resp.status_code == 200, resp.text
    await st.detection.relay.publish_pending()

    async def matched() -> dict[str, object]:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=st.cell)
        return dict(resp.json()) if resp.status_code == 200 else {}

    await eventually(matched, lambda m: bool(m.get("eligible")), what="matched in funding")
    cell_plan = await st.f.get(f"/projects/{project['id']}/plan", headers=st.cell)
    assert cell_plan.status_code == 200, cell_plan.text  # its crisis cell sees it
    # A funder's token that also carries the project's territory (the mint command issued
    # such tokens, and now refuses to; an issuer might still): the claim is a crisis
    # cell's, and gives a funder nothing. Signed by hand, as such an issuer would.
    now = datetime.now(UTC).replace(microsecond=0)
    claims = {
        "sub": "ademe-hdf",
        "roles": ["funder"],
        "territories": [st.territory],
        "regions": ["32"],
        "org": "ADEME",
        "aud": st.funding.auth.audience,
        "iss": st.funding.auth.issuer,
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    signed = jwt.encode(claims, st.funding.auth.secret, algorithm=st.funding.auth.algorithm)
    funder = {"Authorization": f"Bearer {signed}"}
    for path in ("matches", "plan"):
        hidden = await st.f.get(f"/projects/{project['id']}/{path}", headers=funder)
        assert hidden.status_code == 404, (path, hidden.text)
    assert (await st.f.get("/funder/projects", headers=funder)).json() == []

    # A consultant of another territory with the same subject acts on none of the visits.
    mine = await st.visits("consultant-1", at_least=1)
    namesake = token(st.campaigns.auth, "consultant", "consultant-1", territories=["ti-3209"])
    visit = mine[0]["id"]
    refused = await st.c.post(
        f"/visits/{visit}/outcome", json={"outcome": "declined", "reason": "x"}, headers=namesake
    )
    assert refused.status_code == 404, refused.text


async def test_my_visits_hold_only_the_visits_of_my_territories(
    funding_stack: FundingStack,
) -> None:
    st = funding_stack
    await st.shock()
    assert await st.visits("consultant-1", at_least=1)
    # The same subject in another territory's token: none of ti-3205's visits.
    namesake = token(st.campaigns.auth, "consultant", "consultant-1", territories=["ti-3209"])
    params = {"from": TODAY.date().isoformat(), "days": 31, "limit": 200}

    resp = await st.c.get("/me/visits", params=params, headers=namesake)

    assert resp.status_code == 200, resp.text
    assert resp.json()["items"] == []
