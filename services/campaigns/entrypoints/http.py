"""The campaigns API: the crisis cell steers campaigns; consultants work from a phone.

Every command accepts an `Idempotency-Key`: a retried request returns the first answer
and changes nothing more. Consultants' reads carry an `ETag` (send it back in
`If-None-Match` to get a 304 without a body) and are gzipped when large.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse

from services.campaigns.bootstrap import Campaigns
from services.campaigns.domain.model import Campaign, Outcome
from services.campaigns.entrypoints import schemas as s
from services.campaigns.service_layer import commands, views
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from shared.auth import Allow, Principal, Role
from shared.clock import Clock
from shared.command_bus import Action, CommandBus, Created, command_bus
from shared.errors import DomainError
from shared.http import Day
from shared.idempotency import request_hash
from shared.runtime import ClockDep, SessionDep, service_app

CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
CrisisOrConsultant = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT))]
Consultant = Annotated[Principal, Depends(Allow(Role.CONSULTANT, Role.CRISIS_CELL))]
Bus = Annotated[CommandBus[CampaignsUnitOfWork], Depends(command_bus)]
Session = SessionDep


router = APIRouter()

# --- the crisis cell ------------------------------------------------------------------


@router.get(
    "/campaigns",
    response_model=list[s.CampaignOut],
    tags=["campaigns"],
    summary="Campaigns of the caller's territories (crisis cell, consultant; admin)",
)
async def list_campaigns(principal: CrisisOrConsultant, session: Session) -> list[s.CampaignOut]:
    return await views.campaigns(session, principal)


@router.get(
    "/campaigns/{campaign_id}",
    response_model=s.CampaignOut,
    tags=["campaigns"],
    summary="One campaign: terms, roster, plan figures (crisis cell, consultant; admin)",
)
async def get_campaign(
    campaign_id: uuid.UUID, principal: CrisisOrConsultant, session: Session
) -> s.CampaignOut:
    return await views.campaign(session, campaign_id, principal)


@router.get(
    "/campaigns/{campaign_id}/plan",
    response_model=s.PlanOut,
    tags=["campaigns"],
    summary="Every target with its priority, reasons, visit or uncovered reason (crisis cell)",
)
async def get_plan(campaign_id: uuid.UUID, principal: CrisisCell, session: Session) -> s.PlanOut:
    return await views.plan(session, campaign_id, principal)


def _changed(
    change: Callable[[CampaignsUnitOfWork], Awaitable[Campaign]],
) -> Action[CampaignsUnitOfWork, s.CampaignChangeOut]:
    """A crisis cell's change, answered with the campaign as it left it."""

    async def action(uow: CampaignsUnitOfWork) -> s.CampaignChangeOut:
        return s.CampaignChangeOut.of(await change(uow))

    return action


@router.post(
    "/campaigns/{campaign_id}/replan",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Re-plan from scratch (crisis cell of the territory; admin)",
)
async def post_replan(
    campaign_id: uuid.UUID, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal, _changed(lambda uow: commands.replan(uow, campaign_id, principal, clock))
    )


@router.post(
    "/campaigns/{campaign_id}/targets",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Add target sites of the territory (crisis cell; admin)",
)
async def post_targets(
    campaign_id: uuid.UUID, body: s.TargetsIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        _changed(
            lambda uow: commands.add_targets(uow, campaign_id, body.site_ids, principal, clock)
        ),
        body=body,
    )


@router.delete(
    "/campaigns/{campaign_id}/targets/{site_id}",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Remove a target from the plan (crisis cell; admin)",
)
async def delete_target(
    campaign_id: uuid.UUID, site_id: str, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        _changed(lambda uow: commands.remove_target(uow, campaign_id, site_id, principal, clock)),
    )


@router.post(
    "/campaigns/{campaign_id}/consultants",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Add or remove consultants; their visits are re-planned (crisis cell; admin)",
)
async def post_consultants(
    campaign_id: uuid.UUID, body: s.RosterIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        _changed(
            lambda uow: commands.change_roster(
                uow, campaign_id, body.add, body.remove, principal, clock
            )
        ),
        body=body,
    )


@router.patch(
    "/campaigns/{campaign_id}/terms",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Change budget, cost per visit, daily cap or end date (crisis cell; admin)",
)
async def patch_terms(
    campaign_id: uuid.UUID, body: s.TermsIn, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        _changed(
            lambda uow: commands.change_terms(uow, campaign_id, body.terms(), principal, clock)
        ),
        body=body,
    )


