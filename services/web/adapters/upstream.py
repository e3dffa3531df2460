"""The four public APIs as the pages reach them: one keep-alive HTTP client, and the
relay of one browser call (method, path, query, body, the headers that mean something to
the APIs) with the session's bearer token added."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

#: request headers the APIs read (everything else the browser sends stays here)
FORWARDED_REQUEST_HEADERS = (
    "accept",
    "accept-encoding",
    "accept-language",
    "content-type",
    "idempotency-key",
    "if-match",
    "if-none-match",
    "last-event-id",
    "x-correlation-id",
)
#: response headers the pages may need (hop-by-hop ones and the length are not relayed:
#: the body is streamed as it arrives)
DROPPED_RESPONSE_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
)


#: Methods a retry cannot make happen twice.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UnknownApi(LookupError):
    pass


class Upstreams:
    def __init__(self, base_urls: Mapping[str, str], timeout_s: float) -> None:
        self.base_urls = {name: url.rstrip("/") for name, url in base_urls.items()}
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=5.0),
                # Idle connections are dropped before the APIs' uvicorn closes them (its
                # keep-alive timeout is 5 s, as was httpx's expiry): at the same instant, a
                # request sent on a connection the server was closing met "server
                # disconnected", and the page said the API was down.
                limits=httpx.Limits(
                    max_connections=200, max_keepalive_connections=50, keepalive_expiry=2.0
                ),
                follow_redirects=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def open(
        self,
        api: str,
        method: str,
        path: str,
        query: bytes,
        headers: Mapping[str, str],
        body: bytes,
        token: str | None,
        *,
        stream: bool,
    ) -> httpx.Response:
        """Send the call and return the response with its body not yet read (the caller
        streams it and closes it)."""
        base = self.base_urls.get(api)
        if base is None:
            raise UnknownApi(api)
        sent = {k: v for k, v in headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
        if token:
            sent["authorization"] = f"Bearer {token}"
        url = httpx.URL(f"{base}/{path.lstrip('/')}", query=query)
        # An event stream stays open as long as the reader wants: no read timeout.
        timeout = httpx.Timeout(None, connect=5.0) if stream else httpx.USE_CLIENT_DEFAULT
        request = self.client.build_request(
            method, url, headers=sent, content=body, timeout=timeout
        )
        try:
            return await self.client.send(request, stream=True)
        except httpx.RemoteProtocolError:
            # A kept-alive connection closed by the server as the request left: nothing
            # was answered. A read changes nothing: sent once more, on a new connection.
            if method not in SAFE_METHODS:
                raise
            return await self.client.send(request, stream=True)


def relayed_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS}
