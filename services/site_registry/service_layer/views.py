"""Read side: queries for the API, straight from the tables (no aggregates, no events)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.site_registry.adapters.orm import (
    ClosureShockRow,
    CommuneRow,
    SiteRow,
    TerritoryCommuneRow,
    TerritoryGroupementRow,
    TerritoryRow,
)
from shared.errors import DomainError


class BadCursor(DomainError):
    status_code = 400
    code = "bad_cursor"


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor(f"cursor {cursor!r} is not one this API returned") from exc
    if not key:
        raise BadCursor(f"cursor {cursor!r} is not one this API returned")
    return key


@dataclass(frozen=True)
class SiteFilter:
    territory_ids: tuple[str, ...] | None = None  # None: every territory (admin only)
    naf_code: str | None = None
    naf_division: str | None = None
    naf_section: str | None = None
    headcount_band: str | None = None
    status: str | None = None
    commune_insee: str | None = None
    source: str | None = None


async def list_sites(
    session: AsyncSession, flt: SiteFilter, *, limit: int, cursor: str | None
) -> tuple[list[SiteRow], str | None]:
    """Keyset pagination on SIRET: stable under concurrent inserts, O(limit) per page."""
    query = select(SiteRow).order_by(col(SiteRow.siret)).limit(limit + 1)
    if flt.territory_ids is not None:
        communes = select(TerritoryCommuneRow.commune_insee).where(
            col(TerritoryCommuneRow.territory_id).in_(flt.territory_ids)
        )
        query = query.where(col(SiteRow.commune_insee).in_(communes))
    if flt.naf_code:
        query = query.where(SiteRow.naf_code == flt.naf_code)
    if flt.naf_division:
        query = query.where(col(SiteRow.naf_code).startswith(flt.naf_division + "."))
    if flt.naf_section:
        query = query.where(SiteRow.naf_section == flt.naf_section)
    if flt.headcount_band:
        query = query.where(SiteRow.headcount_band == flt.headcount_band)
    if flt.status:
        query = query.where(SiteRow.status == flt.status)
    if flt.commune_insee:
        query = query.where(SiteRow.commune_insee == flt.commune_insee)
    if flt.source:
        query = query.where(SiteRow.source == flt.source)
    if cursor:
        query = query.where(col(SiteRow.siret) > decode_cursor(cursor))
    rows = list((await session.exec(query)).all())
    next_cursor = encode_cursor(rows[limit - 1].siret) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def site_card(session: AsyncSession, siret: str) -> dict[str, Any] | None:
    site = await session.get(SiteRow, siret)
    if site is None:
        return None
    commune = await session.get(CommuneRow, site.commune_insee)
    territories = (
        await session.exec(
            select(TerritoryRow).where(col(TerritoryRow.id).in_(site.territory_ids or []))
        )
    ).all()
    shocks = (
        await session.exec(
            select(ClosureShockRow)
            .where(ClosureShockRow.site_id == siret)
            .order_by(col(ClosureShockRow.announced_on))
        )
    ).all()
    return {
        "site": site,
        "commune": commune,
        "territories": list(territories),
        "shocks": list(shocks),
    }


async def list_territories(session: AsyncSession) -> list[dict[str, Any]]:
    territories = (await session.exec(select(TerritoryRow).order_by(col(TerritoryRow.id)))).all()
    communes = dict(
        (
            await session.exec(
                select(TerritoryCommuneRow.territory_id, func.count()).group_by(
                    col(TerritoryCommuneRow.territory_id)
                )
            )
        ).all()
    )
    groupements: dict[str, list[TerritoryGroupementRow]] = {}
    for g in (await session.exec(select(TerritoryGroupementRow))).all():
        groupements.setdefault(g.territory_id, []).append(g)
    return [
        {
            "territory": t,
            "groupements": groupements.get(t.id, []),
            "commune_count": communes.get(t.id, 0),
        }
        for t in territories
    ]


async def territory_detail(session: AsyncSession, territory_id: str) -> dict[str, Any] | None:
    territory = await session.get(TerritoryRow, territory_id)
    if territory is None:
        return None
    groupements = (
        await session.exec(
            select(TerritoryGroupementRow).where(
                TerritoryGroupementRow.territory_id == territory_id
            )
        )
    ).all()
    communes = (
        await session.exec(
            select(CommuneRow)
            .join(TerritoryCommuneRow, col(TerritoryCommuneRow.commune_insee) == CommuneRow.insee)
            .where(TerritoryCommuneRow.territory_id == territory_id)
            .order_by(col(CommuneRow.insee))
        )
    ).all()
    in_territory = select(TerritoryCommuneRow.commune_insee).where(
        TerritoryCommuneRow.territory_id == territory_id
    )
    counts = dict(
        (
            await session.exec(
                select(SiteRow.status, func.count())
                .where(col(SiteRow.commune_insee).in_(in_territory))
                .group_by(col(SiteRow.status))
            )
        ).all()
    )
    return {
        "territory": territory,
        "groupements": list(groupements),
        "communes": list(communes),
        "site_counts": counts,
    }


async def list_shocks(
    session: AsyncSession, territory_ids: tuple[str, ...] | None
) -> list[ClosureShockRow]:
    rows = (
        await session.exec(select(ClosureShockRow).order_by(col(ClosureShockRow.declared_at)))
    ).all()
    if territory_ids is None:
        return list(rows)
    return [r for r in rows if set(r.territory_ids or ()) & set(territory_ids)]
