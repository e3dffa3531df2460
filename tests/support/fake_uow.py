"""The fake unit of work of the service-layer tests (after cosmicpython's
`FakeUnitOfWork`): in memory, and collecting events at commit exactly as
`shared.messaging.unit_of_work.SqlUnitOfWork` does — staged events first, then the events
of every aggregate the repositories handed out — so a test asserts on what would have
reached the outbox.

Each service's `tests/unit/<service>/fakes.py` subclasses it with in-memory
repositories and lists them in `seen_aggregates`.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from shared.events.envelope import Envelope, EventPayload
from shared.messaging.unit_of_work import RecordsEvents


class FakeUnitOfWork:
    source = "fake"

    def __init__(self) -> None:
        self.commits = 0
        self.published: list[EventPayload] = []  # what the outbox would hold, in order
        self._staged: list[EventPayload] = []
        self._inbox_ids: set[tuple[str, Any]] = set()
        self._inbox_keys: set[tuple[str, str]] = set()

    @property
    def session(self) -> Any:
        raise AssertionError(
            "the service layer reached for the database session: go through a repository"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.rollback()

    def seen_aggregates(self) -> Iterable[RecordsEvents]:
        return ()

    def publish(self, event: EventPayload) -> None:
        self._staged.append(event)

    async def commit(self) -> None:
        events = list(self._staged)
        self._staged.clear()
        for aggregate in self.seen_aggregates():
            events.extend(aggregate.events)
            aggregate.events.clear()
        self.published.extend(events)
        self.commits += 1

    async def rollback(self) -> None:
        self._staged.clear()
        for aggregate in self.seen_aggregates():
            aggregate.events.clear()

    async def record_inbox(
        self, consumer: str, envelope: Envelope[Any], *, topic: str, partition: int, offset: int
    ) -> bool:
        business_key = envelope.payload.business_key()
        if (consumer, envelope.id) in self._inbox_ids or (
            business_key is not None and (consumer, business_key) in self._inbox_keys
        ):
            return False
        self._inbox_ids.add((consumer, envelope.id))
        if business_key is not None:
            self._inbox_keys.add((consumer, business_key))
        return True

    def published_types(self) -> list[str]:
        return [e.event_type for e in self.published]
