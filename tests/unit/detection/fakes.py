"""In-memory repositories and unit of work of the detection service, offering the methods
the real ones (`adapters/repository.py`, `adapters/ledger_projection.py`) offer to the
commands and handlers, with the same rules: versions guard the site projection and the
ledger's rows, a shock is announced once."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import date

from services.detection.adapters.ledger_projection import JobEntry, ProjectLine, batch, counted
from services.detection.domain.ledger import Ledger, Shock, ledger
from services.detection.domain.model import Project
from services.detection.domain.sites import Site
from shared.events.envelope import EventPayload
from shared.projection import is_newer
from tests.support.fake_uow import FakeUnitOfWork


class FakeProjects:
    def __init__(self) -> None:
        self._projects: dict[uuid.UUID, Project] = {}

    @property
    def seen(self) -> list[Project]:
        return list(self._projects.values())

    async def get(self, project_id: uuid.UUID) -> Project | None:
        return self._projects.get(project_id)

    async def by_lead(self, lead_id: uuid.UUID) -> Project | None:
        return next((p for p in self._projects.values() if lead_id in p.lead_ids), None)

    async def live_of(self, territory_id: str, kind: str) -> list[Project]:
        found = [
            p
            for p in self._projects.values()
            if p.territory_id == territory_id and p.kind == kind and p.live
        ]
        return sorted(found, key=lambda p: (p.detected_on, str(p.id)))

    def add(self, project: Project) -> None:
        self._projects[project.id] = project


class FakeSites:
    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}

    async def upsert(self, site: Site) -> bool:
        if not is_newer(self.sites.get(site.site_id), site.version):
            return False
        self.sites[site.site_id] = site
        return True

    async def close(self, site_id: str, version: int) -> bool:
        site = self.sites.get(site_id)
        if site is None or not is_newer(site, version):
            return False
        self.sites[site_id] = site.closed(version)
        return True

    async def get(self, site_id: str) -> Site | None:
        return self.sites.get(site_id)

    async def firm_has_site_in(self, siren: str, territory_id: str) -> bool:
        return any(
            s.siren == siren and s.status != "closed" and territory_id in s.territory_ids
            for s in self.sites.values()
        )


class FakeShocks:
    def __init__(self, shocks: dict[uuid.UUID, Shock]) -> None:
        self._shocks = shocks

    async def get(self, shock_id: uuid.UUID) -> Shock | None:
        return self._shocks.get(shock_id)


class FakeLedger:
    """The ledger's rows in memory; `apply` folds a batch with the projection's own pure
    `batch`, then upserts as the SQL statement does (newer versions only, the first stage
    dates and the merge kept)."""

    def __init__(self, shocks: dict[uuid.UUID, Shock]) -> None:
        self.projects: dict[uuid.UUID, ProjectLine] = {}
        self.job_entries: dict[tuple[uuid.UUID, int], JobEntry] = {}
        self.shocks = shocks
        self.resets: list[str] = []

    async def apply(self, events: Iterable[EventPayload]) -> None:
        rows = batch(events)
        for line in rows.projects.values():
            stored = self.projects.get(line.project_id)
            if stored is None:
                self.projects[line.project_id] = line
            elif stored.version < line.version:
                self.projects[line.project_id] = replace(
                    line,
                    qualified_on=stored.qualified_on or line.qualified_on,
                    funded_on=stored.funded_on or line.funded_on,
                    merged_into=stored.merged_into or line.merged_into,
                )
        for entry in rows.job_entries:
            self.job_entries.setdefault((entry.project_id, entry.version), entry)
        for shock in rows.shocks:
            self.shocks.setdefault(shock.shock_id, shock)

    async def reset(self, consumer: str) -> None:
        self.projects.clear()
        self.job_entries.clear()
        self.resets.append(consumer)

    def ledger(self, shock_id: uuid.UUID, until: date | None = None) -> Ledger:
        """What the view computes from these rows."""
        entries: dict[uuid.UUID, list[JobEntry]] = {}
        for entry in self.job_entries.values():
            entries.setdefault(entry.project_id, []).append(entry)
        projects = [counted(p, entries.get(p.project_id, ())) for p in self.projects.values()]
        return ledger(self.shocks[shock_id], projects, until=until)


class FakeDetectionUnitOfWork(FakeUnitOfWork):
    source = "detection"

    def __init__(self) -> None:
        super().__init__()
        shocks: dict[uuid.UUID, Shock] = {}
        self.projects = FakeProjects()
        self.sites = FakeSites()
        self.shocks = FakeShocks(shocks)
        self.ledger = FakeLedger(shocks)

    def seen_aggregates(self) -> Iterable[Project]:
        return self.projects.seen
