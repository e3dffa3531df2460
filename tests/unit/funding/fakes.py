"""The funding unit of work in memory, for the service-layer tests.

Repositories hand out copies, as the SQL ones hand out objects built from rows: a command
that changes an object without saving it changes nothing here either."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection
from typing import TypeVar

from services.funding.adapters.repository import (
    ApplicationRepository,
    CallRepository,
    MatchRepository,
    ProjectRepository,
    SchemeRepository,
    SiteRepository,
)
from services.funding.domain.applications import Application
from services.funding.domain.catalogue import Call, RoundResult, Scheme
from services.funding.domain.matching import IndexedCatalogue
from services.funding.domain.plan import FinancingPlan
from services.funding.domain.projects import FundingProject, FundingSite, ProjectMatch
from shared.projection import is_newer
from tests.support.fake_uow import FakeUnitOfWork

D = TypeVar("D")


def _copy(obj: D) -> D:
    return dataclasses.replace(obj)  # type: ignore[type-var]


class FakeSchemes(SchemeRepository):
    def __init__(self) -> None:
        self.by_id: dict[str, Scheme] = {}
        self.versions: dict[str, int] = {}

    async def get(self, scheme_id: str) -> Scheme | None:
        return self.by_id.get(scheme_id)

    async def upsert(self, scheme: Scheme) -> bool:
        if self.by_id.get(scheme.id) == scheme:
            return False
        self.by_id[scheme.id] = scheme
        self.versions[scheme.id] = self.versions.get(scheme.id, 0) + 1
        return True

    async def all(self) -> IndexedCatalogue:
        # indexed as the service's catalogue cache does (small: rebuilt on each call)
        return IndexedCatalogue(self.by_id[k] for k in sorted(self.by_id))


class FakeCalls(CallRepository):
    def __init__(self) -> None:
        self.by_id: dict[str, Call] = {}
        self.results: dict[tuple[str, str], RoundResult] = {}

    async def get(self, call_id: str) -> Call | None:
        return self.by_id.get(call_id)

    async def save(self, call: Call) -> None:
        self.by_id[call.id] = call

    async def save_result(self, result: RoundResult) -> None:
        self.results[(result.call_id, result.round)] = result


class FakeProjects(ProjectRepository):
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, FundingProject] = {}
        self.plans: dict[uuid.UUID, FinancingPlan | None] = {}

    async def get(self, project_id: uuid.UUID) -> FundingProject | None:
        return self.by_id.get(project_id)

    async def upsert_newer(self, project: FundingProject) -> bool:
        if not is_newer(self.by_id.get(project.project_id), project.version):
            return False
        self.by_id[project.project_id] = project
        self.plans[project.project_id] = None  # as the SQL upsert: matching writes it again
        return True

    async def in_stages(self, stages: Collection[str]) -> list[FundingProject]:
        return [p for p in self.by_id.values() if p.stage in stages]

    async def save_plan(self, project_id: uuid.UUID, plan: FinancingPlan | None) -> None:
        if project_id not in self.by_id:
            raise LookupError(f"no project {project_id} to plan")
        self.plans[project_id] = plan


class FakeSites(SiteRepository):
    def __init__(self) -> None:
        self.by_id: dict[str, FundingSite] = {}

    async def get(self, site_id: str) -> FundingSite | None:
        return self.by_id.get(site_id)

    async def upsert_newer(self, site: FundingSite) -> bool:
        if not is_newer(self.by_id.get(site.site_id), site.version):
            return False
        self.by_id[site.site_id] = site
        return True


class FakeMatches(MatchRepository):
    def __init__(self) -> None:
        self.by_key: dict[tuple[uuid.UUID, str], ProjectMatch] = {}

    async def of_project(self, project_id: uuid.UUID) -> list[ProjectMatch]:
        return [_copy(m) for (pid, _), m in sorted(self.by_key.items()) if pid == project_id]

    async def get(self, project_id: uuid.UUID, scheme_id: str) -> ProjectMatch | None:
        found = self.by_key.get((project_id, scheme_id))
        return None if found is None else _copy(found)

    def add(self, match: ProjectMatch) -> None:
        key = (match.project_id, match.scheme_id)
        assert key not in self.by_key, f"match {key} added twice"
        self.by_key[key] = _copy(match)

    async def save(self, match: ProjectMatch) -> None:
        key = (match.project_id, match.scheme_id)
        assert key in self.by_key, f"match {key} saved before it was added"
        self.by_key[key] = _copy(match)

    def eligible(self, project_id: uuid.UUID) -> list[ProjectMatch]:
        """For the tests: the project's eligible matches, best first."""
        found = [m for (pid, _), m in self.by_key.items() if pid == project_id and m.eligible]
        return sorted(found, key=lambda m: m.rank or 0)


class FakeApplications(ApplicationRepository):
    def __init__(self) -> None:
        self.by_id: dict[uuid.UUID, Application] = {}

    async def get(self, application_id: uuid.UUID) -> Application | None:
        found = self.by_id.get(application_id)
        return None if found is None else _copy(found)

    def add(self, application: Application) -> None:
        self.by_id[application.id] = _copy(application)

    async def save(self, application: Application) -> None:
        assert application.id in self.by_id, f"application {application.id} never added"
        self.by_id[application.id] = _copy(application)


class FakeFundingUnitOfWork(FakeUnitOfWork):
    source = "funding"

    def __init__(self) -> None:
        super().__init__()
        self.schemes = FakeSchemes()
        self.calls = FakeCalls()
        self.projects = FakeProjects()
        self.sites = FakeSites()
        self.matches = FakeMatches()
        self.applications = FakeApplications()
