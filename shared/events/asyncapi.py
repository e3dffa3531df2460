"""The AsyncAPI 3.0.0 description of every Rebond topic, built from the catalogue and the
payload models: what a third party reads to produce or consume Rebond events with its own
tooling (code generators, AsyncAPI Studio, contract tests).

- one channel per topic of the catalogue (address = topic name) and one per dead-letter
  topic, with the catalogue's owner, consumers and key as `x-owner`, `x-consumers`,
  `x-key`;
- a `send` operation by each topic's owner and a `receive` operation per consumer;
- one message per event type: the CloudEvents `ce_*` headers, the Kafka key and the
  payload's JSON Schema (the one exported to `docs/schemas/`, with its `$defs` hoisted
  into `components/schemas` so the document is self-contained), and the example of
  `shared.events.examples`.

The document is committed as `docs/asyncapi.json`; a unit test fails when it is stale:

    python -m shared.events.asyncapi export docs/asyncapi.json
    python -m shared.events.asyncapi check docs/asyncapi.json   # exit 1 when stale

Output is byte-stable (sorted keys, 2-space indent, UTF-8, trailing newline).
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.events import schemas
from shared.events.catalogue import ALL_TOPICS, FUNDER_FEED, Topic
from shared.events.envelope import (
    CONTENT_TYPE,
    H_CAUSATION,
    H_CONTENT_TYPE,
    H_CORRELATION,
    H_ID,
    H_SOURCE,
    H_SPECVERSION,
    H_SUBJECT,
    H_TIME,
    H_TYPE,
    REQUIRED_HEADERS,
    SPEC_VERSION,
    Envelope,
    EventPayload,
)
from shared.events.examples import EXAMPLES, WHEN
from shared.messaging.consumer import (
    DLQ_ATTEMPTS,
    DLQ_CONSUMER,
    DLQ_ERROR_TYPE,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TIME,
    DLQ_TOPIC,
)

ASYNCAPI_VERSION = "3.0.0"
#: Version of the document (`info.version`). Bump the major on a breaking change (an
#: event type or topic removed, a key changed), the minor on additions.
DOCUMENT_VERSION = "1.0.0"
DOCUMENT_ID = "urn:rebond:asyncapi"
KAFKA_BINDING_VERSION = "0.5.0"
#: Dead-letter topics have one partition (`shared.messaging.kafka.ensure_topics`).
DLQ_PARTITIONS = 1
DEAD_LETTER_MESSAGE = "dead_letter"
DEFAULT_FILE = Path("docs") / "asyncapi.json"

#: The placeholder broker; a deployment documents its own with `servers=`.
DEFAULT_SERVERS: dict[str, dict[str, Any]] = {
    "production": {
        "host": "kafka:9092",
        "protocol": "kafka",
        "title": "Rebond Kafka cluster",
        "description": (
            "Placeholder for the deployment's bootstrap servers (`KAFKA_BOOTSTRAP_SERVERS`)."
            " Topic names on it may carry the deployment's prefix (`KAFKA_TOPIC_PREFIX`)."
        ),
    }
}

#: The funder topic over HTTP (the funding service's API, docs/funder-feed.md).
FUNDER_HTTP_SERVER = "funding-http"
FUNDER_FEED_SSE_PATH = "/funder/feed"
FUNDER_FEED_PAGE_PATH = "/funder/feed/events"
FUNDER_FEED_SSE_CHANNEL = f"{FUNDER_FEED.name}.sse"
FUNDER_FEED_SSE_RECEIVERS = ("regional_funders",)
FUNDER_FEED_WEBHOOK_CHANNEL = f"{FUNDER_FEED.name}.webhook"
FUNDER_WEBHOOK_SERVER = "funder-webhook-receiver"
FUNDER_FEED_SEQUENCE = "feedseq"
HTTP_BINDING_VERSION = "0.3.0"
HTTP_SERVERS: dict[str, dict[str, Any]] = {
    FUNDER_HTTP_SERVER: {
        "host": "funding:8004",
        "protocol": "http",
        "title": "Rebond funding API",
        "description": (
            "Placeholder for the funding service's base URL (`make run`:"
            " `http://127.0.0.1:8004`; behind TLS in production). Its API serves the"
            " funder topic's events to funders that run no Kafka client."
        ),
        "security": [{"$ref": "#/components/securitySchemes/bearer"}],
    },
    FUNDER_WEBHOOK_SERVER: {
        "host": "receiver.funder.example",
        "protocol": "https",
        "title": "A funder's webhook receiver",
        "description": (
            "Placeholder for the URL a funder subscribed (`POST /funder/webhooks`): the"
            " funding service POSTs the funder feed's events there."
        ),
    },
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "A funder's token (role `funder`, its `regions` claim: what it reads) or an"
            " admin's (everything). See docs/security.md."
        ),
    }
}

_EXAMPLE_NAMESPACE = uuid.UUID("5f0c8c3e-2b7a-4d0e-9c61-7a1d3e9b2f40")
_COMPONENT_KEY = re.compile(r"^[\w.\-]+$")
_DEFS_PREFIX = "#/$defs/"
_SCHEMAS_PREFIX = "#/components/schemas/"

_DESCRIPTION = f"""\
Rebond industriel: when a major industrial site announces its closure, a crisis cell \
sends consultants door to door to the industrial firms of the employment area to find \
their investment projects, matches the projects to public funding and tracks how the \
lost jobs are compensated. Its services ({{owners}}) talk through these Kafka topics.

