"""docker-compose.yml: valid against the Compose Specification's JSON Schema
(deploy/schemas/compose), and the start-up order it promises: the topics and each
service's migration complete before the service starts, the services are healthy before
the pages, and every one runs hardened and as production."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.unit.deploy.manifests import ROOT, SCHEMAS

COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {
    "site-registry": "site_registry",
    "campaigns": "campaigns",
    "detection": "detection",
    "funding": "funding",
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / "compose/compose-spec.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


def test_the_compose_file_is_valid_against_the_compose_specification() -> None:
    problems = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator().iter_errors(compose())
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda c: c["services"]["kafka"].update(restart_policy="always"), "restart_policy"),
        (lambda c: c["services"]["web"].update(ports=[{"targt": 8005}]), "targt"),
        (
            lambda c: c["services"]["campaigns"]["depends_on"]["kafka-topics"].update(
                condition="service_done"
            ),
            "service_done",
        ),
    ],
)
def test_the_schema_catches_a_spoilt_compose_file(spoil: Any, expected: str) -> None:
    spoilt = copy.deepcopy(compose())
    spoil(spoilt)
    # Under unevaluatedProperties one bad key makes every sibling "unexpected": look for
    # the key in the messages rather than at the first error.
    messages = " ".join(e.message for e in validator().iter_errors(spoilt))
    assert expected in messages


@pytest.mark.parametrize("svc", SERVICES)
def test_each_service_starts_after_its_migration_and_the_topics(svc: str) -> None:
    services = compose()["services"]
    migrate, serve = services[f"{svc}-migrate"], services[svc]

    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    # The same image, settings and database as the service it prepares.
    assert migrate["image"] == serve["image"]
    assert migrate["build"] == serve["build"]
    assert migrate["environment"] == serve["environment"]
    assert serve["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "kafka-topics": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        f"{svc}-migrate": {"condition": "service_completed_successfully"},
    }
    assert serve["build"]["args"]["SERVICE"] == serve["environment"]["SERVICE"] == SERVICES[svc]


def test_the_topics_one_shot_runs_the_generated_script() -> None:
    topics = compose()["services"]["kafka-topics"]
    (mount,) = topics["volumes"]
    source, target, mode = mount.split(":")

    assert (ROOT / source).resolve() == (ROOT / "deploy/docker/create-topics.sh").resolve()
    assert topics["entrypoint"] == ["/bin/sh", target]
    assert mode == "ro"
    assert topics["image"] == compose()["services"]["kafka"]["image"]  # its kafka-topics.sh
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}


def test_long_running_services_are_hardened_and_health_checked() -> None:
    services = compose()["services"]
    rebond = [name for name, s in services.items() if "build" in s]
    assert len(rebond) == 2 * len(SERVICES) + 1  # services, their migrations, web
    for name in rebond:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert any(t.startswith("/tmp") for t in service["tmpfs"]), name
        assert service["environment"]["REBOND_ENVIRONMENT"] == "production", name
        if not name.endswith("-migrate"):
            assert service["healthcheck"]["test"][:2] == ["CMD", "python"], name
            assert service["restart"] == "unless-stopped", name
    assert {d["condition"] for d in services["web"]["depends_on"].values()} == {"service_healthy"}


def test_database_urls_match_the_roles_the_init_script_creates() -> None:
    sql = (ROOT / "deploy/postgres/init-databases.sql").read_text()
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']+)';", sql))
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    services = compose()["services"]
    for svc, module in SERVICES.items():
        env = services[svc]["environment"]
        url = env[f"{module.upper()}_DATABASE_URL"]
        assert url == (f"postgresql+asyncpg://{module}:{roles[module]}@postgres:5432/{module}"), svc
        assert databases[module] == module
        port = env[f"{module.upper()}_HTTP_PORT"]
        assert services[svc]["ports"] == [f"127.0.0.1:{port}:{port}"]
