"""The CloudEvents-style envelope every Rebond event travels in.

Events are sent in CloudEvents' Kafka *binary* mode: the payload is the message value
(JSON), and the envelope attributes are `ce_*` headers. A consumer in any language can
route on `ce_type` without parsing the value, and the value stays a plain JSON document
that validates against the payload's JSON Schema.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

# Header names, in one place: third-party consumers rely on them (see docs/events.md).
H_SPECVERSION = "ce_specversion"
H_ID = "ce_id"
H_SOURCE = "ce_source"
H_TYPE = "ce_type"
H_TIME = "ce_time"
H_SUBJECT = "ce_subject"
H_CORRELATION = "ce_correlationid"
H_CAUSATION = "ce_causationid"
H_CONTENT_TYPE = "content-type"
REQUIRED_HEADERS = (H_SPECVERSION, H_ID, H_SOURCE, H_TYPE, H_TIME, H_SUBJECT)


#: Validation context of a reader: see `EventModel`.
READER_CONTEXT: Mapping[str, Any] = {"rebond_reader": True}


class EventModel(BaseModel):
    """Base of every event payload and of the parts they nest: **strict writers, tolerant
    readers**.

    Built in code (a producer), a model forbids unknown fields: a misspelt field fails at
    once instead of silently vanishing. Validated by a reader (`decode`: pydantic's
    `extra="ignore"`, or `READER_CONTEXT`), it ignores fields it does not know, at every
    nesting level: a consumer one release behind reads the events of the next release,
    which may add optional fields without changing the event type (the catalogue's
    compatibility rule).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_fields_when_reading(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get("rebond_reader"):
            known = _known_fields(cls)
            if not known.issuperset(data):
                return {k: v for k, v in data.items() if k in known}
        return data


# pydantic >= 2.12 takes `extra` at validation time, at every nesting level: the same
# tolerance as `READER_CONTEXT`, without a Python call per model validated.
_RUNTIME_EXTRA = "extra" in inspect.signature(BaseModel.model_validate_json).parameters

# Per model class, the names a reader keeps (fields and aliases): computed once, not for
# every message read (a rebuild reads hundreds of thousands).
_KNOWN: dict[type[BaseModel], frozenset[str]] = {}


def _known_fields(cls: type[BaseModel]) -> frozenset[str]:
    known = _KNOWN.get(cls)
    if known is None:
        fields = cls.model_fields
        known = frozenset(fields) | {f.alias for f in fields.values() if f.alias}
        _KNOWN[cls] = known
    return known


class EventPayload(EventModel):
    """Base of every event payload: frozen, versioned by type, strict when written and
    tolerant when read (see `EventModel`).

    `event_type` is the CloudEvents `type`, with the major version at the end
    (`rebond.site_registry.site_registered.v1`). A breaking change is a new class with a
    new type (`….v2`); compatible additions (new optional fields) keep the type.
    `identity` names the fields that make one business fact (a survey's revision, a
    project's version): two messages with the same identity are the same fact even under
    two event ids, and a consumer applies it once.
    """

    event_type: ClassVar[str]
    #: name of the field whose value is the Kafka key and the CloudEvents subject
    key_field: ClassVar[str]
    #: fields whose values identify the business fact (see `business_key`)
    identity: ClassVar[tuple[str, ...]] = ()

    def key(self) -> str:
        return str(getattr(self, self.key_field))

    def business_key(self) -> str | None:
        """`<event type>:<identity values>`, or None for an event without one."""
        if not self.identity:
            return None
        values = []
        for path in self.identity:
            value: Any = self
            for name in path.split("."):
                value = getattr(value, name)
            values.append(value.isoformat() if isinstance(value, datetime) else str(value))
        return f"{self.event_type}:{':'.join(values)}"


P = TypeVar("P", bound=EventPayload)


class MalformedEvent(ValueError):
    """A message that can never be processed: it goes to the dead-letter topic as is."""


class UnknownEventType(MalformedEvent):
    """A `ce_type` this reader does not know. On a topic whose owner may add types (a
    newer release), the consumer skips it rather than dead-lettering it."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


@dataclass(frozen=True)
class Envelope(Generic[P]):
    id: uuid.UUID
    source: str
    type: str
    time: datetime
    subject: str
    payload: P
    correlation_id: str | None = None
    causation_id: str | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        payload: P,
        *,
        source: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
    ) -> Envelope[P]:
        event_id = uuid.uuid4()
        return cls(
            id=event_id,
            source=source,
            type=payload.event_type,
            time=time or datetime.now(UTC),
            subject=payload.key(),
            payload=payload,
            # A causal chain starts with itself: its own id correlates what follows.
            correlation_id=correlation_id or str(event_id),
            causation_id=causation_id,
        )

    def headers(self) -> list[tuple[str, bytes]]:
        pairs = [
            (H_SPECVERSION, SPEC_VERSION),
            (H_ID, str(self.id)),
            (H_SOURCE, self.source),
            (H_TYPE, self.type),
            (H_TIME, self.time.isoformat()),
            (H_SUBJECT, self.subject),
            (H_CONTENT_TYPE, CONTENT_TYPE),
        ]
        if self.correlation_id:
            pairs.append((H_CORRELATION, self.correlation_id))
        if self.causation_id:
            pairs.append((H_CAUSATION, self.causation_id))
        return [(k, v.encode()) for k, v in pairs]

    def value(self) -> bytes:
        return encode_payload(self.payload)


def encode_payload(payload: EventPayload) -> bytes:
    return payload.model_dump_json().encode()


def headers_to_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, raw in headers or ():
        try:
            out[key] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"header {key!r} is not UTF-8") from exc
    return out


def decode(
    headers: Sequence[tuple[str, bytes]] | None,
    value: bytes | None,
    registry: Mapping[str, type[EventPayload]],
) -> Envelope[EventPayload]:
    """Rebuild an envelope from a Kafka message, or say precisely why it cannot be."""
    h = headers_to_dict(headers)
    missing = [name for name in REQUIRED_HEADERS if not h.get(name)]
    if missing:
        raise MalformedEvent(f"missing CloudEvents headers: {', '.join(missing)}")
    if h[H_SPECVERSION] != SPEC_VERSION:
        raise MalformedEvent(f"unsupported ce_specversion {h[H_SPECVERSION]!r}")
    event_type = h[H_TYPE]
    model = registry.get(event_type)
    if model is None:
        raise UnknownEventType(event_type)
    try:
        event_id = uuid.UUID(h[H_ID])
    except ValueError as exc:
        raise MalformedEvent(f"ce_id {h[H_ID]!r} is not a UUID") from exc
    try:
        time = datetime.fromisoformat(h[H_TIME])
    except ValueError as exc:
        raise MalformedEvent(f"ce_time {h[H_TIME]!r} is not an ISO 8601 timestamp") from exc
    if time.tzinfo is None:
        raise MalformedEvent(f"ce_time {h[H_TIME]!r} has no UTC offset")
    if value is None:
        raise MalformedEvent("message has no value (tombstones are not events)")
    try:
        # Parsed and validated in one pass by pydantic-core: no intermediate Python
        # objects from `json.loads`; unknown fields ignored by pydantic-core itself where
        # it can (no Python call per model), else by the reader context.
        payload = (
            model.model_validate_json(value, extra="ignore")
            if _RUNTIME_EXTRA
            else model.model_validate_json(value, context=READER_CONTEXT)
        )
    except ValidationError as exc:
        not_json = [e for e in exc.errors() if e["type"] == "json_invalid"]
        if not_json:
            raise MalformedEvent(f"value is not JSON: {not_json[0]['msg']}") from exc
        raise MalformedEvent(f"payload does not match {event_type}: {_short(exc)}") from exc
    if payload.key() != h[H_SUBJECT]:
        raise MalformedEvent(
            f"ce_subject {h[H_SUBJECT]!r} does not match payload {model.key_field}"
            f" {payload.key()!r}"
        )
    known = set(REQUIRED_HEADERS) | {H_CORRELATION, H_CAUSATION, H_CONTENT_TYPE}
    return Envelope(
        id=event_id,
        source=h[H_SOURCE],
        type=event_type,
        time=time,
        subject=h[H_SUBJECT],
        payload=payload,
        correlation_id=h.get(H_CORRELATION),
        causation_id=h.get(H_CAUSATION),
        extra_headers={k: v for k, v in h.items() if k not in known},
    )


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
