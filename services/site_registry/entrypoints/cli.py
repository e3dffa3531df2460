"""`python -m services.site_registry <command>`: the registry's processes and batch jobs.

serve          HTTP API with the outbox relay in-process (migrates first)
relay          the outbox relay alone (one active per database; others stand by)
migrate        apply the Alembic migrations
load-reference load the packaged Territoires d'industrie, EPCI and communes
load-demo      load the Béthune-Bruay et Flandre-Lys demo sites (ti-3205)
import-sirene  stream an INSEE StockEtablissement file into the registry
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from services.site_registry.adapters.reference_data import data_file
from services.site_registry.adapters.sirene import open_sirene
from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.domain.model import SiteSource
from services.site_registry.service_layer import services
from shared.cli import run_command
from shared.logging import configure_logging, get_logger
from shared.runtime import serve

log = get_logger(__name__)

DEMO_FILE = "demo/ti-3205_sites.csv"


def demo_sites() -> list[services.SiteInput]:
    """The committed demo file: real IREP sites plus generated ones (marked `generated`)."""
    with data_file(DEMO_FILE).open("r", encoding="utf-8") as fh:
        return [
            services.SiteInput(
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
        outcome = await services.upsert_many(registry.uow, demo_sites(), registry.refs)
        log.info("demo loaded", **{k.value: v for k, v in outcome.items() if v})


async def _serve(registry: SiteRegistry, *, demo: bool) -> None:
    from services.site_registry.entrypoints.http import create_app

    await prepare(registry, demo=demo)
    settings = registry.settings
    log.info(
        "site registry listening", docs=f"http://{settings.http_host}:{settings.http_port}/docs"
    )
    await serve(create_app(registry), settings)


async def _relay(registry: SiteRegistry) -> None:
    await registry.relay.run()


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
        report = await services.import_sirene(
            registry.uow,
            source,
            services.ImportScope(communes=frozenset(communes)),
            registry.refs,
            on_progress=bar.update,
        )
    # Publish what the import committed before exiting.
    await registry.relay.publish_pending()
    for err in report.errors:
        print(f"line {err.line}: {err.reason}", file=sys.stderr)
    summary = {
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.site_registry")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--demo", action="store_true", help="load the ti-3205 demo first")
    sub.add_parser("relay")
    sub.add_parser("migrate")
    sub.add_parser("load-reference")
    sub.add_parser("load-demo")
    imp = sub.add_parser("import-sirene")
    imp.add_argument("path", type=Path, help="StockEtablissement .csv, .zip or .gz")
    imp.add_argument("--territory", action="append", required=True, help="e.g. ti-3205")
    args = parser.parse_args(argv)

    registry = bootstrap()
    configure_logging("site_registry", registry.settings.log_level, registry.settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                await _serve(registry, demo=args.demo)
            elif args.command == "relay":
                await registry.migrate()
                await _relay(registry)
            elif args.command == "migrate":
                await registry.migrate()
            elif args.command == "load-reference":
                await registry.migrate()
                print(json.dumps(await registry.load_reference_data()))
            elif args.command == "load-demo":
                await prepare(registry, demo=True)
                await registry.relay.publish_pending()
            elif args.command == "import-sirene":
                return await _import(registry, args.path, args.territory)
            return 0
        finally:
            await registry.aclose()

    return run_command(run, registry.settings, long_running=args.command in ("serve", "relay"))
