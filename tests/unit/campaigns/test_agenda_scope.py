"""`GET /me/visits` reads the caller's agenda on subject AND territory: two territories'
consultants may share a subject (every default roster is `consultant-1..3`), and neither
sees the other's visits (site names, coordinates). On an in-memory SQLite database: the
view is a query, and the query is what is tested."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from services.campaigns.adapters.orm import CampaignRow, CampaignSiteRow, VisitRow
from services.campaigns.service_layer import views
from shared.auth import Principal, Role

pytestmark = pytest.mark.unit

DAY = date(2026, 11, 23)
SUBJECT = "consultant-1"  # on both territories' rosters


def consultant(*territories: str) -> Principal:
    return Principal(
        subject=SUBJECT, roles=frozenset({Role.CONSULTANT}), territories=frozenset(territories)
    )


@pytest.fixture
async def session() -> AsyncIterator[AsyncSession]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    async with AsyncSession(engine, expire_on_commit=False) as session:
        for n, territory in enumerate(("ti-3205", "ti-8401"), start=1):
            campaign_id = uuid.UUID(int=n)
            site_id = f"{n:014d}"
            session.add(
                CampaignRow(
                    id=campaign_id,
                    shock_id=uuid.UUID(int=100 + n),
                    territory_id=territory,
                    closing_site_id="0" * 14,
                    closing_naf_code="22.11Z",
                    status="active",
                    budget_days=10.0,
                    cost_per_visit_days=1.0,
                    daily_cap=2,
                    starts_on=DAY,
                    ends_on=date(2027, 5, 24),
                    roster=[SUBJECT],
                    plan_version=1,
                    launched_at=datetime(2026, 11, 20, tzinfo=UTC),
                )
            )
            session.add(
                CampaignSiteRow(
                    site_id=site_id,
                    siren=site_id[:9],
                    name=f"firm of {territory}",
                    naf_code="22.21Z",
                    naf_section="C",
                    commune_insee="62119",
                    territory_ids=[territory],
                    status="active",
                    version=1,
                )
            )
            await session.flush()
            session.add(
                VisitRow(
                    id=uuid.UUID(int=200 + n),
                    campaign_id=campaign_id,
                    site_id=site_id,
                    consultant_id=SUBJECT,
                    scheduled_on=DAY,
                    order=n,
                    plan_version=1,
                    status="planned",
                    version=1,
                )
            )
        await session.commit()
        yield session
    await engine.dispose()


async def names(session: AsyncSession, caller: Principal) -> list[str | None]:
    page = await views.my_visits(
        await session.connection(),
        caller,
        start=DAY,
        end=DAY,
        limit=50,
        cursor=None,
        include_done=False,
    )
    return [v.name for v in page.items]


async def test_a_consultant_sees_only_the_visits_of_its_territories(
    session: AsyncSession,
) -> None:
    # Issue 10: the agenda was filtered on the subject alone.
    assert await names(session, consultant("ti-3205")) == ["firm of ti-3205"]
    assert await names(session, consultant("ti-8401")) == ["firm of ti-8401"]
    assert await names(session, consultant()) == []  # no territory: no agenda
    assert await names(session, consultant("ti-3205", "ti-8401")) == [
        "firm of ti-3205",
        "firm of ti-8401",
    ]
    admin = Principal(subject=SUBJECT, roles=frozenset({Role.ADMIN}))
    assert len(await names(session, admin)) == 2  # the operator sees every territory


def test_the_agenda_scope_is_the_subject_and_the_tokens_territories() -> None:
    assert views.agenda_scope(consultant("ti-8401", "ti-3205")) == (
        SUBJECT,
        ["ti-3205", "ti-8401"],
    )


async def page_of(
    session: AsyncSession, caller: Principal, *, limit: int = 50, cursor: str | None = None
) -> views.s.MyVisitsOut:
    return await views.my_visits(
        await session.connection(),
        caller,
        start=DAY,
        end=DAY,
        limit=limit,
        cursor=cursor,
        include_done=True,
    )


async def test_every_shape_of_the_agenda_statement_keeps_the_scope(
    session: AsyncSession,
) -> None:
    # The statement is built once per shape (number of territories, cursor, done): each
    # shape must still bind the caller's territories, the many-territory one as a list.
    others = tuple(f"ti-9{n:03d}" for n in range(12))
    for territories in [("ti-3205",), ("ti-3205", *others[:3]), ("ti-3205", *others)]:
        assert await names(session, consultant(*territories)) == ["firm of ti-3205"]
        page = await page_of(session, consultant(*territories))
        assert [v.name for v in page.items] == ["firm of ti-3205"]
    assert await names(session, consultant(*others)) == []


async def test_pages_follow_the_agenda_order_through_the_cursor(session: AsyncSession) -> None:
    both = consultant("ti-3205", "ti-8401")
    first = await page_of(session, both, limit=1)
    assert [v.name for v in first.items] == ["firm of ti-3205"] and first.next_cursor
    second = await page_of(session, both, limit=1, cursor=first.next_cursor)
    assert [v.name for v in second.items] == ["firm of ti-8401"]
    assert second.next_cursor is None
