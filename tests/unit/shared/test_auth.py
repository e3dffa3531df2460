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


def signed(
    *,
    lifetime: timedelta = timedelta(hours=1),
    issued: timedelta = timedelta(0),
    **claims: Any,
) -> str:
    """A token signed with the unit secret, built claim by claim: `issued` shifts `iat`
    from now, `exp` is `iat + lifetime`; a claim given as None is left out."""
    iat = datetime.now(UTC) + issued
    base: dict[str, Any] = {
        "sub": "s",
        "aud": "rebond",
        "iss": "rebond",
        "roles": ["admin"],
        "iat": iat,
        "exp": iat + lifetime,
    }
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, SECRET, "HS256")


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
    token = mint_token(CONFIG, subject="s", roles=["admin"], ttl=timedelta(minutes=-2))

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
    token = signed(roles=["mayor"])

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "mayor" in str(error.detail)


def test_token_without_a_subject_is_refused_with_401() -> None:
    token = signed(sub=None)

    error = decode_error(CONFIG, token)

    assert error.status_code == 401
    assert "sub" in str(error.detail)


def test_unsigned_token_is_refused_with_401() -> None:
    claims = {"sub": "s", "aud": "rebond", "exp": datetime.now(UTC) + timedelta(hours=1)}
    token = jwt.encode(claims, key=None, algorithm="none")

    assert decode_error(CONFIG, token).status_code == 401


def test_token_living_beyond_the_maximum_lifetime_is_refused_with_401() -> None:
    year_3000 = datetime(3000, 1, 1, tzinfo=UTC) - datetime.now(UTC)

    for lifetime in (year_3000, timedelta(hours=12, seconds=1)):
        error = decode_error(CONFIG, signed(lifetime=lifetime))

        assert error.status_code == 401
        assert "longer than the maximum of 12:00:00" in str(error.detail)


def test_token_of_exactly_the_maximum_lifetime_is_accepted() -> None:
    assert decode_token(CONFIG, signed(lifetime=timedelta(hours=12))).roles == {Role.ADMIN}


def test_maximum_lifetime_is_configurable() -> None:
    short = AuthConfig(SECRET, max_lifetime=timedelta(minutes=30))

    assert decode_error(short, signed(lifetime=timedelta(hours=1))).status_code == 401
    assert decode_token(short, signed(lifetime=timedelta(minutes=30))).subject == "s"


@pytest.mark.parametrize("missing", ["exp", "iat", "iss", "aud"])
def test_token_without_a_required_claim_is_refused_with_401(missing: str) -> None:
    error = decode_error(CONFIG, signed(**{missing: None}))

    assert error.status_code == 401
    assert f'"{missing}"' in str(error.detail)  # PyJWT: 'missing the "exp" claim'


def test_token_of_another_issuer_is_refused_with_401() -> None:
    error = decode_error(CONFIG, signed(iss="someone-else"))

    assert error.status_code == 401
    assert "issuer" in str(error.detail).lower()


def test_issuer_is_configurable_and_minted_tokens_carry_it() -> None:
    config = AuthConfig(SECRET, issuer="rebond-hdf")
    token = mint_token(config, subject="s", roles=["admin"])

    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "rebond-hdf"
    assert decode_token(config, token).subject == "s"
    assert decode_error(CONFIG, token).status_code == 401  # CONFIG expects "rebond"


def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    expired_30s_ago = signed(issued=timedelta(hours=-1, seconds=-30))
    issued_30s_ahead = signed(issued=timedelta(seconds=30))
    valid_in_30s = signed(nbf=datetime.now(UTC) + timedelta(seconds=30))

    for token in (expired_30s_ago, issued_30s_ahead, valid_in_30s):
        assert decode_token(CONFIG, token).subject == "s"


