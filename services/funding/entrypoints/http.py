"""The funding API: the catalogue (admins and funders), projects' matches and financing
plans (crisis cell, funders for consented projects), funders' applications and decisions,
and the AsyncAPI document of every topic."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from services.funding.bootstrap import Funding
from services.funding.entrypoints import schemas as s
from services.funding.service_layer import commands, feed, views, webhooks
from services.funding.service_layer.matching import Matcher
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared.auth import Allow, Principal, Role
from shared.clock import Clock
from shared.command_bus import CommandBus, command_bus
from shared.errors import DomainError
from shared.events.asyncapi import asyncapi_document
from shared.runtime import ClockDep, SessionDep, service_app

Anyone = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.FUNDER, Role.CONSULTANT))]
Funder = Annotated[Principal, Depends(Allow(Role.FUNDER))]
CrisisOrFunder = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.FUNDER))]
Admin = Annotated[Principal, Depends(Allow())]
Bus = Annotated[CommandBus[FundingUnitOfWork], Depends(command_bus)]
Session = SessionDep


async def _matcher(request: Request) -> Matcher:
    matcher: Matcher = request.app.state.runtime.matcher
    return matcher


Matching = Annotated[Matcher, Depends(_matcher)]

router = APIRouter()


@router.get(
    "/schemes",
    response_model=list[s.SchemeOut],
    tags=["catalogue"],
    summary="The catalogue of funding schemes (any authenticated role)",
)
async def list_schemes(
    _: Anyone, session: Session, funder: str | None = None, scale: str | None = None
) -> list[s.SchemeOut]:
    return await views.schemes(session, funder=funder, scale=scale)


@router.get(
    "/schemes/{scheme_id}",
    response_model=s.StoredSchemeOut,
    tags=["catalogue"],
    summary="One scheme (any role)",
)
async def get_scheme(scheme_id: str, _: Anyone, session: Session) -> s.StoredSchemeOut:
    return await views.scheme(session, scheme_id)


@router.put(
    "/schemes/{scheme_id}",
    response_model=s.SavedSchemeOut,
    tags=["catalogue"],
    summary="Create or update a scheme; every project is re-matched (admin; its funders)",
)
async def put_scheme(
    scheme_id: str, body: s.SchemeIn, principal: Funder, bus: Bus, matcher: Matching
) -> JSONResponse:
    if body.id != scheme_id:
        raise DomainError(f"the body's id {body.id!r} differs from the path's {scheme_id!r}")
    return await bus(
        principal,
        lambda uow: commands.save_scheme(uow, body.to_scheme(), principal, matcher),
        answer=lambda saved: s.SavedSchemeOut.saved(saved.scheme, saved.changed),
        body=body,
    )


@router.post(
    "/schemes/import/aides-territoires",
    response_model=s.ImportOut,
    tags=["catalogue"],
    summary="Import schemes from an Aides-territoires API JSON document (admin)",
)
async def import_aides_territoires(
    principal: Admin, bus: Bus, matcher: Matching, document: Annotated[dict[str, Any], Body()]
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.import_aides_territoires(uow, document, matcher),
        answer=lambda report: s.ImportOut(
            schemes=report.schemes, changed=report.changed, problems=list(report.problems)
        ),
        body=document,
    )


@router.put(
    "/calls/{call_id}",
    response_model=s.SavedCallOut,
    tags=["catalogue"],
    summary="Create or update a call with its selection rounds (admin; the scheme's funders)",
)
async def put_call(call_id: str, body: s.CallIn, principal: Funder, bus: Bus) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.save_call(uow, body.to_call(call_id), principal),
        answer=s.SavedCallOut.of,
        body=body,
    )


@router.get(
    "/calls",
    response_model=list[s.CallOut],
    tags=["catalogue"],
    summary="Calls and their selection rounds (any role)",
)
async def list_calls(_: Anyone, session: Session) -> list[s.CallOut]:
    return await views.calls(session)


@router.post(
    "/calls/{call_id}/results",
    response_model=s.SelectionRoundOut,
    tags=["catalogue"],
    summary="Record a selection round, e.g. 18 of 50 selected, per territory (the funders)",
)
async def post_round_result(
    call_id: str, body: s.RoundResultIn, principal: Funder, bus: Bus
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.record_round(uow, body.to_result(call_id), principal),
        answer=s.SelectionRoundOut.of,
        body=body,
    )


@router.get(
    "/projects/{project_id}/matches",
    response_model=s.MatchesOut,
    tags=["matching"],
    summary="Eligible schemes ranked; why the others do not fit, on request (crisis cell; funders)",
    description=(
        "The eligible schemes as matching stored them, best first, every criterion with its"
        " reason (`limit`: the first ones only; `eligible_total` counts them all), and how"
        " many schemes do not fit (`rejected_total`). Why they do not fit is computed only"
        " when asked, `rejected=true`: near misses first, at most `rejected_limit`, among"
        " `funder`'s schemes or the one `scheme_id` when given; `rejected` is null"
        " otherwise."
    ),
)
async def get_matches(
    project_id: uuid.UUID,
    principal: CrisisOrFunder,
    session: Session,
    matcher: Matching,
    limit: Annotated[
        int | None, Query(ge=1, description="at most this many eligible schemes, best first")
    ] = None,
    rejected: Annotated[
        bool, Query(description="also explain the schemes that do not fit (computed now)")
    ] = False,
    funder: Annotated[
        str | None, Query(description="with `rejected`: only the schemes this funder finances")
    ] = None,
    scheme_id: Annotated[
        str | None, Query(description="with `rejected`: only this scheme (why it does not fit)")
    ] = None,
    rejected_limit: Annotated[
        int, Query(ge=1, le=1000, description="with `rejected`: at most this many")
    ] = views.REJECTED_SHOWN,
) -> s.MatchesOut:
    return await views.matches(
        session,
        project_id,
        principal,
        matcher,
        limit=limit,
        rejected=rejected,
        funder=funder,
        scheme_id=scheme_id,
        rejected_limit=rejected_limit,
    )


@router.get(
    "/projects/{project_id}/applications",
    response_model=list[s.ApplicationOut],
    tags=["funders"],
    summary="A project's applications and decisions, oldest first (crisis cell; funders)",
)
async def get_project_applications(
    project_id: uuid.UUID, principal: CrisisOrFunder, session: Session
) -> list[s.ApplicationOut]:
    return await views.project_applications(session, project_id, principal)


@router.get(
    "/projects/{project_id}/plan",
    response_model=s.PlanOut,
    tags=["matching"],
    summary="The proposed financing plan, within the aid-intensity cap (crisis cell; funders)",
)
async def get_plan(project_id: uuid.UUID, principal: CrisisOrFunder, session: Session) -> s.PlanOut:
    return await views.plan(session, project_id, principal)


@router.get(
    "/funder/projects",
    response_model=list[s.FunderProjectOut],
    tags=["funders"],
    summary="Consented projects of my regions matched to my schemes (funder; admin)",
)
async def get_funder_projects(principal: Funder, session: Session) -> list[s.FunderProjectOut]:
    return await views.funder_projects(session, principal)


#: where a feed reader resumes: after this sequence number (0: from the start)
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=feed.MAX_SEQUENCE,
        description="resume after this sequence number (`feedseq`, the SSE id); 0 or none:"
        " from the start",
    ),
]
EVENT_STREAM = "text/event-stream"
CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"


class CloudEventsBatch(JSONResponse):
    media_type = CLOUDEVENTS_BATCH


@router.get(
    "/funder/feed",
    tags=["funders"],
    summary="The funder topic's events of my regions as a resumable SSE stream (funder; admin)",
    description=(
        "Server-sent events, one per event of the funder topic in the caller's scope (the"
        " consented projects of its regions; admin: all): `id` the feed's sequence"
        " number, `event` the CloudEvents type, `data` the CloudEvent in structured JSON"
        " mode (its `id` is the Kafka event id). Resume after the last id seen with the"
        " `Last-Event-ID` header (what EventSource sends on reconnecting) or `after`; the"
        " header wins. `follow=false` sends the backlog and ends; otherwise the stream"
        " follows new events, with a comment line when idle, and ends after the service's"
        " maximum duration: reconnect."
    ),
    response_class=Response,
    responses={
        200: {
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
            "description": "`id: <seq>`, `event: <type>`, `data: <CloudEvent JSON>` per event",
        }
    },
)
async def get_funder_feed(
    request: Request,
    principal: Funder,
    after: After = None,
    follow: Annotated[
        bool, Query(description="false: send the backlog, then end the stream")
    ] = True,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=feed.MAX_SEQUENCE,
            description="the last sequence number received: the stream resumes after it",
        ),
    ] = None,
) -> StreamingResponse:
    svc: Funding = request.app.state.runtime
    scope = feed.FeedScope.of(principal)
    start = last_event_id if last_event_id is not None else (after or 0)
    ticket = svc.feed_notifier.ticket()
    # Not the request's session: FastAPI closes it after the response, i.e. after the
    # stream, and a stream must not hold a pooled connection between its reads.
    async with svc.session_factory() as session:
        first = await feed.entries_after(session, start, scope, svc.feed_stream.batch)
    stream = feed.sse_stream(
        svc.session_factory,
        scope,
        first,
        start,
        follow=follow,
        notifier=svc.feed_notifier,
        ticket=ticket,
        settings=svc.feed_stream,
    )
    return StreamingResponse(
        stream,
        media_type=f"{EVENT_STREAM}; charset=utf-8",
        # No cache, no proxy buffering (nginx): each event leaves as it is written.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/funder/feed/events",
    response_model=list[s.CloudEventOut],
    response_class=CloudEventsBatch,
    tags=["funders"],
    summary="A page of the funder topic's events of my regions, as CloudEvents (funder; admin)",
    description=(
        "The same events as `GET /funder/feed`, as a CloudEvents JSON batch: the events"
        " after sequence number `after`, oldest first, at most `limit`. The next page:"
        " `after` = the last event's `feedseq`; an empty page is the end, for now."
    ),
)
async def get_funder_feed_events(
    principal: Funder,
    session: Session,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="events per page")] = 100,
) -> Response:
    rows = await feed.entries_after(session, after or 0, feed.FeedScope.of(principal), limit)
    return CloudEventsBatch([feed.cloud_event(r) for r in rows])


@router.post(
    "/funder/webhooks",
    status_code=201,
    response_model=s.WebhookCreatedOut,
    tags=["funders"],
    summary="Subscribe a URL to the funder feed of my regions; its secret, once (funder; admin)",
    description=(
        "Each new event of the caller's feed (`GET /funder/feed`'s scope) is POSTed to"
        " `url` as a CloudEvent in structured mode (`application/cloudevents+json`), in"
        " order, signed per Standard Webhooks: `webhook-id` (the event id: deduplicate),"
        " `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of"
        " id.timestamp.body>` under the returned secret. Retried with exponential backoff"
        " until a 2xx answer: at least once. http(s) only; loopback and private addresses"
        " only in development and test."
    ),
)
async def post_webhook(
    body: s.WebhookIn, principal: Funder, bus: Bus, clock: ClockDep, request: Request
) -> JSONResponse:
    svc: Funding = request.app.state.runtime
    loopback = svc.settings.webhooks_may_target_loopback
    return await bus(
        principal,
        lambda uow: webhooks.create_webhook(
            uow, body.url, principal, allow_loopback=loopback, clock=clock
        ),
        answer=s.WebhookCreatedOut.created,
        status_code=201,
        body=body,
    )


@router.get(
    "/funder/webhooks",
    response_model=list[s.WebhookOut],
    tags=["funders"],
    summary="My webhook subscriptions and their delivery state (funder; admin: all)",
)
async def list_webhooks(principal: Funder, session: Session) -> list[s.WebhookOut]:
    return [s.WebhookOut.of(w) for w in await webhooks.webhooks_of(session, principal)]


@router.delete(
    "/funder/webhooks/{webhook_id}",
    response_model=s.WebhookOut,
    tags=["funders"],
    summary="Delete one of my webhook subscriptions (funder; admin)",
)
async def delete_webhook(webhook_id: uuid.UUID, principal: Funder, bus: Bus) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: webhooks.delete_webhook(uow, webhook_id, principal),
        answer=s.WebhookOut.of,
    )


@router.post(
    "/applications",
    status_code=201,
    response_model=s.ApplicationOut,
    tags=["funders"],
    summary="Record an application of a consented project to my scheme (funder; admin)",
)
async def post_application(
    body: s.ApplicationIn, principal: Funder, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.submit_application(
            uow,
            body.project_id,
            body.scheme_id,
            body.amount_requested_eur,
            principal,
            clock,
            filed_on=body.filed_on,
        ),
        answer=s.ApplicationOut.of,
        status_code=201,
        body=body,
    )


async def _decide(
    application_id: uuid.UUID, body: s.DecisionIn, principal: Principal, bus: Bus, clock: Clock
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.decide(uow, application_id, body.decision(), principal, clock),
        answer=s.ApplicationOut.of,
        body=body,
    )


@router.post(
    "/applications/{application_id}/award",
    response_model=s.ApplicationOut,
    tags=["funders"],
    summary="Record an award granted, with its amount (funder; admin)",
)
async def post_award(
    application_id: uuid.UUID, body: s.AwardIn, principal: Funder, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await _decide(application_id, body, principal, bus, clock)


@router.post(
    "/applications/{application_id}/refusal",
    response_model=s.ApplicationOut,
    tags=["funders"],
    summary="Record a refusal, with its reason (funder; admin)",
)
async def post_refusal(
    application_id: uuid.UUID, body: s.RefusalIn, principal: Funder, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await _decide(application_id, body, principal, bus, clock)


@router.post(
    "/applications/{application_id}/payments",
    response_model=s.ApplicationOut,
    tags=["funders"],
    summary="Record a payment of an award (funder; admin)",
)
async def post_payment(
    application_id: uuid.UUID, body: s.PaymentIn, principal: Funder, bus: Bus, clock: ClockDep
) -> JSONResponse:
    return await _decide(application_id, body, principal, bus, clock)


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

    @app.get(
        "/asyncapi.json",
        response_model=dict[str, Any],
        tags=["ops"],
        summary="AsyncAPI 3.0 document (no auth: contracts)",
    )
    async def get_asyncapi() -> dict[str, Any]:
        return document

    return app