**Envelope: CloudEvents 1.0 in Kafka binary mode.** The message value is the payload's \
JSON (`{CONTENT_TYPE}`), which validates against the message's payload schema; the \
CloudEvents attributes are Kafka headers with UTF-8 values: `{H_SPECVERSION}` \
(`{SPEC_VERSION}`), `{H_ID}` (a UUID, the deduplication key), `{H_SOURCE}` (the producing \
service), `{H_TYPE}` (the event type, which names the payload schema), `{H_TIME}` \
(RFC 3339 with offset), `{H_SUBJECT}` (= the Kafka key), the extensions \
`{H_CORRELATION}` and `{H_CAUSATION}`, and `{H_CONTENT_TYPE}`. Route on `{H_TYPE}` \
without parsing the value; ignore event types you do not know and headers you do not \
use.

**Keys and order.** Each topic is keyed by one aggregate id (see the channel's `x-key` \
and the message's Kafka key binding); all events of one key land on one partition, in \
the order they happened. Delivery is at least once: deduplicate on `{H_ID}`.

**Transactions.** Rebond publishes in Kafka transactions (one per outbox batch): read \
with `isolation.level=read_committed`, or a batch aborted after a publisher was fenced \
may reach you (its events come again, committed, with the same `{H_ID}`).

**No personal data.** Names, phone numbers and e-mail addresses of people never enter an \
event; writers send only the properties of the schemas.

**Tolerant readers.** Every channel declares its compatibility (`x-compatibility`); all \
are FULL_TRANSITIVE within an event type: a newer release may add optional properties \
to a payload, at any level, without changing its type, so readers must ignore \
properties they do not know, and skip event types they do not know. The schemas say so \
(no `additionalProperties: false`). `x-identity` names the payload fields that identify \
one business fact: a fact re-sent under a new `{H_ID}` has the same identity.

