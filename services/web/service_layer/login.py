"""The two ways in: a development login (a token minted with the shared secret, for a
chosen role and scope) and the OpenID Connect login (authorization code with PKCE). Both
end with a token the APIs accept, checked here by the APIs' own rules before it is kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
from fastapi import HTTPException

from services.web.adapters.oidc import OidcClient, OidcUnavailable
from services.web.domain.session import DevLogin, LoginRefused, Pkce, SessionView
from shared.auth import AuthConfig, decode_token, mint_token


def dev_token(auth: AuthConfig, choice: DevLogin) -> str:
    try:
        return mint_token(
            auth,
            subject=choice.subject,
            roles=[choice.role.value],
            territories=[choice.territory] if choice.territory else [],
            regions=[choice.region] if choice.region else [],
            org=choice.org,
        )
    except ValueError as exc:
        raise LoginRefused(str(exc)) from None


def session_of(auth: AuthConfig, token: str | None) -> SessionView | None:
    """The session a token opens, or None when there is none or the APIs would refuse it."""
    if not token:
        return None
    try:
        principal = decode_token(auth, token)
    except HTTPException:
        return None
    return SessionView.of(principal, expiry_of(token))


def expiry_of(token: str) -> datetime | None:
    # Only read after `decode_token` verified the signature and the times.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    exp = claims.get("exp")
    return datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


async def start_oidc(
    client: OidcClient, *, redirect_uri: str, scopes: str, next_path: str
) -> tuple[str, Pkce]:
    pkce = Pkce.new(next_path)
    endpoints = await client.endpoints()
    url = pkce.authorize_url(
        endpoints.authorization_endpoint,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
    )
    return url, pkce


async def finish_oidc(
    client: OidcClient,
    auth: AuthConfig,
    pkce: Pkce | None,
    *,
    code: str | None,
    state: str | None,
    error: str | None,
    redirect_uri: str,
) -> tuple[str, SessionView]:
    """The access token for the callback's code, once the state matches the login this
    browser started and the APIs' rules accept the token."""
    if error:
        raise LoginRefused(f"le fournisseur d'identité a refusé la connexion ({error})")
    if pkce is None or not state or state != pkce.state:
        raise LoginRefused("cette connexion n'a pas été commencée ici ou a expiré ; recommencez")
    if not code:
        raise LoginRefused("le fournisseur d'identité n'a pas renvoyé de code")
    try:
        answer = await client.exchange(code, pkce.verifier, redirect_uri)
    except OidcUnavailable as exc:
        raise LoginRefused(f"connexion impossible : {exc}") from None
    token = answer.get("access_token")
    if not isinstance(token, str):
        raise LoginRefused("le fournisseur d'identité n'a pas renvoyé de jeton d'accès")
    session = session_of(auth, token)
    if session is None:
        try:
            decode_token(auth, token)
        except HTTPException as exc:
            raise LoginRefused(f"jeton refusé par Rebond : {exc.detail}") from None
        raise LoginRefused("jeton refusé par Rebond")
    if not session.roles:
        raise LoginRefused("votre compte n'a aucun rôle Rebond ; demandez-en un à l'administrateur")
    return token, session
