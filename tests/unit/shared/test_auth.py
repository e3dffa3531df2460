"""Bearer tokens, roles and scopes; and the rule that every HTTP route of the site
registry declares who may call it."""

from __future__ import annotations

import types
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, cast

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, HTTPException
from fastapi.dependencies.models import Dependant

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints.http import create_app
from shared import auth
from shared.auth import (
    Allow,
    AuthConfig,
    Principal,
    Role,
    decode_token,
    forbid_territory,
    mint_token,
)
from shared.http import allows_of, api_routes
from shared.settings import DEV_JWT_SECRET

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
CONFIG = AuthConfig(SECRET)


def principal(
    *roles: Role, territories: tuple[str, ...] = (), regions: tuple[str, ...] = ()
) -> Principal:
    return Principal(
        subject="u-1",
        roles=frozenset(roles),
        territories=frozenset(territories),
        regions=frozenset(regions),
    )


def decode_error(config: AuthConfig, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as excinfo:
        decode_token(config, token)
    return excinfo.value


# --- tokens ----------------------------------------------------------------------------


def test_minted_token_decodes_to_the_same_roles_and_scopes() -> None:
    token = mint_token(
        CONFIG,
        subject="agent-17",
        roles=["crisis_cell", "funder"],
        territories=["ti-3205", "ti-3206"],
        regions=["32"],
    )

    found = decode_token(CONFIG, token)

    assert found == Principal(
        subject="agent-17",
        roles=frozenset({Role.CRISIS_CELL, Role.FUNDER}),
        territories=frozenset({"ti-3205", "ti-3206"}),
        regions=frozenset({"32"}),
    )
    assert not found.is_admin


def test_minted_token_expires_after_its_ttl() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    token = mint_token(CONFIG, subject="s", roles=["admin"], ttl=timedelta(hours=2))

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="rebond")

    expires = datetime.fromtimestamp(claims["exp"], UTC)
    assert before + timedelta(hours=2) <= expires <= before + timedelta(hours=2, seconds=5)
    assert claims["aud"] == "rebond"
    assert claims["jti"]


def test_minting_refuses_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="'mayor' is not a valid Role"):
        mint_token(CONFIG, subject="s", roles=["mayor"])


def test_expired_token_is_refused_with_401_saying_expired() -> None:
    token = mint_token(CONFIG, subject="s", roles=["admin"], ttl=timedelta(seconds=-5))

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "expired" in str(error.detail)
    assert error.headers == {"WWW-Authenticate": "Bearer"}


def test_token_signed_with_another_secret_is_refused_with_401() -> None:
    token = mint_token(
        AuthConfig("another-secret-of-the-same-length-0123456789"), subject="s", roles=["admin"]
    )

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "invalid token" in str(error.detail)
    assert "Signature" in str(error.detail)


def test_token_for_another_audience_is_refused_with_401() -> None:
    token = mint_token(AuthConfig(SECRET, audience="other-app"), subject="s", roles=["admin"])

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "audience" in str(error.detail).lower()


def test_token_with_an_unknown_role_is_refused_with_401() -> None:
    now = datetime.now(UTC)
    claims = {"sub": "s", "aud": "rebond", "exp": now + timedelta(hours=1), "roles": ["mayor"]}
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "mayor" in str(error.detail)


def test_token_without_a_subject_is_refused_with_401() -> None:
    claims = {"aud": "rebond", "exp": datetime.now(UTC) + timedelta(hours=1), "roles": []}
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "sub" in str(error.detail)


def test_unsigned_token_is_refused_with_401() -> None:
    claims = {"sub": "s", "aud": "rebond", "exp": datetime.now(UTC) + timedelta(hours=1)}
    token = jwt.encode(claims, key=None, algorithm="none")

    assert decode_error(CONFIG, token).status_code == 401


def test_garbage_is_refused_with_401() -> None:
    assert decode_error(CONFIG, "not.a.token").status_code == 401


# --- roles and scopes -------------------------------------------------------------------


