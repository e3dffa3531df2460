"""`python -m services.funding <command>`: the funding service's processes and jobs.

serve             HTTP API + outbox relay + consumer in-process (loads the seed)
relay | consume   one worker alone
migrate           apply the Alembic migrations
load-seed         upsert the curated real schemes
import-aides-territoires FILE   import an Aides-territoires API JSON export
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from services.funding.bootstrap import Funding, bootstrap
from services.funding.service_layer import commands
from shared.cli import service_main
from shared.logging import get_logger

log = get_logger(__name__)


async def prepare(svc: Funding, _args: argparse.Namespace | None = None) -> None:
    await svc.migrate()
    await svc.ensure_topics()
    if svc.settings.load_seed:
        log.info("seed schemes loaded", changed=await svc.load_seed())


async def load_seed(svc: Funding, _: argparse.Namespace) -> int:
    await svc.migrate()
    print(json.dumps({"changed": await svc.load_seed()}))
    await svc.relay.publish_pending()
    return 0


async def import_aides_territoires(svc: Funding, args: argparse.Namespace) -> int:
    await svc.migrate()
    await svc.ensure_topics()
    document = json.loads(args.path.read_text(encoding="utf-8"))
    async with svc.uow() as uow:
        report = await commands.import_aides_territoires(uow, document, svc.matcher)
        await uow.commit()
    print(
        json.dumps(
            {"schemes": report.schemes, "changed": report.changed, "problems": report.problems}
        )
    )
    await svc.relay.publish_pending()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from services.funding.entrypoints.http import create_app

    return service_main(
        argv,
        bootstrap=bootstrap,
        create_app=create_app,
        prepare=prepare,
        jobs={
            "load-seed": ("upsert the curated real schemes", load_seed),
            "import-aides-territoires": (
                "import an Aides-territoires API JSON export",
                import_aides_territoires,
            ),
        },
        arguments={"import-aides-territoires": lambda p: p.add_argument("path", type=Path)},
    )
