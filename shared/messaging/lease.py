"""The relay's leadership: a lease row with an expiry and a fencing token.

One process of a service publishes its outbox at a time, or per-key order breaks. A
session-level PostgreSQL advisory lock cannot guarantee that: a process whose connection
was cut (a database restart, a killed session) keeps believing it holds the lock while
another takes it, and a hung holder keeps the lock for as long as it hangs. A lease can:

- the holder **renews it before every batch**; if the row no longer names it with its
  token, it has lost the lease and stops publishing at once;
- a standby takes the lease only **after it expired** (`ttl_s` without renewal), and
  takes it with `token + 1`: a holder that hung (SIGSTOP, a long GC pause) and wakes up
  finds another token and stops; the Kafka producer it used is fenced as well (the
  relay's transactional id is the same for every process of the service);
- time is the **database's clock**, the same for every replica, whatever their own.

The same table and statements serve PostgreSQL and SQLite (the embedded default), so
the rule is tested on both.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.logging import get_logger
from shared.messaging.tables import RelayLease as LeaseRow

log = get_logger(__name__)


def _db_now(dialect: str) -> sa.ColumnElement[float]:
    if dialect == "postgresql":
        return sa.literal_column("extract(epoch from clock_timestamp())", sa.Float)
    return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)


def holder_id() -> str:
    """This process, readably: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class LeaseState:
    holder: str
    token: int
    expires_in_s: float


class Lease:
    def __init__(
        self, engine: AsyncEngine, name: str, *, ttl_s: float = 10.0, holder: str | None = None
    ) -> None:
        self._engine = engine
        self.name = name
        self.ttl_s = ttl_s
        self.holder = holder or holder_id()
        self.token: int | None = None  # the fencing token while we hold the lease
        self._row_created = False

    @property
    def held(self) -> bool:
        return self.token is not None

    async def acquire_or_renew(self) -> bool:
        """Renew our lease, or take an expired one; False when another process holds it.

        Losing the lease (another token in the row) is noticed here: `held` turns False.
        """
        table = LeaseRow.__table__  # type: ignore[attr-defined]
        dialect = self._engine.dialect.name
        now = _db_now(dialect)
        async with self._engine.begin() as conn:
            if not self._row_created:
                insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
                await conn.execute(
                    insert(table)
                    .values(name=self.name, holder="", token=0, expires_at=0.0)
                    .on_conflict_do_nothing()
                )
                self._row_created = True
            if self.token is not None:
                renewed = await conn.execute(
                    sa.update(table)
                    .where(
                        table.c.name == self.name,
                        table.c.holder == self.holder,
                        table.c.token == self.token,
                    )
                    .values(expires_at=now + self.ttl_s)
                )
                if renewed.rowcount == 1:
                    return True
                log.warning(
                    "outbox relay lost its lease; another process publishes",
                    lease=self.name,
                    token=self.token,
                )
                self.token = None  # someone took over: we are no longer the publisher
            # Under READ COMMITTED, two standbys racing here serialize on the row lock and
            # the second re-checks `expires_at` after the first committed: one wins.
            taken = await conn.execute(
                sa.update(table)
                .where(table.c.name == self.name, table.c.expires_at < now)
                .values(holder=self.holder, token=table.c.token + 1, expires_at=now + self.ttl_s)
            )
            if taken.rowcount != 1:
                return False
            token = (
                await conn.execute(sa.select(table.c.token).where(table.c.name == self.name))
            ).scalar_one()
            self.token = int(token)
            return True

    async def release(self) -> bool:
        """Hand over at once on a clean stop (a standby need not wait for the expiry).

        Only while the row still names us with our token: a lease another process took
        meanwhile is left alone. True when it was ours and is now free."""
        if self.token is None:
            return False
        table = LeaseRow.__table__  # type: ignore[attr-defined]
        token, self.token = self.token, None
        async with self._engine.begin() as conn:
            released = await conn.execute(
                sa.update(table)
                .where(
                    table.c.name == self.name,
                    table.c.holder == self.holder,
                    table.c.token == token,
                )
                .values(expires_at=0.0)
            )
        return bool(released.rowcount == 1)

    async def state(self) -> LeaseState | None:
        table = LeaseRow.__table__  # type: ignore[attr-defined]
        now = _db_now(self._engine.dialect.name)
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(table.c.holder, table.c.token, table.c.expires_at - now).where(
                        table.c.name == self.name
                    )
                )
            ).first()
        return None if row is None else LeaseState(row[0], int(row[1]), float(row[2]))