**Versioning.** Event types end with their major version \
(`rebond.<owner>.<event>.v<N>`). A compatible change (a new optional field) keeps the \
type; a breaking one (a field removed, renamed, retyped or made required, an enum's \
values changed) is a new type `….v<N+1>`, published alongside the old one until its \
consumers have moved. Topic names (`rebond.<owner>.<stream>.v<N>`) change only if their \
key or partitioning does. A deployment may prefix every topic name \
(`KAFKA_TOPIC_PREFIX`).

**Dead letters.** A message a Rebond consumer cannot handle goes, byte for byte, to the \
topic's dead-letter topic `<topic>.dlq` with `dlq_*` headers saying why.
"""


def asyncapi_document(
    topics: Iterable[Topic] = ALL_TOPICS,
    *,
    title: str = "Rebond events",
    version: str = DOCUMENT_VERSION,
    servers: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of `topics`, as plain JSON-compatible data.

    `servers` (name → AsyncAPI Server Object) are added to the `production` placeholder,
    or replace it if one of them is named `production`.
    """
    topics = tuple(topics)
    component_schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    for topic in topics:
        for model in topic.event_types:
            message_id = _component_key(model.event_type)
            if message_id in messages:
                raise ValueError(f"event type {model.event_type} is declared twice")
            messages[message_id] = _event_message(model, topic, component_schemas)

        channel_id = _component_key(topic.name)
        message_ids = [_component_key(m.event_type) for m in topic.event_types]
        channels[channel_id] = _topic_channel(topic, message_ids)
        channels[_component_key(topic.dlq)] = _dlq_channel(topic)

        channel_ref = {"$ref": f"#/channels/{_escape(channel_id)}"}
        message_refs = [
            {"$ref": f"#/channels/{_escape(channel_id)}/messages/{_escape(m)}"} for m in message_ids
        ]
        operations[_component_key(f"{topic.name}.send.{topic.owner}")] = {
            "action": "send",
            "channel": copy.deepcopy(channel_ref),
            "messages": copy.deepcopy(message_refs),
            "title": f"{topic.owner} publishes to {topic.name}",
            "summary": f"The owner, {topic.owner}, is the only producer of {topic.name}.",
            "description": (
                "Published through the owner's transactional outbox (the event commits with"
                " the state change), with `acks=all`, keyed as the channel says."
            ),
            "x-service": topic.owner,
        }
        for consumer in topic.consumers:
            operations[_component_key(f"{topic.name}.receive.{consumer}")] = {
                "action": "receive",
                "channel": copy.deepcopy(channel_ref),
                "messages": copy.deepcopy(message_refs),
                "title": f"{consumer} consumes {topic.name}",
                "summary": f"{consumer} reads every event of {topic.name}.",
                "description": (
                    "Event types a consumer does not handle are acknowledged and ignored."
                    f" Redeliveries are deduplicated on `{H_ID}`."
                ),
                "x-service": consumer,
            }

    if topics:
        messages[DEAD_LETTER_MESSAGE] = _dead_letter_message(topics[0])

    all_servers: dict[str, Any] = copy.deepcopy(DEFAULT_SERVERS)
    for name, server in (servers or {}).items():
        all_servers[_component_key(name)] = copy.deepcopy(dict(server))
    # Each Kafka channel is on the Kafka servers only (a channel that names no server is
    # on all of them, the HTTP one included).
    kafka_servers = [
        {"$ref": f"#/servers/{_escape(name)}"}
        for name, server in all_servers.items()
        if str(server.get("protocol", "")).startswith("kafka")
    ]
    for channel in channels.values():
        channel["servers"] = copy.deepcopy(kafka_servers)
    components: dict[str, Any] = {"schemas": component_schemas, "messages": messages}
    if FUNDER_FEED in topics:
        for name, server in HTTP_SERVERS.items():
            all_servers.setdefault(name, copy.deepcopy(server))
        components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
        component_schemas["FunderFeedCloudEvent"] = _structured_cloud_event()
        _add_funder_feed_sse(channels, operations)
        _add_funder_feed_webhook(channels, operations)

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": DOCUMENT_ID,
        "info": {
            "title": title,
            "version": version,
            "description": _DESCRIPTION.replace(
                "{owners}", ", ".join(dict.fromkeys(t.owner for t in topics))
            ),
            "license": {
                "name": "AGPL-3.0-or-later",
                "url": "https://www.gnu.org/licenses/agpl-3.0.html",
            },
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": all_servers,
        "channels": channels,
        "operations": operations,
        "components": components,
    }


def render(document: Mapping[str, Any] | None = None) -> bytes:
    """The exact bytes of the committed file: sorted keys, 2-space indent, final newline."""
    return schemas.render(dict(asyncapi_document() if document is None else document))


def write(path: Path) -> None:
    """Write the document of the whole catalogue to `path` (JSON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = render()
    if not path.is_file() or path.read_bytes() != content:
        path.write_bytes(content)


def check(path: Path) -> bool:
    """True when `path` holds exactly what `write` would write."""
    return path.is_file() and path.read_bytes() == render()


# -- messages ------------------------------------------------------------------------


def _event_message(
    model: type[EventPayload], topic: Topic, component_schemas: dict[str, Any]
) -> dict[str, Any]:
    payload = _hoist_defs(schemas.payload_schema(model, topic), component_schemas)
    title = _humanize(model.__name__)
    doc = _docstring(model)
    message: dict[str, Any] = {
        "name": model.__name__,
        "title": title,
        "summary": doc or f"{title}, on {topic.name}.",
        "description": (
            f"`{H_TYPE}: {model.event_type}` on `{topic.name}`. The Kafka key and"
            f" `{H_SUBJECT}` are the payload's `{model.key_field}`. The payload's JSON Schema"
            f" is also published as `docs/schemas/{schemas.file_name(model.event_type)}`."
        ),
        "contentType": CONTENT_TYPE,
        "headers": _cloudevents_headers(model, topic),
        "payload": payload,
        "correlationId": {
            "description": "The causal chain this event belongs to.",
            "location": f"$message.header#/{_escape(H_CORRELATION)}",
        },
        "bindings": {"kafka": {"key": _key_schema(model), "bindingVersion": KAFKA_BINDING_VERSION}},
        "x-ce-type": model.event_type,
    }
    example = EXAMPLES.get(model)
    if example is not None:
        message["examples"] = [
            {
                "name": "example",
                "summary": "Made-up values, for illustration.",
                "headers": _sample_headers(example, topic),
                "payload": example.model_dump(mode="json"),
            }
        ]
    return message


def _hoist_defs(schema: dict[str, Any], component_schemas: dict[str, Any]) -> dict[str, Any]:
    """The payload schema, self-contained within the AsyncAPI document.

    `$defs` move to `components/schemas` (a name shared by two payloads must mean the
    same schema) and their `$ref`s follow. `$schema` and `$id` go: inside a document they
    would make a new resource whose base URI hides `#/components/...` (the standalone file
    in docs/schemas keeps them; its id stays as `x-schema-id`).
    """
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = schema.pop("$defs", {})
    schema.pop("$schema", None)
    schema_id = schema.pop("$id", None)
    if schema_id is not None:
        schema["x-schema-id"] = schema_id
    for name, definition in sorted(defs.items()):
        key = _component_key(name)
        hoisted = _rewrite_refs(definition)
        existing = component_schemas.get(key)
        if existing is not None and existing != hoisted:
            raise ValueError(
                f"two different schemas are named {name!r}: rename one of the models"
                f" (seen again in {schema.get('x-ce-type')})"
            )
        component_schemas[key] = hoisted
    rewritten: dict[str, Any] = _rewrite_refs(schema)
    return rewritten


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if not value.startswith(_DEFS_PREFIX):
                    raise ValueError(f"unexpected $ref {value!r} in a payload schema")
                out[key] = _SCHEMAS_PREFIX + value[len(_DEFS_PREFIX) :]
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def _key_schema(model: type[EventPayload]) -> dict[str, Any]:
    """The Kafka key: the UTF-8 string of the payload's key field."""
    field = schemas.payload_schema(model)["properties"][model.key_field]
    key: dict[str, Any] = {
        "type": "string",
        "description": f"The payload's `{model.key_field}`, UTF-8 encoded.",
    }
    for keyword in ("pattern", "format", "minLength", "maxLength"):
        if keyword in field:
            key[keyword] = field[keyword]
    return key


def _cloudevents_headers(model: type[EventPayload], topic: Topic) -> dict[str, Any]:
    subject = _key_schema(model)
    subject["description"] = f"The Kafka key: the payload's `{model.key_field}`."
    nonempty: dict[str, Any] = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 attributes in Kafka binary mode; header values are UTF-8."
            " Other headers may be present (tracing, dead-letter headers) and are kept."
        ),
        "required": list(REQUIRED_HEADERS),
        "properties": {
            H_SPECVERSION: {
                "type": "string",
                "const": SPEC_VERSION,
                "description": "CloudEvents specification version.",
            },
            H_ID: {
                "type": "string",
                "format": "uuid",
                "description": "Unique id of the event: consumers deduplicate on it.",
            },
            H_SOURCE: {
                **nonempty,
                "description": "The service that produced the event: the topic's owner.",
                "examples": [topic.owner],
            },
            H_TYPE: {
                "type": "string",
                "const": model.event_type,
                "description": "The event type: it names the payload's schema.",
            },
            H_TIME: {
                "type": "string",
                "format": "date-time",
                "description": "When the event happened (RFC 3339, with a UTC offset).",
            },
            H_SUBJECT: subject,
            H_CORRELATION: {
                **nonempty,
                "description": (
                    "CloudEvents extension: the id of the event that started the causal"
                    " chain (its own id when it starts one)."
                ),
            },
            H_CAUSATION: {
                **nonempty,
                "description": "CloudEvents extension: the id of the event that caused it.",
            },
            H_CONTENT_TYPE: {
                "type": "string",
                "const": CONTENT_TYPE,
                "description": "Content type of the value.",
            },
            "traceparent": {
                "type": "string",
                "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                "description": (
                    "W3C Trace Context, when the event was written inside a trace: the"
                    " trace and the publishing span (any OpenTelemetry propagator reads it)."
                ),
            },
            "tracestate": {
                "type": "string",
                "description": "W3C Trace Context vendor state, sent with `traceparent`.",
            },
        },
        "additionalProperties": {"type": "string"},
    }


