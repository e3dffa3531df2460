"""The one command path (`shared.command_bus`) on the real databases: a command's effect,
its outbox rows and its idempotency row commit together or not at all, and a retry with
the same key replays the answer without a second effect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlmodel import func, select

from services.funding.bootstrap import MIGRATIONS
from shared import migrations
from shared.auth import Principal, Role
from shared.command_bus import CommandBus, Created
from shared.db import create_engine, create_session_factory
from shared.errors import Conflict
from shared.events import site_registry as sr
from shared.events.examples import EXAMPLES
from shared.idempotency import IdempotencyKeyReused, IdempotencyRecord
from shared.messaging.tables import OutboxEvent
from shared.messaging.unit_of_work import SqlUnitOfWork

CELL = Principal(subject="cell-1", roles=frozenset({Role.CRISIS_CELL}))
EVENT = EXAMPLES[sr.SiteClosed]


@pytest.fixture
async def uow_factory(database_url: str) -> AsyncIterator[object]:
    await migrations.upgrade(MIGRATIONS, database_url)
    engine = create_engine(database_url)
    factory = create_session_factory(engine)
    yield lambda: SqlUnitOfWork(factory, source="test")
    await engine.dispose()


async def counts(uow_factory: object) -> tuple[int, int]:
    async with uow_factory() as uow:  # type: ignore[operator]
        outbox = (await uow.session.exec(select(func.count()).select_from(OutboxEvent))).one()
        keys = (await uow.session.exec(select(func.count()).select_from(IdempotencyRecord))).one()
        return int(outbox), int(keys)


async def publishing(uow: SqlUnitOfWork) -> Created[dict[str, str]]:
    uow.publish(EVENT)
    return Created({"done": "yes"})


async def test_a_retry_with_the_same_key_replays_the_answer_and_publishes_once(
    uow_factory: object,
) -> None:
    key = str(uuid.uuid4())
    bus = CommandBus(uow_factory, None, key)  # type: ignore[arg-type]

    first = await bus.execute(CELL, key, "print-1", publishing)
    again = await bus.execute(CELL, key, "print-1", publishing)

    assert (first.status_code, first.body, first.replayed) == (201, {"done": "yes"}, False)
    assert (again.status_code, again.body, again.replayed) == (201, {"done": "yes"}, True)
    assert again.response().headers["Idempotent-Replayed"] == "true"
    assert await counts(uow_factory) == (1, 1)


async def test_the_same_key_with_another_request_is_refused(uow_factory: object) -> None:
    key = str(uuid.uuid4())
    bus = CommandBus(uow_factory, None, key)  # type: ignore[arg-type]
    await bus.execute(CELL, key, "print-1", publishing)

    with pytest.raises(IdempotencyKeyReused):
        await bus.execute(CELL, key, "print-2", publishing)
    assert await counts(uow_factory) == (1, 1)


async def test_keys_are_per_principal(uow_factory: object) -> None:
    key = str(uuid.uuid4())
    bus = CommandBus(uow_factory, None, key)  # type: ignore[arg-type]
    other = Principal(subject="cell-2", roles=frozenset({Role.CRISIS_CELL}))

    await bus.execute(CELL, key, "print-1", publishing)
    second = await bus.execute(other, key, "print-1", publishing)

    assert not second.replayed
    assert await counts(uow_factory) == (2, 2)


async def test_a_refused_command_commits_nothing_not_even_its_key(uow_factory: object) -> None:
    key = str(uuid.uuid4())
    bus = CommandBus(uow_factory, None, key)  # type: ignore[arg-type]

    async def refused(uow: SqlUnitOfWork) -> None:
        uow.publish(EVENT)
        raise Conflict("the site is closed already")

    with pytest.raises(Conflict):
        await bus.execute(CELL, key, "print-1", refused)
    answer = await bus.execute(CELL, key, "print-1", publishing)  # the key is still free

    assert not answer.replayed
    assert await counts(uow_factory) == (1, 1)


async def test_a_retry_racing_its_original_has_one_effect(uow_factory: object) -> None:
    key = str(uuid.uuid4())
    bus = CommandBus(uow_factory, None, key)  # type: ignore[arg-type]

    answers = await asyncio.gather(
        *(bus.execute(CELL, key, "print-1", publishing) for _ in range(4)),
        return_exceptions=True,
    )

    bodies = [a for a in answers if not isinstance(a, BaseException)]
    assert bodies, answers
    assert all(a.body == {"done": "yes"} and a.status_code == 201 for a in bodies)
    assert await counts(uow_factory) == (1, 1)
