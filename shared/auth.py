"""Bearer JWTs with roles and scopes, and the FastAPI dependencies that enforce them.

Roles: `crisis_cell` and `consultant` are scoped to territories (`territories` claim,
Territoire d'industrie ids such as `ti-3205`); `funder` to regions (`regions` claim, INSEE
region codes such as `32`); `admin` sees everything. Every endpoint declares who may call
it with `Allow(...)`; the roles also appear in the OpenAPI document (`x-roles`).

Two modes, chosen by `oidc_jwks_url`:

- unset: tokens are HS256-signed with the deployment's secret (settings `jwt_secret`);
  development and tests, and what `mint_token` issues;
- set: tokens come from an OpenID Connect issuer (Keycloak, ProConnect behind a
  deployment's IdP) and are RS256/ES256… signed with a key of its JWKS, picked by `kid`.
  The header's `alg` must be one of `oidc_algorithms` (asymmetric only: an HS256 token
  "signed" with the public key is refused, `alg: none` too). Roles and scopes are read
  at configured (dotted) claim paths, IdP roles translated by `oidc_role_map` (unmapped
  ones ignored).

JWKS keys are cached (`JwksCache`). `decode_token` stays synchronous and fetches only on
a cache miss; the request dependency `current_principal` does that fetch beforehand in a
worker thread (`asyncio.to_thread`), so the event loop never waits on the network. An
unknown `kid` triggers one refetch (key rotation), at most once per
`oidc_jwks_refetch_interval_s`, then 401; an unreachable JWKS is a 401, never a 500.

What a token must carry to be accepted (docs/security.md): `sub`, `aud` (the audience),
`iss` (the issuer), `iat` and `exp` no further apart than the maximum lifetime (12 h by
default), all three time claims (with `nbf`) checked against the clock with a bounded
leeway (60 s by default). A scope claim is read only for the roles it belongs to
(`SCOPE_CLAIMS`): a funder's token carrying `territories` gets no territory scope, and
`mint_token` refuses to issue it.

Development tokens: `python -m shared.auth mint --role crisis_cell --territory ti-3205`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

if TYPE_CHECKING:
    from shared.settings import ServiceSettings


class Role(StrEnum):
    CRISIS_CELL = "crisis_cell"
    CONSULTANT = "consultant"
    FUNDER = "funder"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    territories: frozenset[str] = field(default_factory=frozenset)
    regions: frozenset[str] = field(default_factory=frozenset)
    org: str | None = None  # a funder's organisation, e.g. "ADEME": the schemes it acts on

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    # Role-aware, not only claim-aware: a Principal built by hand (or by a future decoder)
    # with a funder's role and territories still sees no territory.
    def can_see_territory(self, territory_id: str) -> bool:
        return self.is_admin or (
            bool(self.roles & SCOPE_CLAIMS["territories"]) and territory_id in self.territories
        )

    def can_see_any_territory(self, territory_ids: Sequence[str]) -> bool:
        return any(self.can_see_territory(t) for t in territory_ids)

    def can_see_region(self, region: str) -> bool:
        return self.is_admin or (
            bool(self.roles & SCOPE_CLAIMS["regions"]) and region in self.regions
        )


#: scope claim → the roles it belongs to (admin, who sees everything, carries any of them)
SCOPE_CLAIMS: dict[str, frozenset[Role]] = {
    "territories": frozenset({Role.CRISIS_CELL, Role.CONSULTANT}),
    "regions": frozenset({Role.FUNDER}),
    "org": frozenset({Role.FUNDER}),
}


def _claim_belongs(claim: str, roles: frozenset[Role]) -> bool:
    return bool(roles & (SCOPE_CLAIMS[claim] | {Role.ADMIN}))


#: what an OIDC issuer may sign with: asymmetric only, so no secret is ever shared
OIDC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


class JwksUnavailable(Exception):
    """The issuer's JWKS could not be fetched (and no cached key answers)."""


@dataclass(frozen=True)
class JwksKey:
    key: Any  # a `cryptography` public key
    alg: str | None  # the JWK's own `alg`, when the issuer states it


