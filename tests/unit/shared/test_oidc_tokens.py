"""Tokens from an OpenID Connect issuer: RS256/ES256 verified with the keys of its JWKS.

The keys are generated here with `cryptography`; the JWKS is served by a real HTTP
server on the loopback, so fetching, caching, refetching and an unreachable issuer are
the real code paths, and the server counts how often it is asked."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, FastAPI, HTTPException
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic_settings import SettingsConfigDict

from shared.auth import (
    Allow,
    AuthConfig,
    ClaimPaths,
    JwksCache,
    Principal,
    Role,
    decode_token,
)
from shared.settings import ServiceSettings

pytestmark = pytest.mark.unit

ISSUER = "https://idp.rebond.test/realms/rebond"
AUDIENCE = "rebond"
SECRET = "unit-test-secret-that-is-long-enough-0123456789"

# Keycloak puts realm roles under realm_access.roles; territories and regions come from
# user attributes mapped to claims of the deployment's choosing.
KEYCLOAK_CLAIMS = ClaimPaths(
    roles="realm_access.roles",
    territories="rebond.territories",
    regions="rebond.regions",
    org="rebond.org",
    role_map={
        "cellule-de-crise": Role.CRISIS_CELL,
        "consultant": Role.CONSULTANT,
        "financeur": Role.FUNDER,
    },
)


@dataclass
class Jwks:
    """A JWKS endpoint on 127.0.0.1; `keys` may change while it runs (rotation)."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    hits: int = 0
    url: str = ""


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    state = Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest's output for failures

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/protocol/openid-connect/certs"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class Key:
    kid: str
    private: Any
    alg: str

    def jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def rsa_key(alg: str = "RS256") -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Key(f"rsa-{uuid.uuid4().hex[:8]}", private, alg)


def ec_key() -> Key:
    return Key(f"ec-{uuid.uuid4().hex[:8]}", ec.generate_private_key(ec.SECP256R1()), "ES256")


def config_for(
    url: str, *, algorithms: tuple[str, ...] = ("RS256", "ES256"), **kwargs: Any
) -> AuthConfig:
    return AuthConfig(
        SECRET,
        audience=AUDIENCE,
        issuer=ISSUER,
        jwks=JwksCache(url, refetch_interval=timedelta(seconds=30), timeout=2),
        algorithms=algorithms,
        claims=KEYCLOAK_CLAIMS,
        **kwargs,
    )


def issued_by(
    key: Key,
    *,
    alg: str | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    issued: timedelta = timedelta(0),
    **claims: Any,
) -> str:
    now = datetime.now(UTC).replace(microsecond=0) + issued
    payload = {
        "sub": "f:3c6e…:agent-42",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
        "realm_access": {"roles": ["cellule-de-crise", "offline_access"]},
        "rebond": {"territories": ["ti-3205"]},
        **claims,
    }
    return jwt.encode(payload, key.private, algorithm=alg or key.alg, headers={"kid": key.kid})


def refusal(config: AuthConfig, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as excinfo:
        decode_token(config, token)
    assert excinfo.value.status_code == 401
    assert excinfo.value.headers == {"WWW-Authenticate": "Bearer"}
    return excinfo.value


# --- accepted ----------------------------------------------------------------------------


def test_rs256_token_is_accepted_with_roles_and_scopes_from_nested_keycloak_claims(
    jwks: Jwks,
) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    config = config_for(jwks.url)

    found = decode_token(config, issued_by(key))

    assert found.subject == "f:3c6e…:agent-42"
    assert found.roles == {Role.CRISIS_CELL}  # offline_access: not in the map, ignored
    assert found.territories == {"ti-3205"}
    assert found.can_see_territory("ti-3205")
    assert not found.can_see_territory("ti-3209")
    # the keys are cached: a second token costs no fetch
    decode_token(config, issued_by(key))
    assert jwks.hits == 1
    print(f"\nfigures: JWKS fetched {jwks.hits} time(s) for 2 RS256 tokens")


def test_es256_token_is_accepted(jwks: Jwks) -> None:
    key = ec_key()
    jwks.keys = [rsa_key().jwk(), key.jwk()]

    found = decode_token(
        config_for(jwks.url),
        issued_by(
            key,
            realm_access={"roles": ["financeur"]},
            rebond={"regions": ["32"], "org": "ADEME"},
        ),
    )

    assert found.roles == {Role.FUNDER}
    assert found.regions == {"32"}
    assert found.org == "ADEME"
    assert found.can_see_region("32")


def test_rs512_is_accepted_when_listed(jwks: Jwks) -> None:
    key = rsa_key("RS512")
    jwks.keys = [key.jwk()]

    found = decode_token(config_for(jwks.url, algorithms=("RS512",)), issued_by(key))

    assert found.roles == {Role.CRISIS_CELL}


# --- refused: the same rules as the HS256 tokens ----------------------------------------


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        ({"iss": "https://another-idp.test/realms/rebond"}, "issuer"),
        ({"aud": "another-application"}, "audience"),
    ],
)
def test_token_of_another_issuer_or_audience_is_refused(
    jwks: Jwks, claims: dict[str, Any], detail: str
) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]

    error = refusal(config_for(jwks.url), issued_by(key, **claims))

    assert detail in str(error.detail).lower()


