"""Accepted means processable: whatever the public APIs accept, every consumer processes.

Hypothesis drives the four real services (in-process, real Kafka, PostgreSQL and the
embedded SQLite default) with request bodies drawn from the services' own OpenAPI
schemas (hypothesis-jsonschema: every body is valid as declared), nudged towards the
values that get past the domain's checks (real SIRETs, the territory's communes, real
NAF codes, existing visits, sites and projects). Each answer must be a 2xx or a readable
4xx — never a 5xx — and, once the relays are drained and every consumer group has caught
up, no consumer may have dead-lettered anything: what one service accepts, every
consumer of its events can process.

`HYPOTHESIS_EXAMPLES` sets the number of examples (CI: the default below, 8, for the
whole run's 30-minute budget; 12 until the suite grew).
"""

from __future__ import annotations

import os
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from services.site_registry.domain.siret import make_siret
from shared.events.catalogue import ALL_TOPICS
from tests.support.dsl import BRIDGESTONE, FundingStack, token
from tests.support.kafka import read_all
from tests.support.openapi_strategies import from_schema
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "8"))
TERRITORY = "ti-3205"
TODAY = date(2026, 11, 23)  # the services' test clock (tests/integration/conftest.py)


class World:
    """What the example can act on, refreshed from the public APIs."""

    def __init__(self, st_: FundingStack) -> None:
        self.st = st_
        self.cell = st_.cell
        self.admin = token(st_.registry.auth, "admin", "admin")
        self.funder = token(st_.funding.auth, "funder", "ademe-hdf", regions=["32"], org="ADEME")
        self.schemas: dict[str, dict[str, Any]] = {}
        self.roots: dict[str, dict[str, Any]] = {}
        self.communes: list[str] = []
        self.naf: list[str] = []
        self.sites: list[str] = []
        self.visits: list[str] = []
        self.campaigns: list[str] = []
        self.projects: list[str] = []
        self.shocks: list[str] = []
        self.applications: list[str] = []
        self.answers: list[tuple[str, int]] = []

    async def load(self) -> None:
        for client in (self.st.r, self.st.c, self.st.d, self.st.f):
            doc = (await client.get("/openapi.json")).json()
            for name, schema in doc["components"]["schemas"].items():
                self.schemas[name] = {**schema, "components": doc["components"]}
                self.roots[name] = doc
        territory = (await self.st.r.get(f"/territories/{TERRITORY}", headers=self.cell)).json()
        self.communes = [c["insee"] if isinstance(c, dict) else c for c in territory["communes"]]
        self.naf = sorted(n.code for n in self.st.registry.refs.naf)
        await self.refresh()

    async def refresh(self) -> None:
        sites = (await self.st.r.get("/sites", params={"limit": 500}, headers=self.cell)).json()
        self.sites = [s["siret"] for s in sites["items"]]
        campaigns = (await self.st.c.get("/campaigns", headers=self.cell)).json()
        self.campaigns = [c["id"] for c in campaigns]
        self.visits = []
        for cid in self.campaigns:
            plan = (await self.st.c.get(f"/campaigns/{cid}/plan", headers=self.cell)).json()
            self.visits += [t["visit_id"] for t in plan["targets"] if t.get("visit_id")]
        projects = (
            await self.st.d.get("/projects", params={"limit": 500}, headers=self.cell)
        ).json()
        self.projects = [p["id"] for p in projects["items"]]
        shocks = (await self.st.d.get("/shocks", headers=self.cell)).json()
        self.shocks = [s["shock_id"] for s in shocks]

    def body(self, data: st.DataObject, schema: str, **patch: Any) -> dict[str, Any]:
        value = data.draw(from_schema(self.schemas[schema], self.roots[schema]), label=schema)
        assert isinstance(value, dict)
        return {**value, **{k: v for k, v in patch.items() if v is not _KEEP}}


_KEEP = object()


def pick(data: st.DataObject, items: list[Any], label: str = "pick") -> Any:
    """One of `items`, drawn as an index of fixed range: the world changes between examples,
    the strategy must not (Hypothesis replays draws), so the index is taken modulo."""
    index = data.draw(st.integers(0, 2**16 - 1), label=label)
    return items[index % len(items)] if items else None


def maybe(data: st.DataObject, strategy: st.SearchStrategy[Any]) -> Any:
    """Usually a value that gets past the domain's checks; sometimes the schema's own."""
    return data.draw(st.one_of(st.just(_KEEP), strategy, strategy, strategy))