class JwksCache:
    """The signing keys of an OIDC issuer, by `kid`, fetched from its JWKS URL.

    Fetched when first needed, again after `lifetime`, and when a token names a `kid`
    not in the set (the issuer rotated its keys), but such a refetch at most once per
    `refetch_interval`: a stream of tokens with made-up kids cannot hammer the issuer.
    A failed fetch keeps the keys already known and is not retried before
    `refetch_interval` either. Thread-safe: fetches run in worker threads."""

    def __init__(
        self,
        url: str,
        *,
        lifetime: timedelta = timedelta(minutes=5),
        refetch_interval: timedelta = timedelta(seconds=30),
        timeout: float = 5.0,
    ) -> None:
        if refetch_interval <= timedelta(0):
            raise ValueError("the JWKS refetch interval must be positive")
        self.url = url
        self.lifetime = lifetime.total_seconds()
        self.refetch_interval = refetch_interval.total_seconds()
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=timeout)
        self._keys: dict[str, JwksKey] = {}
        self._fetched_at = -math.inf  # monotonic; last successful fetch
        self._unknown_refetch_at = -math.inf  # last fetch caused by an unknown kid
        self._failed_at = -math.inf
        self._error: str | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # attempts, for tests and metrics

    def needs_fetch(self, kid: str) -> bool:
        now = time.monotonic()
        if now - self._failed_at < self.refetch_interval:
            return False
        if now - self._fetched_at > self.lifetime:
            return True
        return kid not in self._keys and now - self._unknown_refetch_at >= self.refetch_interval

    def key_for(self, kid: str) -> JwksKey | None:
        """The key named `kid`, fetching the JWKS first if `needs_fetch` (blocking I/O)."""
        with self._lock:
            if self.needs_fetch(kid):
                # a fresh set without the kid: a rotation refetch, the rate-limited kind
                fresh = time.monotonic() - self._fetched_at <= self.lifetime
                self._fetch(unknown_kid=fresh)
            key = self._keys.get(kid)
            if key is None and not self._keys and self._error is not None:
                raise JwksUnavailable(self._error)
            return key

    async def prepare(self, kid: str) -> None:
        """Fetch in a worker thread if `key_for(kid)` would, so it then answers at once."""
        if self.needs_fetch(kid):
            await asyncio.to_thread(self.key_for, kid)

    def _fetch(self, *, unknown_kid: bool) -> None:
        now = time.monotonic()
        self.fetches += 1
        if unknown_kid:
            self._unknown_refetch_at = now
        try:
            data = self._client.fetch_data()
        except (jwt.PyJWKClientError, ValueError) as exc:
            self._failed_at = now
            self._error = f"the issuer's JWKS ({self.url}) could not be read: {exc}"
            return
        keys: dict[str, JwksKey] = {}
        for entry in data.get("keys", []) if isinstance(data.get("keys"), list) else []:
            if not isinstance(entry, dict) or not entry.get("kid") or entry.get("use") == "enc":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWTError:  # a key type this library cannot use: skipped, as PyJWKSet
                continue
            keys[str(entry["kid"])] = JwksKey(key.key, entry.get("alg"))
        self._keys = keys
        self._fetched_at = now
        self._error = None


@dataclass(frozen=True)
class ClaimPaths:
    """Where an OIDC token carries what Rebond reads (dotted paths into the claims)."""

    roles: str = "roles"
    territories: str = "territories"
    regions: str = "regions"
    org: str = "org"
    #: IdP role name → Rebond role; a role not in the map is ignored
    role_map: Mapping[str, Role] = field(default_factory=lambda: {r.value: r for r in Role})


