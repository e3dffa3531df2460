"""What keeps events from being lost or doubled, on the real broker and both backends:
transient failures pause instead of dead-lettering, dead letters can be re-driven once,
readers tolerate a newer release's payloads, and only the lease holder publishes.

(The fault suite, `tests/faults/`, does the same things to real processes: SIGKILL,
SIGSTOP, broker and database restarts.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import ClassVar

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from pydantic import Field

from services.detection.bootstrap import Detection
from services.site_registry.bootstrap import SiteRegistry, bootstrap
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.events import campaigns as cp
from shared.events.catalogue import SITES, SURVEYS
from shared.events.envelope import Envelope
from shared.events.examples import EXAMPLES
from shared.events.site_registry import SiteRegistered
from shared.messaging.consumer import PermanentError
from shared.messaging.redrive import redrive
from shared.messaging.tables import RelayLease
from tests.integration.conftest import registry_settings
from tests.integration.test_messaging import (
    effects,
    effects_of,
    record_effect,
    runner,
    siret_for,
    site,
    start,
    stop,
    topic,
)
from tests.support.infra import Broker
from tests.support.kafka import read_all
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


async def publish_sites(registry: SiteRegistry, *numbers: int) -> None:
    from services.site_registry.service_layer import batch_jobs

    for n in numbers:
        await batch_jobs.load_sites(registry.uow, [site(siret_for(n))], registry.refs)
    await registry.relay.publish_pending()


# --- transient is not poison -------------------------------------------------------------


async def test_an_outage_pauses_the_consumer_and_loses_nothing(effect_table: SiteRegistry) -> None:
    """The database "goes away" for a while (the handler's connection is refused, far more
    times than the retry budget): nothing is dead-lettered, the consumer says it is not
    ready, and every effect lands once when the dependency is back."""
    registry = effect_table
    down = asyncio.Event()
    down.set()
    failures = 0

    async def handler(uow: SiteRegistryUnitOfWork, env: Envelope[SiteRegistered]) -> None:
        nonlocal failures
        if down.is_set():
            failures += 1
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        await record_effect(uow, env)

    await publish_sites(registry, 30, 31, 32)
    consumer = runner(registry, handler, attempts=2)
    consumer._transient_backoff = 0.05  # keep the test fast; the rule is the same
    consumer._max_transient_backoff = 0.2
    task = start(consumer)
    try:
        await eventually(lambda: asyncio.sleep(0, failures), lambda n: n >= 6, what="retries")
        assert consumer.problem is not None and "ConnectionRefusedError" in consumer.problem
        assert consumer.stats.dead_lettered == 0  # 6 failures > 2 attempts: still not poison
        down.clear()
        await eventually(effects_of(registry), lambda e: len(e) == 3, what="all effects")
        await eventually(lambda: asyncio.sleep(0, consumer.problem), lambda p: p is None)
    finally:
        await stop(consumer, task)
    assert sorted(s for _, s in await effects(registry)) == sorted(
        siret_for(n) for n in (30, 31, 32)
    )
    dead = await read_all(
        registry.settings.kafka_bootstrap_servers,
        SITES.physical_dlq(registry.settings.kafka_topic_prefix),
    )
    assert dead == []


async def test_a_real_database_failure_is_transient(effect_table: SiteRegistry) -> None:
    """Not a stand-in exception: the unit of work's engine is pointed at a server that
    does not answer, so the failure comes from the driver itself."""
    registry = effect_table
    await publish_sites(registry, 33)
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.db import create_session_factory

    url = registry.settings.resolved_database_url()
    if registry.engine.dialect.name == "sqlite":
        # A folder that is a file: "unable to open database file", as on a lost mount.
        blocker = sa.engine.make_url(url).database + ".not-a-dir"  # type: ignore[operator]
        open(blocker, "w").close()  # noqa: ASYNC230
        broken = f"sqlite+aiosqlite:///{blocker}/no.db"
    else:
        broken = sa.engine.make_url(url).set(port=1).render_as_string(hide_password=False)
    engine = create_async_engine(broken)
    registry_uow = registry.uow
    sessions = create_session_factory(engine)

    def broken_uow() -> SiteRegistryUnitOfWork:
        return SiteRegistryUnitOfWork(sessions, source="site_registry")

    consumer = runner(registry, record_effect)
    consumer._uow_factory = broken_uow
    consumer._transient_backoff = 0.05
    consumer._max_transient_backoff = 0.2
    task = start(consumer)
    try:
        await eventually(
            lambda: asyncio.sleep(0, consumer.stats.transient_pauses), lambda n: n >= 3
        )
        assert consumer.stats.dead_lettered == 0
        consumer._uow_factory = registry_uow  # the database is back
        await eventually(effects_of(registry), lambda e: len(e) == 1, what="the effect")
    finally:
        await stop(consumer, task)
        await engine.dispose()


# --- re-drive ---------------------------------------------------------------------------


async def test_dead_letters_are_redriven_once_after_a_fix(effect_table: SiteRegistry) -> None:
    registry = effect_table
    fixed = False

    async def handler(uow: SiteRegistryUnitOfWork, env: Envelope[SiteRegistered]) -> None:
        if not fixed and env.payload.site_id == siret_for(41):
            raise PermanentError("the handler had a bug for this site")
        await record_effect(uow, env)

    await publish_sites(registry, 40, 41, 42)
    consumer = runner(registry, handler)
    task = start(consumer)
    try:
        await eventually(effects_of(registry), lambda e: len(e) == 2, what="healthy effects")
        await eventually(lambda: asyncio.sleep(0, consumer.stats.dead_lettered), lambda n: n == 1)
    finally:
        await stop(consumer, task)
    access = registry.settings.kafka_bootstrap_servers

    dry = await redrive(access, [consumer], dry_run=True)
    assert [line.outcome for line in dry.lines] == ["not run (dry run)"]
    assert "bug for this site" in dry.lines[0].detail

    still_broken = await redrive(access, [consumer])
    assert still_broken.failed == 1 and len(await effects(registry)) == 2  # nothing applied

    fixed = True
    first = await redrive(access, [consumer])
    assert [line.outcome for line in first.lines] == ["applied"]
    assert sorted(s for _, s in await effects(registry)) == [siret_for(n) for n in (40, 41, 42)]
    again = await redrive(access, [consumer])  # idempotent
    assert [line.outcome for line in again.lines] == ["already applied"]
    assert len(await effects(registry)) == 3
    other = await redrive(access, [consumer], event_ids=["not-this-one"])
    assert other.lines == []
    assert "1 applied" in first.summary()


# --- tolerant readers -------------------------------------------------------------------


class NextProjectLead(cp.ProjectLead):
    """What a later release of campaigns might write: a new optional field."""

    site_area_m2: int | None = Field(default=None, ge=0)


class NextSurveySubmitted(cp.SurveySubmitted):
    event_type: ClassVar[str] = cp.SurveySubmitted.event_type  # the same type: compatible
    projects: list[NextProjectLead]  # type: ignore[assignment]
    interviewed_in: str | None = None


async def _produce(detection: Detection, topic_name: str, envelope: Envelope) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=detection.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            topic_name, envelope.value(), key=envelope.subject.encode(), headers=envelope.headers()
        )
    finally:
        await producer.stop()


async def test_a_consumer_of_the_previous_release_reads_a_newer_payload(
    detection: Detection,
) -> None:
    """Detection is built from today's models (the previous release, for this event): it
    applies a survey carrying fields it does not know, and skips an event type of the
    topic's owner that it does not know, instead of dead-lettering either."""
    base = EXAMPLES[cp.SurveySubmitted]
    assert isinstance(base, cp.SurveySubmitted)
    newer = NextSurveySubmitted(
        **{
            **base.model_dump(exclude={"projects"}),
            "survey_id": uuid.uuid4(),
            "projects": [
                NextProjectLead(**{**p.model_dump(), "lead_id": uuid.uuid4()}, site_area_m2=900)
                for p in base.projects
            ],
        },
        interviewed_in="fr",
    )
    envelope = Envelope.new(newer, source="campaigns")
    assert b"site_area_m2" in envelope.value() and b"interviewed_in" in envelope.value()
    prefix = detection.settings.kafka_topic_prefix
    await _produce(detection, SURVEYS.physical(prefix), envelope)
    unknown = Envelope.new(base, source="campaigns")
    headers = [
        (k, b"rebond.campaigns.survey_withdrawn.v1" if k == "ce_type" else v)
        for k, v in unknown.headers()
    ]
    producer = AIOKafkaProducer(bootstrap_servers=detection.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            SURVEYS.physical(prefix), unknown.value(), key=unknown.subject.encode(), headers=headers
        )
    finally:
        await producer.stop()

    async def projects() -> list[str]:
        from sqlmodel import select

        from services.detection.adapters.orm import ProjectRow

        async with detection.session_factory() as s:
            return [str(r.site_id) for r in (await s.exec(select(ProjectRow))).all()]

    found = await eventually(projects, lambda p: len(p) == len(base.projects), what="projects")
    assert set(found) == {base.site_id}
    await eventually(lambda: asyncio.sleep(0, detection.consumer.stats.ignored), lambda n: n >= 1)
    dead = await read_all(detection.settings.kafka_bootstrap_servers, SURVEYS.physical_dlq(prefix))
    assert dead == []


