"""Repositories of the detection service: projects (with their leads, reports and
timeline), and the site and shock projections. The only code that maps rows to the
domain and back (`project_of`, `_columns`)."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel import delete as sa_delete
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import (
    DetectionSiteRow,
    ProjectHistoryRow,
    ProjectLeadRow,
    ProjectReportRow,
    ProjectRow,
    ShockRow,
)
from services.detection.domain.ledger import Shock
from services.detection.domain.model import Figures, Project, Report
from services.detection.domain.sites import Site
from services.detection.domain.stages import Stage
from shared.events import detection as ev
from shared.messaging.tables import utcnow
from shared.projection import is_newer, upsert_newer


def project_of(
    row: ProjectRow, lead_ids: set[uuid.UUID] | None = None, reports: list[Report] | None = None
) -> Project:
    """The project a row holds (with its leads and reports when the caller loaded them)."""
    return Project(
        id=row.id,
        territory_id=row.territory_id,
        shock_id=row.shock_id,
        campaign_id=row.campaign_id,
        site_id=row.site_id,
        siren=row.siren,
        firm_name=row.firm_name,
        naf_code=row.naf_code,
        origin="endogenous" if row.origin == "endogenous" else "exogenous",
        kind=row.kind,
        figures=Figures(
            description=row.description,
            jobs_planned=row.jobs_planned,
            capex_eur=row.capex_eur,
            funding_need_eur=row.funding_need_eur,
            maturity=row.maturity,
            obstacles=tuple(row.obstacles or ()),
            land_needs_ha=row.land_needs_ha,
            consent_to_share=row.consent_to_share,
        ),
        stage=Stage(row.stage),
        hidden=row.hidden,
        jobs_created=row.jobs_created,
        detected_on=row.detected_on,
        version=row.version,
        lead_ids=lead_ids or set(),
        abandoned_reason=row.abandoned_reason,
        jobs_complete=row.jobs_complete,
        possible_duplicate_of=row.possible_duplicate_of,
        duplicate_reason=row.duplicate_reason,
        merged_into=row.merged_into,
        reports=reports or [],
    )


def _columns(project: Project) -> dict[str, object]:
    """The row's columns for a project (all but its id and updated_at)."""
    figures = project.figures
    return {
        "version": project.version,
        "territory_id": project.territory_id,
        "shock_id": project.shock_id,
        "campaign_id": project.campaign_id,
        "site_id": project.site_id,
        "siren": project.siren,
        "firm_name": project.firm_name,
        "naf_code": project.naf_code,
        "origin": project.origin,
        "kind": project.kind,
        "description": figures.description,
        "stage": project.stage.value,
        "hidden": project.hidden,
        "jobs_planned": figures.jobs_planned,
        "jobs_created": project.jobs_created,
        "jobs_complete": project.jobs_complete,
        "capex_eur": figures.capex_eur,
        "funding_need_eur": figures.funding_need_eur,
        "maturity": figures.maturity,
        "obstacles": list(figures.obstacles),
        "consent_to_share": figures.consent_to_share,
        "land_needs_ha": figures.land_needs_ha,
        "detected_on": project.detected_on,
        "abandoned_reason": project.abandoned_reason,
        "possible_duplicate_of": project.possible_duplicate_of,
        "duplicate_reason": project.duplicate_reason,
        "merged_into": project.merged_into,
    }


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._seen: dict[uuid.UUID, Project] = {}
        self._rows: dict[uuid.UUID, ProjectRow] = {}
        self._reports_saved: dict[uuid.UUID, int] = {}
        self._leads_saved: dict[uuid.UUID, set[uuid.UUID]] = {}

    @property
    def seen(self) -> list[Project]:
        return list(self._seen.values())

    async def get(self, project_id: uuid.UUID) -> Project | None:
        if project_id in self._seen:
            return self._seen[project_id]
        row = await self._session.get(ProjectRow, project_id, with_for_update=True)
        return None if row is None else await self._load(row)

    async def by_lead(self, lead_id: uuid.UUID) -> Project | None:
        for project in self._seen.values():
            if lead_id in project.lead_ids:
                return project
        link = await self._session.get(ProjectLeadRow, lead_id)
        return None if link is None else await self.get(link.project_id)

    async def live_of(self, territory_id: str, kind: str) -> list[Project]:
        """Candidates for deduplication: live projects of a kind in a territory."""
        rows = (
            await self._session.exec(
                select(ProjectRow)
                .where(ProjectRow.territory_id == territory_id)
                .where(ProjectRow.kind == kind)
                .where(col(ProjectRow.stage) != Stage.ABANDONED.value)
                .order_by(col(ProjectRow.detected_on), col(ProjectRow.id))
                .with_for_update()
            )
        ).all()
        projects = [self._seen.get(r.id) or await self._load(r) for r in rows]
        projects += [
            p
            for p in self._seen.values()
            if p.territory_id == territory_id and p.kind == kind and p not in projects
        ]
        return [p for p in projects if p.live]

    def add(self, project: Project) -> None:
        self._seen[project.id] = project
        self._reports_saved[project.id] = 0
        self._leads_saved[project.id] = set()

    async def _load(self, row: ProjectRow) -> Project:
        leads = (
            await self._session.exec(
                select(ProjectLeadRow.lead_id).where(ProjectLeadRow.project_id == row.id)
            )
        ).all()
        reports = (
            await self._session.exec(
                select(ProjectReportRow)
                .where(ProjectReportRow.project_id == row.id)
                .order_by(col(ProjectReportRow.id))
            )
        ).all()
        project = project_of(
            row,
            set(leads),
            [
                Report(
                    source=r.source,
                    reference=r.reference,
                    reported_at=r.reported_at,
                    figures=dict(r.figures or {}),
                )
                for r in reports
            ],
        )
        self._seen[row.id] = project
        self._rows[row.id] = row
        self._reports_saved[row.id] = len(reports)
        self._leads_saved[row.id] = set(leads)
        return project

    async def sync(self) -> None:
        for project in self._seen.values():
            self._sync_row(project)
        # Without ORM relationships, the flush does not order inserts by foreign key:
        # project rows first, then what points at them. Leads that moved to another
        # project (a merge) are deleted before they are inserted again there.
        await self._session.flush()
        moved = {
            lead_id
            for project in self._seen.values()
            for lead_id in self._leads_saved[project.id] - project.lead_ids
        }
        if moved:
            await self._session.exec(
                sa_delete(ProjectLeadRow).where(col(ProjectLeadRow.lead_id).in_(moved))
            )
            for project in self._seen.values():
                self._leads_saved[project.id] &= project.lead_ids
        for project in self._seen.values():
            self._sync_children(project)

    def _sync_row(self, project: Project) -> None:
        values = _columns(project)
        row = self._rows.get(project.id)
        if row is None:
            row = ProjectRow.model_validate({"id": project.id, **values})
            self._session.add(row)
            self._rows[project.id] = row
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()

    def _sync_children(self, project: Project) -> None:
        for lead_id in project.lead_ids - self._leads_saved[project.id]:
            self._session.add(ProjectLeadRow(lead_id=lead_id, project_id=project.id))
        self._leads_saved[project.id] = set(project.lead_ids)
        for report in project.reports[self._reports_saved[project.id] :]:
            self._session.add(
                ProjectReportRow(
                    project_id=project.id,
                    source=report.source,
                    reference=report.reference,
                    reported_at=report.reported_at,
                    figures={k: _plain(v) for k, v in report.figures.items()},
                )
            )
        self._reports_saved[project.id] = len(project.reports)
        for event in project.events:
            if isinstance(event, ev.ProjectState):
                self._session.add(_history(event))


