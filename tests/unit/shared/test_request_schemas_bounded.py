"""Every request schema of every service is bounded (issue 10, "input at the door"): each
integer and number has a maximum, each float is finite, each day or instant lies in the
window of `shared.http.Day` / `Instant`. A new `XIn` field without a bound fails here,
before the fuzzer finds the 500 it would cause."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from shared.http import DAY_WINDOW, Day, Instant

SERVICES = ("site_registry", "campaigns", "detection", "funding")


def request_models() -> Iterator[tuple[str, type[BaseModel]]]:
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.entrypoints.schemas")
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and name.endswith("In")
                and obj.__module__ == module.__name__
            ):
                yield f"{service}.{name}", obj


def unbounded(schema: dict[str, Any], defs: dict[str, Any], at: str) -> Iterator[str]:
    """Paths of the numbers and dates of `schema` that lack a bound."""
    if "$ref" in schema:
        yield from unbounded(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, at)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            yield from unbounded(part, defs, at)
    kind = schema.get("type")
    if kind in ("integer", "number") and not ("maximum" in schema or "exclusiveMaximum" in schema):
        yield f"{at}: {kind} without a maximum"
    if schema.get("format") in ("date", "date-time") and DAY_WINDOW not in schema.get(
        "description", ""
    ):
        yield f"{at}: {schema['format']} outside shared.http.Day/Instant"
    for name, prop in schema.get("properties", {}).items():
        yield from unbounded(prop, defs, f"{at}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from unbounded(schema["items"], defs, f"{at}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from unbounded(schema["additionalProperties"], defs, f"{at}{{}}")


MODELS = dict(request_models())


def test_every_service_has_request_models() -> None:
    assert {name.split(".")[0] for name in MODELS} == set(SERVICES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_number_and_date_of_a_request_is_bounded(name: str) -> None:
    schema = MODELS[name].model_json_schema()
    assert list(unbounded(schema, schema.get("$defs", {}), name)) == []


@pytest.mark.parametrize("name", sorted(MODELS))
def test_floats_of_a_request_are_finite(name: str) -> None:
    assert MODELS[name].model_config.get("allow_inf_nan") is False


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2101-01-01", "1969-12-31"])
def test_a_day_outside_the_window_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Day).validate_python(value)


@pytest.mark.parametrize("value", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+00:00"])
def test_an_instant_outside_the_window_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(value)


def test_a_day_inside_the_window_is_kept() -> None:
    assert str(TypeAdapter(Day).validate_python("2020-09-16")) == "2020-09-16"
