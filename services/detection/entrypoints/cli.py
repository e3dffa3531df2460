"""`python -m services.detection <command>`: the detection service's processes and jobs.

serve           HTTP API + outbox relay + the two consumers (main, ledger) in-process
relay           the outbox relay alone
consume         the consumers alone
migrate         apply the Alembic migrations
rebuild-ledger  drop the ledger projection and rebuild it from the topics
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence

from services.detection.bootstrap import Detection, bootstrap
from shared.logging import configure_logging, get_logger
from shared.runtime import serve

log = get_logger(__name__)


async def prepare(svc: Detection) -> None:
    await svc.migrate()
    await svc.ensure_topics()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.detection")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "relay", "consume", "migrate", "rebuild-ledger"):
        sub.add_parser(name)
    args = parser.parse_args(argv)

    svc = bootstrap()
    configure_logging("detection", svc.settings.log_level, svc.settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                from services.detection.entrypoints.http import create_app

                await prepare(svc)
                s = svc.settings
                log.info("detection listening", docs=f"http://{s.http_host}:{s.http_port}/docs")
                await serve(create_app(svc), s)
            elif args.command == "relay":
                await svc.migrate()
                await svc.relay.run()
            elif args.command == "consume":
                await prepare(svc)
                await asyncio.gather(svc.consumer.run(), svc.ledger_consumer.run())
            elif args.command == "migrate":
                await svc.migrate()
            elif args.command == "rebuild-ledger":
                await prepare(svc)
                report = await svc.rebuild_ledger()
                print(json.dumps({**vars(report), "seconds": round(report.seconds, 3)}))
            return 0
        finally:
            await svc.consumer.stop()
            await svc.ledger_consumer.stop()
            await svc.aclose()

    return asyncio.run(run())
