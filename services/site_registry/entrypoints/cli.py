"""`python -m services.site_registry <command>`: the registry's processes and batch jobs.

serve [--demo]  HTTP API with the outbox relay in-process (migrates, loads the reference
                data, and with --demo the Béthune-Bruay et Flandre-Lys sites, first)
relay, consume, migrate, redrive   as every service (`shared.cli`)
load-reference  load the packaged Territoires d'industrie, EPCI and communes
load-demo       load the Béthune-Bruay et Flandre-Lys demo sites (ti-3205)
import-sirene   stream an INSEE StockEtablissement file into the registry, in one pass for
                --territory ID (repeatable), --region CODE (repeatable) or --all-territories;
                --legal-units PATH then reads StockUniteLegale as import-legal-units does
import-legal-units  stream an INSEE StockUniteLegale file onto the registry's sites (firm
                names, legal and company categories)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.adapters.sirene import open_sirene, peak_rss_kib, sirene_size
from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.domain.model import SiteSource
from services.site_registry.service_layer import batch_jobs, commands
from services.site_registry.service_layer.commands import SiteInput
from shared.cli import service_main
from shared.logging import get_logger

log = get_logger(__name__)

DEMO_FILE = "demo/ti-3205_sites.csv"


def demo_sites() -> list[SiteInput]:
    """The committed demo file: real IREP sites plus generated ones (marked `generated`)."""
    with data_file(DEMO_FILE).open("r", encoding="utf-8") as fh:
        return [
            SiteInput(
                siret=row["siret"],
                naf_code=row["naf_code"],
                commune_insee=row["commune_insee"],
                source=SiteSource(row["source"]),
                name=row["name"] or None,
                headcount_band=row["headcount_band"] or None,
                lon=float(row["lon"]) if row["lon"] else None,
                lat=float(row["lat"]) if row["lat"] else None,
            )
            for row in csv.DictReader(fh)
        ]


async def prepare(registry: SiteRegistry, *, demo: bool) -> None:
    """Prestart: migrate, create topics, load reference data (and the demo)."""
    await registry.migrate()
    await registry.ensure_topics()
    counts = await registry.load_reference_data()
    log.info("reference data loaded", **counts)
    if demo:
        outcome = await batch_jobs.load_sites(registry.uow, demo_sites(), registry.refs)
        log.info("demo loaded", **{k.value: v for k, v in outcome.items() if v})


@dataclass(frozen=True)
class ImportRequest:
    """What `import-sirene` was asked to cover: territories, regions, or everything."""

    path: Path
    territories: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    every_territory: bool = False
    legal_units: Path | None = None  # StockUniteLegale, read after the establishments


class _Progress:
    """The bar's total is the file's bytes (rows are unknown until the end: only bytes
    give an ETA); rows read and rows/s ride along in its postfix."""

    def __init__(self, path: Path) -> None:
        from tqdm import tqdm

        self._started = time.perf_counter()
        self.bar = tqdm(
            total=sirene_size(path),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            dynamic_ncols=True,
        )

    def on_bytes(self, n: int) -> None:
        self.bar.update(n)

    def on_rows(self, rows: int) -> None:
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self.bar.set_postfix_str(f"{rows:,} rows, {rows / elapsed:,.0f} rows/s", refresh=False)


async def _import(registry: SiteRegistry, request: ImportRequest) -> int:
    await registry.migrate()
    await registry.ensure_topics()
    try:
        async with registry.uow() as uow:
            territories, scope = await commands.import_scope(
                uow,
                territory_ids=request.territories,
                regions=request.regions,
                every_territory=request.every_territory,
            )
    except commands.UnknownTerritories as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if not scope.communes:
        print(f"no communes known for {', '.join(territories)}", file=sys.stderr)
        return 2
    log.info(
        "import scope",
        territories=len(territories),
        communes=len(scope.communes),
        path=str(request.path),
    )
    progress = _Progress(request.path)
    with progress.bar:
        report = await batch_jobs.import_sirene(
            registry.uow,
            request.path,
            scope,
            registry.refs,
            on_rows=progress.on_rows,
            on_bytes=progress.on_bytes,
        )
    legal_units = None
    if request.legal_units is not None:
        legal_units = await _legal_units(registry, request.legal_units)
    # Publish what the import committed before exiting.
    await registry.relay.publish_pending()
    for err in report.errors:
        print(f"line {err.line}: {err.reason}", file=sys.stderr)
    if report.error_count > len(report.errors):
        print(
            f"... {report.error_count - len(report.errors)} more errors not listed",
            file=sys.stderr,
        )
    summary: dict[str, Any] = {
        "territories": len(territories),
        "communes": len(scope.communes),
        **{
            k: getattr(report, k)
            for k in (
                "rows_read",
                "in_scope",
                "created",
                "updated",
                "unchanged",
                "closed",
                "skipped",
                "error_count",
            )
        },
    }
    summary["seconds"] = round(report.seconds, 2)
    if legal_units is not None:
        summary["legal_units"] = legal_units
    own_peak = peak_rss_kib()
    if own_peak is not None:
        summary["peak_rss_mib"] = round(own_peak / 1024, 1)
    if report.scanner_peak_rss_kib is not None:
        summary["scanner_peak_rss_mib"] = round(report.scanner_peak_rss_kib / 1024, 1)
    print(json.dumps(summary))
    return 0


async def _load_reference(registry: SiteRegistry, _: argparse.Namespace) -> None:
    await registry.migrate()
    await registry.ensure_topics()
    print(json.dumps(await registry.load_reference_data()))
    # Publish the moves of sites whose territories changed before exiting.
    await registry.relay.publish_pending()


async def _load_demo(registry: SiteRegistry, _: argparse.Namespace) -> None:
    await prepare(registry, demo=True)
    await registry.relay.publish_pending()


async def _import_sirene(registry: SiteRegistry, args: argparse.Namespace) -> int:
    if not (args.territory or args.region or args.all_territories):
        # argparse has no "at least one of these options".
        print("import-sirene: give --territory, --region or --all-territories", file=sys.stderr)
        return 2
    request = ImportRequest(
        path=args.path,
        territories=tuple(args.territory or ()),
        regions=tuple(args.region or ()),
        every_territory=args.all_territories,
        legal_units=args.legal_units,
    )
    return await _import(registry, request)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="StockEtablissement .csv, .zip or .gz")
    parser.add_argument(
        "--territory", action="append", metavar="ID", help="a territory, e.g. ti-3205 (repeatable)"
    )
    parser.add_argument(
        "--region",
        action="append",
        metavar="CODE",
        help="every territory of an INSEE region, e.g. 44 for Grand Est (repeatable)",
    )
    parser.add_argument(
        "--all-territories", action="store_true", help="all 183 Territoires d'industrie"
    )
    parser.add_argument(
        "--legal-units",
        type=Path,
        metavar="PATH",
        help="then StockUniteLegale (.csv, .zip or .gz): firm names and categories",
    )


async def _legal_units(registry: SiteRegistry, path: Path) -> dict[str, Any]:
    """Stream a StockUniteLegale file onto the registry's sites; the summary."""
    from tqdm import tqdm

    with (
        tqdm(
            total=sirene_size(path), unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
        ) as bar,
        open_sirene(path, on_bytes=bar.update) as source,
    ):
        report = await batch_jobs.import_legal_units(registry.uow, source)
    for err in report.errors:
        print(f"line {err.line}: {err.reason}", file=sys.stderr)
    summary: dict[str, Any] = {
        k: getattr(report, k)
        for k in ("rows_read", "matched", "sites_updated", "events", "unchanged", "error_count")
    }
    summary["seconds"] = round(report.seconds, 2)
    return summary


