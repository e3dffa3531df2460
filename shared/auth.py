"""Bearer JWTs with roles and scopes, and the FastAPI dependencies that enforce them.

Roles: `crisis_cell` and `consultant` are scoped to territories (`territories` claim,
Territoire d'industrie ids such as `ti-3205`); `funder` to regions (`regions` claim, INSEE
region codes such as `32`); `admin` sees everything. Every endpoint declares who may call
it with `Allow(...)`; the roles also appear in the OpenAPI document (`x-roles`).

Tokens are HS256-signed with the deployment's secret (settings `jwt_secret`). A
deployment behind an identity provider would verify its RS256 tokens instead; only
`decode_token` would change.

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
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import jwt
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

    def can_see_territory(self, territory_id: str) -> bool:
        return self.is_admin or territory_id in self.territories

    def can_see_any_territory(self, territory_ids: Sequence[str]) -> bool:
        return self.is_admin or any(t in self.territories for t in territory_ids)

    def can_see_region(self, region: str) -> bool:
        return self.is_admin or region in self.regions


#: scope claim → the roles it belongs to (admin, who sees everything, carries any of them)
SCOPE_CLAIMS: dict[str, frozenset[Role]] = {
    "territories": frozenset({Role.CRISIS_CELL, Role.CONSULTANT}),
    "regions": frozenset({Role.FUNDER}),
    "org": frozenset({Role.FUNDER}),
}


def _claim_belongs(claim: str, roles: frozenset[Role]) -> bool:
    return bool(roles & (SCOPE_CLAIMS[claim] | {Role.ADMIN}))


class AuthConfig:
    """What the dependencies need to verify tokens; set on `app.state.auth`."""

    def __init__(
        self,
        secret: str,
        *,
        algorithm: str = "HS256",
        audience: str = "rebond",
        issuer: str = "rebond",
        max_lifetime: timedelta = timedelta(hours=12),
        leeway: timedelta = timedelta(seconds=60),
    ):
        self.secret = secret
        self.algorithm = algorithm
        self.audience = audience
        self.issuer = issuer
        self.max_lifetime = max_lifetime
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> AuthConfig:
        return cls(
            settings.jwt_secret.get_secret_value(),
            algorithm=settings.jwt_algorithm,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            max_lifetime=timedelta(seconds=settings.jwt_max_lifetime_s),
            leeway=timedelta(seconds=settings.jwt_leeway_s),
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


def decode_token(config: AuthConfig, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            config.secret,
            algorithms=[config.algorithm],
            audience=config.audience,
            issuer=config.issuer,
            leeway=config.leeway,
            options={"require": ["sub", "exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
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
    raw_roles = claims.get("roles", [])
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise _unauthorized("invalid token: the roles claim must be a list of strings")
    for claim in ("territories", "regions"):
        if not isinstance(claims.get(claim, []), list):
            raise _unauthorized(f"invalid token: the {claim} claim must be a list")
    try:
        roles = frozenset(Role(r) for r in raw_roles)
    except ValueError as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc

    def scope(claim: str) -> frozenset[str]:  # a claim not of the roles is ignored
        if not _claim_belongs(claim, roles):
            return frozenset()
        return frozenset(map(str, claims.get(claim, [])))

    org = claims.get("org")
    return Principal(
        subject=str(claims["sub"]),
        roles=roles,
        territories=scope("territories"),
        regions=scope("regions"),
        org=str(org) if org and _claim_belongs("org", roles) else None,
    )


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
    return decode_token(config, credentials.credentials)


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
