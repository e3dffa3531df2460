"""The command line every service shares: `serve`, `relay`, `consume`, `migrate`, plus
the service's own jobs. Settings come from the environment; nothing else is global."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from shared.logging import configure_logging, get_logger
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.redrive import redrive
from shared.runtime import ServiceRuntime, serve
from shared.settings import ServiceSettings
from shared.transient import describe, is_transient

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
        "redrive": "put this service's dead-lettered messages back through their handlers",
    }
    for name, text in {**standard, **{n: h for n, (h, _) in jobs.items()}}.items():
        command = sub.add_parser(name, help=text)
        if name in arguments:
            arguments[name](command)
        if name == "redrive":
            command.add_argument(
                "--id",
                dest="event_ids",
                action="append",
                default=[],
                metavar="CE_ID",
                help="only this event id (repeatable); default: every message",
            )
            command.add_argument(
                "--dry-run", action="store_true", help="list what would be re-driven"
            )
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
            elif args.command == "redrive":
                return await _redrive(runtime, args)
            else:
                return (await jobs[args.command][1](runtime, args)) or 0
            return 0
        finally:
            for worker in runtime.workers():
                await worker.stop()
            await runtime.aclose()

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = unreachable(exc, settings)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def unreachable(exc: BaseException, settings: ServiceSettings) -> str | None:
    """One readable line for a dependency that cannot be reached, or None (a real bug:
    let its traceback show)."""
    if not is_transient(exc):
        return None
    chain = describe(exc)
    text = f"{chain} {exc.__cause__!r}" if exc.__cause__ else chain
    if isinstance(exc, KafkaError) or "Kafka" in text or "broker" in text.lower():
        return (
            f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers}"
            f" ({describe(exc)}). Is `make run` running? Otherwise set KAFKA_BOOTSTRAP_SERVERS."
        )
    return (
        f"cannot reach the database {make_url(settings.resolved_database_url()).render_as_string()}"
        f" ({describe(exc)}). Check the service's *_DATABASE_URL."
    )


async def _redrive(runtime: ServiceRuntime, args: argparse.Namespace) -> int:
    runners = [w for w in runtime.workers() if isinstance(w, ConsumerRunner)]
    if not runners:
        print(f"{runtime.service} consumes no topic: nothing to re-drive")
        return 0
    await runtime.migrate()
    # The runners are not started: re-driving joins no consumer group (it would take
    # partitions from the running service) and dead-letters nothing again.
    report = await redrive(
        runtime.settings.kafka_access(), runners, event_ids=args.event_ids, dry_run=args.dry_run
    )
    for line in report.lines:
        print(
            f"{line.outcome:>18}  {line.event_id}  {line.event_type}  ({line.consumer})"
            f"  {line.detail}"
        )
    print(report.summary())
    await runtime.relay.publish_pending()  # what the re-driven handlers published
    return 1 if report.failed or report.stopped else 0