def dates_near_today() -> st.SearchStrategy[str]:
    return st.dates(TODAY - timedelta(days=9000), TODAY + timedelta(days=400)).map(str)


async def op_register_site(w: World, data: st.DataObject) -> httpx.Response:
    known = pick(data, [*w.sites, BRIDGESTONE])  # re-registering, the closing site too
    new = make_siret(str(data.draw(st.integers(10_000_000, 99_999_999))), "0001")
    siret = known if data.draw(st.booleans()) else new
    body = w.body(
        data,
        "SiteIn",
        siret=siret,
        commune_insee=maybe(data, st.just(pick(data, w.communes, "commune"))),
        naf_code=maybe(data, st.just(pick(data, w.naf, "naf"))),
        headcount_band=maybe(data, st.sampled_from([None, "00", "11", "21", "41", "53"])),
    )
    return await w.st.r.post("/sites", json=body, headers=w.cell)


async def op_close_site(w: World, data: st.DataObject) -> httpx.Response:
    siret = pick(data, [*w.sites, BRIDGESTONE])
    body = w.body(data, "SiteClosureIn", closed_on=maybe(data, dates_near_today()))
    return await w.st.r.post(f"/sites/{siret}/closure", json=body, headers=w.cell)


async def op_shock(w: World, data: st.DataObject) -> httpx.Response:
    announced = data.draw(dates_near_today())
    body = w.body(
        data,
        "ClosureShockIn",
        site_id=pick(data, w.sites),
        announced_on=maybe(data, st.just(announced)),
        planned_closure_on=maybe(
            data,
            st.one_of(
                st.none(),
                st.integers(0, 4000).map(
                    lambda d: str(date.fromisoformat(announced) + timedelta(days=d))
                ),
            ),
        ),
        jobs_lost=maybe(data, st.integers(1, 5000)),
    )
    return await w.st.r.post("/closure-shocks", json=body, headers=w.cell)


async def op_survey(w: World, data: st.DataObject) -> httpx.Response:
    visit = pick(data, w.visits)
    body = w.body(data, "SurveyIn")
    return await w.st.c.post(f"/visits/{visit}/survey", json=body, headers=w.cell)


async def op_outcome(w: World, data: st.DataObject) -> httpx.Response:
    visit = pick(data, w.visits)
    body = w.body(data, "OutcomeIn", visited_on=maybe(data, dates_near_today()))
    return await w.st.c.post(f"/visits/{visit}/outcome", json=body, headers=w.cell)


async def op_sync(w: World, data: st.DataObject) -> httpx.Response:
    body = w.body(data, "SyncIn")
    for item in body.get("items", []):
        visit = pick(data, w.visits)
        if visit is not None and data.draw(st.booleans()):
            item["visit_id"] = visit
    return await w.st.c.post("/sync", json=body, headers=w.cell)


async def op_campaign_change(w: World, data: st.DataObject) -> httpx.Response:
    campaign = pick(data, w.campaigns)
    kind = data.draw(st.sampled_from(["terms", "consultants", "targets", "replan"]))
    sites = [pick(data, w.sites) for _ in range(data.draw(st.integers(1, 3)))]
    if kind == "terms":
        body = w.body(data, "TermsIn", ends_on=maybe(data, dates_near_today()))
        return await w.st.c.patch(f"/campaigns/{campaign}/terms", json=body, headers=w.cell)
    if kind == "consultants":
        body = w.body(data, "RosterIn")
        return await w.st.c.post(f"/campaigns/{campaign}/consultants", json=body, headers=w.cell)
    if kind == "targets":
        body = w.body(
            data,
            "TargetsIn",
            site_ids=sites,
        )
        return await w.st.c.post(f"/campaigns/{campaign}/targets", json=body, headers=w.cell)
    return await w.st.c.post(f"/campaigns/{campaign}/replan", json={}, headers=w.cell)


async def op_exogenous(w: World, data: st.DataObject) -> httpx.Response:
    body = w.body(
        data,
        "ExogenousIn",
        territory_id=maybe(data, st.just(TERRITORY)),
        shock_id=maybe(data, st.just(pick(data, [None, *w.shocks], "shock"))),
    )
    return await w.st.d.post("/projects/exogenous", json=body, headers=w.cell)


