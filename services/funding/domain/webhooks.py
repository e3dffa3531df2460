"""Funders' webhook subscriptions: which URLs may receive the feed, how a delivery is
signed (the Standard Webhooks convention), and when a failed one is tried again."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from shared.errors import DomainError

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
URL_MAX = 2000
#: host names that always mean this machine
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class InvalidWebhookUrl(DomainError):
    code = "invalid_webhook_url"


@dataclass
class Webhook:
    """A funder's subscription: the feed's events in `regions` (None: all, an admin's)
    are POSTed to `url`, in feed order, each until it is acknowledged (2xx)."""

    id: uuid.UUID
    owner: str
    url: str
    secret: str
    regions: frozenset[str] | None
    created_at: datetime
    #: the feed's last sequence number delivered (or not for this subscription)
    delivered_seq: int
    #: failed attempts at delivering the next event
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None


def validate_url(url: str, *, allow_loopback: bool) -> str:
    """The URL, if a webhook may be sent there: http(s), a host, no credentials; and, unless
    `allow_loopback` (development and test only), not this machine nor a private,
    link-local or reserved address given as an IP literal."""
    if len(url) > URL_MAX:
        raise InvalidWebhookUrl(f"the URL is longer than {URL_MAX} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl("a webhook URL must be http:// or https://")
    host = (parts.hostname or "").lower()
    if not host:
        raise InvalidWebhookUrl("a webhook URL must name a host")
    if parts.username or parts.password:
        raise InvalidWebhookUrl("a webhook URL may not carry credentials: signatures authenticate")
    try:
        _ = parts.port
    except ValueError as exc:
        raise InvalidWebhookUrl("the webhook URL's port is not a port number") from exc
    if not allow_loopback and _internal(host):
        raise InvalidWebhookUrl(
            f"{host} is this machine or a private network: refused outside development and test"
        )
    return url


def _internal(host: str) -> bool:
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: `v1,<base64 HMAC-SHA256>` of
    `<webhook-id>.<webhook-timestamp>.<body>` under the secret's bytes (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def secret_of(key: bytes) -> str:
    """A secret as the subscriber is given it: `whsec_<base64>`."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def retry_delay_s(attempts: int, *, base_s: float, max_s: float) -> float:
    """How long to wait after the `attempts`-th failure in a row: doubling from `base_s`,
    at most `max_s`. A delivery is never given up (at least once): a receiver down for a
    day gets its events, in order, when it comes back."""
    return float(min(max_s, base_s * 2 ** max(0, attempts - 1)))
