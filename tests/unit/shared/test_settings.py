"""Service settings: no default environment (fail closed), refusing development secrets
outside an explicit development, the token rules, the prefixed variable winning over the
deployment-wide one, the default database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.site_registry.settings import SiteRegistrySettings
from shared import localrun
from shared.settings import DEV_JWT_SECRET, SHARED_ENV

pytestmark = pytest.mark.unit

STRONG_SECRET = "x" * 40
PG_URL = "postgresql+asyncpg://rebond@db.invalid/site_registry"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the process environment: start each test from none of ours but an
    explicit development (as `make run` sets it); the tests of the unset environment
    remove it."""
    for name in list(os.environ):
        if name.upper().startswith("SITE_REGISTRY_") or name in SHARED_ENV.values():
            monkeypatch.delenv(name)
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")
    yield


def test_an_explicit_development_accepts_the_development_secret() -> None:
    settings = SiteRegistrySettings()

    assert settings.environment == "development"
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert settings.http_port == 8001


# --- fail closed: no environment is not development -----------------------------------


def test_without_an_environment_the_development_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REBOND_ENVIRONMENT")

    with pytest.raises(ValidationError) as excinfo:
        SiteRegistrySettings()

    message = str(excinfo.value)
    assert "no environment is set, so the development JWT secret is refused" in message
    assert "REBOND_ENVIRONMENT=development" in message
    assert "REBOND_JWT_SECRET" in message


def test_without_an_environment_a_short_secret_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REBOND_ENVIRONMENT")

    with pytest.raises(ValidationError, match="at least 32 characters"):
        SiteRegistrySettings(jwt_secret="dev")  # type: ignore[arg-type]


def test_without_an_environment_a_real_secret_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REBOND_ENVIRONMENT")
    monkeypatch.setenv("REBOND_JWT_SECRET", STRONG_SECRET)

    settings = SiteRegistrySettings()

    assert settings.environment is None
    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET


def test_the_service_own_environment_variable_counts_as_explicit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REBOND_ENVIRONMENT")
    monkeypatch.setenv("SITE_REGISTRY_ENVIRONMENT", "development")

    assert SiteRegistrySettings().environment == "development"


def test_without_an_environment_a_running_make_run_is_not_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    localrun.write(
        tmp_path,
        localrun.LocalRun(
            pid=os.getpid(),
            pid_start=localrun.process_start(os.getpid()),
            bootstrap_servers="127.0.0.1:40404",
            data_dir=str(tmp_path),
            topic_prefix="local.",
        ),
    )
    monkeypatch.setenv(localrun.DATA_DIR_VAR, str(tmp_path))
    assert SiteRegistrySettings().kafka_bootstrap_servers == "127.0.0.1:40404"  # development

    monkeypatch.delenv("REBOND_ENVIRONMENT")
    monkeypatch.setenv("REBOND_JWT_SECRET", STRONG_SECRET)

    assert SiteRegistrySettings().kafka_bootstrap_servers == "127.0.0.1:9092"


# --- token rules ------------------------------------------------------------------------


def test_token_rules_default_to_12_hours_60_seconds_and_the_rebond_issuer() -> None:
    settings = SiteRegistrySettings()

    assert settings.jwt_max_lifetime_s == 12 * 3600
    assert settings.jwt_leeway_s == 60
    assert settings.jwt_issuer == "rebond"


def test_token_rules_come_from_the_deployment_wide_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBOND_JWT_ISSUER", "https://idp.example/realms/rebond")
    monkeypatch.setenv("REBOND_JWT_MAX_LIFETIME_S", "3600")
    monkeypatch.setenv("REBOND_JWT_LEEWAY_S", "10")

    settings = SiteRegistrySettings()

    assert settings.jwt_issuer == "https://idp.example/realms/rebond"
    assert (settings.jwt_max_lifetime_s, settings.jwt_leeway_s) == (3600, 10)


@pytest.mark.parametrize(
    "values", [{"jwt_leeway_s": 301}, {"jwt_leeway_s": -1}, {"jwt_max_lifetime_s": 0}]
)
def test_clock_skew_and_lifetime_are_bounded(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        SiteRegistrySettings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("environment", ["test", "production"])
def test_development_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        SiteRegistrySettings(environment=environment)

    message = str(excinfo.value)
    assert f"the development JWT secret is refused in {environment!r}" in message
    assert "REBOND_JWT_SECRET" in message


def test_development_secret_is_refused_when_the_environment_comes_from_the_shared_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="development JWT secret is refused"):
        SiteRegistrySettings()


@pytest.mark.parametrize("environment", ["test", "production"])
def test_short_secret_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        SiteRegistrySettings(environment=environment, jwt_secret="s3cret-but-short")


@pytest.mark.parametrize("environment", ["test", "production"])
def test_long_secret_is_accepted_outside_development(environment: str) -> None:
    settings = SiteRegistrySettings(
        environment=environment, jwt_secret=STRONG_SECRET, database_url=PG_URL
    )

    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET


