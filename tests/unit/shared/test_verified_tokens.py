"""`VerifiedTokens`: the request path verifies a bearer token once, then answers from the
cache, but never past the token's `exp`, never beyond the cache's maximum age, never with
another key than the one it was verified with, and never for a token that was refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi import HTTPException

from shared import auth
from shared.auth import AuthConfig, Principal, Role, VerifiedTokens, mint_token, verify_cached
from tests.unit.shared.test_oidc_tokens import Jwks, config_for, issued_by, jwks, rsa_key

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
__all__ = ["jwks"]  # the fixture, imported for the OIDC test


class Clock:
    """`time.time` as `shared.auth` reads it, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC).timestamp()
        monkeypatch.setattr(auth.time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


def consultant_token(config: AuthConfig, ttl: timedelta = timedelta(minutes=10)) -> str:
    return mint_token(
        config, subject="consultant-1", roles=["consultant"], territories=["ti-3205"], ttl=ttl
    )


def refused(config: AuthConfig, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as excinfo:
        verify_cached(config, token)
    assert excinfo.value.status_code == 401
    return excinfo.value


def test_a_token_is_verified_once_then_answered_from_the_cache() -> None:
    config = AuthConfig(SECRET)
    token = consultant_token(config)

    first = verify_cached(config, token)
    second = verify_cached(config, token)

    assert (
        first
        == second
        == Principal(
            subject="consultant-1",
            roles=frozenset({Role.CONSULTANT}),
            territories=frozenset({"ti-3205"}),
        )
    )
    assert config.verified.hits == 1 and len(config.verified) == 1


def test_a_cached_token_is_refused_once_its_exp_and_the_leeway_are_past(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    config = AuthConfig(SECRET, leeway=timedelta(seconds=0))
    token = consultant_token(config, ttl=timedelta(minutes=2))
    verify_cached(config, token)

    clock.advance(119)
    verify_cached(config, token)
    assert config.verified.hits == 1
    clock.advance(2)  # past exp: the cache no longer answers, and pyjwt refuses

    # pyjwt reads the real clock: the token must really be expired for it
    expired = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "exp": 1}, SECRET, "HS256"
    )
    assert config.verified.get(token, config.secret) is None
    assert "expired" in str(refused(config, expired).detail)


def test_the_cache_never_answers_past_exp_even_within_the_leeway(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    config = AuthConfig(SECRET)  # 60 s of leeway: decode would still accept for a minute
    token = consultant_token(config, ttl=timedelta(minutes=1))
    verify_cached(config, token)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]

    clock.now = exp  # exactly exp: verified again, not served
    hits = config.verified.hits
    verify_cached(config, token)
    assert config.verified.hits == hits


def test_an_entry_lives_at_most_the_cache_s_maximum_age(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    config = AuthConfig(SECRET, verified=VerifiedTokens(max_age_s=30))
    token = consultant_token(config, ttl=timedelta(hours=1))
    verify_cached(config, token)
    clock.advance(29)
    verify_cached(config, token)
    clock.advance(2)
    verify_cached(config, token)
    assert config.verified.hits == 1  # the third one verified the token again


def test_a_refused_token_is_never_cached() -> None:
    config = AuthConfig(SECRET)
    other = AuthConfig("another-secret-that-is-long-enough-0123456789")
    forged = consultant_token(other)
    for _ in range(2):
        refused(config, forged)
    assert len(config.verified) == 0


def test_a_token_verified_with_another_key_object_is_verified_again() -> None:
    cache = VerifiedTokens()
    principal = Principal(subject="s", roles=frozenset({Role.ADMIN}))
    old_key, new_key = object(), object()
    cache.put("t", principal, datetime.now(UTC).timestamp() + 600, old_key)
    assert cache.get("t", old_key) == principal
    assert cache.get("t", new_key) is None
    assert cache.get("t", old_key) is None  # dropped on the miss


def test_the_cache_is_bounded_expired_entries_first_then_the_oldest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(monkeypatch)
    cache = VerifiedTokens(max_entries=3)
    p = Principal(subject="s", roles=frozenset({Role.ADMIN}))
    cache.put("short", p, clock.now + 5, None)
    cache.put("a", p, clock.now + 600, None)
    cache.put("b", p, clock.now + 600, None)
    clock.advance(10)
    cache.put("c", p, clock.now + 600, None)  # "short" has expired: it goes
    assert len(cache) == 3 and cache.get("a", None) == p
    cache.put("d", p, clock.now + 600, None)  # none expired: the oldest goes
    assert len(cache) == 3
    assert cache.get("a", None) is None and cache.get("d", None) == p


@pytest.mark.parametrize("kwargs", [{"max_entries": 0}, {"max_age_s": 0}])
def test_a_cache_without_room_or_age_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        VerifiedTokens(**kwargs)


def test_oidc_a_key_dropped_from_the_jwks_refuses_its_cached_tokens(jwks: Jwks) -> None:
    # The issuer removes a key (compromised): once the JWKS is read again, a token of
    # that key is refused, cached or not.
    old, new = rsa_key(), rsa_key()
    jwks.keys = [old.jwk()]
    config = config_for(jwks.url)
    assert config.jwks is not None
    token = issued_by(old)
    verify_cached(config, token)
    verify_cached(config, token)
    assert config.verified.hits == 1

    jwks.keys = [new.jwk()]
    config.jwks._fetched_at = float("-inf")  # the cached JWKS is past its lifetime

    with pytest.raises(HTTPException) as excinfo:
        verify_cached(config, token)
    assert excinfo.value.status_code == 401 and old.kid in str(excinfo.value.detail)
    assert verify_cached(config, issued_by(new)).roles == {Role.CRISIS_CELL}