def test_clock_skew_beyond_the_leeway_is_refused_with_401() -> None:
    expired_2min_ago = signed(issued=timedelta(hours=-1, minutes=-2))
    issued_2min_ahead = signed(issued=timedelta(minutes=2))
    valid_in_2min = signed(nbf=datetime.now(UTC) + timedelta(minutes=2))

    assert "expired" in str(decode_error(CONFIG, expired_2min_ago).detail)
    assert "iat" in str(decode_error(CONFIG, issued_2min_ahead).detail)
    assert "not yet valid" in str(decode_error(CONFIG, valid_in_2min).detail)


def test_leeway_is_configurable() -> None:
    strict = AuthConfig(SECRET, leeway=timedelta(0))

    assert decode_error(strict, signed(issued=timedelta(hours=-1, seconds=-5))).status_code == 401


def test_minted_token_lives_the_maximum_lifetime_by_default() -> None:
    token = mint_token(AuthConfig(SECRET, max_lifetime=timedelta(hours=2)), subject="s", roles=[])

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2 * 3600
    assert claims["iss"] == "rebond"


def test_minting_refuses_a_lifetime_beyond_the_maximum() -> None:
    with pytest.raises(ValueError, match="cannot live longer than 12:00:00"):
        mint_token(CONFIG, subject="s", roles=["admin"], ttl=timedelta(hours=13))


def test_config_from_settings_takes_every_token_rule() -> None:
    from services.site_registry.settings import SiteRegistrySettings

    settings = SiteRegistrySettings(
        environment="test",
        jwt_secret=SECRET,  # type: ignore[arg-type]
        jwt_issuer="idp",
        jwt_audience="aud",
        jwt_max_lifetime_s=600,
        jwt_leeway_s=5,
    )

    config = AuthConfig.from_settings(settings)

    assert (config.secret, config.issuer, config.audience) == (SECRET, "idp", "aud")
    assert (config.max_lifetime, config.leeway) == (timedelta(minutes=10), timedelta(seconds=5))


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


# --- scope claims belong to roles ------------------------------------------------------


def test_a_funder_token_carrying_territories_gets_no_territory_scope() -> None:
    token = signed(roles=["funder"], territories=["ti-3205"], regions=["32"], org="ADEME")

    found = decode_token(CONFIG, token)

    assert found.territories == frozenset()
    assert not found.can_see_territory("ti-3205")
    assert not found.can_see_any_territory(["ti-3205"])
    assert found.regions == {"32"}
    assert found.org == "ADEME"


@pytest.mark.parametrize("role", ["crisis_cell", "consultant"])
def test_a_territorial_token_carrying_regions_or_org_gets_neither(role: str) -> None:
    token = signed(roles=[role], territories=["ti-3205"], regions=["32"], org="ADEME")

    found = decode_token(CONFIG, token)

    assert found.territories == {"ti-3205"}
    assert found.regions == frozenset()
    assert not found.can_see_region("32")
    assert found.org is None


def test_a_token_without_roles_gets_no_scope() -> None:
    found = decode_token(CONFIG, signed(roles=[], territories=["ti-3205"], regions=["32"]))

    assert (found.territories, found.regions) == (frozenset(), frozenset())


def test_admin_keeps_every_scope_claim() -> None:
    found = decode_token(
        CONFIG, signed(roles=["admin"], territories=["ti-3205"], regions=["32"], org="ADEME")
    )

    assert (found.territories, found.regions, found.org) == ({"ti-3205"}, {"32"}, "ADEME")


@pytest.mark.parametrize(
    ("roles", "scopes", "claim"),
    [
        (["funder"], {"territories": ["ti-3205"]}, "territories"),
        (["consultant"], {"regions": ["32"]}, "regions"),
        (["crisis_cell"], {"org": "ADEME"}, "org"),
        ([], {"territories": ["ti-3205"]}, "territories"),
    ],
)
def test_minting_refuses_a_scope_claim_outside_the_roles(
    roles: list[str], scopes: dict[str, Any], claim: str
) -> None:
    with pytest.raises(ValueError, match=f"cannot carry {claim}: that claim is for"):
        mint_token(CONFIG, subject="s", roles=roles, **scopes)


