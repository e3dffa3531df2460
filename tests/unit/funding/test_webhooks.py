"""Webhook subscriptions' rules: which URLs, the signature (checked here the way a
receiver would, with the standard library only), the backoff; and the feed's SSE lines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import pytest

from services.funding.adapters.orm import FunderFeedEntryRow
from services.funding.domain.webhooks import (
    InvalidWebhookUrl,
    retry_delay_s,
    secret_of,
    sign,
    validate_url,
)
from services.funding.service_layer.feed import FeedScope, sse_message
from shared.auth import Principal, Role


@pytest.mark.parametrize(
    "url",
    [
        "ftp://funder.example/hook",
        "file:///etc/passwd",
        "https:///no-host",
        "https://user:pw@funder.example/hook",
        "https://funder.example:99999/hook",
        "javascript:alert(1)",
    ],
)
def test_a_webhook_url_must_be_http_with_a_host_and_no_credentials(url: str) -> None:
    with pytest.raises(InvalidWebhookUrl):
        validate_url(url, allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
    ],
)
def test_loopback_and_private_addresses_only_in_development_and_test(url: str) -> None:
    assert validate_url(url, allow_loopback=True) == url
    with pytest.raises(InvalidWebhookUrl):
        validate_url(url, allow_loopback=False)


def test_a_public_https_url_is_accepted() -> None:
    url = "https://aides.hautsdefrance.example/rebond/webhook?x=1"
    assert validate_url(url, allow_loopback=False) == url


def test_the_signature_is_what_a_standard_webhooks_receiver_computes() -> None:
    key = bytes(range(32))
    secret = secret_of(key)
    body = b'{"specversion":"1.0","id":"e1"}'
    header = sign(secret, "e1", 1_700_000_000, body)

    # The receiver's side: decode the secret after `whsec_`, HMAC id.timestamp.body.
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(raw, b"e1.1700000000." + body, hashlib.sha256).digest()
    version, _, signature = header.partition(",")
    assert version == "v1"
    assert hmac.compare_digest(base64.b64decode(signature), expected)
    assert sign(secret, "e1", 1_700_000_001, body) != header


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    delays = [retry_delay_s(n, base_s=5, max_s=3600) for n in range(1, 12)]
    assert delays[:4] == [5, 10, 20, 40]
    assert delays[-1] == 3600
    assert delays == sorted(delays)


def test_the_feed_scope_follows_the_role_not_only_the_claim() -> None:
    funder = Principal("f", frozenset({Role.FUNDER}), regions=frozenset({"32"}))
    admin = Principal("a", frozenset({Role.ADMIN}))
    cell = Principal("c", frozenset({Role.CRISIS_CELL}), regions=frozenset({"32"}))
    assert FeedScope.of(funder).regions == frozenset({"32"})
    assert FeedScope.of(admin).regions is None
    assert FeedScope.of(cell).empty


def test_an_sse_message_is_one_event_with_its_sequence_type_and_cloud_event() -> None:
    entry = FunderFeedEntryRow(
        seq=7,
        event_id=uuid.uuid4(),
        event_type="rebond.funding.award_refused.v1",
        source="funding",
        subject="p-1",
        time=datetime(2023, 6, 15, 9, tzinfo=UTC),
        project_id=uuid.uuid4(),
        region="32",
        payload=json.dumps({"reason": "two\nlines"}),
    )
    text = sse_message(entry)
    lines = text.split("\n")
    assert lines[0] == "id: 7"
    assert lines[1] == "event: rebond.funding.award_refused.v1"
    assert lines[2].startswith("data: ") and text.endswith("\n\n") and len(lines) == 5
    ce = json.loads(lines[2].removeprefix("data: "))
    assert ce["feedseq"] == 7 and ce["id"] == str(entry.event_id)
    assert ce["data"] == {"reason": "two\nlines"}
    assert ce["time"] == "2023-06-15T09:00:00+00:00"
