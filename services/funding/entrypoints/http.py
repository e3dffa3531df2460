"""The funding API: the catalogue (admins and funders), projects' matches and financing
plans (crisis cell, funders for consented projects), funders' applications and decisions,
and the AsyncAPI document of every topic."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from services.funding.adapters.orm import (
    ApplicationRow,
    CallRow,
    MatchRow,
    SchemeRow,
    SelectionRoundRow,
)
from services.funding.adapters.repository import scheme_to_dict
from services.funding.bootstrap import Funding
from services.funding.domain.catalogue import Call, Perimeter, Scheme, SelectionRound
from services.funding.domain.matching import explain_rejections
from services.funding.entrypoints import schemas as s
from services.funding.service_layer import commands
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared import idempotency
from shared.auth import Allow, Principal, Role
from shared.errors import DomainError, NotFound
from shared.events.asyncapi import asyncapi_document
from shared.runtime import SessionDep, service_app

Anyone = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.FUNDER, Role.CONSULTANT))]
Funder = Annotated[Principal, Depends(Allow(Role.FUNDER))]
CrisisOrFunder = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.FUNDER))]
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def _service(request: Request) -> Funding:
    svc: Funding = request.app.state.runtime
    return svc


Service = Annotated[Funding, Depends(_service)]


Session = SessionDep


async def _run(
    svc: Funding,
    principal: Principal,
    key: str | None,
    request: Request,
    body: Any,
    op: Callable[[FundingUnitOfWork], Awaitable[tuple[int, Any]]],
) -> JSONResponse:
    return await idempotency.run_command(
        svc.uow, principal.subject, key, idempotency.fingerprint(request, body), op
    )


def to_scheme(body: s.SchemeIn) -> Scheme:
    data = body.model_dump()
    perimeter = data.pop("perimeter")
    return Scheme(
        perimeter=Perimeter(perimeter["scale"], tuple(perimeter["codes"])),
        funders=tuple(data.pop("funders")),
        beneficiaries=frozenset(data.pop("beneficiaries")),
        naf_sections=frozenset(data.pop("naf_sections")),
        naf_prefixes=tuple(data.pop("naf_prefixes")),
        kinds=frozenset(data.pop("kinds")),
        themes=frozenset(data.pop("themes")),
        **data,
    )


router = APIRouter()


@router.get(
    "/schemes",
    tags=["catalogue"],
    summary="The catalogue of funding schemes (any authenticated role)",
)
async def list_schemes(
    _: Anyone, session: Session, funder: str | None = None, scale: str | None = None
) -> list[dict[str, Any]]:
    query = select(SchemeRow).order_by(col(SchemeRow.id))
    if scale:
        query = query.where(SchemeRow.scale == scale)
    rows = (await session.exec(query)).all()
    return [r.data for r in rows if funder is None or funder in (r.funders or [])]


@router.get("/schemes/{scheme_id}", tags=["catalogue"], summary="One scheme (any role)")
async def get_scheme(scheme_id: str, _: Anyone, session: Session) -> dict[str, Any]:
    row = await session.get(SchemeRow, scheme_id)
    if row is None:
        raise NotFound(f"no scheme {scheme_id}")
    return {**row.data, "version": row.version}


@router.put(
    "/schemes/{scheme_id}",
    tags=["catalogue"],
    summary="Create or update a scheme; every project is re-matched (admin; its funders)",
)
async def put_scheme(
    scheme_id: str,
    body: s.SchemeIn,
    request: Request,
    principal: Funder,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    if body.id != scheme_id:
        raise DomainError(f"the body's id {body.id!r} differs from the path's {scheme_id!r}")

    async def op(uow: FundingUnitOfWork) -> tuple[int, Any]:
        scheme, changed = await commands.save_scheme(uow, to_scheme(body), principal, svc.matcher)
        return 200, {**scheme_to_dict(scheme), "changed": changed}

    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/schemes/import/aides-territoires",
    tags=["catalogue"],
    summary="Import schemes from an Aides-territoires API JSON document (admin)",
)
async def import_aides_territoires(
    request: Request,
    principal: Annotated[Principal, Depends(Allow())],
    svc: Service,
    document: Annotated[dict[str, Any], Body()],
) -> dict[str, Any]:
    from services.funding.entrypoints.cli import import_document

    return await import_document(svc, document)


@router.put(
    "/calls/{call_id}",
    tags=["catalogue"],
    summary="Create or update a call with its selection rounds (admin; the scheme's funders)",
)
async def put_call(
    call_id: str, body: s.CallIn, request: Request, principal: Funder, svc: Service
) -> JSONResponse:
    call = Call(
        id=call_id,
        scheme_id=body.scheme_id,
        name=body.name,
        rounds=tuple(SelectionRound(**r.model_dump()) for r in body.rounds),
        source_url=body.source_url,
        source=body.source,
    )

    async def op(uow: FundingUnitOfWork) -> tuple[int, Any]:
        saved = await commands.save_call(uow, call, principal)
        return 200, {"id": saved.id, "scheme_id": saved.scheme_id, "rounds": len(saved.rounds)}

    return await _run(svc, principal, None, request, body, op)


@router.get("/calls", tags=["catalogue"], summary="Calls and their selection rounds (any role)")
async def list_calls(_: Anyone, session: Session) -> list[dict[str, Any]]:
    calls = (await session.exec(select(CallRow).order_by(col(CallRow.id)))).all()
    results = (await session.exec(select(SelectionRoundRow))).all()
    return [
        {
            "id": c.id,
            "scheme_id": c.scheme_id,
            "name": c.name,
            **c.data,
            "results": [r.model_dump() for r in results if r.call_id == c.id],
        }
        for c in calls
    ]


@router.post(
    "/calls/{call_id}/results",
    tags=["catalogue"],
    summary="Record a selection round, e.g. 18 of 50 selected, per territory (the funders)",
)
async def post_round_result(
    call_id: str, body: s.RoundResultIn, request: Request, principal: Funder, svc: Service
) -> JSONResponse:
    async def op(uow: FundingUnitOfWork) -> tuple[int, Any]:
        await commands.record_round(
            uow, commands.RoundResult(call_id=call_id, **body.model_dump()), principal
        )
        return 200, {"call_id": call_id, **body.model_dump(mode="json")}

    return await _run(svc, principal, None, request, body, op)


@router.get(
    "/projects/{project_id}/matches",
    tags=["matching"],
    summary="Eligible schemes ranked, and why the others do not fit (crisis cell; funders)",
)
async def get_matches(
    project_id: uuid.UUID, principal: CrisisOrFunder, svc: Service, session: Session
) -> dict[str, Any]:
    project = await commands.visible_project(session, project_id, principal)
    prof = await svc.matcher.profile_of(session, project)
    schemes = await svc.matcher.cache.schemes(session)
    rows = (
        await session.exec(
            select(MatchRow)
            .where(MatchRow.project_id == project_id)
            .where(MatchRow.eligible == True)  # noqa: E712
            .order_by(col(MatchRow.rank))
        )
    ).all()
    names = {sc.id: sc.name for sc in schemes}
    rejected = explain_rejections(prof, schemes, svc.matcher.now().date())
    stage = project.stage
    return {
        "project_id": project_id,
        "stage": stage,
        "firm_size": prof.firm_size,
        "region_code": prof.region_code,
        "eligible": [
            {
                "scheme_id": r.scheme_id,
                "scheme_name": names.get(r.scheme_id),
                "rank": r.rank,
                "score": r.score,
                "planned_amount_eur": r.planned_amount_eur,
                "criteria": r.criteria,
            }
            for r in rows
        ],
        "rejected": [
            {
                "scheme_id": m.scheme.id,
                "scheme_name": m.scheme.name,
                "criteria": [c.model_dump() for c in m.criteria],
            }
            for m in rejected[:200]
        ],
    }


@router.get(
    "/projects/{project_id}/plan",
    tags=["matching"],
    summary="The proposed financing plan, within the aid-intensity cap (crisis cell; funders)",
)
async def get_plan(
    project_id: uuid.UUID, principal: CrisisOrFunder, session: Session
) -> dict[str, Any]:
    project = await commands.visible_project(session, project_id, principal)
    return {"project_id": project_id, "stage": project.stage, "plan": project.plan}


@router.get(
    "/funder/projects",
    tags=["funders"],
    summary="Consented projects of my regions matched to my schemes (funder; admin)",
)
async def get_funder_projects(principal: Funder, session: Session) -> list[dict[str, Any]]:
    found = await commands.funder_projects(session, principal)
    return [
        {
            "project_id": p.project_id,
            "territory_id": p.territory_id,
            "firm_name": p.firm_name,
            "kind": p.kind,
            "stage": p.stage,
            "jobs_planned": p.jobs_planned,
            "capex_eur": p.capex_eur,
            "funding_need_eur": p.funding_need_eur,
            "matches": [
                {
                    "scheme_id": m.scheme_id,
                    "rank": m.rank,
                    "planned_amount_eur": m.planned_amount_eur,
                }
                for m in matches
            ],
        }
        for p, matches in found
    ]


def _application_op(
    fn: Callable[[FundingUnitOfWork], Awaitable[ApplicationRow]], code: int = 200
) -> Callable[[FundingUnitOfWork], Awaitable[tuple[int, Any]]]:
    async def op(uow: FundingUnitOfWork) -> tuple[int, Any]:
        return code, commands.application_body(await fn(uow))

    return op


@router.post(
    "/applications",
    status_code=201,
    tags=["funders"],
    summary="Record an application of a consented project to my scheme (funder; admin)",
)
async def post_application(
    body: s.ApplicationIn, request: Request, principal: Funder, svc: Service, key: IdemKey = None
) -> JSONResponse:
    op = _application_op(
        lambda uow: commands.submit_application(
            uow, body.project_id, body.scheme_id, body.amount_requested_eur, principal, svc.matcher
        ),
        201,
    )
    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/applications/{application_id}/award",
    tags=["funders"],
    summary="Record an award granted, with its amount (funder; admin)",
)
async def post_award(
    application_id: uuid.UUID,
    body: s.AwardIn,
    request: Request,
    principal: Funder,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    op = _application_op(
        lambda uow: commands.grant(
            uow, application_id, body.amount_eur, body.decided_on, principal, svc.matcher
        )
    )
    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/applications/{application_id}/refusal",
    tags=["funders"],
    summary="Record a refusal, with its reason (funder; admin)",
)
async def post_refusal(
    application_id: uuid.UUID,
    body: s.RefusalIn,
    request: Request,
    principal: Funder,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    op = _application_op(
        lambda uow: commands.refuse(
            uow, application_id, body.reason, body.decided_on, principal, svc.matcher
        )
    )
    return await _run(svc, principal, key, request, body, op)


@router.post(
    "/applications/{application_id}/payments",
    tags=["funders"],
    summary="Record a payment of an award (funder; admin)",
)
async def post_payment(
    application_id: uuid.UUID,
    body: s.PaymentIn,
    request: Request,
    principal: Funder,
    svc: Service,
    key: IdemKey = None,
) -> JSONResponse:
    op = _application_op(
        lambda uow: commands.pay(
            uow, application_id, body.amount_eur, body.paid_on, principal, svc.matcher
        )
    )
    return await _run(svc, principal, key, request, body, op)


def create_app(svc: Funding, *, run_workers: bool = True) -> FastAPI:
    app = service_app(
        svc,
        title="Rebond — funding",
        description=(
            "Funding schemes, explained matches and financing plans, funders' decisions."
            " The AsyncAPI document of every topic is at /asyncapi.json."
        ),
        router=router,
        run_workers=run_workers,
    )
    document = asyncapi_document()

    @app.get("/asyncapi.json", tags=["ops"], summary="AsyncAPI 3.0 document (no auth: contracts)")
    async def get_asyncapi() -> dict[str, Any]:
        return document

    return app
