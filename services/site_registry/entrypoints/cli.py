"""`python -m services.site_registry <command>`: the registry's processes and batch jobs.

serve [--demo]  HTTP API with the outbox relay in-process (migrates, loads the reference
                data, and with --demo the Béthune-Bruay et Flandre-Lys sites, first)
relay, consume, migrate, redrive   as every service (`shared.cli`)
load-reference  load the packaged Territoires d'industrie, EPCI and communes
load-demo       load the Béthune-Bruay et Flandre-Lys demo sites (ti-3205)
import-sirene   stream an INSEE StockEtablissement file into the registry
import-legal-units  stream an INSEE StockUniteLegale file onto the registry's sites (firm
                names, legal and company categories)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.adapters.sirene import open_sirene
from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.domain.model import SiteSource
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import ImportScope, SiteInput
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


async def _import(registry: SiteRegistry, path: Path, territories: list[str]) -> int:
    from tqdm import tqdm

    await registry.migrate()
    await registry.ensure_topics()
    async with registry.uow() as uow:
        communes = await uow.territories.communes_of(territories)
    if not communes:
        print(f"no communes known for {', '.join(territories)}", file=sys.stderr)
        return 2
    with open_sirene(path) as source, tqdm(unit=" rows", unit_scale=True, file=sys.stderr) as bar:
        report = await batch_jobs.import_sirene(
            registry.uow,
            source,
            ImportScope(communes=frozenset(communes)),
            registry.refs,
            on_progress=bar.update,
        )
    # Publish what the import committed before exiting.
    await registry.relay.publish_pending()
    for err in report.errors:
        print(f"line {err.line}: {err.reason}", file=sys.stderr)
    summary: dict[str, Any] = {
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
    }
    summary["seconds"] = round(report.seconds, 2)
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
    return await _import(registry, args.path, args.territory)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="StockEtablissement .csv, .zip or .gz")
    parser.add_argument("--territory", action="append", required=True, help="e.g. ti-3205")


async def _import_legal_units(registry: SiteRegistry, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    await registry.migrate()
    await registry.ensure_topics()
    with (
        open_sirene(args.path) as source,
        tqdm(unit=" rows", unit_scale=True, file=sys.stderr) as bar,
    ):
        report = await batch_jobs.import_legal_units(registry.uow, source, on_progress=bar.update)
    # Publish the sites' updates the import committed before exiting.
    await registry.relay.publish_pending()
    for err in report.errors:
        print(f"line {err.line}: {err.reason}", file=sys.stderr)
    summary: dict[str, Any] = {
        k: getattr(report, k)
        for k in ("rows_read", "matched", "sites_updated", "events", "unchanged", "error_count")
    }
    summary["seconds"] = round(report.seconds, 2)
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