def test_allow_refuses_a_role_not_in_the_list_with_403() -> None:
    allow = Allow(Role.CRISIS_CELL)

    with pytest.raises(HTTPException) as excinfo:
        allow.check(principal(Role.CONSULTANT, Role.FUNDER))

    assert excinfo.value.status_code == 403
    assert excinfo.value.detail == "this endpoint is for: admin, crisis_cell"


def test_allow_lets_a_listed_role_through() -> None:
    caller = principal(Role.CONSULTANT)

    assert Allow(Role.CRISIS_CELL, Role.CONSULTANT).check(caller) is caller


def test_allow_always_lets_admin_through() -> None:
    admin = principal(Role.ADMIN)

    assert Allow(Role.FUNDER).check(admin) is admin
    assert Allow().check(admin) is admin


def test_allow_with_no_roles_is_admin_only() -> None:
    with pytest.raises(HTTPException) as excinfo:
        Allow().check(principal(Role.CRISIS_CELL, Role.CONSULTANT, Role.FUNDER))

    assert excinfo.value.status_code == 403
    assert Allow().roles == {Role.ADMIN}


def test_allow_refuses_a_token_with_no_role() -> None:
    with pytest.raises(HTTPException) as excinfo:
        Allow(Role.CRISIS_CELL, Role.CONSULTANT, Role.FUNDER).check(principal())

    assert excinfo.value.status_code == 403


def test_openapi_names_the_roles_of_each_operation(registry_app: FastAPI) -> None:
    paths = registry_app.openapi()["paths"]

    assert paths["/closure-shocks"]["post"]["x-roles"] == ["admin", "crisis_cell"]
    assert paths["/sites"]["get"]["x-roles"] == ["admin", "consultant", "crisis_cell"]
    assert "x-roles" not in paths["/healthz"]["get"]


def test_principal_sees_only_its_own_territories() -> None:
    cell = principal(Role.CRISIS_CELL, territories=("ti-3205",))

    assert cell.can_see_territory("ti-3205")
    assert not cell.can_see_territory("ti-1101")
    assert cell.can_see_any_territory(["ti-1101", "ti-3205"])
    assert not cell.can_see_any_territory(["ti-1101"])
    assert not cell.can_see_any_territory([])


def test_principal_sees_only_its_own_regions() -> None:
    funder = principal(Role.FUNDER, regions=("32",))

    assert funder.can_see_region("32")
    assert not funder.can_see_region("11")
    assert not funder.can_see_territory("ti-3205")


def test_admin_sees_every_territory_and_region() -> None:
    admin = principal(Role.ADMIN)

    assert admin.is_admin
    assert admin.can_see_territory("ti-3205")
    assert admin.can_see_any_territory(["ti-1101"])
    assert admin.can_see_region("11")


def test_forbid_territory_is_a_403_naming_the_territory() -> None:
    error = forbid_territory("ti-3205")

    assert error.status_code == 403
    assert "ti-3205" in str(error.detail)


