"""Read side: queries for the API, straight from the tables (no aggregates, no events),
returning the API's read models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.site_registry.adapters import reference_data
from services.site_registry.adapters.orm import (
    ClosureShockRow,
    CommuneRow,
    SiteRow,
    TerritoryCommuneRow,
    TerritoryGroupementRow,
    TerritoryRow,
)
from services.site_registry.entrypoints.schemas import (
    ClosureShockOut,
    CommuneOut,
    GroupementOut,
    Page,
    SiteCardOut,
    SiteOut,
    TerritoryDetailOut,
    TerritoryRefOut,
    TerritorySummaryOut,
)
from services.site_registry.service_layer.commands import Nomenclatures
from shared.cursor import encode_cursor, parse_cursor


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


def _siret_key(parts: tuple[str, ...]) -> str:
    """A page's last SIRET: 14 digits, else the cursor is not one this API returned."""
    (siret,) = parts
    if len(siret) != 14 or not siret.isdigit():
        raise ValueError(f"not a SIRET: {siret!r}")
    return siret


def site_out(row: SiteRow) -> SiteOut:
    """A site as the API shows it: named as `Site.name` names it (its own name, else its
    firm's), which the row holds as two columns."""
    own = row.name
    return SiteOut(
        siret=row.siret,
        siren=row.siren,
        name=own if own is not None else row.firm_name,
        name_is_person=own is None and row.firm_name is not None and row.firm_name_is_person,
        firm_name=row.firm_name,
        legal_category=row.legal_category,
        company_category=row.company_category,
        company_category_year=row.company_category_year,
        naf_code=row.naf_code,
        naf_section=row.naf_section,
        headcount_band=row.headcount_band,
        commune_insee=row.commune_insee,
        territory_ids=list(row.territory_ids or ()),
        lon=row.lon,
        lat=row.lat,
        status=row.status,
        source=row.source,
        closed_on=row.closed_on,
        version=row.version,
    )


async def list_sites(
    session: AsyncSession, flt: SiteFilter, *, limit: int, cursor: str | None
) -> Page[SiteOut]:
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
        after = parse_cursor(cursor, _siret_key, 1)
        query = query.where(col(SiteRow.siret) > after)
    rows = list((await session.exec(query)).all())
    next_cursor = encode_cursor(rows[limit - 1].siret) if len(rows) > limit else None
    return Page(items=[site_out(r) for r in rows[:limit]], next_cursor=next_cursor)


async def site_card(session: AsyncSession, siret: str, refs: Nomenclatures) -> SiteCardOut | None:
    """A site with its labels, its commune, its territories and its closure shocks."""
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
    naf = refs.naf.get(site.naf_code)
    band = refs.bands.get(site.headcount_band) if site.headcount_band else None
    return SiteCardOut(
        site=site_out(site),
        naf_label=naf.label if naf else None,
        headcount_label=band.label if band else None,
        commune=CommuneOut.model_validate(commune) if commune else None,
        territories=[TerritoryRefOut(id=t.id, name=t.name) for t in territories],
        closure_shocks=[ClosureShockOut.model_validate(s) for s in shocks],
    )


async def list_territories(
    session: AsyncSession, commune_insee: str | None = None
) -> list[TerritorySummaryOut]:
    """Every territory, or (``commune_insee``) those the commune belongs to: none for a
    commune outside every territory, or unknown."""
    query = select(TerritoryRow).order_by(col(TerritoryRow.id))
    if commune_insee is not None:
        query = query.where(
            col(TerritoryRow.id).in_(
                select(TerritoryCommuneRow.territory_id).where(
                    TerritoryCommuneRow.commune_insee == commune_insee
                )
            )
        )
    territories = (await session.exec(query)).all()
    if not territories:
        return []
    communes = dict(
        (
            await session.exec(
                select(TerritoryCommuneRow.territory_id, func.count()).group_by(
                    col(TerritoryCommuneRow.territory_id)
                )
            )
        ).all()
    )
    groupements: dict[str, list[GroupementOut]] = {}
    for g in (await session.exec(select(TerritoryGroupementRow))).all():
        groupements.setdefault(g.territory_id, []).append(GroupementOut.model_validate(g))
    return [
        TerritorySummaryOut(
            id=t.id,
            name=t.name,
            programme=t.programme,
            groupements=groupements.get(t.id, []),
            commune_count=communes.get(t.id, 0),
            epci_count=_epci_count(groupements.get(t.id, [])),
        )
        for t in territories
    ]


def _epci_count(groupements: list[GroupementOut]) -> int:
    return sum(1 for g in groupements if g.kind in reference_data.INTERCOMMUNAL_KINDS)


async def territory_outlines(session: AsyncSession, territory_id: str) -> bytes | None:
    """The territory's commune outlines as GeoJSON (None: no such territory). The
    communes are the database's; the outlines are the packaged ones (PROVENANCE.md)."""
    if await session.get(TerritoryRow, territory_id) is None:
        return None
    codes = (
        await session.exec(
            select(TerritoryCommuneRow.commune_insee).where(
                TerritoryCommuneRow.territory_id == territory_id
            )
        )
    ).all()
    body, _ = reference_data.communes_geojson(codes, territory=territory_id)
    return body


async def territory_detail(session: AsyncSession, territory_id: str) -> TerritoryDetailOut | None:
    """A territory with its groupements, its communes and how many sites it holds in each
    status."""
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
    return TerritoryDetailOut(
        id=territory.id,
        name=territory.name,
        programme=territory.programme,
        groupements=[GroupementOut.model_validate(g) for g in groupements],
        commune_count=len(communes),
        epci_count=_epci_count([GroupementOut.model_validate(g) for g in groupements]),
        communes=[CommuneOut.model_validate(c) for c in communes],
        site_counts=counts,
    )


async def list_shocks(
    session: AsyncSession, territory_ids: tuple[str, ...] | None
) -> list[ClosureShockOut]:
    """Every closure shock (`territory_ids` None) or those touching these territories."""
    rows = (
        await session.exec(select(ClosureShockRow).order_by(col(ClosureShockRow.declared_at)))
    ).all()
    return [
        ClosureShockOut.model_validate(r)
        for r in rows
        if territory_ids is None or set(r.territory_ids or ()) & set(territory_ids)
    ]


async def closure_shock(session: AsyncSession, shock_id: uuid.UUID) -> ClosureShockOut | None:
    row = await session.get(ClosureShockRow, shock_id)
    return None if row is None else ClosureShockOut.model_validate(row)
