"""The drivers of the registry's batch jobs (Sirene establishments and legal units, demo
and reference loads): each opens one unit of work per batch, runs the commands in it and
commits it. The commands never commit; an HTTP request's unit of work is the command
bus's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from services.site_registry.adapters.reference_data import CommuneRecord, TerritoryRecord
from services.site_registry.adapters.sirene import (
    ReadStats,
    SireneEstablishment,
    SireneRowError,
    read_stock_etablissement,
    scan_in_subprocess,
)
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
    source: TextIO | Path,
    scope: ImportScope,
    refs: Nomenclatures,
    *,
    batch_size: int = 500,
    on_rows: Callable[[int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ImportReport:
    """Stream a StockEtablissement CSV into the registry, one transaction per batch of
    rows in scope: a national file never sits in memory nor in one transaction, and a
    failure keeps the batches already committed (re-running the import is harmless).

    A file (`Path`: .csv, .gz or .zip) is scanned by a child process while this one
    writes, so the scan and the writes overlap; a text stream is read here. Both read
    the same way: the rows out of scope are dropped before anything is built."""
    started = time.perf_counter()
    report = ImportReport()
    stats = ReadStats()
    only = commands.row_filter(scope, refs)
    if isinstance(source, Path):
        items: Iterator[SireneEstablishment | SireneRowError] = scan_in_subprocess(
            source, only=only, stats=stats, on_rows=on_rows, on_bytes=on_bytes
        )
    else:
        items = read_stock_etablissement(source, only=only, stats=stats, on_rows=on_rows)
    batches = commands.sirene_batches(items, stats, report, batch_size=batch_size)
    try:
        while True:
            # The next batch may wait on the scanning process: off the event loop.
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                break
            async with uow_factory() as uow:
                await commands.import_batch(uow, batch, refs, report)
                await uow.commit()
    finally:
        batches.close()
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
