"""The OpenID Connect issuer the APIs trust, as the login needs it: its discovery
document (authorization and token endpoints) and the code-for-token exchange."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class OidcUnavailable(Exception):
    """The issuer could not be reached or answered something unusable."""


@dataclass(frozen=True)
class IssuerEndpoints:
    authorization_endpoint: str
    token_endpoint: str
    end_session_endpoint: str | None


class OidcClient:
    def __init__(
        self,
        issuer_url: str,
        client_id: str,
        client_secret: str | None,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self.issuer_url = issuer_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.timeout_s = timeout_s
        self._endpoints: IssuerEndpoints | None = None

    async def endpoints(self) -> IssuerEndpoints:
        if self._endpoints is None:
            url = f"{self.issuer_url}/.well-known/openid-configuration"
            document = await self._get_json(url)
            try:
                self._endpoints = IssuerEndpoints(
                    authorization_endpoint=str(document["authorization_endpoint"]),
                    token_endpoint=str(document["token_endpoint"]),
                    end_session_endpoint=document.get("end_session_endpoint"),
                )
            except KeyError as exc:
                raise OidcUnavailable(f"the issuer's discovery document lacks {exc}") from None
        return self._endpoints

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token response for an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
        endpoints = await self.endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.client_id,
            "code_verifier": verifier,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                if self.client_secret:  # a confidential client: client_secret_basic
                    response = await client.post(
                        endpoints.token_endpoint,
                        data=form,
                        auth=(self.client_id, self.client_secret),
                    )
                else:
                    response = await client.post(endpoints.token_endpoint, data=form)
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"the issuer's token endpoint is unreachable: {exc}") from None
        body = _json(response)
        if response.status_code != 200:
            reason = body.get("error_description") or body.get("error") or response.status_code
            raise OidcUnavailable(f"the issuer refused the code: {reason}")
        return body

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"the issuer is unreachable ({url}): {exc}") from None
        if response.status_code != 200:
            raise OidcUnavailable(f"the issuer answered {response.status_code} for {url}")
        return _json(response)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise OidcUnavailable("the issuer answered something that is not JSON") from None
    if not isinstance(body, dict):
        raise OidcUnavailable("the issuer answered JSON that is not an object")
    return body
