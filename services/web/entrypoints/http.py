"""The web pages' HTTP surface: the login (development or OIDC), the session, the relay
of the browser's calls to the public APIs (`/api/<api>/...`), and the pages themselves.

Why one small service rather than pages served by one of the four: the pages read all
four APIs, so whichever service served them would have to reach the other three; here
the browser has one origin (one cookie, one service worker scope, a strict CSP) and each
API stays as it is, reached only through its public routes (docs/web.md)."""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Body, Cookie, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.adapters import design_system
from services.web.adapters.oidc import OidcClient, OidcUnavailable
from services.web.adapters.upstream import UnknownApi, Upstreams, relayed_headers
from services.web.domain.session import (
    ROLE_LABELS,
    DevLogin,
    LoginRefused,
    Pkce,
    SessionView,
    safe_next,
)
from services.web.service_layer import login
from services.web.settings import WebSettings
from shared.auth import AuthConfig, Role
from shared.http import problem

SESSION_COOKIE = "rebond_session"
LOGIN_COOKIE = "rebond_oidc"
LOGIN_COOKIE_MAX_AGE_S = 600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: the pages' content security policy: everything from this origin, nothing inline but
#: styles (the design system's components set some), no framing
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self';"
    " manifest-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self';"
    " object-src 'none'"
)


class WebState:
    """What the routes need, built once by `bootstrap.create_app`."""

    def __init__(
        self,
        settings: WebSettings,
        auth: AuthConfig,
        upstreams: Upstreams,
        oidc: OidcClient | None,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.upstreams = upstreams
        self.oidc = oidc


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


router = APIRouter()


class DevLoginIn(BaseModel):
    role: str = Field(max_length=40)
    subject: str | None = Field(default=None, max_length=100)
    territory: str | None = Field(default=None, max_length=40)
    region: str | None = Field(default=None, max_length=10)
    org: str | None = Field(default=None, max_length=100)


def session_json(session: SessionView) -> dict[str, Any]:
    return {
        "subject": session.subject,
        "roles": list(session.roles),
        "role_labels": [ROLE_LABELS[Role(r)] for r in session.roles if r in set(Role)],
        "territories": list(session.territories),
        "regions": list(session.regions),
        "org": session.org,
        "expires_at": session.expires_at.isoformat() if session.expires_at else None,
        "home": session.home,
    }


def set_session(response: Response, settings: WebSettings, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, max_age),
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
        path="/",
    )


def token_lifetime_s(session: SessionView) -> int:
    from datetime import UTC, datetime

    if session.expires_at is None:
        return 3600
    return int((session.expires_at - datetime.now(UTC)).total_seconds())


@router.get("/", include_in_schema=False)
async def root(
    request: Request, rebond_session: Annotated[str | None, Cookie()] = None
) -> Response:
    session = login.session_of(state_of(request).auth, rebond_session)
    return RedirectResponse(session.home if session else "/connexion/", status_code=303)


@router.get("/auth/config", tags=["login"], summary="How to sign in here (no authentication)")
async def auth_config(request: Request) -> dict[str, Any]:
    settings = state_of(request).settings
    return {
        "dev_login": settings.dev_login_enabled,
        "oidc": bool(settings.oidc_issuer_url),
        "environment": settings.environment,
        "roles": [{"value": r.value, "label": ROLE_LABELS[r]} for r in Role],
    }


@router.post("/auth/dev-login", tags=["login"], summary="Development login: a role and scope")
async def dev_login(request: Request, body: Annotated[DevLoginIn, Body()]) -> JSONResponse:
    web = state_of(request)
    if not web.settings.dev_login_enabled:
        return problem(
            404,
            "not_found",
            "la connexion de développement n'est pas ouverte ici : connectez-vous par le"
            " fournisseur d'identité",
            request=request,
        )
    try:
        choice = DevLogin.parse(body.role, body.subject, body.territory, body.region, body.org)
        token = login.dev_token(web.auth, choice)
    except LoginRefused as exc:
        return problem(422, "invalid_input", str(exc), request=request)
    session = login.session_of(web.auth, token)
    assert session is not None  # just minted with the same configuration
    response = JSONResponse(session_json(session))
    set_session(response, web.settings, token, token_lifetime_s(session))
    return response


def redirect_uri(request: Request, settings: WebSettings) -> str:
    base = (
        settings.public_url.rstrip("/")
        if settings.public_url
        else str(request.base_url).rstrip("/")
    )
    return f"{base}/auth/callback"


@router.get(
    "/auth/login", tags=["login"], summary="OpenID Connect login (authorization code, PKCE)"
)
async def oidc_login(request: Request, next: str | None = None) -> Response:
    web = state_of(request)
    if web.oidc is None:
        return RedirectResponse("/connexion/", status_code=303)
    try:
        url, pkce = await login.start_oidc(
            web.oidc,
            redirect_uri=redirect_uri(request, web.settings),
            scopes=web.settings.oidc_scopes,
            next_path=safe_next(next, "/"),
        )
    except OidcUnavailable as exc:
        return login_error(f"le fournisseur d'identité est injoignable : {exc}")
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        base64.urlsafe_b64encode(json.dumps(pkce.__dict__).encode()).decode(),
        max_age=LOGIN_COOKIE_MAX_AGE_S,
        httponly=True,
        secure=web.settings.secure_cookies,
        samesite="lax",  # sent back on the issuer's top-level redirect to the callback
        path="/auth/callback",
    )
    return response