async def op_project_change(w: World, data: st.DataObject) -> httpx.Response:
    project = pick(data, w.projects) or str(uuid.uuid4())
    into = pick(data, [None, *w.projects], "into")
    kind = data.draw(
        st.sampled_from(["qualify", "stage", "jobs", "abandon", "merge", "not-a-duplicate"])
    )
    schema = {
        "qualify": "QualifyIn",
        "stage": "StageIn",
        "jobs": "JobsIn",
        "abandon": "AbandonIn",
        "merge": "MergeIn",
        "not-a-duplicate": "DismissDuplicateIn",
    }[kind]
    patch: dict[str, Any] = {}
    if kind == "merge":
        patch["into"] = maybe(data, st.just(into))
    if kind == "jobs":
        patch["created_on"] = maybe(data, dates_near_today())
    body = w.body(data, schema, **patch)
    return await w.st.d.post(f"/projects/{project}/{kind}", json=body, headers=w.cell)


async def op_funder(w: World, data: st.DataObject) -> httpx.Response:
    listed = (await w.st.f.get("/funder/projects", headers=w.funder)).json()
    items = listed.get("items", []) if isinstance(listed, dict) else list(listed)
    apply_now = data.draw(st.booleans())
    project = pick(data, items, "project")
    application = pick(data, w.applications, "application")
    kind = data.draw(st.sampled_from(["award", "refusal", "payments"]))
    schema = {"award": "AwardIn", "refusal": "RefusalIn", "payments": "PaymentIn"}[kind]
    decision = w.body(data, schema)
    decided_on = maybe(data, dates_near_today())
    application_body = w.body(data, "ApplicationIn")
    if project is not None and (application is None or apply_now):
        matches = project.get("matches") or []
        application_body.update(
            project_id=project.get("project_id") or project.get("id"),
            scheme_id=matches[0]["scheme_id"] if matches else "ademe-1ed7d411",
        )
        resp = await w.st.f.post("/applications", json=application_body, headers=w.funder)
        if resp.status_code in (200, 201):
            w.applications.append(resp.json()["id"])
        return resp
    if application is None:
        return await w.st.f.get("/funder/projects", headers=w.funder)
    if kind != "payments" and decided_on is not _KEEP:
        decision["decided_on"] = decided_on
    return await w.st.f.post(f"/applications/{application}/{kind}", json=decision, headers=w.funder)


OPERATIONS = {
    "register a site": op_register_site,
    "close a site": op_close_site,
    "declare a closure shock": op_shock,
    "submit a survey": op_survey,
    "record an outcome": op_outcome,
    "sync offline reports": op_sync,
    "change a campaign": op_campaign_change,
    "declare an exogenous project": op_exogenous,
    "change a project": op_project_change,
    "act as a funder": op_funder,
}

_worlds: dict[int, World] = {}


async def world_of(stack: FundingStack) -> World:
    w = _worlds.get(id(stack))
    if w is None:
        w = World(stack)
        await w.load()
        await stack.shock()

        async def campaigns() -> list[Any]:
            return list((await stack.c.get("/campaigns", headers=stack.cell)).json())

        await eventually(campaigns, lambda c: len(c) == 1, what="the campaign")
        await w.refresh()
        _worlds.clear()
        _worlds[id(stack)] = w
    return w


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # The services' state grows from one example to the next (that is the point): an
    # example cannot be replayed, so no shrinking; a failure prints its requests instead.
    phases=[Phase.generate],
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
@given(data=st.data())
async def test_whatever_the_apis_accept_every_consumer_processes(
    funding_stack: FundingStack, data: st.DataObject
) -> None:
    w = await world_of(funding_stack)
    names = data.draw(st.lists(st.sampled_from(sorted(OPERATIONS)), min_size=1, max_size=5))
    for name in names:
        resp = await OPERATIONS[name](w, data)
        note(f"{name}: {resp.request.method} {resp.request.url.path} → {resp.status_code}")
        w.answers.append((name, resp.status_code))
        event(f"{name}: {resp.status_code // 100}xx")
        assert resp.status_code < 500, f"{name}: {resp.status_code} {resp.text[:500]}"
        if resp.status_code >= 400:
            detail = resp.json().get("detail")
            assert detail, f"{name}: a {resp.status_code} must say why"
    await w.st.drained()
    dead = []
    prefix = funding_stack.registry.settings.kafka_topic_prefix
    bootstrap = funding_stack.registry.settings.kafka_bootstrap_servers
    for topic in ALL_TOPICS:
        try:
            dead += await read_all(bootstrap, topic.physical_dlq(prefix))
        except AssertionError:
            continue  # a DLQ topic nobody created: empty
    assert dead == [], [
        (m.headers.get("dlq_consumer"), m.headers.get("ce_type"), m.headers.get("dlq_reason"))
        for m in dead
    ]
    await w.refresh()