class VerifiedTokens:
    """Principals of tokens already verified, by token, so that a client sending the
    same bearer token request after request pays the signature and claim checks once.

    An entry serves until the token's `exp` (never the leeway after it: past `exp` the
    token is verified again, and refused once the leeway is over) and at most `max_age_s`
    after it was verified; it serves only while the token still verifies with the same
    key object (OIDC: a JWKS refresh that drops or replaces the key makes every token of
    that key verified again). Only tokens that passed every check are kept. Bounded to
    `max_entries` (the oldest goes first). Used from the event loop only."""

    def __init__(self, *, max_entries: int = 4096, max_age_s: float = 300.0) -> None:
        if max_entries < 1 or max_age_s <= 0:
            raise ValueError("a token cache needs room for one entry and a positive age")
        self.max_entries = max_entries
        self.max_age_s = max_age_s
        # token -> (principal, valid until (epoch seconds), key it was verified with)
        self._entries: dict[str, tuple[Principal, float, Any]] = {}
        self.hits = 0  # for tests and metrics

    def get(self, token: str, key: Any) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, until, verified_with = entry
        if time.time() >= until or verified_with is not key:
            del self._entries[token]
            return None
        self.hits += 1
        return principal

    def put(self, token: str, principal: Principal, expires: float, key: Any) -> None:
        until = min(float(expires), time.time() + self.max_age_s)
        if len(self._entries) >= self.max_entries:
            now = time.time()
            for stale in [t for t, e in self._entries.items() if e[1] <= now]:
                del self._entries[stale]
            if len(self._entries) >= self.max_entries:
                del self._entries[next(iter(self._entries))]
        self._entries[token] = (principal, until, key)

    def __len__(self) -> int:
        return len(self._entries)


class AuthConfig:
    """What the dependencies need to verify tokens; set on `app.state.auth`.

    With `jwks` (OIDC mode) tokens are verified with the issuer's keys and `algorithms`;
    `secret`/`algorithm` then serve only `mint_token` (development tokens)."""

    def __init__(
        self,
        secret: str,
        *,
        algorithm: str = "HS256",
        audience: str = "rebond",
        issuer: str = "rebond",
        max_lifetime: timedelta = timedelta(hours=12),
        leeway: timedelta = timedelta(seconds=60),
        jwks: JwksCache | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        claims: ClaimPaths | None = None,
        verified: VerifiedTokens | None = None,
    ):
        self.secret = secret
        self.algorithm = algorithm
        self.audience = audience
        self.issuer = issuer
        self.max_lifetime = max_lifetime
        self.leeway = leeway
        self.jwks = jwks
        refused = set(algorithms) - set(OIDC_ALGORITHMS)
        if refused:
            raise ValueError(f"not an asymmetric algorithm for OIDC tokens: {sorted(refused)}")
        self.algorithms = tuple(algorithms)
        self.claims = claims or ClaimPaths()
        #: what `current_principal` already verified (`VerifiedTokens`)
        self.verified = verified if verified is not None else VerifiedTokens()

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> AuthConfig:
        jwks = None
        if settings.oidc_jwks_url:
            jwks = JwksCache(
                settings.oidc_jwks_url,
                lifetime=timedelta(seconds=settings.oidc_jwks_cache_s),
                refetch_interval=timedelta(seconds=settings.oidc_jwks_refetch_interval_s),
                timeout=settings.oidc_jwks_timeout_s,
            )
        return cls(
            settings.jwt_secret.get_secret_value(),
            algorithm=settings.jwt_algorithm,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            max_lifetime=timedelta(seconds=settings.jwt_max_lifetime_s),
            leeway=timedelta(seconds=settings.jwt_leeway_s),
            jwks=jwks,
            algorithms=settings.oidc_algorithms,
            claims=ClaimPaths(
                roles=settings.oidc_roles_claim,
                territories=settings.oidc_territories_claim,
                regions=settings.oidc_regions_claim,
                org=settings.oidc_org_claim,
                role_map={k: Role(v) for k, v in settings.oidc_role_map.items()},
            ),
        )


def mint_token(
    config: AuthConfig,
    *,
    subject: str,
    roles: Sequence[str],
    territories: Sequence[str] = (),
    regions: Sequence[str] = (),
    org: str | None = None,
    ttl: timedelta | None = None,
) -> str:
    """A signed token; `ttl` defaults to the configuration's maximum lifetime.

    Refused (ValueError): an unknown role, a scope claim none of the roles may carry
    (`SCOPE_CLAIMS`), a lifetime beyond the maximum."""
    granted = frozenset(Role(role) for role in roles)  # unknown roles: the enum's message
    given = {"territories": bool(territories), "regions": bool(regions), "org": bool(org)}
    for claim, present in given.items():
        if present and not _claim_belongs(claim, granted):
            owners = ", ".join(sorted(SCOPE_CLAIMS[claim]))
            raise ValueError(
                f"a token with roles {', '.join(sorted(granted)) or '(none)'} cannot carry"
                f" {claim}: that claim is for {owners} (or admin)"
            )
    ttl = config.max_lifetime if ttl is None else ttl
    if ttl > config.max_lifetime:
        raise ValueError(f"a token cannot live longer than {config.max_lifetime} (asked for {ttl})")
    now = datetime.now(UTC).replace(microsecond=0)
    claims: dict[str, Any] = {
        "sub": subject,
        "roles": list(roles),
        "territories": list(territories),
        "regions": list(regions),
        "aud": config.audience,
        "iss": config.issuer,
        **({"org": org} if org else {}),
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, config.secret, algorithm=config.algorithm)


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


