"""The registry's commands: register or update a site, close it, declare a closure shock,
upsert a batch of sites (a Sirene import's, the demo's), load the reference data, give
sites their firm's facts (Sirene's legal units).

Each runs inside the caller's unit of work and never commits: the command bus commits a
request's effect with its idempotency key, `batch_jobs` commits each batch of a job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Container, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TextIO

from services.site_registry.adapters import geo
from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    Groupement,
    TerritoryRecord,
)
from services.site_registry.adapters.sirene import (
    ReadStats,
    RowFilter,
    SireneEstablishment,
    SireneRowError,
    naf_codes_in,
)
from services.site_registry.adapters.sirene_legal_units import (
    SireneLegalUnit,
    read_stock_unite_legale,
)
from services.site_registry.domain.model import (
    ClosureShock,
    FirmFacts,
    Site,
    SiteFacts,
    SiteSource,
)
from services.site_registry.domain.nomenclature import (
    HeadcountBands,
    NafNomenclature,
    UnknownHeadcountBand,
    UnknownNafCode,
)
from services.site_registry.domain.siret import InvalidIdentifier, validate_siret
from services.site_registry.domain.territories import region_of
from services.site_registry.service_layer import access
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import DomainError, NotFound, OutOfScope


class InvalidSite(DomainError):
    code = "invalid_site"


@dataclass(frozen=True)
class Nomenclatures:
    naf: NafNomenclature
    bands: HeadcountBands


@dataclass(frozen=True)
class SiteInput:
    """A site as a source describes it (HTTP body, Sirene row, demo file)."""

    siret: str
    naf_code: str
    commune_insee: str
    source: SiteSource
    name: str | None = None
    headcount_band: str | None = None
    lon: float | None = None
    lat: float | None = None
    active: bool = True
    closed_on: date | None = None


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    CLOSED = "closed"
    SKIPPED = "skipped"


def check_site(data: SiteInput, refs: Nomenclatures) -> tuple[str, SiteFacts]:
    """Validate a site description against the real nomenclatures; raise InvalidSite."""
    try:
        siret = validate_siret(data.siret)
        naf = refs.naf.require(data.naf_code)
        band = None
        if data.headcount_band:
            band = refs.bands.require(data.headcount_band).code
    except (InvalidIdentifier, UnknownNafCode, UnknownHeadcountBand) as exc:
        raise InvalidSite(str(exc)) from exc
    commune = data.commune_insee.strip().upper()
    if len(commune) != 5 or not commune.replace("A", "0").replace("B", "0").isdigit():
        raise InvalidSite(f"commune_insee must be a 5-character INSEE code, got {commune!r}")
    if (data.lon is None) != (data.lat is None):
        raise InvalidSite("give both lon and lat (WGS84), or neither")
    facts = SiteFacts(
        siren=siret[:9],
        name=(data.name or "").strip() or None,
        naf_code=naf.code,
        naf_section=naf.section,
        headcount_band=band,
        commune_insee=commune,
        lon=data.lon,
        lat=data.lat,
        source=data.source,
    )
    return siret, facts


def _merge(old: SiteFacts, new: SiteFacts) -> SiteFacts:
    # A source's blank never erases a value another source gave (IREP coordinates survive
    # a Sirene row without them); a source's actual value always wins.
    return SiteFacts(
        siren=new.siren,
        name=new.name if new.name is not None else old.name,
        naf_code=new.naf_code,
        naf_section=new.naf_section,
        headcount_band=new.headcount_band or old.headcount_band,
        commune_insee=new.commune_insee,
        lon=new.lon if new.lon is not None else old.lon,
        lat=new.lat if new.lat is not None else old.lat,
        source=new.source,
    )


async def _apply(
    uow: SiteRegistryUnitOfWork, site: Site | None, siret: str, facts: SiteFacts, data: SiteInput
) -> Outcome:
    territory_ids = await uow.territories.territories_of(facts.commune_insee)
    if site is None:
        if not data.active:
            return Outcome.SKIPPED  # a closed establishment we never knew: nothing to track
        uow.sites.add(Site.register(siret, facts, territory_ids))
        return Outcome.CREATED
    if not data.active:
        return Outcome.CLOSED if site.close(data.closed_on) else Outcome.UNCHANGED
    changed = site.update(_merge(site.facts, facts), territory_ids)
    return Outcome.UPDATED if changed else Outcome.UNCHANGED


def _out_of_scope(territory_ids: Sequence[str], fallback: str) -> OutOfScope:
    return OutOfScope(f"your token does not cover territory {', '.join(territory_ids) or fallback}")


async def register_site(
    uow: SiteRegistryUnitOfWork, data: SiteInput, refs: Nomenclatures, principal: Principal
) -> Site:
    """Register a site, or update the one with this SIRET (a person's description wins
    over a source's blank, as an import's does): the site as it now stands.

    A write checks the site's current scope as well as its new one: updating a site the
    caller cannot see (another territory's, or one in no territory) would move it out of
    its crisis cell's hands, so it is refused whatever the new commune."""
    siret, facts = check_site(data, refs)
    territory_ids = await uow.territories.territories_of(facts.commune_insee)
    if not access.may_see(principal, territory_ids):
        raise _out_of_scope(territory_ids, f"(commune {facts.commune_insee})")
    site = await uow.sites.get(siret, for_update=True)
    if site is not None and not access.may_see(principal, site.territory_ids):
        raise OutOfScope(
            f"site {siret} is in {', '.join(site.territory_ids) or 'no territory'},"
            " outside the territories of your token"
        )
    await _apply(uow, site, siret, facts, data)
    registered = uow.sites.loaded(siret)
    assert registered is not None  # an active input is always added or kept
    return registered


async def close_site(
    uow: SiteRegistryUnitOfWork, siret: str, closed_on: date | None, principal: Principal
) -> Site:
    """Record that a site has closed; closing a closed site changes nothing."""
    site = await uow.sites.get(siret, for_update=True)
    if site is None:
        raise NotFound(f"no site with SIRET {siret}")
    if not access.may_see(principal, site.territory_ids):
        raise _out_of_scope(site.territory_ids, "(none)")
    site.close(closed_on)
    return site


@dataclass(frozen=True)
class DeclareClosureShock:
    site_id: str
    announced_on: date
    jobs_lost: int
    planned_closure_on: date | None = None
    note: str | None = None


async def declare_closure_shock(
    uow: SiteRegistryUnitOfWork, cmd: DeclareClosureShock, principal: Principal, clock: Clock
) -> ClosureShock:
    site = await uow.sites.get(cmd.site_id, for_update=True)
    if site is None:
        raise NotFound(f"no site with SIRET {cmd.site_id}: register it before declaring")
    if not access.may_see(principal, site.territory_ids):
        raise OutOfScope(
            f"site {cmd.site_id} is in {', '.join(site.territory_ids) or 'no territory'},"
            " outside the territories of your token"
        )
    shock = site.announce_closure(
        open_shock=await uow.shocks.open_shock_of(site.siret),
        announced_on=cmd.announced_on,
        jobs_lost=cmd.jobs_lost,
        planned_closure_on=cmd.planned_closure_on,
        note=cmd.note,
        declared_at=clock.now(),
        declared_by=principal.subject,
        shock_id=uuid.uuid4(),
    )
    uow.shocks.add(shock)
    return shock


async def _upsert_checked(
    uow: SiteRegistryUnitOfWork, checked: Sequence[tuple[str, SiteFacts, SiteInput]]
) -> list[Outcome]:
    # One query loads every known site of the batch, one the territories of its communes;
    # a new site then costs no round trip.
    await uow.sites.get_many(siret for siret, _, _ in checked)
    await uow.territories.preload(facts.commune_insee for _, facts, _ in checked)
    return [
        await _apply(uow, uow.sites.loaded(siret), siret, facts, data)
        for siret, facts, data in checked
    ]


async def upsert_many(
    uow: SiteRegistryUnitOfWork, sites: Iterable[SiteInput], refs: Nomenclatures
) -> dict[Outcome, int]:
    """Upsert a known-good list of sites (the demo file): an invalid one is a bug of the
    list, and refuses the whole of it."""
    counts: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
    checked = [(*check_site(data, refs), data) for data in sites]
    for outcome in await _upsert_checked(uow, checked):
        counts[outcome] += 1
    return counts


# --- Sirene import ---------------------------------------------------------------------


@dataclass
class ImportReport:
    rows_read: int = 0
    in_scope: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[SireneRowError] = field(default_factory=list)
    seconds: float = 0.0
    max_errors_kept: int = 1000
    scanner_peak_rss_kib: int | None = None  # when a child process scanned the file

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def error(self, err: SireneRowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors_kept:
            self.errors.append(err)

    @property
    def events(self) -> int:
        return self.created + self.updated + self.closed


@dataclass(frozen=True)
class ImportScope:
    """Which establishments an import keeps: communes (usually a territory's) and a NAF
    section (C, manufacturing, by default); only rev. 2 codes count."""

    communes: frozenset[str]
    section: str = "C"


class UnknownTerritories(NotFound):
    code = "unknown_territory"


async def import_scope(
    uow: SiteRegistryUnitOfWork,
    *,
    territory_ids: Sequence[str] = (),
    regions: Sequence[str] = (),
    every_territory: bool = False,
    section: str = "C",
) -> tuple[list[str], ImportScope]:
    """The territories an import covers (given ones, a region's, or all of them) and the
    union of their communes: one pass over the file serves them all."""
    known = await uow.territories.ids()
    unknown = sorted(set(territory_ids) - set(known))
    if unknown:
        raise UnknownTerritories(f"no Territoire d'industrie {', '.join(unknown)}")
    by_region: dict[str, list[str]] = {}
    for tid in known:
        by_region.setdefault(region_of(tid) or "", []).append(tid)
    empty = sorted(set(regions) - by_region.keys())
    if empty:
        raise UnknownTerritories(
            f"no Territoire d'industrie in region {', '.join(empty)}"
            f" (regions with territories: {', '.join(sorted(r for r in by_region if r))})"
        )
    chosen = (
        set(known)
        if every_territory
        else set(territory_ids).union(*(by_region[r] for r in regions))
    )
    ordered = sorted(chosen)
    communes = await uow.territories.communes_of(ordered) if ordered else set()
    return ordered, ImportScope(communes=frozenset(communes), section=section)


def _to_input(row: SireneEstablishment) -> SiteInput:
    lon = lat = None
    if row.lambert_x is not None and row.lambert_y is not None:
        try:
            lon, lat = geo.sirene_to_wgs84(row.commune_insee or "", row.lambert_x, row.lambert_y)
        except ValueError:
            lon = lat = None  # outside its département: keep the site, not a wrong position
    return SiteInput(
        siret=row.siret,
        naf_code=row.naf_code or "",
        commune_insee=row.commune_insee or "",
        source=SiteSource.SIRENE,
        name=row.name,
        headcount_band=row.headcount_band,
        lon=lon,
        lat=lat,
        active=row.is_active,
    )


SireneBatch = list[tuple[int, SiteInput]]  # (line in the file, the row as a site)


def row_filter(scope: ImportScope, refs: Nomenclatures) -> RowFilter:
    """The scope as the reader tests it on raw rows, before building anything."""
    return RowFilter(communes=scope.communes, naf_codes=naf_codes_in(refs.naf, scope.section))


def sirene_batches(
    items: Iterable[SireneEstablishment | SireneRowError],
    stats: ReadStats,
    report: ImportReport,
    *,
    batch_size: int,
) -> Generator[SireneBatch, None, None]:
    """The rows in scope of a StockEtablissement read (already filtered by the reader,
    see `row_filter`), `batch_size` at a time; the rows in scope that could not be read
    are reported with their line. Memory stays one batch whatever the file's size;
    `report.rows_read` follows `stats`, every row read."""
    batch: SireneBatch = []
    try:
        for item in items:
            if isinstance(item, SireneRowError):
                report.error(item)
                continue
            report.in_scope += 1
            batch.append((item.line, _to_input(item)))
            if len(batch) >= batch_size:
                report.rows_read = stats.rows_read
                yield batch
                batch = []
        if batch:
            report.rows_read = stats.rows_read
            yield batch
    finally:
        report.rows_read = stats.rows_read
        report.scanner_peak_rss_kib = stats.scanner_peak_rss_kib


async def import_batch(
    uow: SiteRegistryUnitOfWork, batch: SireneBatch, refs: Nomenclatures, report: ImportReport
) -> None:
    """Upsert one batch of an import. Idempotent: a row equal to what the registry holds
    changes nothing and records nothing. A row the nomenclatures refuse is reported with
    its line, and the others go on."""
    checked: list[tuple[str, SiteFacts, SiteInput]] = []
    for line, data in batch:
        try:
            siret, facts = check_site(data, refs)
        except InvalidSite as exc:
            report.error(SireneRowError(line=line, reason=exc.message, siret=data.siret))
            continue
        checked.append((siret, facts, data))
    for outcome in await _upsert_checked(uow, checked):
        report.count(outcome)


# --- Reference data --------------------------------------------------------------------


async def load_reference_data(
    uow: SiteRegistryUnitOfWork,
    territories: Iterable[TerritoryRecord],
    communes: Iterable[CommuneRecord],
    territory_communes: dict[str, list[str]],
) -> dict[str, int]:
    """Replace the reference tables with the packaged real data, then move every site
    whose commune's territories changed (idempotent). Sites are never deleted: the
    reference tables are replaced, the sites kept. No event for the reference data
    itself (its producers — ANCT, INSEE — publish it); one `site.updated` per site whose
    territories changed (`changed_fields: ["territory_ids"]`), so that consumers follow.
    Closure shocks keep the territories of their declaration."""
    territories = list(territories)
    communes = list(communes)
    known_territories = {t.id for t in territories}
    links = sorted(
        {
            (tid, insee)
            for tid, codes in territory_communes.items()
            if tid in known_territories
            for insee in codes
        }
    )
    groupements = [(t.id, g) for t in territories for g in _unique_groupements(t)]
    await uow.reference.replace(territories, groupements, communes, links)
    by_commune: dict[str, list[str]] = {}
    for tid, insee in links:
        by_commune.setdefault(insee, []).append(tid)
    moved = {
        siret: tuple(sorted(by_commune.get(commune, ())))
        for siret, commune, current in await uow.sites.territory_assignments()
        if tuple(sorted(by_commune.get(commune, ()))) != current
    }
    sites = await uow.sites.get_many(moved)
    for siret, territory_ids in moved.items():
        sites[siret].reassign(territory_ids)
    return {
        "territories": len(territories),
        "communes": len(communes),
        "links": len(links),
        "sites_moved": len(moved),
    }


def _unique_groupements(t: TerritoryRecord) -> Iterator[Groupement]:
    seen: set[str] = set()
    for g in t.epcis:
        if g.siren not in seen:
            seen.add(g.siren)
            yield g


# --- Sirene legal units ----------------------------------------------------------------


@dataclass
class LegalUnitReport:
    """What a legal-unit import did. `matched` counts legal units (firms), the others
    sites: one firm has one site or hundreds."""

    rows_read: int = 0
    matched: int = 0
    sites_updated: int = 0  # their firm facts changed (stored)
    events: int = 0  # of which the change shows in their events (one site.updated each)
    unchanged: int = 0
    error_count: int = 0
    errors: list[SireneRowError] = field(default_factory=list)
    seconds: float = 0.0
    max_errors_kept: int = 1000

    def error(self, err: SireneRowError) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors_kept:
            self.errors.append(err)


LegalUnitBatch = list[SireneLegalUnit]


def legal_unit_batches(
    source: TextIO,
    wanted_sirens: Container[str],
    report: LegalUnitReport,
    *,
    batch_size: int,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[LegalUnitBatch]:
    """Stream a StockUniteLegale CSV: the legal units of `wanted_sirens`, `batch_size`
    at a time; the rows read and the unreadable ones go to the report as they come."""

    def rows(count: int) -> None:
        report.rows_read += count
        if on_progress is not None:
            on_progress(count)

    batch: LegalUnitBatch = []
    for item in read_stock_unite_legale(source, wanted_sirens, on_rows=rows):
        if isinstance(item, SireneRowError):
            report.error(item)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def firm_facts(unit: SireneLegalUnit) -> FirmFacts:
    return FirmFacts(
        name=unit.name,
        name_is_person=unit.name_is_person,
        legal_category=unit.legal_category,
        company_category=unit.company_category,
        company_category_year=unit.company_category_year,
    )


async def apply_legal_units(
    uow: SiteRegistryUnitOfWork, batch: Sequence[SireneLegalUnit], report: LegalUnitReport
) -> None:
    """Give every site of each firm of the batch its firm's facts. Idempotent: a site
    whose firm facts are already these changes nothing; one whose event-visible state
    changes (name, categories) records one site.updated naming those fields."""
    by_siren = await uow.sites.of_sirens(unit.siren for unit in batch)
    for unit in batch:
        sites = by_siren.get(unit.siren)
        if not sites:
            continue  # wanted, yet gone from the registry since: nothing to name
        report.matched += 1
        firm = firm_facts(unit)
        for site in sites:
            if site.firm == firm:
                report.unchanged += 1
                continue
            report.sites_updated += 1
            if site.apply_firm(firm):
                report.events += 1
