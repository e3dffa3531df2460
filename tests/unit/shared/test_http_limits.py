"""The door of every service (`shared/http.py`): request bodies over their path's limit are
refused with 413 before they are parsed, and a client's correlation id is kept only in a
safe shape. A tiny app with `install_common`, driven through httpx's ASGI transport."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Body, FastAPI
from structlog.testing import capture_logs

from shared.http import DEFAULT_BODY_LIMIT, install_common
from shared.logging import correlation_id_var

BIG = 2 * 1024 * 1024  # over the default limit, under the import limit below


def tiny_app() -> FastAPI:
    app = FastAPI()
    install_common(app, body_limits={"/import/": 4 * 1024 * 1024})
    seen: dict[str, Any] = {}
    app.state.seen = seen

    @app.post("/things")
    async def things(body: dict[str, Any] = Body()) -> dict[str, int]:  # noqa: B008
        return {"keys": len(body)}

    @app.post("/import/doc")
    async def import_doc(body: dict[str, Any] = Body()) -> dict[str, int]:  # noqa: B008
        return {"keys": len(body)}

    @app.get("/whoami")
    async def whoami() -> dict[str, str | None]:
        return {"correlation_id": correlation_id_var.get()}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=tiny_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://tiny") as c:
        yield c


def json_of(size: int) -> bytes:
    return b'{"a":"' + b"x" * (size - 8) + b'"}'


def assert_too_large(resp: httpx.Response) -> None:
    assert resp.status_code == 413, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == "too_large"
    assert body["status"] == 413
    assert "limit" in body["detail"]


async def test_a_body_within_the_limit_is_read(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/things", content=json_of(1000), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 200, resp.text


async def test_a_declared_length_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/things", content=json_of(BIG), headers={"content-type": "application/json"}
    )
    assert_too_large(resp)
    assert resp.json()["instance"] == "/things"


async def test_a_chunked_body_over_the_limit_is_refused_while_streaming(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"a":"'
        for _ in range(64):
            sent += 64 * 1024
            yield b"x" * (64 * 1024)
        yield b'"}'

    # An async iterator has no length: httpx sends it chunked, without Content-Length.
    resp = await client.post(
        "/things", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in resp.request.headers
    assert_too_large(resp)


async def test_the_import_paths_take_a_larger_body(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/import/doc", content=json_of(BIG), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 200, resp.text
    over = await client.post(
        "/import/doc",
        content=json_of(5 * 1024 * 1024),
        headers={"content-type": "application/json"},
    )
    assert_too_large(over)


async def test_the_default_limit_is_one_mebibyte(client: httpx.AsyncClient) -> None:
    assert DEFAULT_BODY_LIMIT == 1024 * 1024
    at = await client.post(
        "/things", content=json_of(DEFAULT_BODY_LIMIT), headers={"content-type": "application/json"}
    )
    assert at.status_code == 200, at.text
    over = await client.post(
        "/things",
        content=json_of(DEFAULT_BODY_LIMIT + 1),
        headers={"content-type": "application/json"},
    )
    assert_too_large(over)


@pytest.mark.parametrize(
    "given",
    ["0a9226f0-894d-462f-b2b1-763f1d59c035", "req-42", "a.b_c-D9", "x" * 64],
)
async def test_a_safe_correlation_id_is_kept(client: httpx.AsyncClient, given: str) -> None:
    resp = await client.get("/whoami", headers={"X-Correlation-ID": given})
    assert resp.json()["correlation_id"] == given
    assert resp.headers["x-correlation-id"] == given


@pytest.mark.parametrize(
    "given",
    [
        "jean.dupont@example.fr",
        "x" * 65,
        "two words",
        "+33 6 12 34 56 78",
        "a/b",
        "é",
    ],
)
async def test_an_unsafe_correlation_id_is_replaced_and_logged(
    client: httpx.AsyncClient, given: str
) -> None:
    with capture_logs() as logs:
        resp = await client.get("/whoami", headers={"X-Correlation-ID": given.encode()})
    used = resp.json()["correlation_id"]
    assert used != given
    assert str(uuid.UUID(used)) == used
    assert resp.headers["x-correlation-id"] == used
    replaced = [e for e in logs if e["event"].startswith("correlation id replaced")]
    assert len(replaced) == 1
    assert given not in str(logs)


async def test_without_a_correlation_id_a_new_one_is_made_silently(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        resp = await client.get("/whoami")
    assert str(uuid.UUID(resp.json()["correlation_id"]))
    assert not [e for e in logs if e["event"].startswith("correlation id replaced")]