def test_short_secret_is_accepted_in_development() -> None:
    settings = SiteRegistrySettings(environment="development", jwt_secret="dev")

    assert settings.jwt_secret.get_secret_value() == "dev"


def test_secret_does_not_appear_in_the_settings_repr() -> None:
    settings = SiteRegistrySettings(
        environment="production", jwt_secret=STRONG_SECRET, database_url=PG_URL
    )

    assert STRONG_SECRET not in repr(settings)
    assert STRONG_SECRET not in str(settings.model_dump())


def test_prefixed_variable_wins_over_the_shared_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared-broker:9092")
    monkeypatch.setenv("SITE_REGISTRY_KAFKA_BOOTSTRAP_SERVERS", "own-broker:9092")

    assert SiteRegistrySettings().kafka_bootstrap_servers == "own-broker:9092"


def test_shared_variable_is_used_when_the_prefixed_one_is_absent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared-broker:9092")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "tenant1.")

    settings = SiteRegistrySettings()

    assert settings.kafka_bootstrap_servers == "shared-broker:9092"
    assert settings.kafka_topic_prefix == "tenant1."


def test_shared_secret_variable_satisfies_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "production")
    monkeypatch.setenv("SITE_REGISTRY_DATABASE_URL", PG_URL)
    monkeypatch.setenv("REBOND_JWT_SECRET", STRONG_SECRET)

    settings = SiteRegistrySettings()

    assert settings.environment == "production"
    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET


def test_explicit_argument_wins_over_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "shared-broker:9092")
    monkeypatch.setenv("SITE_REGISTRY_KAFKA_BOOTSTRAP_SERVERS", "own-broker:9092")

    settings = SiteRegistrySettings(kafka_bootstrap_servers="arg-broker:9092")

    assert settings.kafka_bootstrap_servers == "arg-broker:9092"


def test_database_defaults_to_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    settings = SiteRegistrySettings(data_dir=str(tmp_path))

    assert settings.database_url == ""
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/site_registry.db"


def test_default_data_dir_is_the_local_run_folder() -> None:
    assert SiteRegistrySettings().resolved_database_url() == (
        "sqlite+aiosqlite:///.run/site_registry.db"
    )


def test_explicit_database_url_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://rebond@db:5432/site_registry"
    monkeypatch.setenv("SITE_REGISTRY_DATABASE_URL", url)

    assert SiteRegistrySettings().resolved_database_url() == url


def test_client_id_defaults_to_the_service_name() -> None:
    assert SiteRegistrySettings().client_id() == "rebond-site_registry"
    assert SiteRegistrySettings(kafka_client_id="custom").client_id() == "custom"


def test_production_refuses_the_embedded_sqlite_default() -> None:
    with pytest.raises(ValidationError, match="explicit database URL"):
        SiteRegistrySettings(environment="production", jwt_secret=STRONG_SECRET)


def test_replication_factor_can_be_given_once_for_the_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")

    assert SiteRegistrySettings().kafka_replication_factor == 3


# --- the deployments take the secret from outside and never run as development --------

ROOT = Path(__file__).resolve().parents[3]


def test_compose_stack_is_not_development_and_requires_the_secret_from_the_environment() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    settings = [line.strip() for line in compose.splitlines() if "REBOND_" in line]

    assert "REBOND_ENVIRONMENT: production" in settings
    assert not any("development" in line for line in settings if "ENVIRONMENT:" in line)
    (secret,) = [line for line in settings if line.startswith("REBOND_JWT_SECRET:")]
    # `${VAR:?message}`: compose refuses to start when the variable is unset or empty.
    assert secret.startswith("REBOND_JWT_SECRET: ${REBOND_JWT_SECRET:?"), secret
    assert DEV_JWT_SECRET not in compose


def test_kubernetes_services_are_production_with_the_secret_from_a_secret() -> None:
    manifests = {p.name: p.read_text() for p in (ROOT / "deploy/k8s").glob("*.yaml")}
    services = ["site-registry", "campaigns", "detection", "funding"]

    for name in services:
        text = manifests[f"{name}.yaml"]
        config, secret = text.split("kind: Secret", 1)
        assert "REBOND_ENVIRONMENT: production" in config, name
        assert "REBOND_JWT_SECRET" not in config, name  # never in the ConfigMap
        assert "REBOND_JWT_SECRET: CHANGE-ME" in secret, name  # a placeholder to replace
        assert f"secretRef:\n                name: {name}-secrets" in text, name
        assert "optional: true" not in text, name  # a missing Secret stops the pod
    assert not any("development" in t for t in manifests.values())


def test_the_kubernetes_placeholder_secret_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "production")
    monkeypatch.setenv("REBOND_JWT_SECRET", "CHANGE-ME")

    with pytest.raises(ValidationError, match="at least 32 characters"):
        SiteRegistrySettings(database_url=PG_URL)
