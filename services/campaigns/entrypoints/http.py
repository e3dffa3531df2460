"""The campaigns API: the crisis cell steers campaigns; consultants work from a phone.

Every POST accepts an `Idempotency-Key`: a retried request returns the first answer and
creates nothing new. Consultants' reads carry an `ETag` (send it back in `If-None-Match`
to get a 304 without a body) and are gzipped when large.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from services.campaigns.adapters.orm import CampaignRow
from services.campaigns.bootstrap import Campaigns
from services.campaigns.domain.model import Campaign, Outcome, SurveyAnswers
from services.campaigns.entrypoints import schemas as s
from services.campaigns.service_layer import commands, views
from services.campaigns.service_layer.unit_of_work import CampaignsUnitOfWork
from shared import idempotency
from shared.auth import Allow, Principal, Role
from shared.errors import DomainError, NotFound
from shared.events.campaigns import ProjectLead, RedFlagItem
from shared.runtime import SessionDep, service_app

CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
CrisisOrConsultant = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT))]
Consultant = Annotated[Principal, Depends(Allow(Role.CONSULTANT, Role.CRISIS_CELL))]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="any unique string per logical request (a UUID); retries reuse it",
    ),
]


async def _service(request: Request) -> Campaigns:
    svc: Campaigns = request.app.state.runtime
    return svc


Service = Annotated[Campaigns, Depends(_service)]


Session = SessionDep

Action = idempotency.Action[CampaignsUnitOfWork]


async def run_command(
    svc: Campaigns, principal: Principal, key: str | None, request_fingerprint: str, action: Action
) -> JSONResponse:
    return await idempotency.run_command(
        svc.uow, principal.subject, key, request_fingerprint, action
    )


fingerprint = idempotency.fingerprint


async def _summary(svc: Campaigns, campaign_id: uuid.UUID) -> dict[str, Any]:
    async with svc.session_factory() as session:
        row = await session.get(CampaignRow, campaign_id)
        assert row is not None
        return await views.summary(session, row)


def _scope(principal: Principal) -> list[str] | None:
    return None if principal.is_admin else sorted(principal.territories)


async def _campaign_row(
    session: AsyncSession, campaign_id: uuid.UUID, principal: Principal
) -> CampaignRow:
    row = await session.get(CampaignRow, campaign_id)
    if row is None or not principal.can_see_territory(row.territory_id):
        raise NotFound(f"no campaign {campaign_id} in your territories")
    return row


router = APIRouter()

# --- the crisis cell ------------------------------------------------------------------


@router.get(
    "/campaigns",
    response_model=list[s.CampaignSummary],
    tags=["campaigns"],
    summary="Campaigns of the caller's territories (crisis cell, consultant; admin)",
)
async def list_campaigns(principal: CrisisOrConsultant, session: Session) -> list[dict[str, Any]]:
    rows = await views.campaigns_in(session, _scope(principal))
    return [await views.summary(session, r) for r in rows]


@router.get(
    "/campaigns/{campaign_id}",
    response_model=s.CampaignSummary,
    tags=["campaigns"],
    summary="One campaign: terms, roster, plan figures (crisis cell, consultant; admin)",
)
async def get_campaign(
    campaign_id: uuid.UUID, principal: CrisisOrConsultant, session: Session
) -> dict[str, Any]:
    return await views.summary(session, await _campaign_row(session, campaign_id, principal))


@router.get(
    "/campaigns/{campaign_id}/plan",
    response_model=s.CampaignPlan,
    tags=["campaigns"],
    summary="Every target with its priority, reasons, visit or uncovered reason (crisis cell)",
)
async def get_plan(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> dict[str, Any]:
    row = await _campaign_row(session, campaign_id, principal)
    return {
        "campaign_id": row.id,
        "plan_version": row.plan_version,
        "targets": await views.plan(session, row),
    }


def _campaign_action(
    svc: Campaigns, op: Callable[[CampaignsUnitOfWork], Awaitable[Campaign]]
) -> Action:
    async def action(uow: CampaignsUnitOfWork) -> tuple[int, Any]:
        campaign = await op(uow)
        plan = campaign.last_plan
        return 200, {
            "campaign_id": campaign.id,
            "status": campaign.status.value,
            "plan_version": campaign.plan_version,
            "planned": len(plan.visits) if plan else None,
            "uncovered": len(plan.uncovered) if plan else None,
            "roster": campaign.roster,
            "budget_days": campaign.budget_days,
        }

    return action


@router.post(
    "/campaigns/{campaign_id}/replan",
    tags=["campaigns"],
    summary="Re-plan from scratch (crisis cell of the territory; admin)",
)
async def post_replan(
    campaign_id: uuid.UUID,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, None),
        _campaign_action(svc, lambda uow: commands.replan(uow, campaign_id, principal, svc.clock)),
    )


@router.post(
    "/campaigns/{campaign_id}/targets",
    tags=["campaigns"],
    summary="Add target sites of the territory (crisis cell; admin)",
)
async def post_targets(
    campaign_id: uuid.UUID,
    body: s.TargetsAdd,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, body),
        _campaign_action(
            svc,
            lambda uow: commands.add_targets(uow, campaign_id, body.site_ids, principal, svc.clock),
        ),
    )


@router.delete(
    "/campaigns/{campaign_id}/targets/{site_id}",
    tags=["campaigns"],
    summary="Remove a target from the plan (crisis cell; admin)",
)
async def delete_target(
    campaign_id: uuid.UUID, site_id: str, principal: CrisisCell, svc: Service
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        None,
        "",
        _campaign_action(
            svc,
            lambda uow: commands.remove_target(uow, campaign_id, site_id, principal, svc.clock),
        ),
    )


@router.post(
    "/campaigns/{campaign_id}/consultants",
    tags=["campaigns"],
    summary="Add or remove consultants; their visits are re-planned (crisis cell; admin)",
)
async def post_consultants(
    campaign_id: uuid.UUID,
    body: s.RosterChange,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, body),
        _campaign_action(
            svc,
            lambda uow: commands.change_roster(
                uow, campaign_id, body.add, body.remove, principal, svc.clock
            ),
        ),
    )


@router.patch(
    "/campaigns/{campaign_id}/terms",
    tags=["campaigns"],
    summary="Change budget, cost per visit, daily cap or end date (crisis cell; admin)",
)
async def patch_terms(
    campaign_id: uuid.UUID, body: s.TermsChange, principal: CrisisCell, svc: Service
) -> JSONResponse:
    terms = commands.Terms(**body.model_dump())
    return await run_command(
        svc,
        principal,
        None,
        "",
        _campaign_action(
            svc, lambda uow: commands.change_terms(uow, campaign_id, terms, principal, svc.clock)
        ),
    )


@router.post(
    "/campaigns/{campaign_id}/close",
    tags=["campaigns"],
    summary="Close the campaign; planned visits are cancelled (crisis cell; admin)",
)
async def post_close(
    campaign_id: uuid.UUID,
    request: Request,
    principal: CrisisCell,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, None),
        _campaign_action(svc, lambda uow: commands.close(uow, campaign_id, principal, svc.clock)),
    )


@router.get(
    "/campaigns/{campaign_id}/progress",
    response_model=s.Progress,
    tags=["campaigns"],
    summary="Progress: visits, reach, budget used, projects, hidden share, red flags (crisis cell)",
)
async def get_progress(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> dict[str, Any]:
    return await views.progress(session, await _campaign_row(session, campaign_id, principal))


@router.get(
    "/campaigns/{campaign_id}/progress.csv",
    tags=["campaigns"],
    summary="Progress per consultant and per commune, as CSV (crisis cell; admin)",
    response_class=Response,
)
async def get_progress_csv(
    campaign_id: uuid.UUID, principal: CrisisCell, session: Session
) -> Response:
    data = await views.progress(session, await _campaign_row(session, campaign_id, principal))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["scope", "key", "targets", "planned", "visited", "reached", "projects"])
    writer.writerow(
        [
            "campaign",
            str(campaign_id),
            data["targets"],
            data["planned"],
            data["visited"],
            data["reached"],
            data["projects"],
        ]
    )
    for scope in ("per_consultant", "per_commune"):
        for b in data[scope]:
            writer.writerow(
                [
                    scope.removeprefix("per_"),
                    b["key"],
                    b["targets"],
                    b["planned"],
                    b["visited"],
                    b["reached"],
                    b["projects"],
                ]
            )
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="progress-{campaign_id}.csv"'},
    )


# --- the consultants --------------------------------------------------------------------


@router.get(
    "/me/visits",
    response_model=s.MyVisitsPage,
    response_model_exclude_none=True,
    tags=["consultants"],
    summary="My visits for a day or a week, in agenda order (consultant; crisis cell; admin)",
)
async def get_my_visits(
    principal: Consultant,
    session: Session,
    svc: Service,
    day: Annotated[date | None, Query(alias="from", description="default: today")] = None,
    days: Annotated[int, Query(ge=1, le=31, description="1: today; 7: a week")] = 1,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    done: Annotated[bool, Query(description="include completed visits")] = False,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    start = day or svc.clock.today()
    items, next_cursor = await views.my_visits(
        session,
        principal.subject,
        start=start,
        end=start + timedelta(days=days - 1),
        limit=limit,
        cursor=cursor,
        include_done=done,
    )
    page: dict[str, Any] = {"items": [_compact(i) for i in items]}
    if next_cursor:
        page["next_cursor"] = next_cursor
    # Serialized once: the same bytes give the ETag and the body.
    body = json.dumps(page, separators=(",", ":"), sort_keys=True, default=str).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)


def _compact(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def _answers(body: s.SurveyIn, visit_id: uuid.UUID) -> SurveyAnswers:
    return SurveyAnswers(
        questionnaire_version=body.questionnaire_version,
        headcount=body.headcount,
        projects=[
            ProjectLead(
                # Without a client id, the n-th project of a visit keeps one id across
                # resubmissions: the same survey resent is the same projects.
                lead_id=p.lead_id or uuid.uuid5(visit_id, f"lead-{n}"),
                **p.model_dump(exclude={"lead_id"}),
            )
            for n, p in enumerate(body.projects)
        ],
        red_flags=[RedFlagItem(**f.model_dump()) for f in body.red_flags],
        contact_name=body.contact_name,
        contact_phone=body.contact_phone,
        comments=body.comments,
    )


def _outcome_action(
    svc: Campaigns, visit_id: uuid.UUID, body: s.OutcomeIn, principal: Principal
) -> Action:
    async def action(uow: CampaignsUnitOfWork) -> tuple[int, Any]:
        recorded = await commands.record_outcome(
            uow,
            commands.OutcomeReport(
                visit_id=visit_id,
                outcome=Outcome(body.outcome),
                reason=body.reason,
                visited_on=body.visited_on or svc.clock.today(),
            ),
            principal,
        )
        return 200, {
            "visit_id": visit_id,
            "status": "completed",
            "outcome": body.outcome,
            "recorded": recorded,
        }

    return action


def _survey_action(
    svc: Campaigns, visit_id: uuid.UUID, body: s.SurveyIn, principal: Principal
) -> Action:
    async def action(uow: CampaignsUnitOfWork) -> tuple[int, Any]:
        survey = await commands.submit_survey(
            uow, visit_id, _answers(body, visit_id), principal, svc.clock
        )
        return 201, {
            "survey_id": survey.id,
            "visit_id": visit_id,
            "revision": survey.revision,
            "projects": len(survey.answers.projects),
            "lead_ids": [p.lead_id for p in survey.answers.projects],
            "red_flags": len(survey.answers.red_flags),
        }

    return action


@router.post(
    "/visits/{visit_id}/outcome",
    response_model=s.OutcomeOut,
    tags=["consultants"],
    summary="Record a visit's outcome (the assigned consultant; crisis cell; admin)",
)
async def post_outcome(
    visit_id: uuid.UUID,
    body: s.OutcomeIn,
    request: Request,
    principal: Consultant,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, body),
        _outcome_action(svc, visit_id, body, principal),
    )


@router.post(
    "/visits/{visit_id}/survey",
    response_model=s.SurveyOut,
    status_code=201,
    tags=["consultants"],
    summary="Submit (or resubmit) the survey of a reached firm (assigned consultant; admin)",
)
async def post_survey(
    visit_id: uuid.UUID,
    body: s.SurveyIn,
    request: Request,
    principal: Consultant,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    return await run_command(
        svc,
        principal,
        key,
        fingerprint(request, body),
        _survey_action(svc, visit_id, body, principal),
    )


@router.post(
    "/sync",
    response_model=s.SyncOut,
    tags=["consultants"],
    summary="Upload reports made offline; answered item by item (consultant; admin)",
)
async def post_sync(body: s.SyncIn, principal: Consultant, svc: Service) -> s.SyncOut:
    results: list[s.SyncResult] = []
    for item in body.items:
        if item.type == "outcome":
            assert item.outcome is not None
            action = _outcome_action(svc, item.visit_id, item.outcome, principal)
            payload: Any = item.outcome
        else:
            assert item.survey is not None
            action = _survey_action(svc, item.visit_id, item.survey, principal)
            payload = item.survey
        print_ = idempotency.request_hash(
            "SYNC", f"/visits/{item.visit_id}/{item.type}", jsonable_encoder(payload)
        )
        try:
            response = await run_command(svc, principal, f"sync:{item.client_id}", print_, action)
        except DomainError as exc:
            results.append(
                s.SyncResult(
                    client_id=item.client_id,
                    status=_sync_status(exc),
                    http_status=exc.status_code,
                    detail=exc.message,
                )
            )
            continue
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        results.append(
            s.SyncResult(
                client_id=item.client_id,
                status="duplicate" if replayed else "accepted",
                http_status=response.status_code,
                result=json.loads(bytes(response.body)),
            )
        )
    counts = {
        st: sum(1 for r in results if r.status == st)
        for st in ("accepted", "duplicate", "conflict")
    }
    return s.SyncOut(
        accepted=counts["accepted"],
        duplicates=counts["duplicate"],
        conflicts=counts["conflict"],
        rejected=sum(1 for r in results if r.status in ("rejected", "not_found")),
        results=results,
    )


def _sync_status(exc: DomainError) -> Any:
    if exc.status_code == 409:
        return "conflict"
    if exc.status_code == 404:
        return "not_found"
    return "rejected"


@router.get(
    "/questionnaire",
    tags=["consultants"],
    summary="The current survey questionnaire: its version and JSON Schema (any consultant)",
)
async def get_questionnaire(_: Consultant) -> dict[str, Any]:
    return {"version": s.QUESTIONNAIRE_VERSION, "schema": s.SurveyIn.model_json_schema()}


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
    app.add_middleware(GZipMiddleware, minimum_size=800)
    return app