def _verification_key(config: AuthConfig, token: str) -> tuple[Any, list[str]]:
    """The key and the one algorithm a token may be verified with."""
    if config.jwks is None:
        return config.secret, [config.algorithm]
    header = _header(token)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in config.algorithms:  # before any key is looked at: no algorithm confusion
        accepted = ", ".join(config.algorithms)
        raise _unauthorized(f"invalid token: algorithm {alg!r} is not accepted ({accepted})")
    if not isinstance(kid, str) or not kid:
        raise _unauthorized("invalid token: no key id (kid) in the header")
    try:
        key = config.jwks.key_for(kid)
    except JwksUnavailable as exc:
        raise _unauthorized(f"cannot verify the token now: {exc}") from exc
    if key is None:
        raise _unauthorized(f"invalid token: unknown signing key {kid!r}")
    if key.alg is not None and key.alg != alg:
        raise _unauthorized(f"invalid token: key {kid!r} is for {key.alg}, not {alg}")
    if not _key_fits(alg, key.key):  # a JWKS need not state `alg` (Keycloak's often don't)
        raise _unauthorized(f"invalid token: key {kid!r} is not a key for {alg}")
    # The bare public key with the header's (vetted) algorithm: PyJWK would impose its
    # default algorithm (RS256 for any RSA key) on RS512 or PS256 tokens.
    return key.key, [alg]


#: The curve each ECDSA algorithm signs on (RFC 7518 §3.4).
_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


def _key_fits(alg: str, public_key: Any) -> bool:
    """Does the key's type suit the algorithm? Asked before verifying: pyjwt answers a
    mismatch with a TypeError or an InvalidKeyError, which would be a 500, not a 401."""
    if alg.startswith(("RS", "PS")):
        return isinstance(public_key, rsa.RSAPublicKey)
    if alg in _CURVES:
        return (
            isinstance(public_key, ec.EllipticCurvePublicKey)
            and public_key.curve.name == _CURVES[alg]
        )
    return False


