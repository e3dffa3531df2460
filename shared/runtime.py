"""What every service's composition root builds the same way: engine and sessions, the
outbox relay, Kafka producers, migrations, topics, auth, and the background workers that
run beside the HTTP API (relay, consumers)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from shared import migrations
from shared.auth import AuthConfig
from shared.clock import Clock
from shared.db import create_engine, create_session_factory
from shared.events.catalogue import Topic, event_registry, topics_consumed_by, topics_owned_by
from shared.http import ReadinessPart
from shared.messaging.consumer import ConsumerRunner, Handler
from shared.messaging.kafka import BrokerProbe, ensure_topics, make_producer
from shared.messaging.relay import AfterPublish, OutboxRelay, PendingEvent
from shared.messaging.unit_of_work import SqlUnitOfWork
from shared.settings import ServiceSettings
from shared.tracing import configure_tracing, fastapi_telemetry_options, instrument_engine

U = TypeVar("U", bound=SqlUnitOfWork)

#: What `/readyz` waits for the database (and, in `BrokerProbe`, the broker): below the
#: probes' own timeouts (deploy/k8s: 3 s).
READINESS_TIMEOUT_S = 2.0


class Worker(Protocol):
    #: why the worker cannot make progress now (a dependency down), None when it can
    problem: str | None

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceRuntime:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        migrations_dir: Path,
        *,
        after_publish: AfterPublish | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.clock = Clock()  # services built with a `now` (tests) replace it
        self.migrations_dir = migrations_dir
        if settings.chaos_kill_after_publish:
            after_publish = _killed_after(settings.chaos_kill_after_publish, after_publish)
        configure_tracing(service)  # once per process: the first runtime's service names it
        self.engine = create_engine(settings.resolved_database_url())
        instrument_engine(self.engine)
        self.session_factory = create_session_factory(self.engine)
        self.relay = OutboxRelay(
            engine=self.engine,
            session_factory=self.session_factory,
            producer_factory=lambda transactional_id: make_producer(
                settings.kafka_access(),
                settings.client_id() + "-relay",
                transactional_id=transactional_id,
            ),
            service=service,
            topic_prefix=settings.kafka_topic_prefix,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            after_publish=after_publish,
            retention=timedelta(days=settings.outbox_retention_days),
            lease_ttl_s=settings.relay_lease_ttl_s,
        )
        self.auth = AuthConfig.from_settings(settings)
        # Opened at the first readiness check, not here: no I/O while composing.
        self.broker_probe = BrokerProbe(settings.kafka_access())

    def engines(self) -> Mapping[str, AsyncEngine]:
        """The database engines of this service, by pool name (for the pool metrics)."""
        return {"main": self.engine}

    def producer(self) -> AIOKafkaProducer:
        return make_producer(self.settings.kafka_access(), self.settings.client_id())

    async def migrate(self) -> None:
        await migrations.upgrade(self.migrations_dir, self.settings.resolved_database_url())

    async def ensure_topics(self) -> list[str]:
        topics = {*topics_owned_by(self.service), *topics_consumed_by(self.service)}
        return await ensure_topics(
            self.settings.kafka_access(),
            sorted(topics, key=lambda t: t.name),
            prefix=self.settings.kafka_topic_prefix,
            replication_factor=self.settings.kafka_replication_factor,
        )

    def workers(self) -> Sequence[Worker]:
        """Background workers of this service (the relay; services add their consumers)."""
        return (self.relay,)

    def consumer_runner(
        self,
        name: str,
        topics: Sequence[Topic],
        handlers: Mapping[str, Handler[U]],
        uow_factory: Callable[[], U],
    ) -> ConsumerRunner[U]:
        """A consumer group of this service, named `<prefix><service>.<name>`."""
        s = self.settings
        return ConsumerRunner(
            name=f"{s.kafka_topic_prefix}{self.service}.{name}",
            topics=topics,
            handlers=handlers,
            uow_factory=uow_factory,
            registry=event_registry(),
            bootstrap_servers=s.kafka_access(),
            producer_factory=self.producer,
            topic_prefix=s.kafka_topic_prefix,
            max_attempts=s.consumer_max_attempts,
            backoff_s=s.consumer_backoff_s,
            transient_backoff_s=s.consumer_transient_backoff_s,
            max_transient_backoff_s=s.consumer_max_transient_backoff_s,
            batch_size=max(200, s.consumer_batch_size),
            transaction_size=s.consumer_batch_size,
            concurrent_partitions=s.consumer_concurrent_partitions,
            session_timeout_ms=s.consumer_session_timeout_ms,
            max_poll_interval_ms=s.consumer_max_poll_interval_ms,
        )

    async def aclose(self) -> None:
        await self.relay.stop()
        await self.broker_probe.close()
        await self.engine.dispose()


def _killed_after(batches: int, then: AfterPublish | None) -> AfterPublish:
    """The fault suite's relay crash: SIGKILL between the broker's commit and the mark."""
    seen = 0

    async def after_publish(rows: Sequence[PendingEvent]) -> None:
        nonlocal seen
        if then is not None:
            await then(rows)
        seen += 1
        if seen >= batches:
            os.kill(os.getpid(), signal.SIGKILL)

    return after_publish


def workers_lifespan(
    workers: Sequence[Worker],
    *,
    stop_timeout_s: float = 6.0,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Run the workers beside the API for the app's lifetime; stop them on shutdown.

    On shutdown (SIGTERM: uvicorn has stopped taking requests and drained them) every
    worker is stopped at once: each finishes the batch in hand, the consumers commit
    their offsets and leave their groups, the relay releases its lease. Within
    `stop_timeout_s` in all; whatever still runs then is cancelled."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from shared.http import warm_up

        await warm_up(app)
        # In a context of their own: the warm-up request bound its path, request id and
        # correlation id (and a trace) in this one, and every worker line carried them.
        tasks = [asyncio.create_task(w.run(), context=contextvars.Context()) for w in workers]
        try:
            yield
        finally:
            stopping = asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping, timeout=stop_timeout_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wait(tasks) if tasks else asyncio.sleep(0), 1.0)
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    return lifespan


async def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run the HTTP API (and, through its lifespan, the workers) until stopped.

    SIGTERM (or SIGINT) is a graceful shutdown: uvicorn stops listening, lets the
    requests in flight finish within `shutdown_timeout_s`, then runs the lifespan's
    shutdown (the workers, above). The process then exits 0 on SIGTERM: uvicorn would
    re-raise the signal once done, and die of it (143) before the caller's cleanup."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_level=settings.log_level.lower(),
            log_config=None,  # keep our structlog handler: one stream, one format
            access_log=False,  # requests are logged by our middleware, with correlation ids
            timeout_graceful_shutdown=max(1, int(settings.shutdown_timeout_s)),
        )
    )
    # uvicorn restores this handler and raises the signal again after its shutdown: the
    # shutdown is done by then, so the SIGTERM it re-raises ends nothing more.
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: None)
    except ValueError:  # not the main thread: uvicorn installs no handler either
        await server.serve()
        return
    try:
        await server.serve()
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    router: APIRouter,
    run_workers: bool = True,
) -> FastAPI:
    """The HTTP app every service builds the same way: its workers beside the API, the
    runtime and the auth config on `app.state`, correlation ids, readable errors, probes
    and metrics."""
    from shared.http import install_common, refuse_control_characters_in_parameters
    from shared.metrics import service_metrics

    workers = tuple(runtime.workers()) if run_workers else ()
    app = FastAPI(
        title=title,
        version="1.0.0",
        description=description,
        lifespan=workers_lifespan(workers),
        dependencies=[Depends(refuse_control_characters_in_parameters)],
        telemetry=fastapi_telemetry_options(),
    )
    app.state.runtime = runtime
    app.state.auth = runtime.auth
    metrics = service_metrics(
        runtime.service,
        consumers=[w for w in runtime.workers() if isinstance(w, ConsumerRunner)],
        relay=runtime.relay,
        engines=runtime.engines(),
    )
    install_common(app, ready_check=readiness_of(runtime, workers), metrics=metrics)
    app.include_router(router)
    return app


def readiness_of(
    runtime: ServiceRuntime, workers: Sequence[Worker]
) -> Callable[[], Awaitable[dict[str, ReadinessPart]]]:
    """`/readyz`'s parts: the database and the broker answer; each consumer running here
    polls and is not paused on an outage; the relay's state (leader or standby), shown
    but never failing — requests are accepted while it cannot publish, that is what the
    outbox is for, and the broker's part already says when Kafka is away."""

    async def readiness() -> dict[str, ReadinessPart]:
        from shared.db import ping

        parts: dict[str, ReadinessPart] = {}
        try:
            # Bounded: a database host that drops packets would hold the probe for the
            # driver's connect timeout (a minute), past any probe's own.
            async with asyncio.timeout(READINESS_TIMEOUT_S), runtime.session_factory() as session:
                await ping(session)
            parts["database"] = ReadinessPart(True)
        except TimeoutError:
            parts["database"] = ReadinessPart(False, f"no answer within {READINESS_TIMEOUT_S:g} s")
        except Exception as exc:
            parts["database"] = ReadinessPart(False, f"unreachable ({type(exc).__name__})")
        problem = await runtime.broker_probe.problem()
        parts["broker"] = ReadinessPart(problem is None, problem or "ok")
        for worker in workers:
            if isinstance(worker, OutboxRelay):
                state = "leader" if worker.lease.held else "standby"
                if worker.problem:
                    state += ", failing: its rows stay unsent and are retried"
                parts["relay"] = ReadinessPart(True, state)
            elif isinstance(worker, ConsumerRunner):
                # Paused on an outage (until its next message succeeds), or not polling.
                why = worker.problem or worker.stuck
                parts[f"consumer {worker.name}"] = ReadinessPart(why is None, why or "polling")
        return parts

    return readiness


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session for one request (FastAPI dependency)."""
    runtime: ServiceRuntime = request.app.state.runtime
    async with runtime.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(request_session)]


async def runtime_clock(request: Request) -> Clock:
    """The service's clock, for a route that needs today's date (FastAPI dependency)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime.clock


ClockDep = Annotated[Clock, Depends(runtime_clock)]
