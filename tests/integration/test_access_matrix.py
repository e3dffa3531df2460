"""Issue 10's access matrix: every operation of the four OpenAPI documents, called by every
identity, on the real broker and database, in a world with a shock, its campaign and
visits, projects with and without consent, a funding application, and a site and a shock
of another territory. See docs/security.md, "The access matrix"."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from services.funding.entrypoints.schemas import SchemeIn
from tests.support.access_matrix import (
    EXEMPT,
    OUT_COMMUNE,
    PLANS,
    ROLES,
    Identity,
    Kind,
    Plan,
    World,
    items_of,
    out_of_scope_items,
    random_siret,
    refused_identities,
    role_identities,
)
from tests.support.dsl import ADEME_ECODESIGN, SME_BANDS, FundingStack, token
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

#: a scheme and a call the in-scope funder's org (ADEME) finances
CALL = "matrix-ecodesign-2023"
#: what a PUT takes back of a stored scheme (which answers more)
SCHEME_IN = list(SchemeIn.model_fields)


def clients(st: FundingStack) -> dict[str, httpx.AsyncClient]:
    return {"r": st.r, "c": st.c, "d": st.d, "f": st.f}


def operations(st: FundingStack) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(client, method, path, operation) of every operation of the four documents."""
    out = []
    for name, client in clients(st).items():
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        document = transport.app.openapi()  # type: ignore[attr-defined]
        for path, item in document["paths"].items():
            for method, operation in item.items():
                out.append((name, method.upper(), path, operation))
    return out


async def ok(resp: httpx.Response) -> Any:
    assert resp.status_code in (200, 201), (resp.request.url, resp.status_code, resp.text)
    return resp.json()


async def build_world(st: FundingStack, admin: dict[str, str]) -> World:
    shock_id, (project,) = await st.surveyed_projects(consent=True)
    mine = await st.visits("consultant-1", at_least=6)
    surveyed = {p["site_id"] for p in await st.projects()}
    others = [v for v in mine if v["site_id"] not in surveyed]
    sme = next(v for v in others if v.get("band") in SME_BANDS)
    lead = {
        "kind": "new_line",
        "description": "A second extrusion line",
        "capex_eur": 400_000,
        "jobs_to_create": 5,
        "maturity": "ready",
        "known_to_public_actors": False,
        "obstacles": [],
        "consent_to_share": False,
    }
    await st.survey(sme["id"], "consultant-1", [lead], headcount=25)
    both = await eventually(st.projects, lambda p: len(p) == 2, what="the two projects")
    hidden = next(p for p in both if p["id"] != project["id"])
    for p in both:
        await ok(await st.d.post(f"/projects/{p['id']}/qualify", json={}, headers=st.cell))
    await st.drained()

    async def matched() -> dict[str, Any]:
        resp = await st.f.get(f"/projects/{project['id']}/matches", headers=admin)
        return dict(resp.json()) if resp.status_code == 200 else {}

    await eventually(matched, lambda m: bool(m.get("eligible")), what="matched in funding")
    funder = token(st.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
    application = await ok(
        await st.f.post(
            "/applications",
            json={
                "project_id": project["id"],
                "scheme_id": ADEME_ECODESIGN,
                "amount_requested_eur": 100_000,
            },
            headers={**funder, "Idempotency-Key": str(uuid.uuid4())},
        )
    )

    # Another territory's site and shock: what out-of-scope callers may see, and what
    # in-scope callers must not.
    other_site = random_siret()
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    site = {"siret": other_site, "naf_code": "25.62B", "commune_insee": OUT_COMMUNE}
    await ok(await st.r.post("/sites", json=site, headers=keyed))
    shock = {"site_id": other_site, "announced_on": "2026-11-02", "jobs_lost": 40}
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    await ok(await st.r.post("/closure-shocks", json=shock, headers=keyed))
    await st.drained()

    scheme = await ok(await st.f.get(f"/schemes/{ADEME_ECODESIGN}", headers=admin))
    assert "ADEME" in scheme["funders"], scheme["funders"]
    # The seed holds no call the test world sees: one of the ADEME scheme, made by an admin.
    call_body: dict[str, Any] = {
        "id": CALL,
        "scheme_id": ADEME_ECODESIGN,
        "name": "Éco-conception — relèves 2023",
        "rounds": [{"name": "relève 1", "closes_on": "2023-09-30"}],
    }
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    await ok(await st.f.put(f"/calls/{CALL}", json=call_body, headers=keyed))

    keyed = {**funder, "Idempotency-Key": str(uuid.uuid4())}
    hook = {"url": "http://127.0.0.1:9/world"}
    webhook = await ok(await st.f.post("/funder/webhooks", json=hook, headers=keyed))

    world = World(
        site_id=sme["site_id"],
        site_commune=sme["commune"],
        site_naf=sme["naf"],
        closing_siret=others[-3]["site_id"],
        campaign_id=sme["campaign_id"],
        visit_id=others[-1]["id"],
        other_visit_id=others[-2]["id"],
        shock_id=shock_id,
        project_id=project["id"],
        unconsented_project_id=hidden["id"],
        application_id=str(application["id"]),
        webhook_id=str(webhook["id"]),
        scheme_id=ADEME_ECODESIGN,
        scheme_body={k: scheme[k] for k in SCHEME_IN if k in scheme},
        call_id=CALL,
        call_body=call_body,
        round_name=call_body["rounds"][0]["name"],
        consented={project["id"]},
    )
    await learn_territories(st, world, admin)
    return world


async def learn_territories(st: FundingStack, world: World, admin: dict[str, str]) -> None:
    """Each campaign's, shock's and project's territory, as an admin sees them now (the
    matrix's own writes launch campaigns and detect projects)."""
    for c in await ok(await st.c.get("/campaigns", headers=admin)):
        world.territory_of[str(c["id"])] = c["territory_id"]
        world.territory_of[str(c["shock_id"])] = c["territory_id"]
    listed = await ok(await st.d.get("/projects", params={"limit": 500}, headers=admin))
    for p in listed["items"]:
        world.territory_of[str(p["id"])] = p["territory_id"]


def fill(path: str, world: World) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: world.param(m.group(1)), path)


