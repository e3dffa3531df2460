"""The command line every service shares: `serve`, `relay`, `consume`, `migrate`, plus
the service's own jobs. Settings come from the environment; nothing else is global."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from shared.logging import configure_logging, get_logger
from shared.messaging.consumer import ConsumerRunner
from shared.messaging.redrive import redrive
from shared.runtime import ServiceRuntime, Worker, serve
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
    prepare: Callable[[R, argparse.Namespace], Awaitable[None]],
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

    try:
        runtime = bootstrap()
    except ValidationError as exc:  # settings refused: no environment, the dev secret…
        for error in exc.errors():
            print(f"error: {error['msg']}", file=sys.stderr)
        return 2
    settings = runtime.settings
    configure_logging(service, settings.log_level, settings.log_json)

    async def run() -> int:
        try:
            if args.command == "serve":
                await prepare(runtime, args)
                log.info(
                    f"{service} listening",
                    docs=f"http://{settings.http_host}:{settings.http_port}/docs",
                )
                await serve(create_app(runtime), settings)
            elif args.command == "relay":
                await runtime.migrate()
                with _stopped_by_sigterm([runtime.relay]):
                    await runtime.relay.run()
            elif args.command == "consume":
                await prepare(runtime, args)
                consumers = [w for w in runtime.workers() if w is not runtime.relay]
                with _stopped_by_sigterm(consumers):
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

    return run_command(run, settings, long_running=args.command in ("serve", "relay", "consume"))


@contextlib.contextmanager
def _stopped_by_sigterm(workers: Sequence[Worker]) -> Iterator[None]:
    """SIGTERM (Kubernetes, systemd) stops the workers as `serve`'s shutdown does: the
    batch in hand finished, offsets committed, the relay's lease released; their run
    loops then end and the command exits 0. Without it the signal killed the process
    with the lease held until its TTL."""
    loop = asyncio.get_running_loop()
    stops: list[asyncio.Future[None]] = []  # kept alive until they are done

    def stop() -> None:
        if not stops:
            stops.extend(asyncio.ensure_future(w.stop()) for w in workers)

    loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


# --- the error path: a dependency down is one line on stderr, a bug a traceback ----------


def run_command(
    main: Callable[[], Coroutine[Any, Any, int]],
    settings: ServiceSettings,
    *,
    long_running: bool = False,
) -> int:
    """Run a command's coroutine; a broker or database that cannot be reached ends it
    with one `error: …` line on stderr and exit code 2, Ctrl-C with 130, anything else
    with its traceback. A one-off job (not `long_running`: those log as they go) holds
    aiokafka's line per failed connection attempt: the error line says it once."""
    held = _ConnectionLogs(hold=not long_running)
    try:
        with held:
            return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = unreachable(exc, settings, held.records)
        if line is None:
            held.release()
            raise
        print(f"error: {line}", file=sys.stderr)
        return 2


def unreachable(
    exc: BaseException, settings: ServiceSettings, logged: Sequence[logging.LogRecord] = ()
) -> str | None:
    """One readable line for a dependency that cannot be reached, or None (a real bug:
    let its traceback show). `logged`: the client library's records of the failed
    attempts, whose errors say why (aiokafka's own exception does not)."""
    if not is_transient(exc):
        return None
    errors = [*_causes(exc)]
    errors += [arg for record in logged for arg in record.args or () if isinstance(arg, OSError)]
    text = " ".join(repr(e) for e in _causes(exc))
    why = _why(errors) or describe(exc)
    if any(isinstance(e, KafkaError) for e in errors) or "kafka" in text.lower():
        return (
            f"cannot reach the Kafka broker at {settings.kafka_bootstrap_servers} ({why})."
            " Start `make run` (commands run beside it find its broker by themselves)"
            " or set KAFKA_BOOTSTRAP_SERVERS."
        )
    prefix = str(settings.model_config.get("env_prefix") or "").upper()
    where = f"{prefix}DATABASE_URL" if settings.database_url else f"{prefix}DATA_DIR"
    url = make_url(settings.resolved_database_url()).render_as_string()  # password hidden
    return f"cannot reach the database {url} ({why}). Check {where}."


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or any(current is e for e in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return seen


def _why(errors: Sequence[BaseException]) -> str | None:
    if any(isinstance(e, socket.gaierror) for e in errors):
        return "its host name does not resolve"
    if any(
        isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED
        for e in errors
    ):
        return "connection refused: nothing listens there"
    if any(isinstance(e, TimeoutError) for e in errors):
        return "no answer in time"
    return None


class _ConnectionLogs(logging.Filter):
    """While a one-off command runs, hold aiokafka's "Unable connect to …" records; shown
    afterwards if it succeeds or fails otherwise, dropped when the error line says it."""

    def __init__(self, *, hold: bool) -> None:
        super().__init__()
        self._hold = hold
        self._handlers: list[logging.Handler] = []
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("aiokafka") and str(record.msg).startswith("Unable "):
            self.records.append(record)
            return False
        return True

    def __enter__(self) -> _ConnectionLogs:
        if self._hold:
            self._handlers = list(logging.getLogger().handlers)
            for handler in self._handlers:
                handler.addFilter(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        for handler in self._handlers:
            handler.removeFilter(self)
        if exc_type is None:
            self.release()

    def release(self) -> None:
        records, self.records = self.records, []
        for record in records:
            for handler in self._handlers:
                handler.handle(record)


# --- end of the error path ----------------------------------------------------------


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