def _sample_headers(example: EventPayload, topic: Topic) -> dict[str, str]:
    """The headers `Envelope` really sends for `example`, with a stable id and time."""
    event_id = uuid.uuid5(_EXAMPLE_NAMESPACE, example.event_type)
    envelope = Envelope(
        id=event_id,
        source=topic.owner,
        type=example.event_type,
        time=WHEN,
        subject=example.key(),
        payload=example,
        correlation_id=str(event_id),
    )
    return {name: value.decode() for name, value in envelope.headers()}


def _dead_letter_message(sample_topic: Topic) -> dict[str, Any]:
    counter = {"type": "string", "pattern": "^[0-9]+$"}
    headers = {
        "type": "object",
        "description": (
            "The original message's headers (normally the `ce_*` headers), plus these;"
            " values are UTF-8."
        ),
        "required": [
            DLQ_REASON,
            DLQ_ERROR_TYPE,
            DLQ_CONSUMER,
            DLQ_TOPIC,
            DLQ_PARTITION,
            DLQ_OFFSET,
            DLQ_ATTEMPTS,
            DLQ_TIME,
        ],
        "properties": {
            DLQ_REASON: {
                "type": "string",
                "minLength": 1,
                "maxLength": 2000,
                "description": "Why the message could not be handled (truncated to 2000).",
            },
            DLQ_ERROR_TYPE: {
                "type": "string",
                "minLength": 1,
                "description": "Class name of the error (`MalformedEvent`, `PermanentError`…).",
            },
            DLQ_CONSUMER: {
                "type": "string",
                "minLength": 1,
                "description": "Name (consumer group) of the consumer that gave up.",
            },
            DLQ_TOPIC: {
                "type": "string",
                "minLength": 1,
                "description": "The topic the message was read from (with any deployment prefix).",
            },
            DLQ_PARTITION: {**counter, "description": "Its partition there."},
            DLQ_OFFSET: {**counter, "description": "Its offset there."},
            DLQ_ATTEMPTS: {
                "type": "string",
                "pattern": "^[1-9][0-9]*$",
                "description": "How many times the consumer tried (1 for a malformed message).",
            },
            DLQ_TIME: {
                "type": "string",
                "format": "date-time",
                "description": "When it was dead-lettered (RFC 3339, UTC).",
            },
        },
        "additionalProperties": {"type": "string"},
    }
    message: dict[str, Any] = {
        "name": "DeadLetter",
        "title": "Dead-lettered message",
        "summary": "A message a consumer could not handle, kept for inspection and replay.",
        "description": (
            "The original value and key, byte for byte, and the original headers, with"
            " `dlq_*` headers added. A message goes here after the consumer's last retry, or"
            " at once when no retry can help (malformed: missing or invalid `ce_*` headers,"
            " unknown event type, a value that is not a valid payload). Nothing reads these"
            " topics automatically: an operator inspects and replays them."
        ),
        "contentType": "application/octet-stream",
        "headers": headers,
        "payload": {
            "description": (
                "The original message value, unchanged: usually an event's JSON, but possibly"
                " not JSON at all, or empty."
            )
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original message's key, unchanged."},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    model = next((m for m in sample_topic.event_types if m in EXAMPLES), None)
    if model is not None:
        example = EXAMPLES[model]
        reason = f"payload does not match {model.event_type}: extra: Extra inputs are not permitted"
        message["examples"] = [
            {
                "name": "malformed",
                "summary": "A payload with an unknown field, dead-lettered at once.",
                "headers": {
                    **_sample_headers(example, sample_topic),
                    DLQ_REASON: reason,
                    DLQ_ERROR_TYPE: "MalformedEvent",
                    DLQ_CONSUMER: f"{(sample_topic.consumers or (sample_topic.owner,))[0]}.main",
                    DLQ_TOPIC: sample_topic.name,
                    DLQ_PARTITION: "0",
                    DLQ_OFFSET: "42",
                    DLQ_ATTEMPTS: "1",
                    DLQ_TIME: WHEN.isoformat(),
                },
                "payload": {**example.model_dump(mode="json"), "extra": "?"},
            }
        ]
    return message


# -- channels ------------------------------------------------------------------------


def _topic_channel(topic: Topic, message_ids: Sequence[str]) -> dict[str, Any]:
    consumers = ", ".join(topic.consumers) or "none yet"
    return {
        "address": topic.name,
        "title": topic.name,
        "summary": _first_sentence(topic.description),
        "description": (
            f"{topic.description}\n\n"
            f"Owner (sole producer): {topic.owner}. Consumers: {consumers}.\n"
            f"Key: {topic.key}.\n"
            f"Dead-letter topic: `{topic.dlq}`.\n"
            f"Compatibility: {topic.compatibility}. {topic.compatibility_rule}\n"
            "A deployment may prefix the topic name (`KAFKA_TOPIC_PREFIX`)."
        ),
        "messages": {m: {"$ref": f"#/components/messages/{_escape(m)}"} for m in message_ids},
        "bindings": {
            "kafka": {"partitions": topic.partitions, "bindingVersion": KAFKA_BINDING_VERSION}
        },
        "x-owner": topic.owner,
        "x-consumers": list(topic.consumers),
        "x-key": topic.key,
        "x-dlq": topic.dlq,
        "x-compatibility": topic.compatibility,
    }


def _dlq_channel(topic: Topic) -> dict[str, Any]:
    return {
        "address": topic.dlq,
        "title": topic.dlq,
        "summary": f"Dead-letter topic of {topic.name}.",
        "description": (
            f"Messages of `{topic.name}` that a Rebond consumer could not handle, with the"
            " reason in `dlq_*` headers; kept for inspection and replay by an operator."
            " A deployment may prefix the topic name (`KAFKA_TOPIC_PREFIX`)."
        ),
        "messages": {DEAD_LETTER_MESSAGE: {"$ref": f"#/components/messages/{DEAD_LETTER_MESSAGE}"}},
        "bindings": {
            "kafka": {"partitions": DLQ_PARTITIONS, "bindingVersion": KAFKA_BINDING_VERSION}
        },
        "x-owner": topic.owner,
        "x-consumers": [],
        "x-key": "the original message's key, unchanged",
        "x-dead-letter-of": topic.name,
    }


def _structured_cloud_event() -> dict[str, Any]:
    """A funder topic's event over HTTP: a CloudEvent in structured JSON mode."""
    return {
        "type": "object",
        "title": "FunderFeedCloudEvent",
        "description": (
            "One event of the funder topic as a CloudEvent 1.0 in structured JSON mode:"
            f" the Kafka message's `ce_*` headers as attributes (`{H_ID}` → `id`, …), its"
            f" value as `data`, and the feed's sequence number `{FUNDER_FEED_SEQUENCE}`"
            " (a CloudEvents extension attribute, an integer)."
        ),
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            FUNDER_FEED_SEQUENCE,
            "data",
        ],
        "properties": {
            "specversion": {"type": "string", "const": SPEC_VERSION},
            "id": {
                "type": "string",
                "format": "uuid",
                "description": "The event id, the same as `ce_id` on the topic: dedupe on it.",
            },
            "source": {"type": "string", "minLength": 1, "examples": [FUNDER_FEED.owner]},
            "type": {
                "type": "string",
                "enum": [m.event_type for m in FUNDER_FEED.event_types],
                "description": "The event type: the message whose payload `data` is.",
            },
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "description": "The project id (the Kafka key)."},
            "datacontenttype": {"type": "string", "const": CONTENT_TYPE},
            FUNDER_FEED_SEQUENCE: {
                "type": "integer",
                "minimum": 1,
                "description": "The feed's sequence number: the SSE `id`, what to resume after.",
            },
            "data": {
                "type": "object",
                "description": "The message's payload, valid against its schema.",
            },
        },
    }


