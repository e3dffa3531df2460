"""The AsyncAPI 3.0.0 document of the topics: complete (every topic, dead-letter topic and
event type), self-contained (every `$ref` resolves within the document), its payload
schemas valid and faithful (the examples validate, an unknown field does not), and
committed up to date as docs/asyncapi.json.

No JSON Schema of the AsyncAPI 3.0 specification is installed in this environment (no
`asyncapi*` package, nothing in site-packages; adding one is out of scope), so the
document is not validated against the official schema: these tests check its structure
instead (the required fields, the key syntax of AsyncAPI maps, operations whose channel
and messages resolve, operation messages taken from their own channel), and the payload
and header schemas with `jsonschema` (draft 2020-12, and draft 7, the base of AsyncAPI's
default schema format).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from pydantic import ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from shared.events import asyncapi, schemas
from shared.events.catalogue import ALL_TOPICS, FUNDER_FEED, Topic, event_registry, topic_of
from shared.events.envelope import REQUIRED_HEADERS, EventPayload, decode
from shared.events.examples import EXAMPLES
from shared.messaging import consumer

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMITTED = REPO_ROOT / "docs" / "asyncapi.json"
DOC_URI = "urn:rebond:asyncapi"
MAP_KEY = re.compile(r"^[\w.\-]+$")
MODELS = sorted(event_registry().values(), key=lambda m: m.event_type)
DLQ_HEADERS = {
    consumer.DLQ_REASON,
    consumer.DLQ_ERROR_TYPE,
    consumer.DLQ_CONSUMER,
    consumer.DLQ_TOPIC,
    consumer.DLQ_PARTITION,
    consumer.DLQ_OFFSET,
    consumer.DLQ_ATTEMPTS,
    consumer.DLQ_TIME,
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return asyncapi.asyncapi_document()


@pytest.fixture(scope="module")
def registry(doc: dict[str, Any]) -> Registry[Any]:
    """The whole document as one resource: `#/components/...` resolves against it."""
    whole: Registry[Any] = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))
    return whole


def resolve(doc: Any, ref: str) -> Any:
    """Follow a local JSON Pointer reference (`#/a/b`), or fail."""
    assert ref.startswith("#/"), f"{ref!r} is not a local reference"
    node = doc
    for raw in ref[2:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and token in node, f"{ref!r} does not resolve"
        node = node[token]
    return node


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                assert isinstance(value, str)
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def inline(node: Any, doc: dict[str, Any], depth: int = 0) -> Any:
    """`node` with every `$ref` replaced by its target: a standalone schema."""
    assert depth < 32, "reference cycle"
    if isinstance(node, dict):
        if "$ref" in node:
            target = inline(resolve(doc, node["$ref"]), doc, depth + 1)
            siblings = {k: inline(v, doc, depth) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: inline(v, doc, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(item, doc, depth) for item in node]
    return node


def message_validator(registry: Registry[Any], message_id: str, part: str) -> Any:
    pointer = f"#/components/messages/{message_id}/{part}"
    return Draft202012Validator({"$ref": f"{DOC_URI}{pointer}"}, registry=registry)


def model_id(model: type[EventPayload]) -> str:
    return model.__name__


def topic_id(topic: Topic) -> str:
    return topic.name


# -- AsyncAPI shape ------------------------------------------------------------------


def test_the_document_is_asyncapi_3(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] == "Rebond events"
    assert doc["info"]["version"] == asyncapi.DOCUMENT_VERSION
    assert "CloudEvents" in doc["info"]["description"]
    assert doc["defaultContentType"] == "application/json"
    assert set(doc) <= {
        "asyncapi",
        "id",
        "info",
        "servers",
        "defaultContentType",
        "channels",
        "operations",
        "components",
    }
    production = doc["servers"]["production"]
    assert production["protocol"] == "kafka"
    assert production["host"] == "kafka:9092"


def test_map_keys_follow_asyncapi_syntax(doc: dict[str, Any]) -> None:
    keys = [
        *doc["servers"],
        *doc["channels"],
        *doc["operations"],
        *doc["components"]["schemas"],
        *doc["components"]["messages"],
    ]
    assert keys
    assert all(MAP_KEY.match(key) for key in keys), [k for k in keys if not MAP_KEY.match(k)]


def test_every_reference_resolves_within_the_document(doc: dict[str, Any]) -> None:
    found = list(refs(doc))

    assert found
    for ref in found:
        resolve(doc, ref)


def test_operations_reference_their_channel_and_its_messages(doc: dict[str, Any]) -> None:
    assert doc["operations"]
    for op_id, op in doc["operations"].items():
        assert op["action"] in {"send", "receive"}, op_id
        channel_ref = op["channel"]["$ref"]
        channel = resolve(doc, channel_ref)
        assert channel in doc["channels"].values()
        assert op["messages"], op_id
        for message in op["messages"]:
            # AsyncAPI 3: an operation's messages are taken from its own channel.
            assert message["$ref"].startswith(f"{channel_ref}/messages/"), op_id
            assert resolve(doc, message["$ref"]) in channel["messages"].values()


def test_channel_messages_reference_component_messages(doc: dict[str, Any]) -> None:
    for channel in doc["channels"].values():
        assert channel["messages"]
        for message in channel["messages"].values():
            assert message["$ref"].startswith("#/components/messages/")
            resolve(doc, message["$ref"])


def test_extra_servers_are_added_and_can_replace_the_placeholder() -> None:
    staging = {"host": "kafka.staging:9092", "protocol": "kafka"}
    production = {"host": "broker-1.rebond:9093", "protocol": "kafka-secure"}

    with_staging = asyncapi.asyncapi_document(servers={"staging": staging})
    replaced = asyncapi.asyncapi_document(servers={"production": production})

    assert with_staging["servers"]["staging"] == staging
    assert with_staging["servers"]["production"]["host"] == "kafka:9092"
    assert replaced["servers"] == {
        "production": production,
        **asyncapi.HTTP_SERVERS,
    }
    kafka_refs = [{"$ref": "#/servers/production"}, {"$ref": "#/servers/staging"}]
    assert with_staging["channels"][FUNDER_FEED.name]["servers"] == kafka_refs


def test_title_and_version_can_be_set() -> None:
    document = asyncapi.asyncapi_document(title="Rebond (staging)", version="2.1.0")

    assert document["info"]["title"] == "Rebond (staging)"
    assert document["info"]["version"] == "2.1.0"


# -- completeness --------------------------------------------------------------------


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=topic_id)
def test_every_topic_has_a_channel_with_its_catalogue_entry(
    doc: dict[str, Any], topic: Topic
) -> None:
    channel = doc["channels"][topic.name]

    assert channel["address"] == topic.name
    assert "prefix" in channel["description"]
    assert channel["x-owner"] == topic.owner
    assert channel["x-consumers"] == list(topic.consumers)
    assert channel["x-key"] == topic.key
    assert channel["x-dlq"] == topic.dlq
    assert channel["bindings"]["kafka"]["partitions"] == topic.partitions
    assert set(channel["messages"]) == {m.event_type for m in topic.event_types}


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=topic_id)
def test_every_topic_has_its_dead_letter_channel(doc: dict[str, Any], topic: Topic) -> None:
    channel = doc["channels"][topic.dlq]
    message = resolve(doc, channel["messages"][asyncapi.DEAD_LETTER_MESSAGE]["$ref"])

    assert channel["address"] == topic.dlq
    assert channel["x-dead-letter-of"] == topic.name
    assert {"x-owner", "x-consumers", "x-key"} <= set(channel)
    assert set(message["headers"]["required"]) == DLQ_HEADERS
    assert set(message["headers"]["properties"]) == DLQ_HEADERS


def test_there_are_no_other_channels(doc: dict[str, Any]) -> None:
    expected = {t.name for t in ALL_TOPICS} | {t.dlq for t in ALL_TOPICS}

    http = {asyncapi.FUNDER_FEED_SSE_CHANNEL, asyncapi.FUNDER_FEED_WEBHOOK_CHANNEL}
    assert set(doc["channels"]) == expected | http


def test_the_funder_topic_is_also_served_over_http(doc: dict[str, Any]) -> None:
    sse = doc["channels"][asyncapi.FUNDER_FEED_SSE_CHANNEL]
    topic = doc["channels"][FUNDER_FEED.name]

    assert sse["address"] == asyncapi.FUNDER_FEED_SSE_PATH == "/funder/feed"
    assert sse["messages"] == topic["messages"]
    assert sse["servers"] == [{"$ref": f"#/servers/{asyncapi.FUNDER_HTTP_SERVER}"}]
    assert topic["servers"] == [{"$ref": "#/servers/production"}]
    assert doc["servers"][asyncapi.FUNDER_HTTP_SERVER]["protocol"] == "http"
    envelope = doc["components"]["schemas"]["FunderFeedCloudEvent"]
    assert set(envelope["properties"]["type"]["enum"]) == {
        m.event_type for m in FUNDER_FEED.event_types
    }
    actions = sorted(
        op["action"]
        for op in doc["operations"].values()
        if op["channel"]["$ref"] == f"#/channels/{asyncapi.FUNDER_FEED_SSE_CHANNEL}"
    )
    assert actions == ["receive", "send"]
    webhook = doc["channels"][asyncapi.FUNDER_FEED_WEBHOOK_CHANNEL]
    assert webhook["messages"] == topic["messages"]
    assert webhook["address"] is None


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=topic_id)
def test_the_owner_sends_and_every_consumer_receives(doc: dict[str, Any], topic: Topic) -> None:
    channel_ref = f"#/channels/{topic.name}"
    ops = [op for op in doc["operations"].values() if op["channel"]["$ref"] == channel_ref]
    senders = [op["x-service"] for op in ops if op["action"] == "send"]
    receivers = sorted(op["x-service"] for op in ops if op["action"] == "receive")

    assert senders == [topic.owner]
    assert receivers == sorted(topic.consumers)
    for op in ops:
        assert len(op["messages"]) == len(topic.event_types)


def test_every_event_type_has_a_message_and_nothing_else(doc: dict[str, Any]) -> None:
    expected = {m.event_type for m in MODELS} | {asyncapi.DEAD_LETTER_MESSAGE}

    assert set(doc["components"]["messages"]) == expected


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_message_describes_the_event(doc: dict[str, Any], model: type[EventPayload]) -> None:
    message = doc["components"]["messages"][model.event_type]
    headers = message["headers"]
    key_field = schemas.payload_schema(model)["properties"][model.key_field]

    assert message["name"] == model.__name__
    assert message["title"]
    assert message["contentType"] == "application/json"
    assert headers["type"] == "object"
    assert set(REQUIRED_HEADERS) <= set(headers["required"])
    assert headers["properties"]["ce_type"]["const"] == model.event_type
    assert headers["properties"]["ce_specversion"]["const"] == "1.0"
    assert headers["properties"]["ce_id"]["format"] == "uuid"
    assert headers["properties"]["ce_time"]["format"] == "date-time"
    assert {"ce_source", "ce_subject", "ce_correlationid", "ce_causationid", "content-type"} <= (
        set(headers["properties"])
    )
    key = message["bindings"]["kafka"]["key"]
    assert key["type"] == "string"
    assert key.get("pattern") == key_field.get("pattern")
    assert len(message["examples"]) == 1


# -- schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_payload_schema_is_valid_once_references_are_resolved(
    doc: dict[str, Any], model: type[EventPayload]
) -> None:
    payload = doc["components"]["messages"][model.event_type]["payload"]
    standalone = inline(payload, doc)

    assert "$defs" not in payload and "$id" not in payload and "$schema" not in payload
    for schema in (payload, standalone):
        Draft202012Validator.check_schema(schema)
        Draft7Validator.check_schema(schema)
    assert "$ref" not in json.dumps(standalone)
    # Same contract as the standalone file in docs/schemas.
    original = schemas.payload_schema(model)
    assert standalone["required"] == original["required"]
    assert set(standalone["properties"]) == set(original["properties"])
    assert "additionalProperties" not in standalone  # readers tolerate what a release adds


def test_hoisted_schemas_are_valid(doc: dict[str, Any]) -> None:
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
        Draft7Validator.check_schema(schema)


def test_header_schemas_are_valid(doc: dict[str, Any]) -> None:
    for message in doc["components"]["messages"].values():
        Draft202012Validator.check_schema(message["headers"])
        Draft7Validator.check_schema(message["headers"])
        Draft202012Validator.check_schema(message["bindings"]["kafka"]["key"])


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_the_example_validates_against_the_message(
    doc: dict[str, Any], registry: Registry[Any], model: type[EventPayload]
) -> None:
    example = doc["components"]["messages"][model.event_type]["examples"][0]

    assert example["payload"] == EXAMPLES[model].model_dump(mode="json")
    message_validator(registry, model.event_type, "payload").validate(example["payload"])
    message_validator(registry, model.event_type, "headers").validate(example["headers"])
    key = doc["components"]["messages"][model.event_type]["bindings"]["kafka"]["key"]
    Draft202012Validator(key).validate(example["headers"]["ce_subject"])


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_the_example_is_what_a_consumer_decodes(
    doc: dict[str, Any], model: type[EventPayload]
) -> None:
    example = doc["components"]["messages"][model.event_type]["examples"][0]
    headers = [(k, v.encode()) for k, v in example["headers"].items()]

    envelope = decode(headers, json.dumps(example["payload"]).encode(), event_registry())

    assert envelope.payload == EXAMPLES[model]
    assert envelope.type == model.event_type


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_an_unknown_field_is_tolerated_by_readers_and_refused_to_writers(
    doc: dict[str, Any], registry: Registry[Any], model: type[EventPayload]
) -> None:
    example = doc["components"]["messages"][model.event_type]["examples"][0]
    payload = {**copy.deepcopy(example["payload"]), "added_in_a_later_release": 3}

    errors = list(message_validator(registry, model.event_type, "payload").iter_errors(payload))

    assert errors == []  # a reader one release behind accepts a newer payload
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model(**payload)  # a writer cannot send a field the contract does not list
    channel = next(c for c in doc["channels"].values() if c["address"] == topic_of(model).name)
    assert channel["x-compatibility"] == "FULL_TRANSITIVE"


def test_headers_with_another_event_type_are_rejected(
    doc: dict[str, Any], registry: Registry[Any]
) -> None:
    model = MODELS[0]
    headers = dict(doc["components"]["messages"][model.event_type]["examples"][0]["headers"])
    headers["ce_type"] = MODELS[1].event_type

    assert not message_validator(registry, model.event_type, "headers").is_valid(headers)


def test_the_dead_letter_example_validates(doc: dict[str, Any], registry: Registry[Any]) -> None:
    message = doc["components"]["messages"][asyncapi.DEAD_LETTER_MESSAGE]
    example = message["examples"][0]
    validator = message_validator(registry, asyncapi.DEAD_LETTER_MESSAGE, "headers")

    validator.validate(example["headers"])
    assert not validator.is_valid(
        {k: v for k, v in example["headers"].items() if k != "dlq_reason"}
    )
    Draft202012Validator.check_schema(message["payload"])


# -- the committed file --------------------------------------------------------------


def test_output_is_deterministic() -> None:
    assert asyncapi.render() == asyncapi.render(asyncapi.asyncapi_document())
    assert asyncapi.render().endswith(b"}\n")


def test_committed_document_is_up_to_date() -> None:
    assert asyncapi.check(COMMITTED), (
        "docs/asyncapi.json is stale: run `uv run python -m shared.events.asyncapi export"
        " docs/asyncapi.json`"
    )


def test_the_cli_exports_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "docs" / "asyncapi.json"

    assert asyncapi.main(["check", str(path)]) == 1  # missing
    assert asyncapi.main(["export", str(path)]) == 0
    assert asyncapi.main(["check", str(path)]) == 0
    assert json.loads(path.read_text(encoding="utf-8"))["asyncapi"] == "3.0.0"

    path.write_text(path.read_text(encoding="utf-8").replace("3.0.0", "2.6.0"), encoding="utf-8")
    assert asyncapi.main(["check", str(path)]) == 1
    assert "not up to date" in capsys.readouterr().err