@router.post(
    "/campaigns/{campaign_id}/close",
    response_model=s.CampaignChangeOut,
    tags=["campaigns"],
    summary="Close the campaign; planned visits are cancelled (crisis cell; admin)",
)
async def post_close(
    campaign_id: uuid.UUID, principal: CrisisCell, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal, _changed(lambda uow: commands.close(uow, campaign_id, principal, clock))
    )


@router.get(
    "/campaigns/{campaign_id}/progress",
    response_model=s.ProgressOut,
    tags=["campaigns"],
    summary="Progress: visits, reach, budget used, projects, hidden share, red flags (crisis cell)",
)
async def get_progress(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> s.ProgressOut:
    return await views.progress(session, campaign_id, principal)


@router.get(
    "/campaigns/{campaign_id}/red-flags",
    response_model=list[s.RedFlagOut],
    tags=["campaigns"],
    summary="The red flags the surveys reported, latest survey of each site (crisis cell)",
)
async def get_red_flags(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> list[s.RedFlagOut]:
    return await views.red_flags(session, campaign_id, principal)


@router.get(
    "/campaigns/{campaign_id}/progress.csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "one line for the campaign, then one per consultant and per commune:"
            " scope, key, targets, planned, visited, reached, projects",
        }
    },
    tags=["campaigns"],
    summary="Progress per consultant and per commune, as CSV (crisis cell; admin)",
)
async def get_progress_csv(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> Response:
    progress = await views.progress(session, campaign_id, principal)
    return Response(
        content=_progress_csv(progress),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="progress-{campaign_id}.csv"'},
    )


def _progress_csv(p: s.ProgressOut) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["scope", "key", "targets", "planned", "visited", "reached", "projects"])
    writer.writerow(
        ["campaign", str(p.campaign_id), p.targets, p.planned, p.visited, p.reached, p.projects]
    )
    for scope, buckets in (("consultant", p.per_consultant), ("commune", p.per_commune)):
        for b in buckets:
            writer.writerow([scope, b.key, b.targets, b.planned, b.visited, b.reached, b.projects])
    return out.getvalue()


# --- the consultants --------------------------------------------------------------------