# --- one publisher ----------------------------------------------------------------------


async def lease_row(registry: SiteRegistry) -> tuple[str, int]:
    async with registry.engine.connect() as conn:
        row = (
            await conn.execute(sa.select(RelayLease.holder, RelayLease.token))  # type: ignore[call-overload]
        ).one()
    return str(row[0]), int(row[1])


async def test_only_the_lease_holder_publishes_and_a_silent_one_is_replaced(
    broker: Broker, database_url: str, topic_prefix: str, registry: SiteRegistry
) -> None:
    """Two relays of one database: one leads, the other stands by. A leader that stops
    renewing (hung, or its process gone without a word) is replaced once the lease
    expires; a leader whose lease was taken stops publishing at once."""
    settings = registry_settings(broker, database_url, topic_prefix)
    settings.relay_lease_ttl_s = 1.0
    first, second = bootstrap(settings), bootstrap(settings)
    try:
        await publish_sites(first, 50)
        assert first.relay.lease.held
        assert await second.relay.publish_pending() == 0  # a standby publishes nothing
        holder, token = await lease_row(first)
        assert holder == first.relay.lease.holder

        # The leader goes silent (no renewal): after the TTL the standby takes over, with
        # a new fencing token, and its producer fences the old one's transactional id.
        from services.site_registry.service_layer import batch_jobs

        await batch_jobs.load_sites(second.uow, [site(siret_for(51))], second.refs)

        async def standby_publishes() -> int:
            return await second.relay.publish_pending()

        assert await eventually(standby_publishes, lambda n: n == 1, timeout=10) == 1
        new_holder, new_token = await lease_row(first)
        assert new_holder == second.relay.lease.holder and new_token == token + 1

        # The old leader wakes up: its next batch checks the lease first and stops.
        await batch_jobs.load_sites(first.uow, [site(siret_for(52))], first.refs)
        assert await first.relay.publish_pending() == 0
        assert not first.relay.lease.held
        assert await second.relay.publish_pending() == 1
    finally:
        for svc in (first, second):
            with contextlib.suppress(Exception):
                await svc.aclose()

    messages = await read_all(broker.bootstrap_servers, topic(registry))
    keys = [m.key.decode() for m in messages if m.key]
    assert sorted(keys) == sorted(siret_for(n) for n in (50, 51, 52))  # each once
    assert len({json.loads(m.value or b"{}")["site_id"] for m in messages}) == 3
