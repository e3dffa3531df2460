"""JSON Schemas of every event payload of the catalogue, generated from the pydantic models.

The schemas are the language-neutral contract of the message *values* (see `envelope`):
a consumer written in anything but Python validates a value against the schema named by
the message's `ce_type` header. They are committed under `docs/schemas/`, one file per
event type (`<event_type>.schema.json`), and a unit test fails when a payload model
changes without a re-export:

    python -m shared.events.schemas export docs/schemas
    python -m shared.events.schemas check docs/schemas   # exit 1 on stale/missing/extra

Output is byte-stable (sorted keys, 2-space indent, UTF-8, trailing newline), so the
check is a plain byte comparison and a diff of the folder is a diff of the contract.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shared.events.catalogue import ALL_TOPICS, Topic
from shared.events.envelope import EventPayload

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILE_SUFFIX = ".schema.json"


def schema_id(event_type: str) -> str:
    """A stable identifier that does not pretend to be a resolvable URL."""
    return f"urn:rebond:event:{event_type}"


def file_name(event_type: str) -> str:
    return f"{event_type}{FILE_SUFFIX}"


READERS_TOLERATE = (
    "Readers must ignore properties they do not know (a compatible release may add"
    " optional ones without changing the event type); writers send only the properties"
    " listed here."
)


def _tolerant(node: Any) -> Any:
    """The models forbid unknown fields when *written*; the published schema is the
    readers' contract, so it allows them (no `additionalProperties: false`)."""
    if isinstance(node, dict):
        return {
            k: _tolerant(v)
            for k, v in node.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_tolerant(v) for v in node]
    return node


def payload_schema(model: type[EventPayload], topic: Topic | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one payload model, as readers must read it."""
    schema: dict[str, Any] = _tolerant(model.model_json_schema())
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id(model.event_type)
    schema["title"] = model.__name__
    schema["x-ce-type"] = model.event_type
    # The field whose value is the Kafka key and the `ce_subject` header.
    schema["x-key-field"] = model.key_field
    # The fields that identify the business fact: the same values twice are one fact.
    schema["x-identity"] = list(model.identity)
    schema["x-readers"] = READERS_TOLERATE
    if topic is not None:
        schema["x-compatibility"] = topic.compatibility
    return schema


def all_schemas(topics: Iterable[Topic] = ALL_TOPICS) -> dict[str, dict[str, Any]]:
    """event type → JSON Schema, for every event type of the catalogue."""
    out: dict[str, dict[str, Any]] = {}
    for topic in topics:
        for model in topic.event_types:
            if model.event_type in out:
                raise ValueError(f"event type {model.event_type} is declared twice")
            out[model.event_type] = payload_schema(model, topic)
    return out


def render(schema: dict[str, Any]) -> bytes:
    """The exact bytes written for a schema: sorted keys, 2-space indent, final newline."""
    return (json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def expected_files(topics: Iterable[Topic] = ALL_TOPICS) -> dict[str, bytes]:
    """file name → content, for every event type of the catalogue."""
    return {
        file_name(event_type): render(schema)
        for event_type, schema in sorted(all_schemas(topics).items())
    }


def export(directory: Path, topics: Iterable[Topic] = ALL_TOPICS) -> list[Path]:
    """Write one schema file per event type into `directory` and return their paths.

    Schema files of event types no longer in the catalogue are removed, so that an
    export is always followed by a clean `check`. Other files are left alone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    expected = expected_files(topics)
    for stale in _schema_files(directory):
        if stale.name not in expected:
            stale.unlink()
    written: list[Path] = []
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
        written.append(path)
    return written


def check(directory: Path, topics: Iterable[Topic] = ALL_TOPICS) -> list[str]:
    """Differences between `directory` and a fresh export; an empty list means up to date.

    Each line reads `missing <file>`, `stale <file>` or `extra <file>`.
    """
    expected = expected_files(topics)
    present = {p.name: p for p in _schema_files(directory)}
    problems: list[str] = []
    for name, content in expected.items():
        path = present.get(name)
        if path is None:
            problems.append(f"missing {name}")
        elif path.read_bytes() != content:
            problems.append(f"stale {name}")
    problems.extend(f"extra {name}" for name in sorted(present) if name not in expected)
    return problems


def _schema_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.glob(f"*{FILE_SUFFIX}") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.events.schemas",
        description="Export or check the JSON Schemas of the event payloads.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("export", "write one <event_type>.schema.json per event type"),
        ("check", "exit 1 if the folder differs from a fresh export"),
    ):
        cmd = sub.add_parser(command, help=help_text)
        cmd.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    directory: Path = args.directory

    if args.command == "export":
        paths = export(directory)
        sys.stdout.write(f"wrote {len(paths)} schemas to {directory}\n")
        return 0

    problems = check(directory)
    if problems:
        sys.stderr.write(
            f"{directory} is not up to date with the event contracts"
            " (run `python -m shared.events.schemas export "
            f"{directory}`):\n"
        )
        sys.stderr.writelines(f"  {line}\n" for line in problems)
        return 1
    sys.stdout.write(f"{directory}: {len(expected_files())} schemas up to date\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