# --- the dependencies in an app --------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.auth = CONFIG

    @app.get("/funding")
    def funding(
        caller: Annotated[Principal, Depends(Allow(Role.FUNDER))],
    ) -> dict[str, Any]:
        return {"sub": caller.subject, "regions": sorted(caller.regions)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as c:
        yield c


def bearer(*roles: str, **scopes: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(CONFIG, subject='u-9', roles=roles, **scopes)}"}


async def test_request_without_a_token_gets_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/funding")

    assert response.status_code == 401
    assert response.json()["detail"] == "missing bearer token"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_request_with_a_wrong_role_gets_403(client: httpx.AsyncClient) -> None:
    response = await client.get("/funding", headers=bearer("consultant"))

    assert response.status_code == 403


async def test_request_with_an_allowed_role_reaches_the_endpoint(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/funding", headers=bearer("funder", regions=["32"]))

    assert response.status_code == 200
    assert response.json() == {"sub": "u-9", "regions": ["32"]}


async def test_request_with_an_expired_token_gets_401(client: httpx.AsyncClient) -> None:
    token = mint_token(CONFIG, subject="u", roles=["funder"], ttl=timedelta(seconds=-1))

    response = await client.get("/funding", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


# --- development CLI --------------------------------------------------------------------


def test_cli_mints_a_token_signed_with_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # ServiceSettings has no prefix: it reads both the shared and the bare variables.
    for name in (
        "REBOND_ENVIRONMENT",
        "REBOND_JWT_SECRET",
        "ENVIRONMENT",
        "JWT_SECRET",
        "JWT_ALGORITHM",
        "JWT_AUDIENCE",
    ):
        monkeypatch.delenv(name, raising=False)

    code = auth.main(["mint", "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "me"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.endswith("\n")
    found = decode_token(AuthConfig(DEV_JWT_SECRET), out.strip())
    assert found.subject == "me"
    assert found.roles == {Role.CRISIS_CELL}
    assert found.territories == {"ti-3205"}
    assert found.regions == frozenset()


def test_cli_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        auth.main(["mint", "--role", "mayor"])

    assert excinfo.value.code == 2
    assert "invalid choice: 'mayor'" in capsys.readouterr().err


# --- every route of the site registry says who may call it -----------------------------


OPS_ROUTES = {"/healthz", "/readyz"}  # probes: no token, no data


def allow_dependencies(dependant: Dependant) -> list[Allow]:
    return list(allows_of(dependant))


@pytest.fixture(scope="module")
def registry_app() -> FastAPI:
    # The app only keeps the registry in `app.state` (and reads its auth config) until a
    # request arrives or the lifespan runs: a stand-in is enough to inspect the routes.
    stand_in = types.SimpleNamespace(auth=CONFIG, relay=None)
    return create_app(cast(SiteRegistry, stand_in), run_workers=False)


def registry_routes(app: FastAPI) -> dict[tuple[str, str], list[Allow]]:
    """(method, path) → the `Allow` dependencies of every route but the health check."""
    out: dict[tuple[str, str], list[Allow]] = {}
    for path, methods, dependant in api_routes(app):
        if path not in OPS_ROUTES:
            for method in methods:
                out[(method, path)] = allow_dependencies(dependant)
    return out


def test_every_site_registry_route_declares_allowed_roles(registry_app: FastAPI) -> None:
    routes = registry_routes(registry_app)

    assert ("GET", "/closure-shocks") in routes
    assert ("POST", "/closure-shocks") in routes
    assert len(routes) >= 9
    unguarded = sorted(f"{m} {p}" for (m, p), allows in routes.items() if not allows)
    assert unguarded == [], f"routes without Allow(...): {unguarded}"


def test_only_health_is_left_open(registry_app: FastAPI) -> None:
    open_routes = [
        path for path, _, dependant in api_routes(registry_app) if not allow_dependencies(dependant)
    ]

    assert sorted(open_routes) == sorted(OPS_ROUTES)


def test_declaring_a_closure_shock_is_for_the_crisis_cell_only(registry_app: FastAPI) -> None:
    (allow,) = registry_routes(registry_app)[("POST", "/closure-shocks")]

    assert allow.roles == {Role.CRISIS_CELL, Role.ADMIN}


def test_no_write_route_is_open_to_consultants_or_funders(registry_app: FastAPI) -> None:
    writes = {k: v for k, v in registry_routes(registry_app).items() if k[0] != "GET"}

    assert writes
    for (method, path), allows in writes.items():
        for allow in allows:
            assert not allow.roles & {Role.CONSULTANT, Role.FUNDER}, f"{method} {path}"


def test_minting_in_production_needs_no_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "p" * 40
    monkeypatch.setenv("REBOND_ENVIRONMENT", "production")
    monkeypatch.setenv("REBOND_JWT_SECRET", secret)

    assert auth.main(["mint", "--role", "admin"]) == 0

    token = capsys.readouterr().out.strip()
    assert decode_token(AuthConfig(secret), token).roles == {Role.ADMIN}
