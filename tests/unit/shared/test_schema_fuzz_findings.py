"""What the schema fuzzer (tests/integration/test_schema_fuzz.py) found, pinned without
a broker or a database: each test failed before its fix."""

from __future__ import annotations

import httpx
import pytest

from services.funding.entrypoints.schemas import SchemeIn, StoredSchemeOut
from shared.auth import mint_token
from shared.http import PROBLEM_MEDIA_TYPE
from tests.unit.shared.test_api_conventions import CONFIG, SERVICES, operations, service_app


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_with_a_body_documents_400_and_404(service: str) -> None:
    # 400: a body that is not UTF-8 JSON never reaches validation; 404: a body naming a
    # site, project or scheme that does not exist (POST /closure-shocks, /applications).
    missing = [
        f"{method} {path} {status}"
        for method, path, operation in operations(service_app(service))
        if "requestBody" in operation
        for status in ("400", "404")
        if status not in operation["responses"]
    ]
    assert missing == []


async def test_a_body_that_is_not_json_is_a_400_problem() -> None:
    token = mint_token(CONFIG, subject="u-1", roles=["crisis_cell"], territories=["ti-3205"])
    transport = httpx.ASGITransport(app=service_app("site_registry"))
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as client:
        resp = await client.post(
            "/sites",
            content=b"\xa9qN\xe9\xcf\xaf",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert resp.status_code == 400
    assert resp.headers["content-type"] == PROBLEM_MEDIA_TYPE


@pytest.mark.parametrize(
    "url, field",
    [
        ("/projects/stats?territory=ti-3205%00", "territory"),  # the fuzzer's 500
        ("/projects?kind=a%01b", "kind"),
        ("/projects/%00", "project_id"),
    ],
)
async def test_a_control_character_in_a_parameter_is_a_422_naming_it(url: str, field: str) -> None:
    # PostgreSQL cannot even compare a string holding NUL: the read answered 500.
    token = mint_token(CONFIG, subject="admin", roles=["admin"])
    transport = httpx.ASGITransport(app=service_app("detection"))
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as client:
        resp = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert resp.json()["detail"].startswith(f"{field}: control characters")


def test_a_scheme_as_read_is_a_scheme_to_write() -> None:
    # PUT /schemes/{id} refused the body GET /schemes/{id} answers (extra="forbid").
    read_only = set(StoredSchemeOut.model_fields) - set(SchemeIn.model_fields)
    assert read_only == set()


@pytest.mark.parametrize("path", ["/projects", "/projects/stats"])
async def test_a_listing_of_another_territory_answers_a_documented_status(path: str) -> None:
    # Out of the admin fuzzer's sight: detection answers 404 (its views' one visibility
    # rule), which a listing without a path parameter did not document.
    app = service_app("detection")
    token = mint_token(CONFIG, subject="cell", roles=["crisis_cell"], territories=["ti-3205"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as client:
        resp = await client.get(
            path, params={"territory": "ti-3209"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert resp.status_code == 404, resp.text
    assert resp.headers["content-type"] == PROBLEM_MEDIA_TYPE
    documented = app.openapi()["paths"][path]["get"]["responses"]["404"]
    assert documented["content"] == {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
