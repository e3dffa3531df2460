"""The drivers of the registry's batch jobs (Sirene establishments and legal units, demo
and reference loads): each opens one unit of work per batch, runs the commands in it and
commits it. The commands never commit; an HTTP request's unit of work is the command
bus's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TextIO

from services.site_registry.adapters.reference_data import CommuneRecord, TerritoryRecord
from services.site_registry.service_layer import commands
from services.site_registry.service_layer.commands import (
    ImportReport,
    ImportScope,
    LegalUnitReport,
    Nomenclatures,
    Outcome,
    SiteInput,
)
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork

UowFactory = Callable[[], SiteRegistryUnitOfWork]


async def import_sirene(
    uow_factory: UowFactory,
    source: TextIO,
    scope: ImportScope,
    refs: Nomenclatures,
    *,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Stream a StockEtablissement CSV into the registry, one transaction per batch of
    rows in scope: a national file never sits in memory nor in one transaction, and a
    failure keeps the batches already committed (re-running the import is harmless)."""
    started = time.perf_counter()
    report = ImportReport()
    batches = commands.sirene_batches(
        source, scope, refs, report, batch_size=batch_size, on_progress=on_progress
    )
    for batch in batches:
        async with uow_factory() as uow:
            await commands.import_batch(uow, batch, refs, report)
            await uow.commit()
    report.seconds = time.perf_counter() - started
    return report


async def import_legal_units(
    uow_factory: UowFactory,
    source: TextIO,
    *,
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> LegalUnitReport:
    """Stream a StockUniteLegale CSV onto the registry's sites, one transaction per batch
    of legal units: only the firms of the registry's sites are kept (their SIRENs read
    once, before the file), so the 29 million rows of the national file cost a set
    lookup each and never a transaction."""
    started = time.perf_counter()
    report = LegalUnitReport()
    async with uow_factory() as uow:
        wanted = frozenset(await uow.sites.sirens())
    batches = commands.legal_unit_batches(
        source, wanted, report, batch_size=batch_size, on_progress=on_progress
    )
    for batch in batches:
        async with uow_factory() as uow:
            await commands.apply_legal_units(uow, batch, report)
            await uow.commit()
    report.seconds = time.perf_counter() - started
    return report


async def load_sites(
    uow_factory: UowFactory, sites: Iterable[SiteInput], refs: Nomenclatures
) -> dict[Outcome, int]:
    """Upsert a known-good list of sites (the demo file) in one transaction."""
    async with uow_factory() as uow:
        counts = await commands.upsert_many(uow, sites, refs)
        await uow.commit()
    return counts


async def load_reference_data(
    uow_factory: UowFactory,
    territories: Iterable[TerritoryRecord],
    communes: Iterable[CommuneRecord],
    territory_communes: dict[str, list[str]],
) -> dict[str, int]:
    """Replace the reference tables in one transaction."""
    async with uow_factory() as uow:
        counts = await commands.load_reference_data(uow, territories, communes, territory_communes)
        await uow.commit()
    return counts