def test_minting_lets_admin_carry_any_scope_claim() -> None:
    token = mint_token(
        CONFIG, subject="s", roles=["admin"], territories=["ti-3205"], regions=["32"], org="X"
    )

    assert decode_token(CONFIG, token).territories == {"ti-3205"}


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
    token = mint_token(CONFIG, subject="u", roles=["funder"], ttl=timedelta(minutes=-2))

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
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")  # as `make run` sets it

    code = auth.main(["mint", "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "me"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.endswith("\n")
    found = decode_token(AuthConfig(DEV_JWT_SECRET), out.strip())
    assert found.subject == "me"
    assert found.roles == {Role.CRISIS_CELL}
    assert found.territories == {"ti-3205"}
    assert found.regions == frozenset()


def test_cli_without_an_environment_refuses_the_development_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("REBOND_ENVIRONMENT", "REBOND_JWT_SECRET"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(SystemExit) as excinfo:
        auth.main(["mint", "--role", "admin"])

    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert "no environment is set, so the development JWT secret is refused" in err
    assert "REBOND_ENVIRONMENT=development" in err


@pytest.mark.parametrize(
    ("args", "claim"),
    [
        (["--role", "funder", "--region", "32", "--territory", "ti-3205"], "territories"),
        (["--role", "consultant", "--territory", "ti-3205", "--region", "32"], "regions"),
        (["--role", "crisis_cell", "--territory", "ti-3205", "--org", "ADEME"], "org"),
    ],
)
def test_cli_refuses_a_scope_claim_outside_the_role(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], claim: str
) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")
    monkeypatch.delenv("REBOND_JWT_SECRET", raising=False)

    with pytest.raises(SystemExit) as excinfo:
        auth.main(["mint", *args])

    assert excinfo.value.code == 2
    captured = capsys.readouterr()
    assert f"cannot carry {claim}" in captured.err
    assert captured.out == ""


def test_cli_refuses_a_lifetime_beyond_the_maximum(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")
    monkeypatch.delenv("REBOND_JWT_SECRET", raising=False)

    with pytest.raises(SystemExit) as excinfo:
        auth.main(["mint", "--role", "admin", "--hours", "13"])

    assert excinfo.value.code == 2
    assert "cannot live longer than 12:00:00" in capsys.readouterr().err


def test_cli_sets_the_issuer_and_lifetime_of_the_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")
    monkeypatch.delenv("REBOND_JWT_SECRET", raising=False)
    monkeypatch.setenv("REBOND_JWT_ISSUER", "rebond-hdf")
    monkeypatch.setenv("REBOND_JWT_MAX_LIFETIME_S", "3600")

    assert auth.main(["mint", "--role", "admin"]) == 0

    claims = jwt.decode(
        capsys.readouterr().out.strip(), DEV_JWT_SECRET, algorithms=["HS256"], audience="rebond"
    )
    assert claims["iss"] == "rebond-hdf"
    assert claims["exp"] - claims["iat"] == 3600


def test_cli_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        auth.main(["mint", "--role", "mayor"])

    assert excinfo.value.code == 2
    assert "invalid choice: 'mayor'" in capsys.readouterr().err


# --- every route of the site registry says who may call it -----------------------------


OPS_ROUTES = {"/healthz", "/readyz", "/metrics"}  # probes: no token, no data


def allow_dependencies(dependant: Dependant) -> list[Allow]:
    return list(allows_of(dependant))


@pytest.fixture(scope="module")
def registry_app() -> FastAPI:
    # The app only keeps the registry in `app.state` (and reads its auth config) until a
    # request arrives or the lifespan runs: a stand-in is enough to inspect the routes.
    stand_in = types.SimpleNamespace(
        service="site_registry", auth=CONFIG, relay=None, workers=tuple, engines=dict
    )
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