def pkce_of(cookie: str | None) -> Pkce | None:
    if not cookie:
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(cookie.encode()))
        return Pkce(**{k: str(fields[k]) for k in ("state", "nonce", "verifier", "next")})
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def login_error(message: str) -> RedirectResponse:
    return RedirectResponse(f"/connexion/?erreur={quote(message)}", status_code=303)


@router.get("/auth/callback", tags=["login"], summary="OpenID Connect callback")
async def oidc_callback(
    request: Request,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    rebond_oidc: Annotated[str | None, Cookie()] = None,
) -> Response:
    web = state_of(request)
    if web.oidc is None:
        return RedirectResponse("/connexion/", status_code=303)
    pkce = pkce_of(rebond_oidc)
    try:
        token, session = await login.finish_oidc(
            web.oidc,
            web.auth,
            pkce,
            code=code,
            state=state,
            error=error,
            redirect_uri=redirect_uri(request, web.settings),
        )
    except LoginRefused as exc:
        response = login_error(str(exc))
    else:
        target = pkce.next if pkce and pkce.next != "/" else session.home
        response = RedirectResponse(target, status_code=303)
        set_session(response, web.settings, token, token_lifetime_s(session))
    response.delete_cookie(LOGIN_COOKIE, path="/auth/callback")
    return response


@router.get("/auth/session", tags=["login"], summary="Who is signed in (401 when nobody)")
async def get_session(
    request: Request, rebond_session: Annotated[str | None, Cookie()] = None
) -> JSONResponse:
    session = login.session_of(state_of(request).auth, rebond_session)
    if session is None:
        return problem(
            401,
            "unauthorized",
            "vous n'êtes pas connecté, ou votre session a expiré",
            request=request,
        )
    return JSONResponse(session_json(session), headers={"Cache-Control": "no-store"})


@router.post("/auth/logout", tags=["login"], summary="End the session")
async def logout() -> JSONResponse:
    response = JSONResponse({"home": "/connexion/"})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


#: The APIs' operations routes, kept off the relay.
NOT_RELAYED = frozenset({"metrics", "healthz", "readyz"})


@router.api_route(
    "/api/{api}/{path:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    tags=["relay"],
    summary="The public APIs, with the session's token (registry, campaigns, detection, funding)",
)
async def relay(
    api: str,
    path: str,
    request: Request,
    rebond_session: Annotated[str | None, Cookie()] = None,
) -> Response:
    web = state_of(request)
    if path.strip("/") in NOT_RELAYED:
        # The APIs' operations routes serve the platform (probes, Prometheus) on the
        # internal network: never to the pages' visitors.
        return problem(404, "not_found", f"/{path.strip('/')} n'est pas relayé", request=request)
    accept = request.headers.get("accept", "")
    try:
        upstream = await web.upstreams.open(
            api,
            request.method,
            path,
            request.url.query.encode("latin-1"),
            request.headers,
            await request.body() if request.method in UNSAFE_METHODS else b"",
            rebond_session,
            stream="text/event-stream" in accept,
        )
    except UnknownApi:
        return problem(404, "not_found", f"aucune API nommée {api!r} ici", request=request)
    except httpx.HTTPError:
        return problem(
            503,
            "unavailable",
            f"le service {api} ne répond pas pour le moment ; réessayez dans un instant",
            request=request,
            headers={"Retry-After": "5"},
        )
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=relayed_headers(upstream),
        background=BackgroundTask(upstream.aclose),
    )


class SameOriginWrites:
    """Refuse a state-changing call that another site's page makes with our cookie: the
    browser says where a request comes from (`Sec-Fetch-Site`, `Origin`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            site = headers.get("sec-fetch-site")
            origin = headers.get("origin")
            host = headers.get("host", "")
            cross = site == "cross-site" or (
                origin is not None and origin.split("://", 1)[-1] != host
            )
            if cross:
                body = json.dumps(
                    {
                        "type": "about:blank",
                        "title": "Forbidden",
                        "status": 403,
                        "code": "forbidden",
                        "detail": "requête refusée : elle vient d'un autre site",
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [(b"content-type", b"application/problem+json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if path.startswith("/dsfr/"):  # versioned by the lock file
                    headers.append((b"cache-control", b"public, max-age=86400"))
                elif not path.startswith("/api/"):
                    headers.append((b"cache-control", b"no-cache"))  # revalidate (ETag)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def serve_asset(asset: design_system.Asset) -> Callable[[Request], Response]:
    """One file of the design system's bundle from memory: gzipped once at start-up (not
    on every request, as the middleware would), revalidated by its ETag."""

    def bundle(request: Request) -> Response:
        headers = {"ETag": asset.etag, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return bundle


def mount_pages(app: FastAPI, static_dir: Path, dsfr_dir: Path) -> None:
    # Not in every system's MIME table: the field app's manifest must say what it is.
    mimetypes.add_type("application/manifest+json", ".webmanifest")
    if not dsfr_dir.is_dir():
        raise RuntimeError(
            f"the design system is not installed ({dsfr_dir} is missing): run `make setup`"
        )
    for name, asset in design_system.build(dsfr_dir).items():
        app.add_api_route(
            f"/dsfr/{name}", serve_asset(asset), methods=["GET", "HEAD"], include_in_schema=False
        )
    # Everything else of the package (fonts, icons, favicon, the print styles) as files.
    app.mount("/dsfr", StaticFiles(directory=dsfr_dir), name="dsfr")
    app.mount("/", StaticFiles(directory=static_dir, html=True), name="pages")


def install(app: FastAPI) -> None:
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(SameOriginWrites)