def _add_funder_feed_sse(channels: dict[str, Any], operations: dict[str, Any]) -> None:
    """The funder topic's messages, served over HTTP by its owner (docs/funder-feed.md)."""
    topic = FUNDER_FEED
    channel_id = _component_key(FUNDER_FEED_SSE_CHANNEL)
    message_ids = [_component_key(m.event_type) for m in topic.event_types]
    channels[channel_id] = {
        "address": FUNDER_FEED_SSE_PATH,
        "title": f"{topic.name} over HTTP (server-sent events)",
        "summary": "The funder topic's events for funders without a Kafka client.",
        "description": (
            f"`GET {FUNDER_FEED_SSE_PATH}` (`text/event-stream`) on the funding API: the"
            f" events of `{topic.name}`, same event ids, in the caller's scope (a funder:"
            " the consented projects of its `regions`; an admin: all). Each server-sent"
            " event has `id:` the feed's sequence number (increasing, in commit order),"
            " `event:` the CloudEvents type, and `data:` the CloudEvent in structured JSON"
            " mode (`#/components/schemas/FunderFeedCloudEvent`), whose `data` is the"
            " message's payload below. Resume after the last id seen with the"
            " `Last-Event-ID` header (or `?after=`): nothing lost, nothing twice."
            " `?follow=false` sends the backlog and ends; a following stream sends a"
            " comment line when idle and ends after a while (reconnect). The same events"
            f" page by page, as a CloudEvents JSON batch: `GET {FUNDER_FEED_PAGE_PATH}"
            "?after=<seq>&limit=<n>` (`application/cloudevents-batch+json`)."
        ),
        "servers": [{"$ref": f"#/servers/{_escape(FUNDER_HTTP_SERVER)}"}],
        "messages": {m: {"$ref": f"#/components/messages/{_escape(m)}"} for m in message_ids},
        "x-owner": topic.owner,
        "x-consumers": list(FUNDER_FEED_SSE_RECEIVERS),
        "x-same-events-as": topic.name,
        "x-cloudevents-mode": "structured",
    }
    channel_ref = {"$ref": f"#/channels/{_escape(channel_id)}"}
    message_refs = [
        {"$ref": f"#/channels/{_escape(channel_id)}/messages/{_escape(m)}"} for m in message_ids
    ]
    query = {
        "type": "object",
        "properties": {
            "after": {
                "type": "integer",
                "minimum": 0,
                "description": "Resume after this sequence number (Last-Event-ID wins).",
            },
            "follow": {
                "type": "boolean",
                "default": True,
                "description": "false: send the backlog, then end the stream.",
            },
        },
    }
    http_binding = {"method": "GET", "query": query, "bindingVersion": HTTP_BINDING_VERSION}
    operations[_component_key(f"{channel_id}.send.{topic.owner}")] = {
        "action": "send",
        "channel": copy.deepcopy(channel_ref),
        "messages": copy.deepcopy(message_refs),
        "title": f"{topic.owner} serves {topic.name} over HTTP",
        "summary": "Every event of the topic, appended with its outbox row.",
        "bindings": {"http": copy.deepcopy(http_binding)},
        "x-service": topic.owner,
    }
    for consumer in FUNDER_FEED_SSE_RECEIVERS:
        operations[_component_key(f"{channel_id}.receive.{consumer}")] = {
            "action": "receive",
            "channel": copy.deepcopy(channel_ref),
            "messages": copy.deepcopy(message_refs),
            "title": f"{consumer} read {topic.name} over HTTP",
            "summary": "An SSE client (or a page reader) with a funder's token.",
            "description": "Deduplicate on the CloudEvent's `id`; resume with Last-Event-ID.",
            "bindings": {"http": copy.deepcopy(http_binding)},
            "x-service": consumer,
        }


