"""Composition root of the web pages' service: settings → auth, the API relay, the OIDC
client → the app. No database, no Kafka: everything it shows comes from the public APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.web.adapters.oidc import OidcClient
from services.web.adapters.upstream import Upstreams
from services.web.entrypoints import http
from services.web.settings import WebSettings
from shared.auth import AuthConfig

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
#: installed by `make setup` (npm ci, from package-lock.json)
DSFR_DIR = HERE / "node_modules" / "@gouvfr" / "dsfr" / "dist"


def bootstrap(settings: WebSettings | None = None) -> http.WebState:
    settings = settings or WebSettings()
    oidc = None
    if settings.oidc_issuer_url:
        secret = settings.oidc_client_secret
        oidc = OidcClient(
            settings.oidc_issuer_url,
            settings.oidc_client_id,
            secret.get_secret_value() if secret else None,
        )
    return http.WebState(
        settings=settings,
        auth=AuthConfig.from_settings(settings),
        upstreams=Upstreams(settings.upstreams(), settings.upstream_timeout_s),
        oidc=oidc,
    )


def create_app(state: http.WebState, *, static_dir: Path = STATIC_DIR) -> FastAPI:
    from shared.http import install_common, warm_up
    from shared.metrics import ServiceMetrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await warm_up(app)
        _ = state.upstreams.client  # its TLS context takes tens of ms to build: not on a click
        yield
        await state.upstreams.close()

    app = FastAPI(
        title="Rebond — pages web",
        version="1.0.0",
        description=(
            "The crisis cell's dashboard, the consultants' field app and the funders' desk,"
            " in French, fed only by the four public APIs (relayed under /api/<api>/)."
        ),
        lifespan=lifespan,
    )
    app.state.web = state
    app.state.auth = state.auth
    install_common(app, metrics=ServiceMetrics("web"))
    http.install(app)
    app.include_router(http.router)
    dsfr = Path(state.settings.dsfr_dir) if state.settings.dsfr_dir else DSFR_DIR
    http.mount_pages(app, static_dir, dsfr)
    return app
