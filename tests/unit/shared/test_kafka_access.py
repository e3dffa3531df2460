"""How clients reach the cluster: plaintext on a private network, TLS and SASL otherwise."""

from __future__ import annotations

import ssl

import pytest

from services.site_registry.settings import SiteRegistrySettings
from shared.messaging.kafka import KafkaAccess, access_of

pytestmark = pytest.mark.unit


def test_plaintext_needs_only_the_address() -> None:
    assert access_of("kafka:9092").client_kwargs() == {
        "bootstrap_servers": "kafka:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_carries_credentials_and_a_tls_context() -> None:
    access = KafkaAccess(
        "broker.example:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="rebond",
        sasl_password="s3cret",
    )
    kwargs = access.client_kwargs()

    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("rebond", "s3cret")
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(access)


def test_settings_build_the_access_from_deployment_wide_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker.example:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "rebond")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")  # no default environment

    access = SiteRegistrySettings().kafka_access()

    assert access.security_protocol == "SASL_PLAINTEXT"
    assert access.client_kwargs()["sasl_plain_password"] == "s3cret"
    assert "ssl_context" not in access.client_kwargs()