class Matrix:
    """The calls made and the leaks found (a leak: an answer the matrix forbids)."""

    def __init__(self, st: FundingStack, world: World, admin: dict[str, str]):
        self.st, self.world, self.admin = st, world, admin
        self.calls = 0
        self.leaks: list[str] = []
        self.identities: set[str] = set()

    async def call(
        self, client: str, method: str, path: str, plan: Plan, who: Identity
    ) -> httpx.Response:
        self.calls += 1
        self.identities.add(who.name)
        headers = dict(who.headers)
        if method != "GET" and path != "/sync":
            headers["Idempotency-Key"] = str(uuid.uuid4())
        body = plan.body(self.world)
        url = fill(path, self.world)
        return await clients(self.st)[client].request(
            method, url, json=body, headers=headers, params=dict(plan.query)
        )

    def leak(self, what: str, who: Identity, resp: httpx.Response) -> None:
        self.leaks.append(f"{what} — {who.name}: {resp.status_code} {resp.text[:300]}")

    async def readback(self, client: str, plan: Plan) -> list[Any]:
        out = []
        for path in plan.readback(self.world):
            resp = await clients(self.st)[client].get(path, headers=self.admin)
            out.append((resp.status_code, resp.text))
        return out


async def test_every_operation_answers_every_identity_as_the_matrix_says(
    funding_stack: FundingStack, capsys: pytest.CaptureFixture[str]
) -> None:
    st = funding_stack
    config = st.registry.auth
    roles = role_identities(config)
    admin = roles[("admin", True)].headers
    world = await build_world(st, admin)
    matrix = Matrix(st, world, admin)
    nobody = token(config, "crisis_cell", "cell-9999", territories=["ti-9999"])

    ops = operations(st)
    unplanned = [f"{m} {p}" for _, m, p, op in ops if p not in EXEMPT and (m, p) not in PLANS]
    roleless = [f"{m} {p}" for _, m, p, op in ops if p not in EXEMPT and not op.get("x-roles")]
    exempt_with_roles = [f"{m} {p}" for _, m, p, op in ops if p in EXEMPT and op.get("x-roles")]
    assert unplanned == [], f"operations the access matrix has no call plan for: {unplanned}"
    assert roleless == [], f"operations without x-roles: {roleless}"
    assert exempt_with_roles == []
    stale = set(PLANS) - {(m, p) for _, m, p, _ in ops}
    assert stale == set(), f"plans of operations that no longer exist: {stale}"

    refused = refused_identities(config)
    guarded = [(c, m, p, op) for c, m, p, op in ops if p not in EXEMPT]
    for client, method, path, op in guarded:
        plan = PLANS[(method, path)]
        assert plan.client == client, (method, path, client)
        what = f"{method} {path}"
        allowed = set(op["x-roles"])
        for who in refused:
            resp = await matrix.call(client, method, path, plan, who)
            if resp.status_code != 401:
                matrix.leak(what, who, resp)
        for role in ROLES:
            if role not in allowed:
                who = roles[(role, True)]
                resp = await matrix.call(client, method, path, plan, who)
                if resp.status_code != 403:
                    matrix.leak(what, who, resp)
        for role in sorted(allowed):
            if (role, False) in roles:
                await out_of_scope(matrix, client, method, path, plan, roles[(role, False)], nobody)
        for role in sorted(allowed):
            await in_scope(matrix, client, method, path, plan, roles[(role, True)])
        if plan.kind is Kind.WRITE:
            await st.drained()

    with capsys.disabled():
        print(
            f"\naccess matrix: {len(guarded)} operations × {len(matrix.identities)} identities"
            f" = {matrix.calls} calls, {len(matrix.leaks)} leaks"
        )
    assert matrix.leaks == [], "\n".join(matrix.leaks)
    assert len(ops) == len(guarded) + sum(1 for _, _, p, _ in ops if p in EXEMPT)


