"""The CloudEvents envelope: encoding to Kafka headers/value and decoding back, or
refusing with a reason precise enough to act on from the dead-letter topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events.campaigns import ProjectLead, SurveySubmitted
from shared.events.catalogue import event_registry
from shared.events.envelope import (
    CONTENT_TYPE,
    H_CAUSATION,
    H_CONTENT_TYPE,
    H_CORRELATION,
    H_ID,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TYPE,
    REQUIRED_HEADERS,
    Envelope,
    EventPayload,
    MalformedEvent,
    UnknownEventType,
    decode,
)
from shared.events.site_registry import ClosureAnnounced, SiteClosed

pytestmark = pytest.mark.unit

REGISTRY = event_registry()
SIRET = "12345678900011"
OTHER_SIRET = "98765432100022"

Headers = list[tuple[str, bytes]]


def site_closed(**overrides: Any) -> SiteClosed:
    data: dict[str, Any] = {
        "site_id": SIRET,
        "siren": SIRET[:9],
        "territory_ids": ["ti-3205"],
        "closed_on": date(2025, 3, 31),
        "version": 3,
    }
    data.update(overrides)
    return SiteClosed(**data)


def closure_announced() -> ClosureAnnounced:
    return ClosureAnnounced(
        shock_id=str(uuid.uuid4()),
        site_id=SIRET,
        siren=SIRET[:9],
        site_name="Fonderie du Nord",
        naf_code="24.51Z",
        commune_insee="59350",
        territory_ids=["ti-3205", "ti-3206"],
        announced_on=date(2025, 2, 1),
        planned_closure_on=date(2025, 9, 30),
        jobs_lost=240,
        declared_at=datetime(2025, 2, 1, 9, 30, tzinfo=UTC),
        version=2,
    )


def replace_header(headers: Sequence[tuple[str, bytes]], name: str, value: bytes) -> Headers:
    assert any(k == name for k, _ in headers), f"{name} not in the headers to replace"
    return [(k, value if k == name else v) for k, v in headers]


def drop_headers(headers: Sequence[tuple[str, bytes]], *names: str) -> Headers:
    return [(k, v) for k, v in headers if k not in names]


def decode_reason(headers: Sequence[tuple[str, bytes]] | None, value: bytes | None) -> str:
    with pytest.raises(MalformedEvent) as excinfo:
        decode(headers, value, REGISTRY)
    return str(excinfo.value)


# --- round trip ------------------------------------------------------------------------


def test_round_trip_keeps_payload_id_type_subject_and_causal_ids() -> None:
    payload = closure_announced()
    sent = Envelope.new(
        payload, source="site_registry", correlation_id="corr-42", causation_id="cause-7"
    )

    received = decode(sent.headers(), sent.value(), REGISTRY)

    assert received.payload == payload
    assert isinstance(received.payload, ClosureAnnounced)
    assert received.id == sent.id
    assert received.type == "rebond.site_registry.closure_announced.v1"
    assert received.subject == SIRET
    assert received.source == "site_registry"
    assert received.time == sent.time
    assert received.correlation_id == "corr-42"
    assert received.causation_id == "cause-7"
    assert received == sent


def test_new_envelope_starts_its_own_causal_chain() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    received = decode(sent.headers(), sent.value(), REGISTRY)

    assert sent.correlation_id == str(sent.id)
    assert received.correlation_id == str(sent.id)
    assert sent.causation_id is None
    assert received.causation_id is None
    assert H_CAUSATION not in dict(sent.headers())


def test_subject_is_the_payload_key_field() -> None:
    sent = Envelope.new(site_closed(site_id=OTHER_SIRET), source="site_registry")

    assert sent.subject == OTHER_SIRET
    assert dict(sent.headers())[H_SUBJECT] == OTHER_SIRET.encode()


def test_value_is_plain_json_of_the_payload_without_envelope_attributes() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    body = json.loads(sent.value())

    assert body == site_closed().model_dump(mode="json")
    assert not any(key.startswith("ce_") for key in body)


def test_header_names_are_cloudevents_prefixed_except_content_type() -> None:
    sent = Envelope.new(site_closed(), source="site_registry", causation_id="c")
    headers = dict(sent.headers())

    assert headers[H_CONTENT_TYPE] == CONTENT_TYPE.encode()
    assert set(REQUIRED_HEADERS) | {H_CORRELATION, H_CAUSATION} <= set(headers)
    for name in headers:
        assert name == H_CONTENT_TYPE or name.startswith("ce_"), name


def test_unknown_headers_are_kept_as_extra_headers() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")
    headers = [*sent.headers(), ("traceparent", b"00-abc-def-01")]

    received = decode(headers, sent.value(), REGISTRY)

    assert received.extra_headers == {"traceparent": "00-abc-def-01"}


# --- refusals ----------------------------------------------------------------------------


def test_decode_names_every_missing_header() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(drop_headers(sent.headers(), H_ID, H_TIME), sent.value())

    assert "missing CloudEvents headers" in reason
    assert H_ID in reason
    assert H_TIME in reason
    assert H_TYPE not in reason


def test_decode_treats_an_empty_required_header_as_missing() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(replace_header(sent.headers(), H_SUBJECT, b""), sent.value())

    assert "missing" in reason
    assert H_SUBJECT in reason


def test_decode_refuses_no_headers_at_all() -> None:
    reason = decode_reason(None, site_closed().model_dump_json().encode())

    for name in REQUIRED_HEADERS:
        assert name in reason


def test_decode_refuses_an_unsupported_spec_version() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(replace_header(sent.headers(), H_SPECVERSION, b"0.3"), sent.value())

    assert "unsupported ce_specversion '0.3'" in reason


def test_decode_refuses_an_unknown_event_type() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")
    headers = replace_header(sent.headers(), H_TYPE, b"rebond.site_registry.site_exploded.v1")

    reason = decode_reason(headers, sent.value())

    assert reason == "unknown event type 'rebond.site_registry.site_exploded.v1'"


def test_decode_refuses_an_id_that_is_not_a_uuid() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(replace_header(sent.headers(), H_ID, b"event-1"), sent.value())

    assert reason == "ce_id 'event-1' is not a UUID"


def test_decode_refuses_a_time_that_is_not_iso_8601() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(replace_header(sent.headers(), H_TIME, b"yesterday"), sent.value())

    assert reason == "ce_time 'yesterday' is not an ISO 8601 timestamp"


def test_decode_refuses_a_header_that_is_not_utf8() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(replace_header(sent.headers(), H_SUBJECT, b"\xff\xfe"), sent.value())

    assert reason == f"header {H_SUBJECT!r} is not UTF-8"


def test_decode_refuses_a_value_that_is_not_json() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(sent.headers(), b"{site_id: 1")

    assert reason.startswith("value is not JSON")


def test_decode_refuses_a_value_that_is_not_utf8() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(sent.headers(), b'{"site_id": "\x80"}')

    assert reason.startswith("value is not JSON")


def test_decode_refuses_a_tombstone() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")

    reason = decode_reason(sent.headers(), None)

    assert "no value" in reason


def test_decode_names_the_field_that_fails_validation() -> None:
    sent = Envelope.new(closure_announced(), source="site_registry")
    body = json.loads(sent.value())
    body["jobs_lost"] = 0
    del body["siren"]

    reason = decode_reason(sent.headers(), json.dumps(body).encode())

    assert reason.startswith("payload does not match rebond.site_registry.closure_announced.v1")
    assert "jobs_lost" in reason
    assert "siren" in reason
    assert "site_id" not in reason


def test_decode_ignores_fields_a_newer_release_added_at_every_level() -> None:
    from shared.events.examples import EXAMPLES

    sent = Envelope.new(EXAMPLES[SurveySubmitted], source="campaigns")
    body = json.loads(sent.value())
    body["weather_at_visit"] = "sunny"  # a new optional field of a later release
    body["projects"][0]["hectares_wanted"] = 2.5  # and one in a nested part

    received = decode(sent.headers(), json.dumps(body).encode(), event_registry())

    assert received.payload == EXAMPLES[SurveySubmitted]
    assert not hasattr(received.payload, "weather_at_visit")


def test_a_writer_still_cannot_send_a_field_the_contract_does_not_know() -> None:
    from shared.events.examples import EXAMPLES

    lead = EXAMPLES[SurveySubmitted].projects[0].model_dump()
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ProjectLead(**lead, contact_email="someone@example.org")


def test_an_unknown_event_type_is_told_apart_from_other_malformed_messages() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")
    headers = replace_header(sent.headers(), H_TYPE, b"rebond.site_registry.site_split.v1")

    with pytest.raises(UnknownEventType) as caught:
        decode(headers, sent.value(), event_registry())
    assert caught.value.event_type == "rebond.site_registry.site_split.v1"


def test_decode_refuses_a_subject_that_is_not_the_key_field() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")
    headers = replace_header(sent.headers(), H_SUBJECT, OTHER_SIRET.encode())

    reason = decode_reason(headers, sent.value())

    assert reason == (f"ce_subject '{OTHER_SIRET}' does not match payload site_id '{SIRET}'")


def test_decode_refuses_a_valid_payload_of_another_event_type() -> None:
    sent = Envelope.new(site_closed(), source="site_registry")
    headers = replace_header(sent.headers(), H_TYPE, ClosureAnnounced.event_type.encode())

    reason = decode_reason(headers, sent.value())

    assert reason.startswith(f"payload does not match {ClosureAnnounced.event_type}")


# --- payload models --------------------------------------------------------------------


def _model_name(model: type[EventPayload]) -> str:
    return model.__name__


PAYLOAD_MODELS: list[type[EventPayload]] = list(REGISTRY.values())


@pytest.mark.parametrize("model", PAYLOAD_MODELS, ids=_model_name)
def test_payload_models_are_frozen_and_forbid_extra_fields(model: type[EventPayload]) -> None:
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"


def test_assigning_a_payload_field_raises() -> None:
    payload = site_closed()

    with pytest.raises(ValidationError, match="frozen"):
        payload.version = 4  # type: ignore[misc]

    assert payload.version == 3


def test_building_a_payload_with_an_unknown_field_raises() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        SiteClosed(
            site_id=SIRET,
            siren=SIRET[:9],
            territory_ids=[],
            closed_on=None,
            version=1,
            note="not part of the contract",  # type: ignore[call-arg]
        )
