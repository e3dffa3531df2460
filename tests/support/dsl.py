"""The integration tier's test DSL: the services wired together in-process, and what a test
does through their public APIs (a shock, a consultant's visits, a survey, the projects and
the ledger they become, the relays drained), each step waiting on a condition, never on a
fixed delay.

`Stack` runs the registry, campaigns and detection; `FundingStack` adds funding. The
fixtures that build the runtimes live in `tests/integration/conftest.py`; a stack is opened
over them with `open_stack` / `open_funding_stack`. What tests read back is typed after the
services' JSON bodies (`Visit`, `Survey`, `Project`, `Ledger`): the bodies are the contract,
so they are cast, not re-parsed, and a test sees exactly what a client would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, cast

import httpx
from fastapi import FastAPI

from services.campaigns.bootstrap import Campaigns
from services.campaigns.entrypoints.http import create_app as campaigns_app
from services.detection.bootstrap import Detection
from services.detection.entrypoints.http import create_app as detection_app
from services.funding.bootstrap import Funding
from services.funding.entrypoints.http import create_app as funding_app
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.http import create_app as registry_app
from shared.auth import AuthConfig, mint_token
from shared.messaging.consumer import ConsumerRunner
from shared.runtime import ServiceRuntime
from tests.support.kafka import lag
from tests.support.waiting import eventually

#: campaigns are launched "today" = a fixed Monday, so agendas are deterministic
TODAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
#: the funding service matches as of mid-2023: the real ADEME schemes of the seed are the
#: 2023 millésime (open until 31 December 2023)
FUNDING_TODAY = datetime(2023, 6, 15, 9, 0, tzinfo=UTC)

#: the Béthune demo: its Territoire d'industrie, and the closing Bridgestone plant
DEMO_TERRITORY = "ti-3205"
BRIDGESTONE = "36120038900019"
ADEME_ECODESIGN = "ademe-1ed7d411"  # Investissements d'écoconception (ADEME, 2023): 15–55 %
OTHER_REGION = "aura-pack-relocalisation"  # Auvergne-Rhône-Alpes only
#: Sirene headcount bands of firms of 10 to 199 employees
SME_BANDS = ("11", "12", "21", "22", "31")

Headers = dict[str, str]


def token(
    auth: AuthConfig,
    role: str,
    sub: str,
    *,
    territories: Sequence[str] = (),
    regions: Sequence[str] = (),
    org: str | None = None,
) -> Headers:
    """The Authorization header of `sub` acting as `role`."""
    jwt = mint_token(
        auth, subject=sub, roles=[role], territories=territories, regions=regions, org=org
    )
    return {"Authorization": f"Bearer {jwt}"}


class Visit(TypedDict):
    """A line of `GET /me/visits` (None fields are left out of the body)."""

    id: str
    campaign_id: str
    site_id: str
    name: NotRequired[str]
    commune: str
    naf: str
    band: NotRequired[str]
    lon: NotRequired[float]
    lat: NotRequired[float]
    day: NotRequired[str]
    order: int
    status: str
    outcome: NotRequired[str]
    v: int


class Survey(TypedDict):
    """The answer of `POST /visits/{id}/survey`."""

    survey_id: str
    visit_id: str
    revision: int
    projects: int
    lead_ids: list[str]
    red_flags: int


class Project(TypedDict):
    """A project in detection, as `GET /projects` and every project command answer it."""

    id: str
    version: int
    territory_id: str
    shock_id: str | None
    campaign_id: str | None
    site_id: str | None
    siren: str | None
    firm_name: str | None
    naf_code: str | None
    origin: str
    kind: str
    description: str
    stage: str
    hidden: bool
    jobs_planned: int
    jobs_created: int
    jobs_complete: bool
    capex_eur: int | None
    funding_need_eur: int | None
    maturity: str | None
    obstacles: list[str]
    consent_to_share: bool
    land_needs_ha: float | None
    detected_on: str
    abandoned_reason: str | None
    possible_duplicate_of: str | None
    duplicate_reason: str | None
    merged_into: str | None
    priority: float
    priority_reasons: list[str]


class Jobs(TypedDict):
    """Cumulative jobs of a month of the ledger's series."""

    detected: int
    qualified: int
    funded: int
    created: int


