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
from shared.cli import service_main
from shared.logging import get_logger

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


async def load_seed(svc: Funding, _: argparse.Namespace) -> int:
    await svc.migrate()
    print(json.dumps({"changed": await svc.load_seed()}))
    await svc.relay.publish_pending()
    return 0


async def import_aides_territoires(svc: Funding, args: argparse.Namespace) -> int:
    await svc.migrate()
    await svc.ensure_topics()
    document = json.loads(args.path.read_text(encoding="utf-8"))
    print(json.dumps(await import_document(svc, document)))
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