def test_expired_token_is_refused(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    token = issued_by(key, issued=-timedelta(hours=1), lifetime=timedelta(minutes=5))

    assert refusal(config_for(jwks.url), token).detail == "the token has expired"


def test_token_living_beyond_the_maximum_lifetime_is_refused(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    config = config_for(jwks.url, max_lifetime=timedelta(hours=1))

    error = refusal(config, issued_by(key, lifetime=timedelta(hours=1, seconds=1)))

    assert "longer than the maximum" in str(error.detail)
    assert decode_token(config, issued_by(key, lifetime=timedelta(hours=1))).subject


# --- keys: unknown kid, rotation, unreachable issuer ------------------------------------


def test_unknown_kid_is_refused_after_exactly_one_refetch(jwks: Jwks) -> None:
    known, stranger = rsa_key(), rsa_key()
    jwks.keys = [known.jwk()]
    config = config_for(jwks.url)
    decode_token(config, issued_by(known))
    assert jwks.hits == 1

    error = refusal(config, issued_by(stranger))

    assert stranger.kid in str(error.detail)
    assert jwks.hits == 2
    # another made-up kid within the refetch interval does not reach the issuer again
    refusal(config, issued_by(rsa_key()))
    assert jwks.hits == 2


def test_a_key_added_to_the_jwks_is_accepted_after_a_refetch(jwks: Jwks) -> None:
    old, new = rsa_key(), ec_key()
    jwks.keys = [old.jwk()]
    config = config_for(jwks.url)
    decode_token(config, issued_by(old))

    jwks.keys = [old.jwk(), new.jwk()]  # the issuer rotates: the new key is published

    assert decode_token(config, issued_by(new)).roles == {Role.CRISIS_CELL}
    assert decode_token(config, issued_by(old)).roles == {Role.CRISIS_CELL}
    assert jwks.hits == 2


def test_unreachable_jwks_is_a_readable_401(jwks: Jwks) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = config_for(f"http://127.0.0.1:{port}/certs")

    error = refusal(config, issued_by(rsa_key()))

    assert "JWKS" in str(error.detail)
    assert f"127.0.0.1:{port}" in str(error.detail)


# --- refused: algorithm confusion --------------------------------------------------------


def test_hs256_token_signed_with_the_public_key_is_refused(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    now = datetime.now(UTC)
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "iat": now}
    claims |= {"exp": now + timedelta(minutes=5), "realm_access": {"roles": ["admin"]}}
    # pyjwt refuses to HMAC with a PEM key, so the forgery is built by hand
    forged = _hs256_by_hand(claims, key.public_pem(), key.kid)

    error = refusal(config_for(jwks.url), forged)

    assert "HS256" in str(error.detail)


def test_unsigned_token_is_refused(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    now = datetime.now(UTC)
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "iat": now}
    unsigned = jwt.encode(
        claims | {"exp": now + timedelta(minutes=5)},
        "",
        algorithm="none",
        headers={"kid": key.kid},
    )

    assert "'none'" in str(refusal(config_for(jwks.url), unsigned).detail)


def test_rs512_is_refused_when_not_listed(jwks: Jwks) -> None:
    key = rsa_key("RS512")
    jwks.keys = [key.jwk()]

    error = refusal(config_for(jwks.url), issued_by(key))

    assert "RS512" in str(error.detail)
    assert jwks.hits == 0  # refused on the header alone


def test_token_whose_alg_differs_from_the_key_s_is_refused(jwks: Jwks) -> None:
    key = rsa_key("RS256")
    jwks.keys = [key.jwk()]
    config = config_for(jwks.url, algorithms=("RS256", "PS256"))

    assert "PS256" in str(refusal(config, issued_by(key, alg="PS256")).detail)


def _without_alg(key: Key) -> dict[str, Any]:
    return {k: v for k, v in key.jwk().items() if k != "alg"}


@pytest.mark.parametrize(
    ("signer", "named", "alg"),
    [
        ("ec256", "rsa", "ES256"),  # an ECDSA token naming an RSA key
        ("rsa", "ec256", "RS256"),  # an RSA token naming an EC key
        ("ec256", "ec384", "ES256"),  # the curve of another algorithm
    ],
)
def test_token_naming_a_key_of_another_type_is_a_401_not_a_500(
    jwks: Jwks, signer: str, named: str, alg: str
) -> None:
    keys = {
        "rsa": rsa_key(),
        "ec256": ec_key(),
        "ec384": Key(
            f"ec-{uuid.uuid4().hex[:8]}", ec.generate_private_key(ec.SECP384R1()), "ES384"
        ),
    }
    jwks.keys = [_without_alg(k) for k in keys.values()]  # as Keycloak often publishes them
    config = config_for(jwks.url, algorithms=("RS256", "ES256", "ES384"))
    forged = Key(keys[named].kid, keys[signer].private, alg)

    error = refusal(config, issued_by(forged))

    assert f"not a key for {alg}" in str(error.detail)


# --- claim mapping -----------------------------------------------------------------------


def test_unmapped_idp_roles_are_ignored(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    token = issued_by(key, realm_access={"roles": ["admin", "uma_authorization"]})

    found = decode_token(config_for(jwks.url), token)

    # "admin" is not in this deployment's map: an IdP's admin is not Rebond's
    assert found.roles == frozenset()
    assert not found.can_see_territory("ti-3205")


def test_a_funder_carrying_territories_gets_no_territory_scope(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    token = issued_by(
        key,
        realm_access={"roles": ["financeur"]},
        rebond={"territories": ["ti-3205"], "regions": ["32"]},
    )

    found = decode_token(config_for(jwks.url), token)

    assert found.territories == frozenset()
    assert not found.can_see_territory("ti-3205")
    assert found.regions == {"32"}


def test_a_hand_built_principal_cannot_see_outside_its_roles() -> None:
    funder = Principal("s", frozenset({Role.FUNDER}), territories=frozenset({"ti-3205"}))
    cell = Principal("s", frozenset({Role.CRISIS_CELL}), regions=frozenset({"32"}))

    assert not funder.can_see_territory("ti-3205")
    assert not funder.can_see_any_territory(["ti-3205"])
    assert not cell.can_see_region("32")


# --- settings and an app -----------------------------------------------------------------


def test_settings_configure_the_oidc_issuer(jwks: Jwks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REBOND_OIDC_JWKS_URL", jwks.url)
    monkeypatch.setenv("REBOND_OIDC_ROLES_CLAIM", "realm_access.roles")
    monkeypatch.setenv("REBOND_OIDC_ROLE_MAP", '{"cellule-de-crise": "crisis_cell"}')
    monkeypatch.setenv("REBOND_OIDC_ALGORITHMS", '["ES256"]')

    monkeypatch.setenv("REBOND_JWT_AUDIENCE", "rebond-hdf")

    class SomeServiceSettings(ServiceSettings):  # a service's own prefix: the aliases apply
        model_config = SettingsConfigDict(env_prefix="SOME_SERVICE_")

    settings = SomeServiceSettings(environment="test", jwt_secret=SECRET, jwt_issuer=ISSUER)
    config = AuthConfig.from_settings(settings)

    assert config.jwks is not None and config.jwks.url == jwks.url
    assert config.audience == "rebond-hdf"
    assert config.claims.roles == "realm_access.roles"
    assert config.algorithms == ("ES256",)
    assert config.claims.role_map == {"cellule-de-crise": Role.CRISIS_CELL}


def test_settings_refuse_a_symmetric_oidc_algorithm_and_plain_http_in_production() -> None:
    with pytest.raises(ValueError, match="HS256"):
        ServiceSettings(environment="test", jwt_secret=SECRET, oidc_algorithms=["HS256"])
    with pytest.raises(ValueError, match="https"):
        ServiceSettings(
            environment="production",
            jwt_secret=SECRET,
            database_url="postgresql+asyncpg://db/rebond",
            oidc_jwks_url="http://idp.example/certs",
        )


async def test_an_app_accepts_the_issuer_s_token_and_refuses_another(jwks: Jwks) -> None:
    key = rsa_key()
    jwks.keys = [key.jwk()]
    settings = ServiceSettings(
        environment="test",
        jwt_secret=SECRET,
        jwt_issuer=ISSUER,
        oidc_jwks_url=jwks.url,
        oidc_roles_claim="realm_access.roles",
        oidc_territories_claim="rebond.territories",
        oidc_role_map={"cellule-de-crise": "crisis_cell"},
    )
    app = FastAPI()
    app.state.auth = AuthConfig.from_settings(settings)

    @app.get("/shocks")
    async def shocks(
        caller: Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))],
    ) -> dict[str, Any]:
        return {"sub": caller.subject, "territories": sorted(caller.territories)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rebond.test") as c:
        good = await c.get("/shocks", headers={"Authorization": f"Bearer {issued_by(key)}"})
        stranger = issued_by(rsa_key())
        bad = await c.get("/shocks", headers={"Authorization": f"Bearer {stranger}"})
        hs256 = jwt.encode({"sub": "x"}, SECRET, algorithm="HS256")
        minted = await c.get("/shocks", headers={"Authorization": f"Bearer {hs256}"})

    assert good.status_code == 200, good.text
    assert good.json() == {"sub": "f:3c6e…:agent-42", "territories": ["ti-3205"]}
    assert bad.status_code == 401
    assert "unknown signing key" in bad.json()["detail"]
    assert minted.status_code == 401  # in OIDC mode the deployment's secret signs nothing
    assert jwks.hits == 2  # the first fetch and the one refetch for the stranger's kid


def _hs256_by_hand(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = b64(json.dumps(body).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(signature)}"
