"""The detection API: projects for the crisis cell, and each shock's job-compensation
ledger. Every POST accepts an `Idempotency-Key` (`shared.command_bus`)."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from fastapi.responses import JSONResponse

from services.detection.bootstrap import Detection
from services.detection.domain.ledger import ledger_csv_rows
from services.detection.domain.stages import Stage
from services.detection.entrypoints import schemas as s
from services.detection.service_layer import commands, views
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from shared.auth import Allow, Principal, Role
from shared.command_bus import CommandBus, command_bus
from shared.http import Day
from shared.runtime import ClockDep, SessionDep, service_app

CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
Bus = Annotated[CommandBus[DetectionUnitOfWork], Depends(command_bus)]
Session = SessionDep


router = APIRouter()
#: `?territory=` outside the caller's token: detection answers 404 (views.scope).
OTHER_TERRITORY: dict[int | str, dict[str, Any]] = {
    404: {"description": "the territory asked for is outside the token's territories"}
}


@router.get(
    "/projects",
    response_model=s.ProjectPage,
    tags=["projects"],
    summary="Projects by campaign, shock, stage, origin, kind (crisis cell; admin)",
    responses=OTHER_TERRITORY,
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
) -> s.ProjectPage:
    flt = views.ProjectFilter(
        territory_ids=views.scope(principal, territory),
        campaign_id=campaign,
        shock_id=shock,
        stage=stage.value if stage else None,
        origin=origin,
        kind=kind,
        hidden=hidden,
        under_review=under_review,
    )
    return await views.list_projects(session, flt, limit=limit, cursor=cursor)


@router.get(
    "/projects/stats",
    response_model=s.StatsOut,
    tags=["projects"],
    summary="Counts by stage, origin, kind, and the share of hidden projects (crisis cell)",
    responses=OTHER_TERRITORY,
)
async def project_stats(
    principal: CrisisCell,
    session: Session,
    territory: str | None = None,
    campaign: uuid.UUID | None = None,
    shock: uuid.UUID | None = None,
) -> s.StatsOut:
    flt = views.ProjectFilter(
        territory_ids=views.scope(principal, territory), campaign_id=campaign, shock_id=shock
    )
    return await views.stats(session, flt)


@router.get(
    "/projects/{project_id}",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="A project with its support priority and the reasons for it (crisis cell)",
)
async def get_project(
    project_id: uuid.UUID, principal: CrisisCell, session: Session
) -> s.ProjectOut:
    return await views.project(session, project_id, principal)


@router.get(
    "/projects/{project_id}/timeline",
    response_model=list[s.TimelineItem],
    tags=["projects"],
    summary="Everything that happened to a project: reports merged and stages (crisis cell)",
)
async def get_timeline(
    project_id: uuid.UUID, principal: CrisisCell, session: Session
) -> list[s.TimelineItem]:
    return await views.timeline(session, project_id, principal)


@router.post(
    "/projects/exogenous",
    response_model=s.ProjectOut,
    status_code=201,
    tags=["projects"],
    summary="Declare a project of a firm from outside looking for a location (crisis cell)",
)
async def post_exogenous(
    body: s.ExogenousIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    data = body.command()
    return await bus(
        principal,
        lambda uow: commands.declare_exogenous(uow, data, principal, clock),
        answer=s.ProjectOut.of,
        body=body,
        status_code=201,
    )


@router.post(
    "/projects/{project_id}/qualify",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Qualify a detected project, correcting its figures (crisis cell analyst)",
)
async def post_qualify(
    project_id: uuid.UUID, body: s.QualifyIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.qualify(
            uow,
            project_id,
            principal,
            clock,
            jobs_planned=body.jobs_planned,
            capex_eur=body.capex_eur,
        ),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.post(
    "/projects/{project_id}/stage",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Move a project to in funding, funded, launched, or back to qualified (crisis cell)",
)
async def post_stage(
    project_id: uuid.UUID, body: s.StageIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    stage = Stage(body.stage)
    return await bus(
        principal,
        lambda uow: commands.move(uow, project_id, stage, principal, clock, body.reason),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.post(
    "/projects/{project_id}/jobs",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Record the jobs actually created so far (crisis cell)",
)
async def post_jobs(
    project_id: uuid.UUID, body: s.JobsIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.record_jobs(
            uow,
            project_id,
            principal,
            clock,
            jobs_created_total=body.jobs_created_total,
            created_on=body.created_on,
            complete=body.complete,
        ),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.post(
    "/projects/{project_id}/abandon",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Abandon a project, with the reason (crisis cell)",
)
async def post_abandon(
    project_id: uuid.UUID, body: s.AbandonIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.abandon(uow, project_id, principal, clock, body.reason),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.post(
    "/projects/{project_id}/merge",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Merge a look-alike into the project it duplicates; returns that one (crisis cell)",
)
async def post_merge(
    project_id: uuid.UUID, body: s.MergeIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.merge(uow, project_id, principal, clock, body.into),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.post(
    "/projects/{project_id}/not-a-duplicate",
    response_model=s.ProjectOut,
    tags=["projects"],
    summary="Dismiss a look-alike flag: two different projects after all (crisis cell)",
)
async def post_not_a_duplicate(
    project_id: uuid.UUID,
    body: s.DismissDuplicateIn,
    principal: CrisisCell,
    bus: Bus,
    clock: ClockDep,
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.dismiss_duplicate(uow, project_id, principal, clock, body.note),
        answer=s.ProjectOut.of,
        body=body,
    )


@router.get(
    "/shocks",
    response_model=list[s.ShockOut],
    tags=["ledger"],
    summary="Closure shocks of the caller's territories, with jobs lost (crisis cell)",
)
async def list_shocks(principal: CrisisCell, session: Session) -> list[s.ShockOut]:
    return await views.shocks(session, views.scope(principal))


@router.get(
    "/shocks/{shock_id}/ledger",
    response_model=s.LedgerOut,
    tags=["ledger"],
    summary="Jobs lost vs jobs of projects, by origin, stage and month (crisis cell)",
)
async def get_ledger(
    shock_id: uuid.UUID, principal: CrisisCell, session: Session, until: Day | None = None
) -> s.LedgerOut:
    return s.LedgerOut.of(await views.visible_ledger(session, shock_id, principal, until))


@router.get(
    "/shocks/{shock_id}/ledger.csv",
    tags=["ledger"],
    summary="The ledger's monthly series as CSV (crisis cell)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "a header, then one row per month: cumulative jobs per origin",
        }
    },
)
async def get_ledger_csv(
    shock_id: uuid.UUID, principal: CrisisCell, session: Session, until: Day | None = None
) -> Response:
    result = await views.visible_ledger(session, shock_id, principal, until)
    out = io.StringIO()
    csv.writer(out).writerows(ledger_csv_rows(result))
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="ledger-{shock_id}.csv"'},
    )


def create_app(svc: Detection, *, run_workers: bool = True) -> FastAPI:
    return service_app(
        svc,
        title="Rebond — project detection",
        description=(
            "Investment projects found by the rebond (endogenous) or brought in (exogenous),"
            " their stages, and each closure shock's job-compensation ledger."
        ),
        router=router,
        run_workers=run_workers,
    )
