"""`python -m services.detection <serve|relay|consume|migrate|rebuild-ledger>`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from services.detection.bootstrap import Detection, bootstrap
from shared.cli import service_main


async def prepare(svc: Detection, _args: argparse.Namespace | None = None) -> None:
    await svc.migrate()
    await svc.ensure_topics()


async def rebuild_ledger(svc: Detection, _: argparse.Namespace) -> int:
    await prepare(svc)
    report = await svc.rebuild_ledger()
    print(json.dumps({**vars(report), "seconds": round(report.seconds, 3)}))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from services.detection.entrypoints.http import create_app

    return service_main(
        argv,
        bootstrap=bootstrap,
        create_app=create_app,
        prepare=prepare,
        jobs={
            "rebuild-ledger": (
                "drop the ledger projection and rebuild it from the topics",
                rebuild_ledger,
            )
        },
    )