class Figures(Jobs):
    """The ledger's figures of one origin (or the total): jobs, counts and rates."""

    projects: int
    abandoned: int
    jobs_abandoned: int
    projects_under_review: int
    jobs_under_review: int
    detected_rate: float | None
    qualified_rate: float | None
    funded_rate: float | None
    created_rate: float | None


class Month(TypedDict):
    """A month of the ledger's series ("2026-11"), cumulative since the announcement."""

    month: str
    endogenous: Jobs
    exogenous: Jobs
    total: Jobs


class Ledger(TypedDict):
    """A shock's job-compensation ledger (`GET /shocks/{id}/ledger`)."""

    shock_id: str
    territory_id: str
    announced_on: str
    jobs_lost: int
    endogenous: Figures
    exogenous: Figures
    total: Figures
    compensation_rate: float | None
    split: dict[str, float] | None
    series: list[Month]


@dataclass(frozen=True)
class Stack:
    """The registry, campaigns and detection in-process (workers running), their HTTP APIs
    (`r`, `c`, `d`) and the crisis cell of `territory` (`cell`, its headers)."""

    registry: SiteRegistry
    campaigns: Campaigns
    detection: Detection
    r: httpx.AsyncClient
    c: httpx.AsyncClient
    d: httpx.AsyncClient
    territory: str
    cell: Headers

    @property
    def runtimes(self) -> tuple[ServiceRuntime, ...]:
        """The stack's services: the relays and consumer groups `drained` waits on."""
        return (self.registry, self.campaigns, self.detection)

    def consultant(self, sub: str) -> Headers:
        """The headers of consultant `sub` of the territory."""
        return token(self.campaigns.auth, "consultant", sub, territories=[self.territory])

    async def shock(self, jobs_lost: int = 900) -> str:
        """The cell declares Bridgestone's closure (published at once); the shock's id."""
        body = {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": jobs_lost}
        resp = await self.r.post("/closure-shocks", json=body, headers=self.cell)
        assert resp.status_code == 201, resp.text
        await self.registry.relay.publish_pending()
        return str(resp.json()["id"])

    async def visits(self, consultant: str, *, at_least: int = 10) -> list[Visit]:
        """The consultant's agenda over the campaign's first month, once it holds at least
        `at_least` visits (the campaign is launched from the shock's event)."""

        async def probe() -> list[Visit]:
            resp = await self.c.get(
                "/me/visits",
                params={"from": TODAY.date().isoformat(), "days": 31, "limit": 200},
                headers=self.consultant(consultant),
            )
            return cast(list[Visit], list(resp.json()["items"]))

        return await eventually(probe, lambda v: len(v) >= at_least, what=f"visits of {consultant}")

    async def survey(
        self,
        visit_id: str,
        consultant: str,
        projects: Sequence[Mapping[str, Any]],
        *,
        headcount: int | None = 30,
    ) -> Survey:
        """The consultant submits a survey of the visit with these project leads."""
        body: dict[str, Any] = {"questionnaire_version": "2026-1", "projects": list(projects)}
        if headcount is not None:
            body["headcount"] = headcount
        resp = await self.c.post(
            f"/visits/{visit_id}/survey", json=body, headers=self.consultant(consultant)
        )
        assert resp.status_code == 201, resp.text
        return cast(Survey, resp.json())

    async def projects(self, **params: str) -> list[Project]:
        """Detection's projects now (filters as query parameters: `stage=`, …)."""
        resp = await self.d.get("/projects", params={"limit": 500, **params}, headers=self.cell)
        assert resp.status_code == 200, resp.text
        return cast(list[Project], list(resp.json()["items"]))

    async def ledger(self, shock_id: str) -> Ledger:
        """The shock's ledger now (detection knows the shock once it consumed it)."""
        resp = await self.d.get(f"/shocks/{shock_id}/ledger", headers=self.cell)
        assert resp.status_code == 200, resp.text
        return cast(Ledger, resp.json())

    async def post(self, path: str, body: Mapping[str, Any]) -> Project:
        """A project command of the cell in detection (every one answers the project)."""
        resp = await self.d.post(path, json=dict(body), headers=self.cell)
        assert resp.status_code in (200, 201), resp.text
        return cast(Project, resp.json())

    async def drained(self, *, timeout: float = 60) -> None:
        """Every relay published, every consumer group of the stack caught up."""
        bootstrap = self.registry.settings.kafka_bootstrap_servers
        groups = [
            (w.name, list(w.topics))
            for svc in self.runtimes
            for w in svc.workers()
            if isinstance(w, ConsumerRunner)
        ]

        async def total_lag() -> int:
            for svc in self.runtimes:
                await svc.relay.publish_pending()
            return sum([await lag(bootstrap, name, topics) for name, topics in groups])

        prefix = self.registry.settings.kafka_topic_prefix
        await eventually(
            total_lag, lambda n: n == 0, timeout=timeout, what=f"consumers caught up {prefix}"
        )


@dataclass(frozen=True)
class FundingStack(Stack):
    """The four services: a `Stack` with funding (`f`, its HTTP API)."""

    funding: Funding
    f: httpx.AsyncClient

    @property
    def runtimes(self) -> tuple[ServiceRuntime, ...]:
        return (self.registry, self.campaigns, self.detection, self.funding)

    async def surveyed_projects(self, *, consent: bool) -> tuple[str, list[Project]]:
        """Bridgestone's shock, its campaign, a survey of an SME with a ready decarbonation
        project (1.2 M€, 8 jobs, 600 k€ to fund); the shock's id and detection's projects."""
        shock_id = await self.shock()
        mine = await self.visits("consultant-1", at_least=6)
        sme = next(v for v in mine if v.get("band") in SME_BANDS)
        project = {
            "kind": "decarbonation_energy",
            "description": "Eco-designed product line with heat recovery",
            "capex_eur": 1_200_000,
            "jobs_to_create": 8,
            "maturity": "ready",
            "known_to_public_actors": False,
            "obstacles": ["financing"],
            "funding_need_eur": 600_000,
            "consent_to_share": consent,
        }
        await self.survey(sme["id"], "consultant-1", [project], headcount=40)
        found = await eventually(
            self.projects, lambda p: len(p) == 1, what="the project in detection"
        )
        return shock_id, found


def _client(app: FastAPI, name: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")


@contextlib.asynccontextmanager
async def open_stack(
    registry: SiteRegistry,
    campaigns: Campaigns,
    detection: Detection,
    *,
    territory: str = DEMO_TERRITORY,
    cell: str = "cell",
) -> AsyncIterator[Stack]:
    """A `Stack` over running services; `cell` is the crisis cell's login."""
    async with (
        _client(registry_app(registry, run_workers=False), "r") as r,
        _client(campaigns_app(campaigns, run_workers=False), "c") as c,
        _client(detection_app(detection, run_workers=False), "d") as d,
    ):
        headers = token(registry.auth, "crisis_cell", cell, territories=[territory])
        yield Stack(
            registry=registry,
            campaigns=campaigns,
            detection=detection,
            r=r,
            c=c,
            d=d,
            territory=territory,
            cell=headers,
        )


@contextlib.asynccontextmanager
async def open_funding_stack(
    registry: SiteRegistry,
    campaigns: Campaigns,
    detection: Detection,
    funding: Funding,
    *,
    territory: str = DEMO_TERRITORY,
    cell: str = "cell",
) -> AsyncIterator[FundingStack]:
    """A `FundingStack` over running services; `cell` is the crisis cell's login."""
    async with (
        open_stack(registry, campaigns, detection, territory=territory, cell=cell) as st,
        _client(funding_app(funding, run_workers=False), "f") as f,
    ):
        yield FundingStack(
            registry=st.registry,
            campaigns=st.campaigns,
            detection=st.detection,
            r=st.r,
            c=st.c,
            d=st.d,
            territory=st.territory,
            cell=st.cell,
            funding=funding,
            f=f,
        )
