"""`python -m services.funding <command>`: the funding service's processes and jobs.

serve             HTTP API + outbox relay + consumer in-process (loads the seed)
relay | consume   one worker alone
migrate           apply the Alembic migrations
load-seed         upsert the curated real schemes
import-aides-territoires FILE   import an Aides-territoires API JSON export
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

from services.funding.bootstrap import Funding, bootstrap
from shared.logging import configure_logging, get_logger
from shared.runtime import serve

log = get_logger(__name__)


async def prepare(svc: Funding) -> None:
    await svc.migrate()
    await svc.ensure_topics()
    if svc.settings.load_seed:
        log.info("seed schemes loaded", changed=await svc.load_seed())


async def import_document(svc: Funding, document: dict[str, object]) -> dict[str, object]:
    from services.funding.adapters.aides_territoires import parse_aides_territoires
    from services.funding.adapters.repository import upsert_scheme

    schemes, problems = parse_aides_territoires(document)
    async with svc.uow() as uow:
        changed = sum([await upsert_scheme(uow.session, s) for s in schemes])
        if changed:
            await uow.session.flush()
            await svc.matcher.rematch_all(uow)
        await uow.commit()
    return {"schemes": len(schemes), "changed": changed, "problems": [str(p) for p in problems]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.funding")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "relay", "consume", "migrate", "load-seed"):
        sub.add_parser(name)
    imp = sub.add_parser("import-aides-territoires")
    imp.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    svc = bootstrap()
    configure_logging("funding", svc.settings.log_level, svc.settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                from services.funding.entrypoints.http import create_app

                await prepare(svc)
                s = svc.settings
                log.info("funding listening", docs=f"http://{s.http_host}:{s.http_port}/docs")
                await serve(create_app(svc), s)
            elif args.command == "relay":
                await svc.migrate()
                await svc.relay.run()
            elif args.command == "consume":
                await prepare(svc)
                await svc.consumer.run()
            elif args.command == "migrate":
                await svc.migrate()
            elif args.command == "load-seed":
                await svc.migrate()
                print(json.dumps({"changed": await svc.load_seed()}))
                await svc.relay.publish_pending()
            elif args.command == "import-aides-territoires":
                await svc.migrate()
                await svc.ensure_topics()
                document = json.loads(args.path.read_text(encoding="utf-8"))
                print(json.dumps(await import_document(svc, document)))
                await svc.relay.publish_pending()
            return 0
        finally:
            await svc.consumer.stop()
            await svc.aclose()

    return asyncio.run(run())
