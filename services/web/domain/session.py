"""What the pages know of the person signed in, and the login's pure rules: which page a
role lands on, what a development login may ask for, the PKCE pair of an OIDC login.

No I/O: the tokens are decoded by `shared.auth` (the APIs' own rules) before they get here.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from shared.auth import Principal, Role

#: the page each role lands on (admin sees the crisis cell's dashboard first)
HOME_OF: dict[Role, str] = {
    Role.CRISIS_CELL: "/cellule/",
    Role.ADMIN: "/cellule/",
    Role.CONSULTANT: "/terrain/",
    Role.FUNDER: "/financeur/",
}

ROLE_LABELS: dict[Role, str] = {
    Role.CRISIS_CELL: "Cellule de crise",
    Role.CONSULTANT: "Consultant de terrain",
    Role.FUNDER: "Financeur",
    Role.ADMIN: "Administrateur",
}


class LoginRefused(ValueError):
    """A login that cannot be granted; the message is shown to the person, in French."""


@dataclass(frozen=True)
class SessionView:
    """The session as the pages read it (`GET /auth/session`)."""

    subject: str
    roles: tuple[str, ...]
    territories: tuple[str, ...]
    regions: tuple[str, ...]
    org: str | None
    expires_at: datetime | None
    home: str

    @classmethod
    def of(cls, principal: Principal, expires_at: datetime | None) -> SessionView:
        return cls(
            subject=principal.subject,
            roles=tuple(sorted(principal.roles)),
            territories=tuple(sorted(principal.territories)),
            regions=tuple(sorted(principal.regions)),
            org=principal.org,
            expires_at=expires_at,
            home=home_of(principal),
        )


def home_of(principal: Principal) -> str:
    for role in (Role.CRISIS_CELL, Role.ADMIN, Role.CONSULTANT, Role.FUNDER):
        if role in principal.roles:
            return HOME_OF[role]
    return "/connexion/"


def safe_next(target: str | None, default: str) -> str:
    """Where to go after the login: only a path of this site (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return default
    return target


@dataclass(frozen=True)
class DevLogin:
    """A development login: a role and its scope, as `python -m shared.auth mint` takes."""

    role: Role
    subject: str
    territory: str | None = None
    region: str | None = None
    org: str | None = None

    @classmethod
    def parse(
        cls,
        role: str,
        subject: str | None,
        territory: str | None,
        region: str | None,
        org: str | None,
    ) -> DevLogin:
        try:
            chosen = Role(role)
        except ValueError:
            raise LoginRefused(f"rôle inconnu : {role!r}") from None
        territory = (territory or "").strip() or None
        region = (region or "").strip() or None
        org = (org or "").strip() or None
        if chosen in (Role.CRISIS_CELL, Role.CONSULTANT) and not territory:
            raise LoginRefused(
                "choisissez le territoire d'industrie de la cellule ou du consultant"
            )
        if chosen is Role.FUNDER and not region:
            raise LoginRefused("choisissez la région du financeur")
        subject = (subject or "").strip() or f"dev-{chosen.value}"
        if len(subject) > 100 or not subject.isprintable():
            raise LoginRefused("l'identifiant doit tenir en 100 caractères imprimables")
        return cls(
            role=chosen,
            subject=subject,
            territory=territory if chosen in (Role.CRISIS_CELL, Role.CONSULTANT) else None,
            region=region if chosen is Role.FUNDER else None,
            org=org if chosen is Role.FUNDER else None,
        )


@dataclass(frozen=True)
class Pkce:
    """One OIDC login in flight: the state (CSRF), the nonce and the PKCE verifier,
    kept in a short-lived cookie between the redirect and the callback."""

    state: str
    nonce: str
    verifier: str
    next: str

    @classmethod
    def new(cls, next_path: str) -> Pkce:
        return cls(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),  # 64 characters: RFC 7636 wants 43-128
            next=next_path,
        )

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def authorize_url(
        self, endpoint: str, *, client_id: str, redirect_uri: str, scopes: str
    ) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": scopes,
                "state": self.state,
                "nonce": self.nonce,
                "code_challenge": self.challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