async def out_of_scope(
    matrix: Matrix,
    client: str,
    method: str,
    path: str,
    plan: Plan,
    who: Identity,
    nobody: dict[str, str],
) -> None:
    what = f"{method} {path}"
    if plan.kind in (Kind.PUBLIC, Kind.OWN):
        resp = await matrix.call(client, method, path, plan, who)
        if resp.status_code in (401, 403) or resp.status_code >= 500:
            matrix.leak(what + f" ({plan.kind})", who, resp)
        return
    if plan.kind is Kind.LIST:
        resp = await matrix.call(client, method, path, plan, who)
        await check_list(matrix, what, who, resp, nobody, client, path)
        return
    if plan.kind is Kind.READ:
        resp = await matrix.call(client, method, path, plan, who)
        if resp.status_code not in (403, 404):
            matrix.leak(what + " (out of scope)", who, resp)
        return
    before = await matrix.readback(client, plan)
    resp = await matrix.call(client, method, path, plan, who)
    refused = resp.status_code in (403, 404)
    if plan.itemwise and resp.status_code == 200:
        statuses = [i.get("http_status") for i in resp.json().get("results", [])]
        refused = bool(statuses) and all(s in (403, 404) for s in statuses)
    if not refused:
        matrix.leak(what + " (out-of-scope write)", who, resp)
    after = await matrix.readback(client, plan)
    if before != after:
        matrix.leak(what + " (out-of-scope write changed the resource)", who, resp)


async def in_scope(
    matrix: Matrix, client: str, method: str, path: str, plan: Plan, who: Identity
) -> None:
    what = f"{method} {path}"
    resp = await matrix.call(client, method, path, plan, who)
    if resp.status_code in (401, 403) or resp.status_code >= 500:
        matrix.leak(what + " (in scope)", who, resp)
        return
    if plan.kind is Kind.LIST:
        await check_list(matrix, what, who, resp, None, client, path)


async def check_list(
    matrix: Matrix,
    what: str,
    who: Identity,
    resp: httpx.Response,
    nobody: Mapping[str, str] | None,
    client: str,
    path: str,
) -> None:
    if resp.status_code != 200:
        matrix.leak(what + " (list)", who, resp)
        return
    ctype = resp.headers.get("content-type", "")
    body = None if ctype.startswith(("text/csv", "text/event-stream")) else resp.json()
    items = items_of(ctype, resp.text, body)
    if items is None:
        # An aggregate: out of scope, the same figures as a territory with nothing in it.
        if nobody is not None and who.role != "funder":
            empty = await clients(matrix.st)[client].get(path, headers=dict(nobody))
            if empty.json() != body:
                matrix.leak(what + " (aggregate differs from an empty scope's)", who, resp)
        return
    await learn_territories(matrix.st, matrix.world, matrix.admin)
    wrong = out_of_scope_items(who, items, matrix.world)
    if wrong:
        matrix.leaks.append(f"{what} — {who.name}: {len(wrong)} items out of scope: {wrong[:2]}")
