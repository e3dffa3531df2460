"""Hypothesis strategies for request bodies, from the services' own OpenAPI schemas.

A small reader of the JSON Schema subset FastAPI emits (objects, `$ref`, `anyOf`,
`enum`/`const`, strings with lengths, patterns and formats, bounded numbers, arrays):
every value it draws is valid as the API *declares* it, so whatever the service then
refuses must be refused with a 4xx. (hypothesis-jsonschema does the same in general but
does not run with current Hypothesis releases.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import strategies as st

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=60)


def from_schema(
    schema: dict[str, Any], root: dict[str, Any] | None = None
) -> st.SearchStrategy[Any]:
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: from_schema(root["components"]["schemas"][name], root))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, root) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], root)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get(
            "minimum",
            schema.get("exclusiveMinimum", -(2**31)) + (1 if "exclusiveMinimum" in schema else 0),
        )
        high = schema.get(
            "maximum",
            schema.get("exclusiveMaximum", 2**63) - (1 if "exclusiveMaximum" in schema else 0),
        )
        return st.integers(int(low), int(high))
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum", schema.get("exclusiveMinimum")),
            max_value=schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema,
            exclude_max="exclusiveMaximum" in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "string":
        return _string(schema)
    if kind == "array":
        items = from_schema(schema.get("items", {}), root)
        return st.lists(
            items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4)
        )
    if kind == "object" or "properties" in schema:
        return _object(schema, root)
    return st.none()


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "date":
        return st.dates(date(1900, 1, 1), date(9999, 12, 31)).map(str)
    if fmt == "date-time":
        return st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
            lambda d: d.isoformat()
        )
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    low = schema.get("minLength", 0)
    high = schema.get("maxLength", max(low, 60))
    return st.text(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        min_size=low,
        max_size=min(high, max(low, 60)),
    )


def _object(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fixed = {k: from_schema(v, root) for k, v in props.items() if k in required}
    optional = {k: from_schema(v, root) for k, v in props.items() if k not in required}
    return st.fixed_dictionaries(fixed, optional=optional)


__all__ = ["from_schema"]
