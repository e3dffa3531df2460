"""Typed settings, one environment prefix per service.

Each service subclasses `ServiceSettings` with its own `env_prefix` (`SITE_REGISTRY_`,
`CAMPAIGNS_`…). A few values are the same for the whole deployment and may also be given
once, unprefixed: `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPIC_PREFIX`, `REBOND_ENVIRONMENT`,
`REBOND_JWT_SECRET` (and the token rules `REBOND_JWT_ISSUER`, `REBOND_JWT_AUDIENCE`,
`REBOND_JWT_MAX_LIFETIME_S`, `REBOND_JWT_LEEWAY_S`), the OpenID Connect issuer's
`REBOND_OIDC_*` (docs/security.md), `REBOND_DATA_DIR`. Lists and maps
(`REBOND_OIDC_ALGORITHMS`, `REBOND_OIDC_ROLE_MAP`) are JSON, as pydantic-settings reads
them for the prefixed variables. The prefixed variable wins over the shared one.

Precedence, highest first:

1. arguments given to the constructor (tests);
2. the service's own variables (`SITE_REGISTRY_KAFKA_BOOTSTRAP_SERVERS`…);
3. the deployment-wide variables above;
4. in `development` only (named explicitly), a running `make run`
   (`shared/localrun.py`): while it runs, `<data dir>/local-run.json` gives
   `kafka_bootstrap_servers` (with its `kafka_topic_prefix`, unless a variable names
   the broker) and `data_dir`, so the commands run beside it (`import-sirene`,
   `rebuild-ledger`, `redrive`) find its broker and SQLite files by themselves. The
   file is looked for in the data dir the variables name, else in the checkout's
   `.run/`, and counts only while its writer is alive;
5. the defaults below (`127.0.0.1:9092`, `.run`).

The environment has no default: a service started without one (`REBOND_ENVIRONMENT` or
the service's own `<PREFIX>ENVIRONMENT`) refuses the public development JWT secret and any
secret shorter than 32 characters, as in `test` and `production`. `make run` sets
`development` explicitly; the tests set `test` (docs/security.md).

Nothing is read at import time: settings are built in `bootstrap` and injected. Building
them reads the environment and, in development, that one file — nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared import localrun
from shared.messaging.kafka import KafkaAccess

DEV_JWT_SECRET = "rebond-development-secret-change-me"

Environment = Literal["development", "test", "production"]
OidcAlgorithm = Literal["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
RoleName = Literal["crisis_cell", "consultant", "funder", "admin"]


def _default_oidc_algorithms() -> list[OidcAlgorithm]:
    return ["RS256", "ES256"]


# field name → unprefixed variable shared by the whole deployment
SHARED_ENV: dict[str, str] = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "kafka_topic_prefix": "KAFKA_TOPIC_PREFIX",
    "kafka_replication_factor": "KAFKA_REPLICATION_FACTOR",
    "kafka_security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "kafka_sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "kafka_sasl_username": "KAFKA_SASL_USERNAME",
    "kafka_sasl_password": "KAFKA_SASL_PASSWORD",
    "kafka_ssl_cafile": "KAFKA_SSL_CAFILE",
    "environment": "REBOND_ENVIRONMENT",
    "jwt_secret": "REBOND_JWT_SECRET",
    "jwt_issuer": "REBOND_JWT_ISSUER",
    "jwt_audience": "REBOND_JWT_AUDIENCE",
    "jwt_max_lifetime_s": "REBOND_JWT_MAX_LIFETIME_S",
    "jwt_leeway_s": "REBOND_JWT_LEEWAY_S",
    "oidc_jwks_url": "REBOND_OIDC_JWKS_URL",
    "oidc_algorithms": "REBOND_OIDC_ALGORITHMS",
    "oidc_roles_claim": "REBOND_OIDC_ROLES_CLAIM",
    "oidc_territories_claim": "REBOND_OIDC_TERRITORIES_CLAIM",
    "oidc_regions_claim": "REBOND_OIDC_REGIONS_CLAIM",
    "oidc_org_claim": "REBOND_OIDC_ORG_CLAIM",
    "oidc_role_map": "REBOND_OIDC_ROLE_MAP",
    "oidc_jwks_cache_s": "REBOND_OIDC_JWKS_CACHE_S",
    "oidc_jwks_refetch_interval_s": "REBOND_OIDC_JWKS_REFETCH_INTERVAL_S",
    "oidc_jwks_timeout_s": "REBOND_OIDC_JWKS_TIMEOUT_S",
    "log_json": "REBOND_LOG_JSON",
    "data_dir": "REBOND_DATA_DIR",
}


class _SharedEnvSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = SHARED_ENV.get(field_name)
        if var is None or var not in os.environ:
            return None, field_name, False
        value: Any = os.environ[var]
        if self.field_is_complex(field):  # lists and maps: JSON, like the prefixed ones
            value = self.decode_complex_value(field_name, field, value)
        return value, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            value, key, _ = self.get_field_value(self.settings_cls.model_fields[name], name)
            if value is not None:
                values[key] = value
        return values


# --- a running `make run` (lowest priority; see the module docstring) -----------------


class _LocalRunSource(PydanticBaseSettingsSource):
    """The broker and data dir of a running `make run`, for what no other source gives.

    `explicit` are the higher-priority sources (constructor, environment): what they give
    is never overridden, and their `environment` and `data_dir` say whether and where to
    look. Outside development nothing is read: a stray file must never redirect a
    deployed service or a test."""

    def __init__(
        self, settings_cls: type[BaseSettings], *explicit: PydanticBaseSettingsSource
    ) -> None:
        super().__init__(settings_cls)
        self._explicit = explicit

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is decided in __call__

    def __call__(self) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for source in reversed(self._explicit):  # lowest first: the highest wins
            given.update({k: v for k, v in source().items() if v is not None})
        if str(given.get("environment")) != "development":  # named explicitly, never assumed
            return {}
        folder = given.get("data_dir")
        run = localrun.read(str(folder) if folder else None)
        if run is None:
            return {}
        values: dict[str, Any] = {}
        if "kafka_bootstrap_servers" not in given:
            values["kafka_bootstrap_servers"] = run.bootstrap_servers
            # The prefix belongs to that broker's topics: not taken for another broker.
            if "kafka_topic_prefix" not in given:
                values["kafka_topic_prefix"] = run.topic_prefix
        default_dir = self.settings_cls.model_fields["data_dir"].default
        if "data_dir" not in given and Path(run.data_dir).resolve() != Path(default_dir).resolve():
            values["data_dir"] = run.data_dir  # `.run` of the checkout, seen from elsewhere
        return values


# --- end of the `make run` source ------------------------------------------------------


class ServiceSettings(BaseSettings):
    # Services override the prefix; the base (used by deployment-wide tools such as the
    # token minter) reads REBOND_* so it never picks up generic names like JWT_SECRET.
    model_config = SettingsConfigDict(env_prefix="REBOND_", extra="ignore", env_file=None)

    service_name: ClassVar[str] = "rebond"
    #: a tool that touches no database (the token minter) is exempt from the URL check
    needs_database: ClassVar[bool] = True

    environment: Environment | None = Field(
        default=None,
        description="no default: unset, the development secret is refused (fail closed)",
    )
    database_url: str = Field(
        default="", description="SQLAlchemy async URL; empty means the embedded SQLite file"
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = ""
    kafka_client_id: str = ""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    kafka_replication_factor: int = Field(
        default=1, ge=1, description="for topics a service creates itself (3 in production)"
    )
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_audience: str = "rebond"
    jwt_issuer: str = Field(default="rebond", description="the `iss` every token must carry")
    jwt_max_lifetime_s: float = Field(
        default=12 * 3600, gt=0, description="a token whose exp - iat exceeds this is refused"
    )
    jwt_leeway_s: float = Field(
        default=60, ge=0, le=300, description="clock skew tolerated on exp, iat and nbf"
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        description="an OpenID Connect issuer's JWKS URL; None: HS256 tokens (development)",
    )
    oidc_algorithms: list[OidcAlgorithm] = Field(
        default_factory=_default_oidc_algorithms,
        min_length=1,
        description="the header algorithms accepted from the issuer (asymmetric only)",
    )
    oidc_roles_claim: str = Field(
        default="roles", description="dotted path, e.g. realm_access.roles for Keycloak"
    )
    oidc_territories_claim: str = "territories"
    oidc_regions_claim: str = "regions"
    oidc_org_claim: str = "org"
    oidc_role_map: dict[str, RoleName] = Field(
        default_factory=lambda: {r: r for r in ("crisis_cell", "consultant", "funder", "admin")},
        description="IdP role name → Rebond role; an IdP role not in the map is ignored",
    )
    oidc_jwks_cache_s: float = Field(
        default=300, gt=0, description="the JWKS is fetched again after this long"
    )
    oidc_jwks_refetch_interval_s: float = Field(
        default=30, gt=0, description="an unknown kid refetches the JWKS at most this often"
    )
    oidc_jwks_timeout_s: float = Field(default=5, gt=0, le=30)
    log_level: str = "INFO"
    log_json: bool | None = Field(default=None, description="None: JSON unless on a TTY")
    data_dir: str = ".run"
    relay_batch_size: int = Field(default=500, ge=1, le=10_000)
    relay_poll_interval_s: float = Field(default=0.5, gt=0)
    relay_lease_ttl_s: float = Field(
        default=10.0, gt=0, description="a hung relay is replaced after this long"
    )
    outbox_retention_days: float = Field(
        default=7, gt=0, description="sent outbox rows are purged after this long"
    )
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_backoff_s: float = Field(default=0.2, ge=0)
    consumer_transient_backoff_s: float = Field(
        default=0.5, gt=0, description="first pause after an infrastructure failure"
    )
    consumer_max_transient_backoff_s: float = Field(
        default=30.0, gt=0, description="longest pause between retries during an outage"
    )
    consumer_batch_size: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description=(
            "consecutive messages of a partition applied in one database transaction (one"
            " inbox statement, one commit); 1: one transaction per message"
        ),
    )
    # Off by default: two partitions' transactions at once is what two replicas do, and
    # a site's event racing a closure shock of its territory (each on its own partition)
    # is then not serialized by anything yet (docs/architecture.md, "Consumers"). One
    # process keeps the order of its fetch.
    consumer_concurrent_partitions: bool = Field(
        default=False,
        description="a fetch's partitions processed concurrently, each one in order",
    )
    consumer_session_timeout_ms: int = Field(
        default=10_000, ge=1000, description="a silent member leaves its group after this"
    )
    consumer_max_poll_interval_ms: int = Field(
        default=300_000, ge=1000, description="a member that stops polling leaves its group"
    )
    chaos_kill_after_publish: int = Field(
        default=0,
        ge=0,
        description=(
            "fault suite only: the relay SIGKILLs its own process once the broker has"
            " committed this many batches, before marking the last one sent (0: never);"
            " refused in production"
        ),
    )
    shutdown_timeout_s: float = Field(
        default=20,
        gt=0,
        description=(
            "on SIGTERM, how long requests in flight may take before they are cancelled;"
            " the workers then get up to 6 s more: keep it 8 s or more below the pod's"
            " terminationGracePeriodSeconds (30 by default)"
        ),
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared_env = _SharedEnvSource(settings_cls)
        return (
            init_settings,
            env_settings,
            shared_env,
            dotenv_settings,
            file_secret_settings,
            _LocalRunSource(settings_cls, init_settings, env_settings, shared_env),
        )

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.environment is None and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            raise ValueError(
                "no environment is set, so the development JWT secret is refused: set"
                " REBOND_ENVIRONMENT=development for a local run (make run does), or"
                " REBOND_ENVIRONMENT=production and REBOND_JWT_SECRET for a deployment"
            )
        if self.environment != "development":
            if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
                raise ValueError(
                    f"the development JWT secret is refused in {self.environment!r}:"
                    " set REBOND_JWT_SECRET (or the service's own *_JWT_SECRET)"
                )
            if len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError("the JWT secret must be at least 32 characters")
        if self.oidc_jwks_url is not None:
            if not self.oidc_jwks_url.startswith(("https://", "http://")):
                raise ValueError("oidc_jwks_url must be an http(s) URL")
            if self.environment == "production" and not self.oidc_jwks_url.startswith("https://"):
                raise ValueError("in production the issuer's JWKS must be fetched over https")
            for name in ("roles", "territories", "regions", "org"):
                path = getattr(self, f"oidc_{name}_claim")
                if not path or any(not part for part in path.split(".")):
                    raise ValueError(f"oidc_{name}_claim must be a dotted claim path: {path!r}")
        if self.environment == "production" and self.chaos_kill_after_publish:
            raise ValueError(
                "chaos_kill_after_publish is a fault-suite setting, not for production"
            )
        if self.environment == "production" and self.needs_database and not self.database_url:
            raise ValueError(
                "production needs an explicit database URL: the embedded SQLite default"
                " would give each replica its own database"
            )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir}/{self.service_name}.db"

    def kafka_access(self) -> KafkaAccess:
        return KafkaAccess(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=(
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            ),
            ssl_cafile=self.kafka_ssl_cafile,
        )

    def client_id(self) -> str:
        return self.kafka_client_id or f"rebond-{self.service_name}"
