"""The JSON Schemas of the event payloads: complete, valid, faithful to the models, and
committed up to date under docs/schemas (a contract change without a re-export fails)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from shared.events import schemas
from shared.events.catalogue import ALL_TOPICS, event_registry
from shared.events.envelope import EventPayload
from shared.events.examples import EXAMPLES
from shared.events.site_registry import (
    ClosureAnnounced,
    SiteClosed,
    SiteRegistered,
)

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMITTED = REPO_ROOT / "docs" / "schemas"
SIRET = "12345678900011"

#: one real instance of every payload model of the catalogue
SAMPLES = EXAMPLES
MODELS = sorted(event_registry().values(), key=lambda m: m.event_type)


def model_id(model: type[EventPayload]) -> str:
    return model.__name__


def wire(payload: EventPayload) -> Any:
    """The payload as a consumer receives it: the JSON of the message value."""
    return json.loads(payload.model_dump_json())


def validator(model: type[EventPayload]) -> Draft202012Validator:
    return Draft202012Validator(schemas.all_schemas()[model.event_type])


def test_all_schemas_covers_every_event_type_of_the_catalogue() -> None:
    expected = {m.event_type for topic in ALL_TOPICS for m in topic.event_types}

    assert set(schemas.all_schemas()) == expected
    assert expected


def test_there_is_a_sample_for_every_payload_model() -> None:
    assert set(SAMPLES) == set(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_schema_is_valid_json_schema_2020_12(model: type[EventPayload]) -> None:
    schema = schemas.all_schemas()[model.event_type]

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_schema_is_identified_by_its_event_type(model: type[EventPayload]) -> None:
    schema = schemas.payload_schema(model)

    assert schema["$id"] == f"urn:rebond:event:{model.event_type}"
    assert schema["x-ce-type"] == model.event_type
    assert schema["x-key-field"] == model.key_field
    assert schema["title"] == model.__name__
    assert schema["type"] == "object"
    assert list(schema["x-identity"]) == list(model.identity)


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_schema_tells_readers_to_tolerate_unknown_properties(model: type[EventPayload]) -> None:
    schema = schemas.all_schemas()[model.event_type]

    # The readers' contract: no level forbids a property a newer release may add.
    assert '"additionalProperties": false' not in json.dumps(schema)
    assert schema["x-compatibility"] == "FULL_TRANSITIVE"
    assert "ignore properties they do not know" in schema["x-readers"]
    newer = {**wire(SAMPLES[model]), "added_by_a_newer_release": {"any": "thing"}}
    assert list(validator(model).iter_errors(newer)) == []


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_a_real_payload_validates_against_its_schema(model: type[EventPayload]) -> None:
    errors = list(validator(model).iter_errors(wire(SAMPLES[model])))

    assert errors == []


@pytest.mark.parametrize("model", MODELS, ids=model_id)
def test_a_payload_missing_its_key_field_does_not_validate(model: type[EventPayload]) -> None:
    instance = wire(SAMPLES[model])
    del instance[model.key_field]

    with pytest.raises(jsonschema.ValidationError, match=f"'{model.key_field}' is a required"):
        validator(model).validate(instance)


def test_schema_carries_the_model_constraints() -> None:
    announced = wire(SAMPLES[ClosureAnnounced])
    check = validator(ClosureAnnounced)

    assert not check.is_valid({**announced, "jobs_lost": 0})
    assert not check.is_valid({**announced, "site_id": "1234"})
    assert not check.is_valid({**announced, "version": 0})
    assert check.is_valid({**announced, "site_name": "Fonderie du Nord"})
    registered = wire(SAMPLES[SiteRegistered])
    assert not validator(SiteRegistered).is_valid({**registered, "status": "demolished"})


def test_render_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = schemas.render({"b": 1, "a": {"d": [1], "c": "é"}}).decode()

    assert text == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1\n    ]\n  },\n  "b": 1\n}\n'


def test_export_writes_one_file_per_event_type_and_is_byte_stable(tmp_path: Path) -> None:
    first = schemas.export(tmp_path)
    contents = {p.name: p.read_bytes() for p in first}
    second = schemas.export(tmp_path)

    assert sorted(p.name for p in first) == sorted(f"{m.event_type}.schema.json" for m in MODELS)
    assert {p.name: p.read_bytes() for p in second} == contents
    for name, content in contents.items():
        assert content.endswith(b"}\n")
        assert json.loads(content)["x-ce-type"] == name.removesuffix(".schema.json")
    assert schemas.check(tmp_path) == []


def test_check_reports_missing_stale_and_extra_files(tmp_path: Path) -> None:
    schemas.export(tmp_path)
    stale = tmp_path / f"{SiteClosed.event_type}.schema.json"
    stale.write_bytes(stale.read_bytes().replace(b'"minimum": 1', b'"minimum": 0'))
    (tmp_path / f"{ClosureAnnounced.event_type}.schema.json").unlink()
    (tmp_path / "rebond.site_registry.site_exploded.v1.schema.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("not a schema\n")

    assert schemas.check(tmp_path) == [
        f"missing {ClosureAnnounced.event_type}.schema.json",
        f"stale {SiteClosed.event_type}.schema.json",
        "extra rebond.site_registry.site_exploded.v1.schema.json",
    ]


def test_export_removes_schemas_of_event_types_no_longer_in_the_catalogue(
    tmp_path: Path,
) -> None:
    retired = tmp_path / "rebond.site_registry.site_exploded.v1.schema.json"
    retired.write_text("{}\n")
    other = tmp_path / "README.md"
    other.write_text("kept\n")

    schemas.export(tmp_path)

    assert not retired.exists()
    assert other.read_text() == "kept\n"
    assert schemas.check(tmp_path) == []


def test_check_of_a_missing_folder_reports_every_schema_missing(tmp_path: Path) -> None:
    problems = schemas.check(tmp_path / "nowhere")

    assert problems == [f"missing {m.event_type}.schema.json" for m in MODELS]


def test_cli_check_exits_1_listing_the_differences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = schemas.main(["check", str(tmp_path)])

    assert code == 1
    err = capsys.readouterr().err
    assert "python -m shared.events.schemas export" in err
    for model in MODELS:
        assert f"missing {model.event_type}.schema.json" in err


def test_cli_export_then_check_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert schemas.main(["export", str(tmp_path / "out")]) == 0
    assert schemas.main(["check", str(tmp_path / "out")]) == 0
    assert "up to date" in capsys.readouterr().out


def test_committed_schemas_are_up_to_date() -> None:
    problems = schemas.check(COMMITTED)

    assert problems == [], (
        "docs/schemas differs from the event contracts; if the change is intended, run"
        " `uv run python -m shared.events.schemas export docs/schemas` and commit: "
        + ", ".join(problems)
    )