def _plain(value: object) -> object:
    if isinstance(value, list | tuple | set):
        return [str(v) if isinstance(v, uuid.UUID) else v for v in value]
    return str(value) if isinstance(value, uuid.UUID) else value


_HISTORY_DETAIL = frozenset(
    {
        "jobs_planned",
        "jobs_created",
        "capex_eur",
        "consent_to_share",
        "previous_stage",
        "changed_fields",
        "jobs_added",
        "created_on",
        "complete",
        "reason",
        "source",
        "possible_duplicate_of",
        "merged_into",
    }
)


def _history(event: ev.ProjectState) -> ProjectHistoryRow:
    data = event.model_dump(mode="json")
    return ProjectHistoryRow(
        project_id=event.project_id,
        version=event.version,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        stage=event.stage,
        detail={k: v for k, v in data.items() if k in _HISTORY_DETAIL},
    )


class SiteProjection:
    """The registry's sites, by version: a replayed or re-driven older version is ignored."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def upsert(self, site: Site) -> bool:
        """Store the site if its version is newer; whether it was."""
        row = DetectionSiteRow(
            site_id=site.site_id,
            siren=site.siren,
            name=site.name,
            naf_code=site.naf_code,
            commune_insee=site.commune_insee,
            territory_ids=list(site.territory_ids),
            status=site.status,
            version=site.version,
        )
        return await upsert_newer(self._session, row) is not None

    async def close(self, site_id: str, version: int) -> bool:
        """Mark a known site closed at `version` if that is newer; whether it was."""
        row = await self._session.get(DetectionSiteRow, site_id)
        if row is None or not is_newer(row, version):
            return False
        row.status = "closed"
        row.version = version
        return True

    async def get(self, site_id: str) -> Site | None:
        row = await self._session.get(DetectionSiteRow, site_id)
        if row is None:
            return None
        return Site(
            site_id=row.site_id,
            siren=row.siren,
            name=row.name,
            naf_code=row.naf_code,
            commune_insee=row.commune_insee,
            territory_ids=tuple(row.territory_ids or ()),
            status=row.status,
            version=row.version,
        )

    async def firm_has_site_in(self, siren: str, territory_id: str) -> bool:
        rows = (
            await self._session.exec(
                select(DetectionSiteRow)
                .where(DetectionSiteRow.siren == siren)
                .where(col(DetectionSiteRow.status) != "closed")
            )
        ).all()
        return any(territory_id in (r.territory_ids or []) for r in rows)


class ShockRepository:
    """Closure shocks, for the commands (the ledger projection writes them)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, shock_id: uuid.UUID) -> Shock | None:
        row = await self._session.get(ShockRow, shock_id)
        if row is None:
            return None
        return Shock(
            shock_id=row.shock_id,
            territory_id=row.territory_id,
            announced_on=row.announced_on,
            jobs_lost=row.jobs_lost,
            site_id=row.site_id,
        )
