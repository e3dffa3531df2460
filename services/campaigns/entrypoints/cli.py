"""`python -m services.campaigns <command>`: the campaigns service's processes.

serve    HTTP API with the outbox relay and the site-events consumer in-process
relay    the outbox relay alone (one active per database; others stand by)
consume  the site-events consumer alone
migrate  apply the Alembic migrations
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from services.campaigns.bootstrap import Campaigns, bootstrap
from shared.logging import configure_logging, get_logger
from shared.runtime import serve

log = get_logger(__name__)


async def prepare(svc: Campaigns) -> None:
    await svc.migrate()
    await svc.ensure_topics()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.campaigns")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "relay", "consume", "migrate"):
        sub.add_parser(name)
    args = parser.parse_args(argv)

    svc = bootstrap()
    configure_logging("campaigns", svc.settings.log_level, svc.settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                from services.campaigns.entrypoints.http import create_app

                await prepare(svc)
                s = svc.settings
                log.info("campaigns listening", docs=f"http://{s.http_host}:{s.http_port}/docs")
                await serve(create_app(svc), s)
            elif args.command == "relay":
                await svc.migrate()
                await svc.relay.run()
            elif args.command == "consume":
                await prepare(svc)
                await svc.consumer.run()
            elif args.command == "migrate":
                await svc.migrate()
            return 0
        finally:
            await svc.consumer.stop()
            await svc.aclose()

    return asyncio.run(run())
