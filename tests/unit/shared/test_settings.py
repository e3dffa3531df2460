"""Service settings: refusing development secrets outside development, the prefixed
variable winning over the deployment-wide one, the default database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.site_registry.settings import SiteRegistrySettings
from shared.settings import DEV_JWT_SECRET, SHARED_ENV

pytestmark = pytest.mark.unit

STRONG_SECRET = "x" * 40
PG_URL = "postgresql+asyncpg://rebond@db.invalid/site_registry"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings read the process environment: start each test from none of ours."""
    for name in list(os.environ):
        if name.upper().startswith("SITE_REGISTRY_") or name in SHARED_ENV.values():
            monkeypatch.delenv(name)
    yield


def test_defaults_are_development_with_the_development_secret() -> None:
    settings = SiteRegistrySettings()

    assert settings.environment == "development"
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert settings.http_port == 8001


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
