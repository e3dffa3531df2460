"""The web pages' login and relay, on real HTTP: an OpenID Connect issuer on the loopback
(discovery, authorization, token and JWKS endpoints, checking PKCE as an issuer does), an
upstream API on the loopback that echoes what it received, and the web app itself called
through httpx. No browser: the browser tests cover the pages; this covers the protocol."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from services.web.bootstrap import bootstrap, create_app
from services.web.domain.session import DevLogin, LoginRefused, Pkce, safe_next
from services.web.settings import WebSettings

pytestmark = pytest.mark.unit

SECRET = "web-unit-test-secret-that-is-long-enough-0123"
CLIENT_ID = "rebond-web"


@dataclass
class Issuer:
    """A small OIDC issuer: it remembers the authorization requests and answers the
    token endpoint only for the right code, redirect URI and PKCE verifier."""

    url: str = ""
    key: Any = None
    kid: str = field(default_factory=lambda: f"k-{uuid.uuid4().hex[:6]}")
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    audience: str = "rebond"
    roles: list[str] = field(default_factory=lambda: ["funder"])
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def access_token(self) -> str:
        now = datetime.now(UTC)
        claims = {
            "sub": "financeur-oidc",
            "iss": self.url,
            "aud": self.audience,
            "iat": now,
            "exp": now + timedelta(minutes=30),
            "roles": self.roles,
            "regions": ["32"],
            "org": "ADEME",
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    state = Issuer(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    class Handler(BaseHTTPRequestHandler):
        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path)
            if path.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": state.url,
                        "authorization_endpoint": f"{state.url}/authorize",
                        "token_endpoint": f"{state.url}/token",
                        "jwks_uri": f"{state.url}/jwks",
                    },
                )
            elif path.path == "/jwks":
                jwk = json.loads(RSAAlgorithm.to_jwk(state.key.public_key()))
                self._json(200, {"keys": [{**jwk, "kid": state.kid, "alg": "RS256"}]})
            elif path.path == "/authorize":  # the person signs in; the issuer redirects back
                query = {k: v[0] for k, v in parse_qs(path.query).items()}
                code = uuid.uuid4().hex
                state.codes[code] = query
                answer = urlencode({"code": code, "state": query["state"]})
                back = f"{query['redirect_uri']}?{answer}"
                self.send_response(302)
                self.send_header("Location", back)
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            state.token_requests.append(form)
            asked = state.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if (
                asked is None
                or form.get("redirect_uri") != asked["redirect_uri"]
                or form.get("client_id") != asked["client_id"]
                or asked.get("code_challenge_method") != "S256"
                or challenge != asked["code_challenge"]
            ):
                self._json(400, {"error": "invalid_grant", "error_description": "PKCE failed"})
                return
            self._json(200, {"access_token": state.access_token(), "token_type": "Bearer"})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state


@dataclass
class Upstream:
    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    state = Upstream()

    class Handler(BaseHTTPRequestHandler):
        def _echo(self) -> None:
            length = int(self.headers.get("Content-Length", 0) or 0)
            body = self.rfile.read(length).decode() if length else ""
            seen = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            state.seen.append(seen)
            data = json.dumps(seen).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"v7"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _echo
        do_POST = _echo

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as url:
        state.url = url
        yield state


class serving:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def web_client(settings: WebSettings, tmp_path: Path) -> httpx.AsyncClient:
    static = tmp_path / "static"
    (static / "connexion").mkdir(parents=True)
    (static / "connexion" / "index.html").write_text("<!doctype html><title>x</title>")
    app = create_app(bootstrap(settings), static_dir=static)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://pages.rebond.test"
    )


@pytest.fixture
async def oidc_web(issuer: Issuer, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = WebSettings(
        environment="test",
        jwt_secret=SECRET,
        jwt_issuer=issuer.url,
        oidc_jwks_url=f"{issuer.url}/jwks",
        oidc_issuer_url=issuer.url,
        oidc_client_id=CLIENT_ID,
    )
    async with web_client(settings, tmp_path) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, next_path: str = "/financeur/") -> httpx.Response:
    start = await client.get("/auth/login", params={"next": next_path})
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == ["http://pages.rebond.test/auth/callback"]
    async with httpx.AsyncClient() as person:  # the browser at the issuer's login page
        back = await person.get(authorize)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    return await client.get(f"{callback.path}?{callback.query}")


async def test_the_oidc_login_uses_pkce_and_opens_a_session_the_apis_accept(
    oidc_web: httpx.AsyncClient, issuer: Issuer
) -> None:
    done = await sign_in(oidc_web)
    assert done.status_code == 303
    assert done.headers["location"] == "/financeur/"
    assert "HttpOnly" in done.headers["set-cookie"]
    # The verifier went to the token endpoint only, never through the browser.
    verifier = issuer.token_requests[-1]["code_verifier"]
    assert 43 <= len(verifier) <= 128
    session = (await oidc_web.get("/auth/session")).json()
    assert session["roles"] == ["funder"]
    assert session["regions"] == ["32"] and session["org"] == "ADEME"
    assert session["home"] == "/financeur/"


async def test_a_callback_this_browser_did_not_start_is_refused(
    oidc_web: httpx.AsyncClient, issuer: Issuer
) -> None:
    start = await oidc_web.get("/auth/login")
    async with httpx.AsyncClient() as person:
        back = await person.get(start.headers["location"])
    callback = urlsplit(back.headers["location"])
    forged = callback.query.replace("state=", "state=forged")
    answer = await oidc_web.get(f"{callback.path}?{forged}")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/connexion/?erreur=")
    assert (await oidc_web.get("/auth/session")).status_code == 401
    assert issuer.token_requests == []  # refused before the code was spent


async def test_a_token_the_apis_would_refuse_opens_no_session(
    oidc_web: httpx.AsyncClient, issuer: Issuer
) -> None:
    issuer.audience = "another-application"
    answer = await sign_in(oidc_web)
    assert answer.headers["location"].startswith("/connexion/?erreur=")
    assert "jeton" in httpx.URL(answer.headers["location"]).params["erreur"]
    assert (await oidc_web.get("/auth/session")).status_code == 401


async def test_the_development_login_is_closed_when_oidc_is_configured(
    oidc_web: httpx.AsyncClient,
) -> None:
    answer = await oidc_web.post("/auth/dev-login", json={"role": "admin"})
    assert answer.status_code == 404
    assert (await oidc_web.get("/auth/config")).json()["dev_login"] is False


def test_production_refuses_the_development_login() -> None:
    with pytest.raises(ValueError, match="WEB_DEV_LOGIN cannot be on in production"):
        WebSettings(
            environment="production",
            jwt_secret=SECRET,
            dev_login=True,
            oidc_jwks_url="https://idp.example/jwks",
        )


async def test_the_relay_adds_the_sessions_token_and_keeps_the_apis_answer(
    upstream: Upstream, tmp_path: Path
) -> None:
    settings = WebSettings(environment="test", jwt_secret=SECRET, campaigns_url=upstream.url)
    async with web_client(settings, tmp_path) as client:
        login = await client.post(
            "/auth/dev-login", json={"role": "consultant", "territory": "ti-3205"}
        )
        assert login.status_code == 200, login.text
        token = login.cookies["rebond_session"]
        answer = await client.post(
            "/api/campaigns/sync?x=1",
            json={"items": []},
            headers={"Idempotency-Key": "k-1", "X-Other": "dropped"},
        )
    assert answer.status_code == 201
    assert answer.headers["etag"] == '"v7"'
    seen = upstream.seen[-1]
    assert seen["path"] == "/sync?x=1"
    assert seen["headers"]["authorization"] == f"Bearer {token}"
    assert seen["headers"]["idempotency-key"] == "k-1"
    async with web_client(settings, tmp_path / "again") as client:
        for ops in ("/api/campaigns/metrics", "/api/campaigns/readyz/", "/api/campaigns/healthz"):
            refused = await client.get(ops)
            assert refused.status_code == 404, ops  # operations routes stay internal
    assert all(not s["path"].startswith(("/metrics", "/readyz", "/healthz")) for s in upstream.seen)
    assert "cookie" not in seen["headers"] and "x-other" not in seen["headers"]
    assert json.loads(seen["body"]) == {"items": []}


async def test_the_relay_says_in_words_when_an_api_is_down(tmp_path: Path) -> None:
    settings = WebSettings(
        environment="test", jwt_secret=SECRET, detection_url="http://127.0.0.1:9"
    )
    async with web_client(settings, tmp_path) as client:
        answer = await client.get("/api/detection/projects")
        unknown = await client.get("/api/nowhere/x")
    assert answer.status_code == 503
    assert "detection ne répond pas" in answer.json()["detail"]
    assert unknown.status_code == 404


async def test_a_write_from_another_site_is_refused_before_anything_runs(tmp_path: Path) -> None:
    settings = WebSettings(environment="test", jwt_secret=SECRET)
    async with web_client(settings, tmp_path) as client:
        answer = await client.post(
            "/auth/dev-login",
            json={"role": "admin"},
            headers={"Origin": "https://evil.example"},
        )
    assert answer.status_code == 403
    assert "rebond_session" not in answer.cookies


def test_pkce_challenge_is_rfc7636s_s256() -> None:
    # RFC 7636, appendix B
    pkce = Pkce("s", "n", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "/")
    assert pkce.challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/terrain/?semaine=2", "/terrain/?semaine=2"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        (None, "/"),
    ],
)
def test_after_the_login_only_a_path_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target, "/") == expected


def test_a_development_login_needs_the_scope_of_its_role() -> None:
    with pytest.raises(LoginRefused, match="territoire"):
        DevLogin.parse("consultant", None, "", None, None)
    with pytest.raises(LoginRefused, match="région"):
        DevLogin.parse("funder", None, None, " ", None)
    with pytest.raises(LoginRefused, match="rôle inconnu"):
        DevLogin.parse("mayor", None, None, None, None)
    funder = DevLogin.parse("funder", None, "ti-3205", "32", "ADEME")
    assert funder.territory is None and funder.region == "32" and funder.subject == "dev-funder"


def hang_up_once() -> tuple[str, list[str], Any]:
    """A socket server that reads the first request and closes the connection without a
    word (as a server ending an idle keep-alive connection at that instant does), then
    answers every later request 200. Returns (url, request lines seen, the server)."""
    import socket

    seen: list[str] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                if not data:
                    continue
                seen.append(data.split(b"\r\n", 1)[0].decode())
                if len(seen) == 1:
                    continue  # closed, nothing answered
                body = b'{"ok": true}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}", seen, server


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False)])
async def test_a_read_on_a_connection_closed_by_the_api_is_sent_again_a_write_is_not(
    tmp_path: Path, method: str, retried: bool
) -> None:
    url, seen, server = hang_up_once()
    try:
        settings = WebSettings(environment="test", jwt_secret=SECRET, site_registry_url=url)
        async with web_client(settings, tmp_path) as client:
            answer = await client.request(method, "/api/registry/closure-shocks")
    finally:
        server.close()
    if retried:
        assert answer.status_code == 200 and answer.json() == {"ok": True}
        assert [line.split("?")[0] for line in seen] == ["GET /closure-shocks"] * 2
    else:
        # A write may have been applied before the connection dropped: not sent twice,
        # the page says the API did not answer.
        assert answer.status_code == 503
        assert [line.split("?")[0] for line in seen] == ["POST /closure-shocks"]
