"""Settings of the web pages' service: environment variables prefixed `WEB_`.

It owns no database and no topic: it serves the pages and relays the browser's calls to
the four public APIs, adding the session's bearer token (see docs/web.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class WebSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    service_name: ClassVar[str] = "web"
    needs_database: ClassVar[bool] = False
    http_port: int = 8000

    site_registry_url: str = Field(
        default="http://127.0.0.1:8001",
        description="the site registry's API, as this service reaches it",
    )
    campaigns_url: str = "http://127.0.0.1:8002"
    detection_url: str = "http://127.0.0.1:8003"
    funding_url: str = "http://127.0.0.1:8004"
    upstream_timeout_s: float = Field(default=30.0, gt=0)
    dsfr_dir: str | None = Field(
        default=None,
        description=(
            "the design system's dist folder; None: services/web/node_modules (make setup)."
            " The container image sets it (deploy/docker/Dockerfile)"
        ),
    )

    dev_login: bool | None = Field(
        default=None,
        description=(
            "the page that mints a token for a chosen role and scope with the shared secret;"
            " None: on in development and test without OIDC, never in production"
        ),
    )
    oidc_issuer_url: str | None = Field(
        default=None,
        description="the OpenID Connect issuer whose login the pages use (discovery document)",
    )
    oidc_client_id: str = "rebond-web"
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="None: a public client (PKCE only)"
    )
    oidc_scopes: str = "openid profile"
    public_url: str | None = Field(
        default=None,
        description="the pages' external base URL (for the OIDC redirect); None: from the request",
    )
    session_cookie_secure: bool | None = Field(
        default=None, description="None: Secure except in development and test (plain http)"
    )

    @model_validator(mode="after")
    def _login_is_decided(self) -> WebSettings:
        if self.dev_login and self.environment == "production":
            raise ValueError("WEB_DEV_LOGIN cannot be on in production: tokens come from OIDC")
        return self

    @property
    def dev_login_enabled(self) -> bool:
        if self.dev_login is not None:
            return self.dev_login
        return self.environment in ("development", "test") and not self.oidc_issuer_url

    @property
    def secure_cookies(self) -> bool:
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.environment not in ("development", "test")

    def upstreams(self) -> dict[str, str]:
        """The path segment under /api/ → the API's base URL."""
        return {
            "registry": self.site_registry_url,
            "campaigns": self.campaigns_url,
            "detection": self.detection_url,
            "funding": self.funding_url,
        }
