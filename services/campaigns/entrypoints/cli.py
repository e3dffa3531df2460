"""`python -m services.campaigns <serve|relay|consume|migrate>`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from services.campaigns.bootstrap import Campaigns, bootstrap
from shared.cli import service_main


async def prepare(svc: Campaigns, _args: argparse.Namespace | None = None) -> None:
    await svc.migrate()
    await svc.ensure_topics()


def main(argv: Sequence[str] | None = None) -> int:
    from services.campaigns.entrypoints.http import create_app

    return service_main(argv, bootstrap=bootstrap, create_app=create_app, prepare=prepare)
