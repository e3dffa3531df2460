"""`python -m services.web serve`: the pages and the API relay (one command: this
service has no relay, no consumer and no migration)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from shared.cli import run_command
from shared.logging import configure_logging, get_logger

log = get_logger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.web")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="the web pages and the relay to the public APIs")
    parser.parse_args(argv)

    from services.web.bootstrap import bootstrap, create_app
    from services.web.settings import WebSettings

    try:
        settings = WebSettings()
    except ValidationError as exc:
        for error in exc.errors():
            print(f"error: {error['msg']}", file=sys.stderr)
        return 2
    configure_logging("web", settings.log_level, settings.log_json)

    async def run() -> int:
        from shared.runtime import serve

        app = create_app(bootstrap(settings))
        log.info("web listening", pages=f"http://{settings.http_host}:{settings.http_port}/")
        await serve(app, settings)
        return 0

    return run_command(run, settings, long_running=True)