def _add_funder_feed_webhook(channels: dict[str, Any], operations: dict[str, Any]) -> None:
    """The funder topic's messages, POSTed to the funders' subscribed URLs."""
    topic = FUNDER_FEED
    channel_id = _component_key(FUNDER_FEED_WEBHOOK_CHANNEL)
    message_ids = [_component_key(m.event_type) for m in topic.event_types]
    channels[channel_id] = {
        "address": None,
        "title": f"{topic.name} by webhook",
        "summary": "The funder topic's events, POSTed to a funder's subscribed URL.",
        "description": (
            "The address is the URL the funder subscribed (`POST /funder/webhooks`, which"
            " answers the subscription's secret once). Each event of the subscriber's"
            " scope (as `GET /funder/feed`), in feed order, is POSTed as a CloudEvent in"
            " structured mode (`application/cloudevents+json`,"
            " `#/components/schemas/FunderFeedCloudEvent`), signed per Standard Webhooks:"
            " `webhook-id` (the event id: deduplicate on it), `webhook-timestamp` (Unix"
            " seconds), `webhook-signature: v1,<base64 HMAC-SHA256 of"
            " `<webhook-id>.<webhook-timestamp>.<body>` under the secret's base64-decoded"
            " bytes after `whsec_`>`. Any 2xx acknowledges it; anything else (or no answer"
            " within 10 s) is retried with exponential backoff, without end: at least once."
        ),
        "servers": [{"$ref": f"#/servers/{_escape(FUNDER_WEBHOOK_SERVER)}"}],
        "messages": {m: {"$ref": f"#/components/messages/{_escape(m)}"} for m in message_ids},
        "x-owner": topic.owner,
        "x-consumers": list(FUNDER_FEED_SSE_RECEIVERS),
        "x-same-events-as": topic.name,
        "x-cloudevents-mode": "structured",
    }
    channel_ref = {"$ref": f"#/channels/{_escape(channel_id)}"}
    message_refs = [
        {"$ref": f"#/channels/{_escape(channel_id)}/messages/{_escape(m)}"} for m in message_ids
    ]
    http_binding = {"method": "POST", "bindingVersion": HTTP_BINDING_VERSION}
    operations[_component_key(f"{channel_id}.send.{topic.owner}")] = {
        "action": "send",
        "channel": copy.deepcopy(channel_ref),
        "messages": copy.deepcopy(message_refs),
        "title": f"{topic.owner} delivers {topic.name} to webhooks",
        "summary": "One signed POST per event, retried until acknowledged.",
        "bindings": {"http": copy.deepcopy(http_binding)},
        "x-service": topic.owner,
    }
    for consumer in FUNDER_FEED_SSE_RECEIVERS:
        operations[_component_key(f"{channel_id}.receive.{consumer}")] = {
            "action": "receive",
            "channel": copy.deepcopy(channel_ref),
            "messages": copy.deepcopy(message_refs),
            "title": f"{consumer} receive {topic.name} by webhook",
            "summary": "Check the signature, deduplicate on `webhook-id`, answer 2xx.",
            "bindings": {"http": copy.deepcopy(http_binding)},
            "x-service": consumer,
        }