async def _import_legal_units(registry: SiteRegistry, args: argparse.Namespace) -> int:
    await registry.migrate()
    await registry.ensure_topics()
    summary = await _legal_units(registry, args.path)
    # Publish the sites' updates the import committed before exiting.
    await registry.relay.publish_pending()
    print(json.dumps(summary))
    return 0


def _legal_units_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="StockUniteLegale .csv, .zip or .gz")


async def _prestart(registry: SiteRegistry, args: argparse.Namespace) -> None:
    # `serve --demo` only: `consume` has no such option.
    await prepare(registry, demo=getattr(args, "demo", False))


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true", help="load the ti-3205 demo first")


def main(argv: Sequence[str] | None = None) -> int:
    from services.site_registry.entrypoints.http import create_app

    return service_main(
        argv,
        bootstrap=bootstrap,
        create_app=create_app,
        prepare=_prestart,
        jobs={
            "load-reference": (
                "load the packaged Territoires d'industrie, EPCI and communes",
                _load_reference,
            ),
            "load-demo": ("load the Béthune-Bruay et Flandre-Lys demo sites", _load_demo),
            "import-sirene": (
                "stream an INSEE StockEtablissement file into the registry",
                _import_sirene,
            ),
            "import-legal-units": (
                "stream an INSEE StockUniteLegale file onto the registry's sites",
                _import_legal_units,
            ),
        },
        arguments={
            "serve": _serve_arguments,
            "import-sirene": _import_arguments,
            "import-legal-units": _legal_units_arguments,
        },
    )
