"""What every service's HTTP app shares: correlation ids, readable errors, health."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http import HTTPStatus
from typing import Annotated, Any

import fastapi.routing
import structlog
from asyncpg.exceptions import InterfaceError as PgInterfaceError
from asyncpg.exceptions import PostgresError
from fastapi import FastAPI, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel
from pydantic import Field as PydanticField
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Allow
from shared.command_bus import refuse_control_characters
from shared.errors import DomainError
from shared.logging import Throttled, bind_correlation, get_logger
from shared.metrics import METRICS_PATH, HttpMetricsMiddleware, ServiceMetrics
from shared.transient import describe, is_transient

log = get_logger(__name__)
_unavailable = Throttled(log)

CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_S = 5

# --- input bounds: what a request may hold, whatever the service --------------------------
#: A thousand billion euros: no real project, aid or envelope reaches it, and every column
#: (BIGINT) and sum holds it.
MAX_EUR = 10**12
#: Jobs, headcounts, applications: a million is beyond any one site, call or project.
MAX_COUNT = 1_000_000
#: The days a request may name: wide enough for any real record, far enough from the
#: calendar's ends (year 1 and 9999) that adding a campaign's span cannot overflow.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2100, 12, 31)
DAY_WINDOW = f"between {EARLIEST_DAY} and {LATEST_DAY}"
Day = Annotated[
    date,
    PydanticField(ge=EARLIEST_DAY, le=LATEST_DAY, description=DAY_WINDOW),
]
Instant = Annotated[
    AwareDatetime,
    PydanticField(
        ge=datetime(1970, 1, 1, tzinfo=UTC),
        le=datetime(2100, 12, 31, tzinfo=UTC),
        description=DAY_WINDOW,
    ),
]


@dataclass(frozen=True)
class ReadinessPart:
    """One part of the readiness answer (the database, the broker, a worker): whether it
    lets the service do its work, and a detail safe to show without authentication (a
    state or an error's type: no host names, no credentials)."""

    ok: bool
    detail: str = "ok"


#: What a service checks for `/readyz`: part name → its state, every part checked.
ReadyCheck = Callable[[], Awaitable[Mapping[str, ReadinessPart]]]


#: A client's correlation id is kept only in this shape (or as a UUID): short, no `@`, no
#: spaces — an e-mail address or free text typed there would otherwise travel in every
#: event's `ce_correlationid` header and every log line.
_SAFE_CORRELATION = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def safe_correlation_id(header: str) -> str | None:
    """The client's correlation id if its shape is safe to copy into logs and events."""
    try:
        return str(uuid.UUID(header))
    except ValueError:
        pass
    return header if _SAFE_CORRELATION.fullmatch(header) else None


class CorrelationMiddleware:
    """Binds a correlation id (the request's `X-Correlation-ID` when its shape is safe, else
    a new one, the refusal logged) for the request's logs and outbox rows, returns it, and
    logs one line per request. Pure ASGI: Starlette's decorator middleware costs a task
    switch per request on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"x-correlation-id", b"").decode("latin-1")
        client_id = safe_correlation_id(header) if header else None
        correlation_id = client_id or str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=str(uuid.uuid4()), method=scope["method"], path=scope["path"]
        )
        bind_correlation(correlation_id)
        if header and client_id is None:
            # Its length only: the refused value may be the very personal data kept out.
            log.warning("correlation id replaced: unsafe shape", length=len(header))
        started = time.perf_counter()
        status_code = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-correlation-id", correlation_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request", status=status_code, ms=round((time.perf_counter() - started) * 1000, 1)
            )


#: The largest request body a service reads (1 MiB), and the larger allowance of the
#: paths that take whole documents (path prefix → bytes).
DEFAULT_BODY_LIMIT = 1024 * 1024
IMPORT_BODY_LIMITS: Mapping[str, int] = {"/schemes/import/": 32 * 1024 * 1024}


class _TooLarge(StarletteHTTPException):
    """Raised into the application's body read: FastAPI lets HTTP exceptions through its
    body parsing, and the handler of `install_common` answers them as problem details."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than this endpoint's limit ({limit} bytes)"


class BodyLimitMiddleware:
    """Refuses a request body over its path's limit with 413 (problem details), before the
    application reads it when `Content-Length` says so, else as soon as the streamed
    (chunked) body passes the limit. Pure ASGI, like `CorrelationMiddleware`."""

    def __init__(
        self,
        app: ASGIApp,
        default: int = DEFAULT_BODY_LIMIT,
        per_prefix: Mapping[str, int] = IMPORT_BODY_LIMITS,
    ) -> None:
        self.app = app
        self.default = default
        self.per_prefix = dict(per_prefix)

    def limit_of(self, path: str) -> int:
        for prefix, limit in self.per_prefix.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server refuses a malformed length itself
            if too_large:
                await self._refuse(scope, receive, send, limit)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if started:  # an answer already begun cannot become a 413
                raise
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        log.info("request body refused: too large", limit=limit)
        response = problem(413, "too_large", _too_large(limit), instance=scope["path"])
        await response(scope, receive, send)


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for dep in dependant.dependencies:
        yield from _query_names(dep)


def _declared_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameters a route declares, computed once per route and kept on it (a
    walk of its dependency tree, on every request before), for the dependant it has."""
    dependant = route.dependant
    kept: tuple[Dependant, frozenset[str]] | None = getattr(route, "_rebond_query_names", None)
    if kept is None or kept[0] is not dependant:
        kept = (dependant, frozenset(_query_names(dependant)))
        route._rebond_query_names = kept  # type: ignore[attr-defined]
    return kept[1]


async def refuse_control_characters_in_parameters(request: Request) -> None:
    """Refuse (422) a path or query parameter holding a control character, as the command
    bus does for bodies: a read passes its parameters to the database, and PostgreSQL
    cannot even compare a string holding NUL (a 500, found by the schema fuzzer). Only
    the route's declared parameters: nothing reads the others. An app-wide dependency."""
    route = request.scope.get("route")
    declared = _declared_query_names(route) if isinstance(route, APIRoute) else frozenset()
    for name, value in request.path_params.items():
        refuse_control_characters(value, name)
    for name, value in request.query_params.multi_items():
        if name in declared:
            refuse_control_characters(value, name)


class InvalidField(BaseModel):
    field: str = PydanticField(description="dotted path of the field in the request")
    message: str


class Problem(BaseModel):
    """Every error of every service (RFC 9457 problem details, `application/problem+json`).

    `detail` is one readable sentence; `code` is stable, for programs; a 422 lists every
    invalid field in `errors`."""

    type: str = PydanticField(description="`urn:rebond:problem:<code>`")
    title: str = PydanticField(description="the HTTP status's phrase")
    status: int
    detail: str
    code: str
    instance: str | None = PydanticField(None, description="the request's path")
    errors: list[InvalidField] | None = None


PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem(
    status_code: int,
    code: str,
    detail: str,
    *,
    request: Request | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:rebond:problem:{code}",
        "title": _phrase(status_code),
        "status": status_code,
        "detail": detail,
        "code": code,
        "instance": request.url.path if request is not None else instance,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(
        status_code=status_code, content=body, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


# RFC 9110's names, where Python's http module still has RFC 7231's.
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def _phrase(status_code: int) -> str:
    if status_code in _PHRASES:
        return _PHRASES[status_code]
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
}


WARM_UP_PATH = "/.rebond-warm-up"


async def warm_up(app: ASGIApp) -> float:
    """Pay before the first user does what the first request would: the middleware stack,
    every route's matching state (FastAPI builds it lazily, route by route, on the first
    request that reaches it: a path no route takes reaches them all) and the mappers'
    configuration. Measured on this 2-core machine: the first request of a fresh service
    took 150-350 ms more than the next one. Returns the seconds it took."""
    import httpx
    from sqlalchemy.orm import configure_mappers

    started = time.perf_counter()
    configure_mappers()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://warm-up") as client:
        await client.get(WARM_UP_PATH)
    return time.perf_counter() - started


def install_common(
    app: FastAPI,
    ready_check: ReadyCheck | None = None,
    body_limits: Mapping[str, int] = IMPORT_BODY_LIMITS,
    metrics: ServiceMetrics | None = None,
) -> None:
    """Errors as problem details, health routes (`/healthz`, `/readyz`), `/metrics`, role
    docs; the middleware: correlation ids, a body limit (1 MiB; `body_limits`: path
    prefix → larger limit), and the HTTP metrics."""
    # The last added runs first: the correlation id is bound before a 413 is logged, and
    # the metrics see every answer, the 413s and the 500s included.
    app.add_middleware(BodyLimitMiddleware, per_prefix=body_limits)
    app.add_middleware(CorrelationMiddleware)
    if metrics is not None:
        app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
        app.state.metrics = metrics

        @app.get(
            METRICS_PATH,
            tags=["ops"],
            summary="Prometheus metrics (no authentication: counts and states, no data)",
            response_class=Response,
        )
        async def prometheus_metrics() -> Response:
            body, media_type = await metrics.exposition()
            return Response(body, media_type=media_type)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        log.info("command refused", code=exc.code, reason=exc.message)
        return problem(exc.status_code, exc.code, exc.message, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
        return problem(
            exc.status_code, code, detail, request=request, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body"),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "invalid_input",
            summary,
            request=request,
            errors=errors,
        )

    @app.get("/healthz", tags=["ops"], summary="Liveness (no authentication)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def infrastructure_error(request: Request, exc: Exception) -> JSONResponse:
        # A dependency down is not the caller's fault nor a bug: 503 and when to retry,
        # logged once per interval rather than once per request.
        if is_transient(exc):
            _unavailable.failure(
                "dependency", "request refused: a dependency is down", error=describe(exc)
            )
            return problem(
                503,
                "unavailable",
                "the service's database is unreachable for now; retry later",
                request=request,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        log.exception("unhandled error", error=describe(exc))
        return problem(500, "internal_error", "internal error", request=request)

    for kind in (SQLAlchemyError, OSError, PostgresError, PgInterfaceError):
        app.add_exception_handler(kind, infrastructure_error)

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: the database, the broker and the workers, part by part (no auth)",
    )
    async def readyz() -> JSONResponse:
        try:
            parts = dict(await ready_check()) if ready_check is not None else {}
        except Exception as exc:  # a check that failed to run is a failing check
            parts = {"checks": ReadinessPart(False, f"check failed ({type(exc).__name__})")}
        failing = [f"{name}: {part.detail}" for name, part in parts.items() if not part.ok]
        content: dict[str, Any] = {
            "status": "unavailable" if failing else "ready",
            "checks": {
                name: {"status": "ok" if part.ok else "failing", "detail": part.detail}
                for name, part in parts.items()
            },
        }
        if not failing:
            return JSONResponse(content=content)
        content["detail"] = "; ".join(failing)
        return JSONResponse(
            status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}, content=content
        )

    install_role_docs(app)


def api_routes(app: FastAPI) -> list[tuple[str, set[str], Dependant]]:
    """(path, methods, dependant) of every API route, routers included.

    Recent FastAPI versions include routers lazily: `app.routes` then holds one entry per
    included router, and the routes are reachable through `iter_route_contexts`.
    """
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    candidates: list[Any] = list(app.routes if iter_contexts is None else iter_contexts(app.routes))
    out: list[tuple[str, set[str], Dependant]] = []
    for candidate in candidates:
        if isinstance(getattr(candidate, "original_route", candidate), APIRoute):
            out.append((candidate.path, set(candidate.methods), candidate.dependant))
    return out


def allows_of(dependant: Dependant) -> Iterator[Allow]:
    """Every `Allow` a route depends on, however deep."""
    for dep in dependant.dependencies:
        if isinstance(dep.call, Allow):
            yield dep.call
        yield from allows_of(dep)


_ERROR_WHY = {
    400: "a malformed request (a body that cannot be read as JSON, a page cursor this API"
    " did not hand out)",
    401: "no token, or one that is expired, badly signed or for another audience",
    403: "the token's role or scope does not cover this",
    404: "no such resource (named in the path or the body) in the caller's scope",
    409: "the request conflicts with the resource's current state",
    413: "the request body is larger than this endpoint accepts",
    422: "invalid input (every invalid field in `errors`) or a command the domain refuses",
    503: "a dependency (the database) is unreachable for now: retry after `Retry-After`",
}


def _errors_of(path: str, method: str, operation: dict[str, Any], guarded: bool) -> list[int]:
    codes = [503]
    params = {p.get("name") for p in operation.get("parameters", [])}
    if guarded:
        codes += [401, 403]
    if "{" in path or "requestBody" in operation:
        codes.append(404)
    if "cursor" in params or "requestBody" in operation:
        codes.append(400)
    if method in ("post", "put", "patch", "delete"):
        codes.append(409)
    if "requestBody" in operation:
        codes.append(413)
    if params or "requestBody" in operation or method != "get":
        codes.append(422)
    return sorted(codes)


def install_role_docs(app: FastAPI) -> None:
    """Complete each operation of the OpenAPI document: `x-roles` (who may call it) and
    the error responses it can give, all as `Problem` (FastAPI documents only its own
    422 shape, which is not the one the handlers above send)."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem_schema.pop("$defs", {}))
        components["Problem"] = problem_schema
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for path, methods, dependant in api_routes(app):
            roles = sorted({r.value for allow in allows_of(dependant) for r in allow.roles})
            for method in methods:
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is None:
                    continue
                if roles:
                    operation["x-roles"] = roles
                responses = operation.setdefault("responses", {})
                # An error a route declares itself (`responses=`, for a status the rules
                # below cannot guess) is a problem too, with the route's description.
                declared = {c: r for c, r in responses.items() if c[0] in "45"}
                for code, response in declared.items():
                    responses[code] = {
                        "description": response.get("description", _phrase(int(code))),
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                    }
                for code in _errors_of(path, method.lower(), operation, bool(roles)):
                    responses[str(code)] = {
                        "description": _ERROR_WHY[code],
                        "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}},
                    }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
