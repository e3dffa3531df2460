"""`UtcDateTime` on both backends: what is written aware is read back aware, compared and
ordered by instant, on PostgreSQL and on the embedded SQLite default alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from shared.db import UtcDateTime, create_engine

pytestmark = pytest.mark.integration

PARIS_WINTER = timezone(timedelta(hours=1))
GUADELOUPE = timezone(timedelta(hours=-4))


async def test_timestamps_round_trip_aware_and_compare_by_instant(database_url: str) -> None:
    meta = sa.MetaData()
    table = sa.Table(
        "stamps",
        meta,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime(), nullable=False),
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(meta.create_all)
            await conn.execute(
                table.insert(),
                [
                    {"id": 1, "at": datetime(2026, 11, 23, 9, 0, tzinfo=PARIS_WINTER)},  # 08:00Z
                    {"id": 2, "at": datetime(2026, 11, 23, 5, 0, tzinfo=GUADELOUPE)},  # 09:00Z
                ],
            )
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(table).order_by(table.c.at))).all()
            assert [r.id for r in rows] == [1, 2]
            assert rows[0].at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
            assert all(r.at.tzinfo is UTC for r in rows)
            # What broke detection on SQLite: comparing a value read back with an aware one.
            assert rows[0].at < datetime.now(UTC)
            later = (
                await conn.execute(
                    sa.select(table.c.id).where(
                        table.c.at > datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
                    )
                )
            ).scalars()
            assert list(later) == [2]
            with pytest.raises(StatementError, match="naive"):
                await conn.execute(table.insert(), {"id": 3, "at": datetime(2026, 11, 23)})
    finally:
        await engine.dispose()
