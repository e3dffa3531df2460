"""One timestamp type everywhere: every datetime column is `UtcDateTime`, every event
datetime must carry its offset, and the domain refuses naive datetimes."""

from __future__ import annotations

import importlib
import typing
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ValidationError
from sqlmodel import SQLModel

from shared.db import NaiveDatetimeError, UtcDateTime
from shared.errors import DomainError
from shared.events.catalogue import ALL_TOPICS
from shared.timestamps import require_aware

pytestmark = pytest.mark.unit

SERVICES = ("site_registry", "campaigns", "detection", "funding")


def _all_tables() -> list[sa.Table]:
    for service in SERVICES:
        importlib.import_module(f"services.{service}.adapters.orm")
    importlib.import_module("shared.idempotency")
    importlib.import_module("shared.messaging.tables")
    return list(SQLModel.metadata.tables.values())


def test_every_datetime_column_of_every_service_is_utc_aware() -> None:
    plain = [
        f"{table.name}.{column.name}"
        for table in _all_tables()
        for column in table.columns
        if isinstance(column.type, sa.DateTime)  # UtcDateTime is a decorator, not a DateTime
    ]
    assert plain == [], f"use shared.db.utc_column() for {plain}"
    utc = [c for t in _all_tables() for c in t.columns if isinstance(c.type, UtcDateTime)]
    assert len(utc) >= 10


def test_the_type_refuses_naive_values_and_normalises_to_utc() -> None:
    dialect = sa.dialects.sqlite.dialect()
    t = UtcDateTime()
    paris = timezone(timedelta(hours=1))
    stored = t.process_bind_param(datetime(2026, 11, 23, 9, 0, tzinfo=paris), dialect)
    assert stored == datetime(2026, 11, 23, 8, 0)  # UTC, offset-free on SQLite
    assert t.process_result_value(stored, dialect) == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    with pytest.raises(NaiveDatetimeError, match="naive"):
        t.process_bind_param(datetime(2026, 11, 23, 9, 0), dialect)
    pg = sa.dialects.postgresql.dialect()
    back = t.process_result_value(datetime(2026, 11, 23, 9, 0, tzinfo=paris), pg)
    assert back is not None and back.tzinfo is UTC and back.hour == 8


def test_the_domain_edge_refuses_naive_datetimes() -> None:
    with pytest.raises(DomainError, match="no UTC offset"):
        require_aware(datetime(2026, 11, 23, 9, 0), "now")
    assert require_aware(datetime(2026, 11, 23, 9, 0, tzinfo=UTC), "now").tzinfo is UTC


def _types(annotation: object) -> typing.Iterator[object]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _types(arg)


def _datetime_fields(model: type[BaseModel]) -> typing.Iterator[tuple[str, str]]:
    for name, info in model.model_fields.items():
        kinds = list(_types(info.annotation))
        if AwareDatetime in kinds:
            yield name, "AwareDatetime"
        elif any(k is datetime for k in kinds):
            yield name, "datetime"


def test_every_event_datetime_must_carry_its_offset() -> None:
    naive_ok = [
        f"{m.__name__}.{name}"
        for topic in ALL_TOPICS
        for m in topic.event_types
        for name, text in _datetime_fields(m)
        if "AwareDatetime" not in text
    ]
    assert naive_ok == []


def test_a_naive_datetime_in_an_event_is_refused() -> None:
    from shared.events.examples import EXAMPLES

    payload = next(p for p in EXAMPLES.values() if any(True for _ in _datetime_fields(type(p))))
    name, _ = next(_datetime_fields(type(payload)))
    data = payload.model_dump()
    data[name] = datetime(2026, 11, 23, 9, 0)
    with pytest.raises(ValidationError, match="timezone"):
        type(payload).model_validate(data)
