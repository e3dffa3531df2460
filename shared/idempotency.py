"""`Idempotency-Key` for POST requests: a retried request returns the first response and
creates nothing new.

The key's row is written in the same transaction as the request's effect, so a crash
either keeps both or neither. A key reused with a different body is refused (422): the
client has a bug, and replaying the old answer would hide it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.db import utc_column
from shared.errors import DomainError
from shared.messaging.tables import utcnow
from shared.messaging.unit_of_work import SqlUnitOfWork

U = TypeVar("U", bound=SqlUnitOfWork)
Action = Callable[[U], Awaitable[tuple[int, Any]]]

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


def create_idempotency_table(op: Any) -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def fingerprint(request: Request, body: Any) -> str:
    return request_hash(request.method, request.url.path, jsonable_encoder(body))


async def run_command(
    uow_factory: Callable[[], U],
    principal: str,
    key: str | None,
    request_fingerprint: str,
    action: Action[U],
) -> JSONResponse:
    """Run `action` in one unit of work; with a key, store its answer in the same commit
    and replay it for any retry (header `Idempotent-Replayed: true`)."""
    for attempt in (1, 2):
        async with uow_factory() as uow:
            if key is not None:
                stored = await lookup(uow.session, principal, key, request_fingerprint)
                if stored is not None:
                    code, body = stored
                    return JSONResponse(
                        status_code=code, content=body, headers={"Idempotent-Replayed": "true"}
                    )
            code, body = await action(uow)
            body = jsonable_encoder(body)
            if key is not None:
                remember(uow.session, principal, key, request_fingerprint, code, body)
            try:
                await uow.commit()
            except IntegrityError:
                # The same key committed concurrently (a retry racing its original): the
                # second pass finds it and replays its answer.
                if key is None or attempt == 2:
                    raise
                continue
        return JSONResponse(status_code=code, content=body)
    raise AssertionError("unreachable")
