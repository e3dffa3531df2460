"""What every service's HTTP app shares: correlation ids, readable errors, health."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import fastapi.routing
import structlog
from asyncpg.exceptions import InterfaceError as PgInterfaceError
from asyncpg.exceptions import PostgresError
from fastapi import FastAPI, Request, status
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Allow
from shared.errors import DomainError
from shared.logging import Throttled, bind_correlation, get_logger
from shared.transient import describe, is_transient

log = get_logger(__name__)
_unavailable = Throttled(log)

CORRELATION_HEADER = "X-Correlation-ID"
RETRY_AFTER_S = 5


class NotReadyError(RuntimeError):
    """A readiness check's answer, safe to show (no host names, no credentials)."""


class CorrelationMiddleware:
    """Binds a correlation id (the request's `X-Correlation-ID`, or a new one) for the
    request's logs and outbox rows, returns it, and logs one line per request. Pure ASGI:
    Starlette's decorator middleware costs a task switch per request on the hot path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"x-correlation-id", b"").decode("latin-1")
        correlation_id = header[:200] or str(uuid.uuid4())
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            request_id=str(uuid.uuid4()), method=scope["method"], path=scope["path"]
        )
        bind_correlation(correlation_id)
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


def install_common(app: FastAPI, ready_check: Callable[[], Awaitable[None]] | None = None) -> None:
    app.add_middleware(CorrelationMiddleware)

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        log.info("command refused", code=exc.code, reason=exc.message)
        return JSONResponse(
            status_code=exc.status_code, content={"detail": exc.message, "code": exc.code}
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body"),
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": summary, "code": "invalid_input", "errors": errors},
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
            return JSONResponse(
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
                content={
                    "detail": "the service's database is unreachable for now; retry later",
                    "code": "unavailable",
                },
            )
        log.exception("unhandled error", error=describe(exc))
        return JSONResponse(
            status_code=500, content={"detail": "internal error", "code": "internal_error"}
        )

    for kind in (SQLAlchemyError, OSError, PostgresError, PgInterfaceError):
        app.add_exception_handler(kind, infrastructure_error)

    @app.get("/readyz", tags=["ops"], summary="Readiness: the database answers (no auth)")
    async def readyz() -> JSONResponse:
        if ready_check is not None:
            try:
                await ready_check()
            except Exception as exc:
                detail = str(exc) if isinstance(exc, NotReadyError) else type(exc).__name__
                return JSONResponse(
                    status_code=503,
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                    content={"status": "unavailable", "detail": detail},
                )
        return JSONResponse(content={"status": "ready"})

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


def install_role_docs(app: FastAPI) -> None:
    """Add `x-roles` (who may call it) to each operation of the OpenAPI document."""
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = base_openapi()
        for path, methods, dependant in api_routes(app):
            roles = sorted({r.value for allow in allows_of(dependant) for r in allow.roles})
            for method in methods:
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is not None and roles:
                    operation["x-roles"] = roles
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