# -- helpers -------------------------------------------------------------------------


def _component_key(name: str) -> str:
    """AsyncAPI map keys (channels, operations, components) allow `[A-Za-z0-9_.-]` only."""
    if not _COMPONENT_KEY.match(name):
        raise ValueError(f"{name!r} cannot be an AsyncAPI key")
    return name


def _escape(token: str) -> str:
    """A JSON Pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _humanize(class_name: str) -> str:
    words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", class_name)
    text = " ".join(words).capitalize()
    return text or class_name


def _docstring(model: type[EventPayload]) -> str:
    doc = model.__dict__.get("__doc__") or ""
    return " ".join(doc.split())


def _first_sentence(text: str) -> str:
    head, sep, _ = text.partition(". ")
    return f"{head}." if sep else text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.events.asyncapi",
        description="Export or check the AsyncAPI 3.0.0 document of the Rebond topics.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("export", "write the document (JSON)"),
        ("check", "exit 1 if the file differs from a fresh export"),
    ):
        cmd = sub.add_parser(command, help=help_text)
        cmd.add_argument("path", type=Path, nargs="?", default=DEFAULT_FILE)
    args = parser.parse_args(argv)
    path: Path = args.path

    if args.command == "export":
        write(path)
        sys.stdout.write(f"wrote {path}\n")
        return 0
    if not check(path):
        sys.stderr.write(
            f"{path} is not up to date with the event contracts"
            f" (run `python -m shared.events.asyncapi export {path}`)\n"
        )
        return 1
    sys.stdout.write(f"{path}: up to date\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