@router.get(
    "/me/visits",
    response_model=s.MyVisitsOut,
    response_model_exclude_none=True,
    tags=["consultants"],
    summary="My visits for a day or a week, in agenda order (consultant; crisis cell; admin)",
)
async def get_my_visits(
    request: Request,
    principal: Consultant,
    clock: ClockDep,
    day: Annotated[Day | None, Query(alias="from", description="default: today")] = None,
    days: Annotated[int, Query(ge=1, le=31, description="1: today; 7: a week")] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    done: Annotated[bool, Query(description="include completed visits")] = False,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    accept_encoding: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    svc: Campaigns = request.app.state.runtime
    start = day or clock.today()
    page = await svc.autocommit_read(
        lambda conn: views.my_visits(
            conn,
            principal,
            start=start,
            end=start + timedelta(days=days - 1),
            limit=limit,
            cursor=cursor,
            include_done=done,
        )
    )
    # Serialized once, by pydantic-core: the same bytes give the ETag and the body.
    body = page.model_dump_json(exclude_none=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    # As GZipMiddleware would (it adds `Vary` to the other large bodies itself), but the
    # compressed bytes are kept: the middleware lets an encoded body through.
    if len(body) >= GZIP_MINIMUM_SIZE and accept_encoding and "gzip" in accept_encoding:
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        body = _gzipped(etag, body)
    return Response(content=body, media_type="application/json", headers=headers)


#: Bodies smaller than this go as they are: compressed or not, they fit one TCP segment
#: (1,460 bytes on a 1,500-byte MTU), so gzip would cost CPU at both ends and save no
#: round trip.
GZIP_MINIMUM_SIZE = 1400
_GZIP_LEVEL = 6  # zlib's default; GZipMiddleware's 9 costs more for ~1 % smaller bodies
_GZIP_CACHE_ENTRIES = 1024
_gzip_cache: dict[str, bytes] = {}


def _gzipped(etag: str, body: bytes) -> bytes:
    """The gzip of an agenda body, kept by its ETag (a hash of the body): a phone reading
    its unchanged agenda again gets the bytes compressed the first time. Bounded: the
    oldest entry goes first."""
    cached = _gzip_cache.get(etag)
    if cached is None:
        cached = gzip.compress(body, compresslevel=_GZIP_LEVEL, mtime=0)
        if len(_gzip_cache) >= _GZIP_CACHE_ENTRIES:
            del _gzip_cache[next(iter(_gzip_cache))]
        _gzip_cache[etag] = cached
    return cached


def _outcome(
    visit_id: uuid.UUID, body: s.OutcomeIn, principal: Principal, clock: Clock
) -> Action[CampaignsUnitOfWork, s.OutcomeOut]:
    report = commands.OutcomeReport(
        visit_id=visit_id,
        outcome=Outcome(body.outcome),
        reason=body.reason,
        visited_on=body.visited_on or clock.today(),
        today=clock.today(),
    )

    async def action(uow: CampaignsUnitOfWork) -> s.OutcomeOut:
        recorded = await commands.record_outcome(uow, report, principal)
        return s.OutcomeOut(
            visit_id=visit_id, status="completed", outcome=body.outcome, recorded=recorded
        )

    return action


def _survey(
    visit_id: uuid.UUID, body: s.SurveyIn, principal: Principal, clock: Clock
) -> Action[CampaignsUnitOfWork, Created[s.SurveyOut]]:
    answers = body.answers(visit_id)

    async def action(uow: CampaignsUnitOfWork) -> Created[s.SurveyOut]:
        survey = await commands.submit_survey(uow, visit_id, answers, principal, clock)
        return Created(s.SurveyOut.of(survey))

    return action


@router.post(
    "/visits/{visit_id}/outcome",
    response_model=s.OutcomeOut,
    tags=["consultants"],
    summary="Record a visit's outcome (the assigned consultant; crisis cell; admin)",
)
async def post_outcome(
    visit_id: uuid.UUID, body: s.OutcomeIn, principal: Consultant, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(principal, _outcome(visit_id, body, principal, clock), body=body)


@router.post(
    "/visits/{visit_id}/survey",
    response_model=s.SurveyOut,
    status_code=201,
    tags=["consultants"],
    summary="Submit (or resubmit) the survey of a reached firm (assigned consultant; admin)",
)
async def post_survey(
    visit_id: uuid.UUID, body: s.SurveyIn, principal: Consultant, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(principal, _survey(visit_id, body, principal, clock), body=body)


@router.post(
    "/sync",
    response_model=s.SyncOut,
    tags=["consultants"],
    summary="Upload reports made offline; answered item by item (consultant; admin)",
)
async def post_sync(body: s.SyncIn, principal: Consultant, bus: Bus, clock: ClockDep) -> s.SyncOut:
    return s.SyncOut.of([await _sync(item, principal, bus, clock) for item in body.items])


async def _sync(
    item: s.SyncItemIn, principal: Principal, bus: Bus, clock: Clock
) -> s.SyncResultOut:
    """One offline report, under its own key (`sync:<client_id>`): a phone that resends a
    batch gets "duplicate" for what was already accepted."""
    report: s.OutcomeIn | s.SurveyIn | None = (
        item.outcome if item.type == "outcome" else item.survey
    )
    assert report is not None  # SyncItemIn checks that the body matches the type
    action: Action[CampaignsUnitOfWork, object] = (
        _outcome(item.visit_id, report, principal, clock)
        if isinstance(report, s.OutcomeIn)
        else _survey(item.visit_id, report, principal, clock)
    )
    fingerprint = request_hash(
        "SYNC", f"/visits/{item.visit_id}/{item.type}", jsonable_encoder(report)
    )
    try:
        answer = await bus.execute(
            principal, f"sync:{item.client_id}", fingerprint, action, body=report
        )
    except DomainError as exc:
        return s.SyncResultOut(
            client_id=item.client_id,
            status=_sync_status(exc),
            http_status=exc.status_code,
            detail=exc.message,
        )
    return s.SyncResultOut(
        client_id=item.client_id,
        status="duplicate" if answer.replayed else "accepted",
        http_status=answer.status_code,
        result=answer.body,
    )


def _sync_status(exc: DomainError) -> s.SyncStatus:
    if exc.status_code == 409:
        return "conflict"
    if exc.status_code == 404:
        return "not_found"
    return "rejected"


@router.get(
    "/questionnaire",
    response_model=s.QuestionnaireOut,
    tags=["consultants"],
    summary="The current survey questionnaire: its version and JSON Schema (any consultant)",
)
async def get_questionnaire(_: Consultant) -> s.QuestionnaireOut:
    return s.QuestionnaireOut(
        version=s.QUESTIONNAIRE_VERSION, schema=s.SurveyIn.model_json_schema()
    )


def create_app(svc: Campaigns, *, run_workers: bool = True) -> FastAPI:
    app = service_app(
        svc,
        title="Rebond — campaigns",
        description=(
            "Rebond campaigns after a closure shock: plan, consultants' visits, surveys."
            " Bearer JWT; each operation names the roles allowed to call it (`x-roles`)."
        ),
        router=router,
        run_workers=run_workers,
    )
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_SIZE)
    return app
