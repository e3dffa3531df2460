"""The topic catalogue: naming, keys, ownership, and the rule that events carry no
personal data (a guard for every future event contract)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
import typing
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, Field

import shared.events
from shared.events.catalogue import (
    ALL_TOPICS,
    Topic,
    event_registry,
    topic_of,
    topics_consumed_by,
    topics_owned_by,
)
from shared.events.envelope import EventPayload

pytestmark = pytest.mark.unit

ALL_EVENT_MODELS: list[type[EventPayload]] = [m for t in ALL_TOPICS for m in t.event_types]
TOPIC_NAME = re.compile(r"^rebond\.(?P<owner>[a-z][a-z_]*)\.[a-z][a-z_]*\.v[1-9][0-9]*$")
EVENT_TYPE = re.compile(r"^rebond\.(?P<owner>[a-z][a-z_]*)\.[a-z][a-z_]*\.v(?P<major>[1-9][0-9]*)$")


def model_id(model: type[BaseModel]) -> str:
    return model.__name__


def test_the_catalogue_has_topics_and_events() -> None:
    assert ALL_TOPICS
    assert all(topic.event_types for topic in ALL_TOPICS)


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_topic_name_follows_the_naming_rule_and_names_its_owner(topic: Topic) -> None:
    match = TOPIC_NAME.match(topic.name)

    assert match is not None, f"{topic.name} is not rebond.<owner>.<stream>.v<N>"
    assert match["owner"] == topic.owner


def test_topic_names_are_unique() -> None:
    names = [t.name for t in ALL_TOPICS]

    assert len(names) == len(set(names))


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_topic_has_an_owner_and_at_least_one_consumer_other_than_itself(topic: Topic) -> None:
    assert topic.owner
    # The owner may project its own topic (detection's ledger), but a topic nobody else
    # reads would be an internal table in disguise.
    assert set(topic.consumers) - {topic.owner}
    assert topic.partitions >= 1
    assert topic.description.strip()


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_dead_letter_topic_is_the_topic_name_with_dlq_suffix(topic: Topic) -> None:
    assert topic.dlq == f"{topic.name}.dlq"
    assert topic.physical("t1.") == f"t1.{topic.name}"
    assert topic.physical_dlq("t1.") == f"t1.{topic.name}.dlq"
    assert topic.physical() == topic.name


@pytest.mark.parametrize("topic", ALL_TOPICS, ids=lambda t: t.name)
def test_every_event_of_a_topic_carries_the_topic_key_as_a_required_field(topic: Topic) -> None:
    key_fields = {model.key_field for model in topic.event_types}

    assert len(key_fields) == 1, f"{topic.name} mixes keys {sorted(key_fields)}: order breaks"
    (key_field,) = key_fields
    assert topic.key.startswith(key_field), "the topic's key description names another field"
    for model in topic.event_types:
        assert key_field in model.model_fields, f"{model.__name__} has no field {key_field}"
        info = model.model_fields[key_field]
        assert info.is_required(), f"{model.__name__}.{key_field} must be required"
        assert info.annotation in (str, uuid.UUID), f"{model.__name__}.{key_field}: str or UUID"


def test_event_types_are_unique_across_topics() -> None:
    types_ = [m.event_type for m in ALL_EVENT_MODELS]

    assert len(types_) == len(set(types_)), sorted(t for t in types_ if types_.count(t) > 1)


@pytest.mark.parametrize("model", ALL_EVENT_MODELS, ids=model_id)
def test_event_type_names_its_owner_and_ends_with_a_major_version(
    model: type[EventPayload],
) -> None:
    match = EVENT_TYPE.match(model.event_type)

    assert match is not None, f"{model.event_type} is not rebond.<owner>.<event>.v<N>"
    assert match["owner"] == topic_of(model).owner


@pytest.mark.parametrize("model", ALL_EVENT_MODELS, ids=model_id)
def test_topic_of_finds_the_topic_carrying_each_event(model: type[EventPayload]) -> None:
    topic = topic_of(model)

    assert model in topic.event_types
    assert topic in topics_owned_by(topic.owner)
    for consumer in topic.consumers:
        assert topic in topics_consumed_by(consumer)


def test_topic_of_refuses_an_event_on_no_topic() -> None:
    class Stray(EventPayload):
        event_type: ClassVar[str] = "rebond.nowhere.strayed.v1"
        key_field: ClassVar[str] = "id"
        id: str

    with pytest.raises(LookupError, match=r"rebond\.nowhere\.strayed\.v1"):
        topic_of(Stray)


def test_event_registry_covers_every_event_of_every_topic() -> None:
    registry = event_registry()

    assert set(registry) == {m.event_type for m in ALL_EVENT_MODELS}
    for event_type, model in registry.items():
        assert model.event_type == event_type


def _declared_event_models(base: type[EventPayload] = EventPayload) -> Iterator[type[EventPayload]]:
    for sub in base.__subclasses__():
        if sub.__module__.startswith("shared.events.") and "event_type" in vars(sub):
            yield sub
        yield from _declared_event_models(sub)


def test_every_declared_event_model_is_on_a_topic() -> None:
    for module in pkgutil.iter_modules(shared.events.__path__):
        importlib.import_module(f"shared.events.{module.name}")
    declared = set(_declared_event_models())

    assert declared, "no event model found under shared.events"
    assert declared <= set(ALL_EVENT_MODELS), sorted(
        m.__name__ for m in declared - set(ALL_EVENT_MODELS)
    )


# --- no personal data in events ---------------------------------------------------------

#: a field whose name contains one of these words names personal data
PERSONAL_WORDS = frozenset(
    {
        "email",
        "mail",
        "phone",
        "telephone",
        "mobile",
        "firstname",
        "lastname",
        "surname",
        "forename",
        "contact",
        "person",
        "people",
        "note",
        "notes",
        "comment",
        "author",
        "user",
        "username",
        "birth",
        "birthdate",
        "nir",
        "iban",
    }
)
#: consecutive words that together name personal data
PERSONAL_PHRASES = (
    ("first", "name"),
    ("last", "name"),
    ("given", "name"),
    ("family", "name"),
    ("full", "name"),
    ("declared", "by"),
)


def personal_data_reason(field_name: str) -> str | None:
    words = tuple(w for w in re.split(r"[^a-z0-9]+", field_name.lower()) if w)
    for word in words:
        if word in PERSONAL_WORDS:
            return f"contains {word!r}"
    for phrase in PERSONAL_PHRASES:
        n = len(phrase)
        if any(words[i : i + n] == phrase for i in range(len(words) - n + 1)):
            return f"contains {'_'.join(phrase)!r}"
    if len(words) >= 2 and words[-1] == "by":
        return "names who did something (*_by)"
    return None


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def personal_fields(model: type[BaseModel], path: str = "") -> list[str]:
    """Every field, at any depth of nesting, whose name suggests personal data."""
    found: list[str] = []
    seen: set[type[BaseModel]] = set()

    def walk(m: type[BaseModel], prefix: str) -> None:
        if m in seen:
            return
        seen.add(m)
        for name, info in m.model_fields.items():
            dotted = f"{prefix}{name}"
            for candidate in {name, info.alias} - {None}:
                assert candidate is not None
                reason = personal_data_reason(candidate)
                if reason:
                    found.append(f"{dotted} ({reason})")
                    break
            for nested in _models_in(info.annotation):
                walk(nested, f"{dotted}.")

    walk(model, path)
    return found


class _Contact(BaseModel):
    label: str
    email_address: str


class _Declarant(BaseModel):
    contact: _Contact | None = None


class _LeakyEvent(EventPayload):
    event_type: ClassVar[str] = "rebond.test.leaked.v1"
    key_field: ClassVar[str] = "site_id"

    site_id: str
    site_name: str
    declared_by: str
    reviewer: list[_Declarant] = Field(default_factory=list)
    phone_number: str | None = Field(default=None, alias="tel")
    created_by: str = ""


def test_personal_data_detector_finds_top_level_nested_and_aliased_fields() -> None:
    found = personal_fields(_LeakyEvent)

    assert found == [
        "declared_by (contains 'declared_by')",
        "reviewer.contact (contains 'contact')",
        "reviewer.contact.email_address (contains 'email')",
        "phone_number (contains 'phone')",
        "created_by (names who did something (*_by))",
    ]


@pytest.mark.parametrize(
    "name", ["site_name", "name", "siren", "naf_code", "territory_ids", "announced_on"]
)
def test_personal_data_detector_lets_establishment_fields_through(name: str) -> None:
    assert personal_data_reason(name) is None


@pytest.mark.parametrize("model", ALL_EVENT_MODELS, ids=model_id)
def test_event_payloads_carry_no_personal_data(model: type[EventPayload]) -> None:
    assert personal_fields(model) == [], (
        f"{model.__name__} has fields that look like personal data; events are read by every"
        " consumer and kept by the broker: carry an opaque id or leave the data in the owner"
    )


def test_union_annotations_are_walked_for_nested_models() -> None:
    annotation = list[_Declarant] | None

    assert list(_models_in(annotation)) == [_Declarant]
    assert list(_models_in(types.NoneType)) == []
