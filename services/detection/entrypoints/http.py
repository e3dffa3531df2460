"""The detection API: projects for the crisis cell, and each shock's job-compensation
ledger. Every POST accepts an `Idempotency-Key`."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from services.detection.adapters.orm import LedgerShockRow, ProjectRow
from services.detection.bootstrap import Detection
from services.detection.domain.ledger import ledger_csv_rows
from services.detection.domain.model import Project
from services.detection.domain.stages import Stage
from services.detection.entrypoints import schemas as s
from services.detection.service_layer import commands, views
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from shared import idempotency
from shared.auth import Allow, Principal, Role
from shared.errors import NotFound
from shared.runtime import SessionDep, service_app

CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def _service(request: Request) -> Detection:
    svc: Detection = request.app.state.runtime
    return svc


Service = Annotated[Detection, Depends(_service)]


Session = SessionDep


def _scope(principal: Principal) -> list[str] | None:
    return None if principal.is_admin else sorted(principal.territories)


def _project_body(project: Project) -> dict[str, Any]:
    priority = project.priority()
    return {
        "id": project.id,
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
        "description": project.description,
        "stage": project.stage.value,
        "hidden": project.hidden,
        "jobs_planned": project.jobs_planned,
        "jobs_created": project.jobs_created,
        "jobs_complete": project.jobs_complete,
        "capex_eur": project.capex_eur,
        "funding_need_eur": project.funding_need_eur,
        "maturity": project.maturity,
        "obstacles": list(project.obstacles),
        "consent_to_share": project.consent_to_share,
        "land_needs_ha": project.land_needs_ha,
        "detected_on": project.detected_on,
        "abandoned_reason": project.abandoned_reason,
        "possible_duplicate_of": project.possible_duplicate_of,
        "duplicate_reason": project.duplicate_reason,
        "merged_into": project.merged_into,
        "priority": priority.score,
        "priority_reasons": list(priority.reasons),
    }


async def _run(
    svc: Detection,
    principal: Principal,
    key: str | None,
    request: Request,
    body: Any,
    op: Callable[[DetectionUnitOfWork], Awaitable[tuple[int, Project]]],
) -> JSONResponse:
    async def action(uow: DetectionUnitOfWork) -> tuple[int, Any]:
        code, project = await op(uow)
        return code, _project_body(project)

    return await idempotency.run_command(
        svc.uow, principal.subject, key, idempotency.fingerprint(request, body), action
    )


router = APIRouter()


@router.get(
    "/projects",
    response_model=s.ProjectPage,
    tags=["projects"],
    summary="Projects by campaign, shock, stage, origin, kind (crisis cell; admin)",
)
async def list_projects(
    principal: CrisisCell,
    session: Session,
    territory: str | None = None,
    campaign: uuid.UUID | None = None,
    shock: uuid.UUID | None = None,
    stage: Stage | None = None,
    origin: Annotated[str | None, Query(pattern="^(endogenous|exogenous)$")] = None,
    kind: str | None = None,
    hidden: bool | None = None,
    under_review: Annotated[
        bool | None, Query(description="true: the look-alikes waiting for the cell's decision")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    scope = _scope(principal)
    if territory is not None:
        if not principal.can_see_territory(territory):
            raise NotFound(f"territory {territory} is outside your token's territories")
        scope = [territory]
    flt = views.ProjectFilter(
        territory_ids=scope,
        campaign_id=campaign,
        shock_id=shock,
        stage=stage.value if stage else None,
        origin=origin,
        kind=kind,
        hidden=hidden,
        under_review=under_review,
    )
    items, next_cursor = await views.list_projects(session, flt, limit=limit, cursor=cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/projects/stats",
    tags=["projects"],
    summary="Counts by stage, origin, kind, and the share of hidden projects (crisis cell)",
)
async def project_stats(
    principal: CrisisCell,
    session: Session,
    territory: str | None = None,
    campaign: uuid.UUID | None = None,
    shock: uuid.UUID | None = None,
) -> dict[str, Any]:
    scope = _scope(principal)
    if territory is not None:
        if not principal.can_see_territory(territory):
            raise NotFound(f"territory {territory} is outside your token's territories")
        scope = [territory]
    return await views.stats(
        session, views.ProjectFilter(territory_ids=scope, campaign_id=campaign, shock_id=shock)
    )


async def _visible(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> ProjectRow:
    row = await session.get(ProjectRow, project_id)
    if row is None or not principal.can_see_territory(row.territory_id):
        raise NotFound(f"no project {project_id} in your territories")
    return row


@router.get(
    "/projects/{project_id}",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="A project with its support priority and the reasons for it (crisis cell)",
)
async def get_project(
    project_id: uuid.UUID, principal: CrisisCell, session: Session
) -> dict[str, Any]:
    return views.public(await _visible(session, project_id, principal))


@router.get(
    "/projects/{project_id}/timeline",
    tags=["projects"],
    summary="Everything that happened to a project: reports merged and stages (crisis cell)",
)
async def get_timeline(
    project_id: uuid.UUID, principal: CrisisCell, session: Session
) -> list[dict[str, Any]]:
    await _visible(session, project_id, principal)
    return await views.timeline(session, project_id)


@router.post(
    "/projects/exogenous",
    response_model=s.ProjectOut,
    status_code=201,
    tags=["projects"],
    summary="Declare a project of a firm from outside looking for a location (crisis cell)",
)
async def post_exogenous(
    body: s.ExogenousIn, request: Request, principal: CrisisCell, svc: Service, key: IdemKey = None
) -> JSONResponse:
    data = commands.ExogenousProject(**body.model_dump())

    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        project, created = await commands.declare_exogenous(uow, data, principal, svc.clock)
        return (201 if created else 200), project

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/qualify",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Qualify a detected project, correcting its figures (crisis cell analyst)",
)
async def post_qualify(
    project_id: uuid.UUID,
    body: s.QualifyIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        project = await commands.qualify(
            uow,
            project_id,
            principal,
            svc.clock,
            jobs_planned=body.jobs_planned,
            capex_eur=body.capex_eur,
        )
        return 200, project

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/stage",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Move a project to in funding, funded, launched, or back to qualified (crisis cell)",
)
async def post_stage(
    project_id: uuid.UUID,
    body: s.StageIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        project = await commands.move(
            uow, project_id, Stage(body.stage), principal, svc.clock, body.reason
        )
        return 200, project

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/jobs",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Record the jobs actually created so far (crisis cell)",
)
async def post_jobs(
    project_id: uuid.UUID,
    body: s.JobsIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        project = await commands.record_jobs(
            uow,
            project_id,
            principal,
            svc.clock,
            jobs_created_total=body.jobs_created_total,
            created_on=body.created_on,
            complete=body.complete,
        )
        return 200, project

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/abandon",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Abandon a project, with the reason (crisis cell)",
)
async def post_abandon(
    project_id: uuid.UUID,
    body: s.AbandonIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        return 200, await commands.abandon(uow, project_id, principal, svc.clock, body.reason)

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/merge",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Merge a look-alike into the project it duplicates; returns that one (crisis cell)",
)
async def post_merge(
    project_id: uuid.UUID,
    body: s.MergeIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        return 200, await commands.merge(uow, project_id, principal, svc.clock, body.into)

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/projects/{project_id}/not-a-duplicate",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Dismiss a look-alike flag: two different projects after all (crisis cell)",
)
async def post_not_a_duplicate(
    project_id: uuid.UUID,
    body: s.DismissDuplicateIn,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    async def op(uow: DetectionUnitOfWork) -> tuple[int, Project]:
        return 200, await commands.dismiss_duplicate(
            uow, project_id, principal, svc.clock, body.note
        )

    return await _run(svc, principal, key, request, body, op)


async def _ledger(
    session: AsyncSession, shock_id: uuid.UUID, principal: Principal, until: date | None
) -> dict[str, Any]:
    shock = await session.get(LedgerShockRow, shock_id)
    if shock is None or not principal.can_see_territory(shock.territory_id):
        raise NotFound(f"no closure shock {shock_id} in your territories")
    result = await views.shock_ledger(session, shock_id, until)
    assert result is not None
    return result


@router.get(
    "/shocks",
    tags=["ledger"],
    summary="Closure shocks of the caller's territories, with jobs lost (crisis cell)",
)
async def list_shocks(principal: CrisisCell, session: Session) -> list[dict[str, Any]]:
    return [r.model_dump() for r in await views.ledger_shocks(session, _scope(principal))]


@router.get(
    "/shocks/{shock_id}/ledger",
    tags=["ledger"],
    summary="Jobs lost vs jobs of projects, by origin, stage and month (crisis cell)",
)
async def get_ledger(
    shock_id: uuid.UUID, principal: CrisisCell, session: Session, until: date | None = None
) -> dict[str, Any]:
    return await _ledger(session, shock_id, principal, until)


@router.get(
    "/shocks/{shock_id}/ledger.csv",
    tags=["ledger"],
    summary="The ledger's monthly series as CSV (crisis cell)",
    response_class=Response,
)
async def get_ledger_csv(
    shock_id: uuid.UUID, principal: CrisisCell, session: Session, until: date | None = None
) -> Response:
    result = await _ledger(session, shock_id, principal, until)
    out = io.StringIO()
    csv.writer(out).writerows(ledger_csv_rows(result))
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ledger-{shock_id}.csv"'},
    )


def create_app(svc: Detection, *, run_workers: bool = True) -> FastAPI:
    app = service_app(
        svc,
        title="Rebond — project detection",
        description=(
            "Investment projects found by the rebond (endogenous) or brought in (exogenous),"
            " their stages, and each closure shock's job-compensation ledger."
        ),
        router=router,
        run_workers=run_workers,
    )
    return app
