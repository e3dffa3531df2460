"""Repositories: load aggregates from rows, remember what they handed out, and write the
aggregates back to their rows when the unit of work commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.site_registry.adapters.orm import (
    ClosureShockRow,
    CommuneRow,
    SiteRow,
    TerritoryCommuneRow,
    TerritoryGroupementRow,
    TerritoryRow,
)
from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    Groupement,
    TerritoryRecord,
)
from services.site_registry.domain.model import (
    ClosureShock,
    FirmFacts,
    ShockStatus,
    Site,
    SiteFacts,
    SiteSource,
    SiteStatus,
)
from shared.db import lock_for_transaction
from shared.messaging.tables import utcnow


class SiteRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._seen: dict[str, tuple[Site, SiteRow]] = {}

    @property
    def seen(self) -> list[Site]:
        return [site for site, _ in self._seen.values()]

    async def get(self, siret: str, *, for_update: bool = False) -> Site | None:
        """`for_update` locks the row (PostgreSQL) so that two commands on one site
        serialize instead of both writing the same next version."""
        if siret in self._seen:
            return self._seen[siret][0]
        row = await self._session.get(SiteRow, siret, with_for_update=for_update)
        return None if row is None else self._track(row)

    async def get_many(self, sirets: Iterable[str]) -> dict[str, Site]:
        wanted = [s for s in set(sirets) if s not in self._seen]
        if wanted:
            rows = await self._session.exec(select(SiteRow).where(col(SiteRow.siret).in_(wanted)))
            for row in rows:
                self._track(row)
        return {s: self._seen[s][0] for s in sirets if s in self._seen}

    async def of_sirens(self, sirens: Iterable[str]) -> dict[str, list[Site]]:
        """Every site of each firm (a SIREN has one site or hundreds), in one query: a
        legal unit applies to all of them."""
        wanted = sorted(set(sirens))
        by_siren: dict[str, list[Site]] = {}
        if not wanted:
            return by_siren
        rows = await self._session.exec(
            select(SiteRow).where(col(SiteRow.siren).in_(wanted)).order_by(col(SiteRow.siret))
        )
        for row in rows:
            # A site this unit of work already holds keeps its aggregate (and its changes).
            seen = self._seen.get(row.siret)
            site = seen[0] if seen is not None else self._track(row)
            by_siren.setdefault(site.facts.siren, []).append(site)
        return by_siren

    async def sirens(self) -> set[str]:
        """The SIRENs of every site: what a legal-unit import keeps (nine characters per
        firm, a few megabytes for a national registry)."""
        rows = await self._session.exec(select(SiteRow.siren).distinct())
        return set(rows)

    async def territory_assignments(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(SIRET, commune, territories) of every site: what a reference reload checks,
        without loading whole aggregates."""
        rows = await self._session.exec(
            select(SiteRow.siret, SiteRow.commune_insee, SiteRow.territory_ids)
        )
        return [(siret, commune, tuple(ids or ())) for siret, commune, ids in rows]

    def loaded(self, siret: str) -> Site | None:
        """A site this repository already holds (loaded or added), without a query: lets a
        batch that preloaded with `get_many` skip one round trip per new site."""
        seen = self._seen.get(siret)
        return None if seen is None else seen[0]

    def add(self, site: Site) -> None:
        row = SiteRow.model_validate({"siret": site.siret, **_row_values(site)})
        self._session.add(row)
        self._seen[site.siret] = (site, row)

    def sync(self) -> None:
        for site, row in self._seen.values():
            values = _row_values(site)
            if any(getattr(row, k) != v for k, v in values.items()):
                for key, value in values.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()

    def _track(self, row: SiteRow) -> Site:
        site = Site(
            siret=row.siret,
            facts=SiteFacts(
                siren=row.siren,
                name=row.name,
                naf_code=row.naf_code,
                naf_section=row.naf_section,
                headcount_band=row.headcount_band,
                commune_insee=row.commune_insee,
                lon=row.lon,
                lat=row.lat,
                source=SiteSource(row.source),
            ),
            territory_ids=tuple(row.territory_ids or ()),
            status=SiteStatus(row.status),
            version=row.version,
            closed_on=row.closed_on,
            firm=_firm_of(row),
        )
        self._seen[row.siret] = (site, row)
        return site


def _firm_of(row: SiteRow) -> FirmFacts | None:
    if not row.firm_known:
        return None
    return FirmFacts(
        name=row.firm_name,
        name_is_person=row.firm_name_is_person,
        legal_category=row.legal_category,
        company_category=row.company_category,
        company_category_year=row.company_category_year,
    )


def _firm_values(firm: FirmFacts | None) -> dict[str, object]:
    return {
        "firm_known": firm is not None,
        "firm_name": firm.name if firm else None,
        "firm_name_is_person": firm.name_is_person if firm else False,
        "legal_category": firm.legal_category if firm else None,
        "company_category": firm.company_category if firm else None,
        "company_category_year": firm.company_category_year if firm else None,
    }


def _row_values(site: Site) -> dict[str, object]:
    f = site.facts
    return {
        **_firm_values(site.firm),
        "siren": f.siren,
        "name": f.name,
        "naf_code": f.naf_code,
        "naf_section": f.naf_section,
        "headcount_band": f.headcount_band,
        "commune_insee": f.commune_insee,
        "lon": f.lon,
        "lat": f.lat,
        "source": f.source.value,
        "status": site.status.value,
        "territory_ids": list(site.territory_ids),
        "closed_on": site.closed_on,
        "version": site.version,
    }


class ClosureShockRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def open_shock_of(self, site_id: str) -> ClosureShock | None:
        row = (
            await self._session.exec(
                select(ClosureShockRow)
                .where(ClosureShockRow.site_id == site_id)
                .where(ClosureShockRow.status == ShockStatus.OPEN.value)
            )
        ).first()
        return None if row is None else to_shock(row)

    async def get(self, shock_id: uuid.UUID) -> ClosureShock | None:
        row = await self._session.get(ClosureShockRow, shock_id)
        return None if row is None else to_shock(row)

    def add(self, shock: ClosureShock) -> None:
        self._session.add(
            ClosureShockRow(
                id=shock.id,
                site_id=shock.site_id,
                territory_ids=list(shock.territory_ids),
                announced_on=shock.announced_on,
                jobs_lost=shock.jobs_lost,
                planned_closure_on=shock.planned_closure_on,
                note=shock.note,
                status=shock.status.value,
                declared_at=shock.declared_at,
                declared_by=shock.declared_by,
            )
        )


def to_shock(row: ClosureShockRow) -> ClosureShock:
    return ClosureShock(
        id=row.id,
        site_id=row.site_id,
        territory_ids=tuple(row.territory_ids or ()),
        announced_on=row.announced_on,
        jobs_lost=row.jobs_lost,
        planned_closure_on=row.planned_closure_on,
        note=row.note,
        declared_at=row.declared_at,
        declared_by=row.declared_by,
        status=ShockStatus(row.status),
    )


class TerritoryMap:
    """Which territories each commune belongs to, remembered per unit of work: a batch
    preloads its communes in one query, a single command asks for one."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._by_commune: dict[str, tuple[str, ...]] = {}

    async def preload(self, communes: Iterable[str]) -> None:
        wanted = sorted(set(communes) - self._by_commune.keys())
        if not wanted:
            return
        by_commune: dict[str, list[str]] = {c: [] for c in wanted}
        rows = await self._session.exec(
            select(TerritoryCommuneRow).where(col(TerritoryCommuneRow.commune_insee).in_(wanted))
        )
        for row in rows:
            by_commune[row.commune_insee].append(row.territory_id)
        self._by_commune.update({k: tuple(sorted(v)) for k, v in by_commune.items()})

    async def territories_of(self, commune_insee: str) -> tuple[str, ...]:
        if commune_insee not in self._by_commune:
            await self.preload([commune_insee])
        return self._by_commune[commune_insee]

    async def ids(self) -> list[str]:
        """Every territory the reference data knows, in identifier order."""
        rows = await self._session.exec(select(TerritoryRow.id).order_by(col(TerritoryRow.id)))
        return list(rows)

    async def communes_of(self, territory_ids: Sequence[str]) -> set[str]:
        rows = await self._session.exec(
            select(TerritoryCommuneRow.commune_insee).where(
                col(TerritoryCommuneRow.territory_id).in_(list(territory_ids))
            )
        )
        return set(rows)


class ReferenceTables:
    """The reference tables (territories, their groupements, communes, and which
    communes each territory holds), replaced as a whole by each load."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def replace(
        self,
        territories: Sequence[TerritoryRecord],
        groupements: Sequence[tuple[str, Groupement]],
        communes: Sequence[CommuneRecord],
        links: Sequence[tuple[str, str]],
    ) -> None:
        """`groupements` and `links` are (territory id, groupement) and (territory id,
        commune INSEE code) pairs."""
        s = self._session
        # Two processes starting at once (serve and a CLI job) would otherwise interleave
        # their deletes and inserts and one would fail on a duplicate key.
        await lock_for_transaction(s, "site_registry.reference_data")
        for table in (TerritoryCommuneRow, TerritoryGroupementRow, CommuneRow, TerritoryRow):
            await s.exec(delete(table))
        # Core executemany, not ORM objects: 35,000 communes and 18,600 links load in a
        # fraction of the time (and of the memory) unit-of-work objects would take.
        inserts: list[tuple[Any, list[dict[str, Any]]]] = [
            (TerritoryRow, [{"id": t.id, "name": t.name} for t in territories]),
            (
                TerritoryGroupementRow,
                [
                    {"territory_id": tid, "siren": g.siren, "name": g.name, "kind": g.kind}
                    for tid, g in groupements
                ],
            ),
            (
                CommuneRow,
                [
                    {
                        "insee": c.insee_code,
                        "name": c.name,
                        "epci_siren": c.epci_siren,
                        "population": c.population,
                        "postal_codes": "|".join(c.postal_codes),
                        "lon": c.lon,
                        "lat": c.lat,
                    }
                    for c in communes
                ],
            ),
            (
                TerritoryCommuneRow,
                [{"territory_id": t, "commune_insee": c} for t, c in links],
            ),
        ]
        connection = await s.connection()
        for table, rows in inserts:
            for start in range(0, len(rows), INSERT_CHUNK):
                await connection.execute(sa.insert(table), rows[start : start + INSERT_CHUNK])


INSERT_CHUNK = 5000
