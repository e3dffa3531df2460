"""`Idempotency-Key` for POST requests: a retried request returns the first response and
creates nothing new.

The key's row is written in the same transaction as the request's effect, so a crash
either keeps both or neither. A key reused with a different body is refused (422): the
client has a bug, and replaying the old answer would hide it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import utc_column
from shared.errors import DomainError
from shared.messaging.tables import utcnow

HEADER = "Idempotency-Key"


class IdempotencyKeyReused(DomainError):
    status_code = 422
    code = "idempotency_key_reused"


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    principal: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=utc_column())


def request_hash(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def lookup(
    session: AsyncSession, principal: str, key: str, fingerprint: str
) -> tuple[int, Any] | None:
    """The stored (status, body) for this key, or None if the key is new."""
    record = await session.get(IdempotencyRecord, (principal, key))
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used for a different request"
        )
    return record.status_code, json.loads(record.response)


def remember(
    session: AsyncSession, principal: str, key: str, fingerprint: str, status: int, body: Any
) -> None:
    session.add(
        IdempotencyRecord(
            principal=principal,
            key=key,
            request_hash=fingerprint,
            status_code=status,
            response=json.dumps(body, default=str),
        )
    )
