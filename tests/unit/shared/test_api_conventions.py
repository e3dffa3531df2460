"""The conventions of docs/architecture.md ("one way to do each thing"), checked on the
code itself so that a new route, command or domain function cannot drift from them:
every route declares its response, every state-changing route goes through the command
bus (Idempotency-Key), every error is documented as problem details, the domain's public
signatures are typed without `Any`, and the shared concepts are defined once."""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from shared.auth import AuthConfig, mint_token
from shared.events.catalogue import topics_consumed_by
from shared.http import PROBLEM_MEDIA_TYPE

SERVICES = ("site_registry", "campaigns", "detection", "funding")
ROOT = Path(__file__).resolve().parents[3]
CONFIG = AuthConfig("unit-tests-secret-of-at-least-32-characters!")
PROBES = {"/healthz", "/readyz", "/metrics", "/asyncapi.json"}

#: State-changing routes that take no Idempotency-Key, and why.
NO_KEY = {
    # Each item of an offline sync carries its own client id, its idempotency key.
    ("POST", "/sync"): "items are keyed by their client ids",
}


def service_app(service: str) -> FastAPI:
    # create_app only keeps the runtime in app.state until a request or the lifespan
    # runs: a stand-in is enough to inspect the routes and the OpenAPI document.
    module = importlib.import_module(f"services.{service}.entrypoints.http")
    # The sessions are opened (dependencies resolve before the body is validated) but
    # never used by a request refused at validation.
    stand_in = types.SimpleNamespace(
        service=service,
        auth=CONFIG,
        relay=None,
        uow=None,
        session_factory=contextlib.nullcontext,
        workers=tuple,
        engines=dict,
    )
    return cast(FastAPI, module.create_app(stand_in, run_workers=False))


@pytest.fixture(scope="module", params=SERVICES)
def app(request: pytest.FixtureRequest) -> FastAPI:
    return service_app(request.param)


def routes(app: FastAPI) -> Iterator[APIRoute]:
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path not in PROBES:
            yield route


def operations(app: FastAPI) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if path not in PROBES:
                yield method.upper(), path, operation


def test_every_route_declares_its_response(app: FastAPI) -> None:
    missing = []
    for method, path, operation in operations(app):
        ok = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        contents = [c for r in ok.values() for c in r.get("content", {}).values()]
        typed = [c for c in contents if c.get("schema") not in (None, {})]
        if not ok or not typed:
            missing.append(f"{method} {path}")
    assert missing == [], f"routes without a documented response model: {missing}"


def test_every_state_changing_route_takes_an_idempotency_key(app: FastAPI) -> None:
    missing = []
    for method, path, operation in operations(app):
        if method == "GET" or (method, path) in NO_KEY:
            continue
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        if "Idempotency-Key" not in headers:
            missing.append(f"{method} {path}")
    assert missing == [], f"state-changing routes outside the command bus: {missing}"


def test_every_error_response_is_documented_as_problem_details(app: FastAPI) -> None:
    wrong = []
    for method, path, operation in operations(app):
        errors = {k: v for k, v in operation["responses"].items() if k[0] in "45"}
        if "503" not in errors:
            wrong.append(f"{method} {path}: no 503")
        for status, response in errors.items():
            schema = response.get("content", {}).get(PROBLEM_MEDIA_TYPE, {}).get("schema")
            if schema != {"$ref": "#/components/schemas/Problem"}:
                wrong.append(f"{method} {path} {status}")
    assert wrong == []
    assert "HTTPValidationError" not in app.openapi()["components"]["schemas"]


async def test_errors_are_problem_details_with_the_invalid_fields() -> None:
    app = service_app("site_registry")
    token = mint_token(CONFIG, subject="u-1", roles=["crisis_cell"], territories=["ti-3205"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as client:
        invalid = await client.post(
            "/sites", json={"siret": "nope"}, headers={"Authorization": f"Bearer {token}"}
        )
        anonymous = await client.get("/sites")

    assert invalid.status_code == 422
    assert invalid.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = invalid.json()
    assert body["type"] == "urn:rebond:problem:invalid_input"
    assert body["status"] == 422 and body["title"] == "Unprocessable Content"
    assert body["instance"] == "/sites"
    assert {"naf_code", "commune_insee"} <= {e["field"] for e in body["errors"]}
    assert "naf_code" in body["detail"]
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthenticated"
    assert anonymous.json()["detail"] == "missing bearer token"


# --- the domain's public signatures -----------------------------------------------------


def domain_modules() -> Iterator[types.ModuleType]:
    for service in SERVICES:
        package = importlib.import_module(f"services.{service}.domain")
        for info in pkgutil.iter_modules(package.__path__):
            yield importlib.import_module(f"{package.__name__}.{info.name}")


def mentions_any(hint: Any) -> bool:
    if hint is Any:
        return True
    return any(mentions_any(arg) for arg in typing.get_args(hint))


def public_callables(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                fn = member.__func__ if isinstance(member, classmethod | staticmethod) else member
                if isinstance(member, property):
                    fn = member.fget
                if inspect.isfunction(fn):
                    yield f"{name}.{attr}", fn


def test_domain_public_signatures_carry_no_any() -> None:
    offenders = []
    for module in domain_modules():
        for name, fn in public_callables(module):
            hints = typing.get_type_hints(fn)
            bad = [p for p, h in hints.items() if mentions_any(h)]
            if bad:
                offenders.append(f"{module.__name__}.{name}: {', '.join(bad)}")
    assert offenders == [], "Any in the domain's public signatures:\n" + "\n".join(offenders)


# --- the same rooms, the shared concepts defined once -----------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_rooms(service: str) -> None:
    layer = ROOT / "services" / service / "service_layer"
    expected = {"commands.py", "views.py", "unit_of_work.py"}
    if topics_consumed_by(service):
        expected.add("handlers.py")
    present = {p.name for p in layer.glob("*.py")}
    assert expected <= present, f"{service}: missing {sorted(expected - present)}"
    assert (ROOT / "services" / service / "entrypoints" / "schemas.py").exists()


SHARED_ONCE = {"Clock", "OutOfScope", "BadCursor", "IdempotencyKey", "CommandBus"}
SHARED_FUNCTIONS = {"encode_cursor", "decode_cursor", "run_command", "system_clock"}


def test_shared_concepts_are_defined_once_in_shared() -> None:
    copies = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            name = getattr(node, "name", None)
            if isinstance(node, ast.ClassDef) and name in SHARED_ONCE:
                copies.append(f"{path.relative_to(ROOT)}: class {name}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                name in SHARED_FUNCTIONS or name in {"_cursor", "_uncursor", "_run"}
            ):
                copies.append(f"{path.relative_to(ROOT)}: def {name}")
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in {"IdemKey", "Service"} for t in node.targets
            ):
                copies.append(f"{path.relative_to(ROOT)}: {ast.unparse(node.targets[0])} =")
    assert copies == [], "defined again outside shared/:\n" + "\n".join(copies)


def test_entrypoints_query_no_rows() -> None:
    """Routes build commands and call views; the rows stay behind the service layer."""
    offenders = []
    for service in SERVICES:
        path = ROOT / "services" / service / "entrypoints" / "http.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module.endswith("adapters.orm") or node.module == "sqlmodel")
            ):
                offenders.append(f"{service}: from {node.module} import …")
    assert offenders == []