def _claim_at(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def decode_token(config: AuthConfig, token: str) -> Principal:
    return _verify(config, token, *_verification_key(config, token))[0]


def _verify(
    config: AuthConfig, token: str, key: Any, algorithms: list[str]
) -> tuple[Principal, float]:
    """Every check of a token with its verification key: the principal and `exp`."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": ["sub", "exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("the token has expired") from exc
    except (jwt.PyJWTError, TypeError, ValueError) as exc:  # a key it cannot use, too
        raise _unauthorized(f"invalid token: {exc}") from exc
    issued, expires = claims["iat"], claims["exp"]
    if not all(isinstance(v, int | float) for v in (issued, expires)):
        raise _unauthorized("invalid token: iat and exp must be numbers")
    if issued > datetime.now(UTC).timestamp() + config.leeway.total_seconds():
        raise _unauthorized("invalid token: it is issued in the future (iat)")
    if expires - issued > config.max_lifetime.total_seconds():
        raise _unauthorized(
            f"invalid token: it lives longer than the maximum of {config.max_lifetime} (exp - iat)"
        )
    paths = config.claims if config.jwks is not None else ClaimPaths()
    raw_roles = _claim_at(claims, paths.roles)
    raw_roles = [] if raw_roles is None else raw_roles
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise _unauthorized(f"invalid token: the {paths.roles} claim must be a list of strings")
    raw_scopes = {
        "territories": _claim_at(claims, paths.territories),
        "regions": _claim_at(claims, paths.regions),
    }
    for claim, value in raw_scopes.items():
        if value is not None and not isinstance(value, list):
            raise _unauthorized(f"invalid token: the {getattr(paths, claim)} claim must be a list")
    if config.jwks is None:  # our own tokens: an unknown role is a mistake, said so
        try:
            roles = frozenset(Role(r) for r in raw_roles)
        except ValueError as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
    else:  # an IdP's: it carries roles of other applications (offline_access…)
        roles = frozenset(paths.role_map[r] for r in raw_roles if r in paths.role_map)

    def scope(claim: str) -> frozenset[str]:  # a claim not of the roles is ignored
        if not _claim_belongs(claim, roles):
            return frozenset()
        return frozenset(map(str, raw_scopes[claim] or []))

    org = _claim_at(claims, paths.org)
    principal = Principal(
        subject=str(claims["sub"]),
        roles=roles,
        territories=scope("territories"),
        regions=scope("regions"),
        org=str(org) if org and _claim_belongs("org", roles) else None,
    )
    return principal, float(expires)


def verify_cached(config: AuthConfig, token: str) -> Principal:
    """`decode_token`, answered from `config.verified` when the token was verified before
    with the same key and has not reached its `exp` (`VerifiedTokens`)."""
    key, algorithms = _verification_key(config, token)
    known = config.verified.get(token, key)
    if known is not None:
        return known
    principal, expires = _verify(config, token, key, algorithms)
    config.verified.put(token, principal, expires, key)
    return principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


_bearer = HTTPBearer(auto_error=False, description="JWT minted by `python -m shared.auth mint`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    config: AuthConfig = request.app.state.auth
    token = credentials.credentials
    if config.jwks is not None:
        kid = _header(token).get("kid")
        if isinstance(kid, str) and kid:
            try:  # the JWKS fetch, if any, off the event loop; decode then hits the cache
                await config.jwks.prepare(kid)
            except JwksUnavailable as exc:
                raise _unauthorized(f"cannot verify the token now: {exc}") from exc
    return verify_cached(config, token)


class Allow:
    """`Depends(Allow(Role.CRISIS_CELL, Role.ADMIN))`: who may call an endpoint.

    Admin is always allowed: it is the operator's role, used to repair data.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles) | {Role.ADMIN}

    # async: FastAPI runs sync dependencies in a worker thread, a costly hop per request.
    async def __call__(
        self, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        return self.check(principal)

    def check(self, principal: Principal) -> Principal:
        if not (principal.roles & self.roles):
            allowed = ", ".join(sorted(self.roles))
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint is for: {allowed}",
            )
        return principal


def forbid_territory(territory_id: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_403_FORBIDDEN,
        detail=f"your token does not cover territory {territory_id}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Mint a development token with the secret of the local settings."""
    parser = argparse.ArgumentParser(prog="python -m shared.auth")
    sub = parser.add_subparsers(dest="command", required=True)
    mint = sub.add_parser("mint", help="print a signed bearer token")
    mint.add_argument("--role", action="append", required=True, choices=[r.value for r in Role])
    mint.add_argument("--territory", action="append", default=[])
    mint.add_argument("--region", action="append", default=[])
    mint.add_argument("--org", default=None, help="a funder's organisation, e.g. ADEME")
    mint.add_argument("--sub", default=None, help="subject id (default: a random one)")
    mint.add_argument(
        "--hours", type=float, default=None, help="lifetime (default: the maximum, 12 h)"
    )
    args = parser.parse_args(argv)

    from pydantic import ValidationError

    from shared.settings import ServiceSettings

    class TokenSettings(ServiceSettings):
        needs_database = False

    try:
        config = AuthConfig.from_settings(TokenSettings())
    except ValidationError as exc:  # e.g. no environment: the development secret refused
        parser.error("; ".join(str(e["msg"]) for e in exc.errors()))
    try:
        token = mint_token(
            config,
            subject=args.sub or f"dev-{uuid.uuid4().hex[:8]}",
            roles=args.role,
            territories=args.territory,
            regions=args.region,
            org=args.org,
            ttl=None if args.hours is None else timedelta(hours=args.hours),
        )
    except ValueError as exc:
        parser.error(str(exc))  # one readable line, exit status 2
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
