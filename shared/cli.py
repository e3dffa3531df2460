"""The command line every service shares: `serve`, `relay`, `consume`, `migrate`, plus
the service's own jobs. Settings come from the environment; nothing else is global."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI

from shared.logging import configure_logging, get_logger
from shared.runtime import ServiceRuntime, serve

log = get_logger(__name__)

R = TypeVar("R", bound=ServiceRuntime)
Job = Callable[[R, argparse.Namespace], Awaitable[int | None]]


def service_main(
    argv: Sequence[str] | None,
    *,
    bootstrap: Callable[[], R],
    create_app: Callable[[R], FastAPI],
    prepare: Callable[[R], Awaitable[None]],
    jobs: Mapping[str, tuple[str, Job[R]]] = {},
    arguments: Mapping[str, Callable[[argparse.ArgumentParser], Any]] = {},
) -> int:
    """Parse the command, build the runtime, run, and always close it."""
    service = bootstrap.__module__.split(".")[1]
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}")
    sub = parser.add_subparsers(dest="command", required=True)
    standard = {
        "serve": "HTTP API with the relay and the consumers in-process (prepares first)",
        "relay": "the outbox relay alone (one active per database; others stand by)",
        "consume": "the consumers alone",
        "migrate": "apply the Alembic migrations",
    }
    for name, text in {**standard, **{n: h for n, (h, _) in jobs.items()}}.items():
        command = sub.add_parser(name, help=text)
        if name in arguments:
            arguments[name](command)
    args = parser.parse_args(argv)

    runtime = bootstrap()
    settings = runtime.settings
    configure_logging(service, settings.log_level, settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                await prepare(runtime)
                log.info(
                    f"{service} listening",
                    docs=f"http://{settings.http_host}:{settings.http_port}/docs",
                )
                await serve(create_app(runtime), settings)
            elif args.command == "relay":
                await runtime.migrate()
                await runtime.relay.run()
            elif args.command == "consume":
                await prepare(runtime)
                consumers = [w for w in runtime.workers() if w is not runtime.relay]
                await asyncio.gather(*(w.run() for w in consumers))
            elif args.command == "migrate":
                await runtime.migrate()
            else:
                return (await jobs[args.command][1](runtime, args)) or 0
            return 0
        finally:
            for worker in runtime.workers():
                await worker.stop()
            await runtime.aclose()

    return asyncio.run(run())
