"""The ledger's kept counts (issue 13) equal the ledger recomputed from the projection's
rows, on the real database of each backend: random project life cycles (seeded, so a
failure replays), delivered through the ledger consumer's own path (decode, inbox,
handler, commit) by two concurrent "replicas" (projects split by partition), with moves
between stages, origin and territory changes, look-alike flags, merges, abandonments,
shocks declared after their projects, and redeliveries (same id, or the same fact under
a new id). Then the rebuild's recount gives the very same counters.

No broker: `ConsumerRunner.redrive` is the consumer's transaction without the poll."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.detection.adapters.ledger_projection import stored_counts
from services.detection.bootstrap import Detection, bootstrap
from services.detection.domain.ledger import Counts, Shock
from services.detection.domain.stages import TRANSITIONS, Stage
from services.detection.entrypoints.schemas import LedgerOut
from services.detection.service_layer import views
from services.detection.settings import DetectionSettings
from shared.auth import Principal, Role
from shared.errors import NotFound
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.catalogue import PROJECTS, SITES
from shared.events.envelope import Envelope, EventPayload
from shared.messaging.consumer import Outcome

pytestmark = pytest.mark.integration

SECRET = "integration-tests-secret-of-at-least-32-chars"
TA, TB, TC = "ti-test-a", "ti-test-b", "ti-test-c"  # TC: no shock counts its projects


@pytest.fixture
async def detection(database_url: str) -> AsyncIterator[Detection]:
    svc = bootstrap(
        DetectionSettings(
            environment="test",
            database_url=database_url,
            kafka_bootstrap_servers="127.0.0.1:9",  # never connected: no poll, no relay
            kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            jwt_secret=SECRET,
        )
    )
    await svc.migrate()
    yield svc
    await svc.aclose()


async def deliver(svc: Detection, env: Envelope[Any]) -> Outcome:
    """One message through the ledger consumer's transaction; a transient failure (two
    writers on SQLite, a lock) is retried, as the consumer does."""
    topic = SITES if isinstance(env.payload, sr.ClosureAnnounced) else PROJECTS
    for _ in range(50):
        outcome, why = await svc.ledger_consumer.redrive(
            env.headers(),
            env.value(),
            topic=topic.physical(svc.settings.kafka_topic_prefix),
            partition=0,
            offset=0,
        )
        if outcome is not Outcome.TRANSIENT:
            assert outcome in (Outcome.PROCESSED, Outcome.DUPLICATE), why
            return outcome
    raise AssertionError(f"still transient after 50 attempts: {why}")


def closure(rng: random.Random, territory: str, announced_on: date) -> sr.ClosureAnnounced:
    return sr.ClosureAnnounced(
        shock_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        site_id=f"{rng.randrange(10**13, 10**14)}",
        siren=f"{rng.randrange(10**8, 10**9)}",
        site_name="GENERATED closing site",
        naf_code="22.11Z",
        commune_insee="62119",
        territory_ids=[territory],
        announced_on=announced_on,
        planned_closure_on=None,
        jobs_lost=rng.choice((1, 350, 900)),
        declared_at=datetime(announced_on.year, announced_on.month, announced_on.day, tzinfo=UTC),
        version=1,
    )


class Life:
    """A GENERATED project: its state and the next event of its life (random moves)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.at = datetime(2020, 6, 1, 9, tzinfo=UTC) + timedelta(days=rng.randrange(1500))
        self.version = 0
        self.final = False
        self.id = uuid.UUID(int=rng.getrandbits(128), version=4)
        self.state: dict[str, Any] = {
            "project_id": self.id,
            "territory_id": rng.choice((TA, TA, TB, TC)),
            "shock_id": None,
            "origin": rng.choice(("endogenous", "exogenous")),
            "kind": "new_line",
            "stage": "detected",
            "hidden": False,
            "jobs_planned": rng.choice((0, rng.randrange(1, 120))),
            "jobs_created": 0,
            "consent_to_share": True,
            "detected_on": self.at.date(),
        }

    def _event(self, cls: type[dt.ProjectState], **extra: Any) -> dt.ProjectState:
        self.version += 1
        self.at += timedelta(days=self.rng.randrange(0, 90), hours=self.rng.randrange(24))
        return cls(**self.state, version=self.version, occurred_at=self.at, **extra)

    def next(self, others: list[Life]) -> dt.ProjectState:
        rng, s = self.rng, self.state
        if self.version == 0:
            return self._event(dt.ProjectDetected, source="survey")
        stage = Stage(s["stage"])
        moves = sorted(TRANSITIONS[stage])
        r = rng.random()
        if r < 0.3 or not moves:
            changed = ["jobs_planned"]
            s["jobs_planned"] = max(0, s["jobs_planned"] + rng.randint(-10, 20))
            if rng.random() < 0.25:
                s["origin"] = "exogenous" if s["origin"] == "endogenous" else "endogenous"
                changed.append("origin")
            if rng.random() < 0.2:
                look_alike = rng.choice(others).id
                s["possible_duplicate_of"] = None if s.get("possible_duplicate_of") else look_alike
                changed.append("possible_duplicate_of")
            if rng.random() < 0.05:
                s["territory_id"] = rng.choice((TA, TB, TC))
                changed.append("territory_id")
            if rng.random() < 0.05:
                s["detected_on"] = s["detected_on"] + timedelta(days=rng.randint(-200, 200))
                changed.append("detected_on")
            return self._event(dt.ProjectUpdated, source="crisis_cell", changed_fields=changed)
        if r < 0.33:
            self.final = True
            s["possible_duplicate_of"] = None
            return self._event(dt.ProjectMerged, merged_into=rng.choice(others).id)
        target = rng.choice(moves)
        previous = s["stage"]
        s["stage"] = target.value
        if target is Stage.ABANDONED:
            self.final = True
            return self._event(dt.ProjectAbandoned, previous_stage=previous, reason="GENERATED")
        if target is Stage.JOBS_CREATED:
            added = rng.choice((0, rng.randrange(1, 60)))
            s["jobs_created"] += added
            created_on = self.at.date() - timedelta(days=rng.randrange(0, 400))
            return self._event(
                dt.JobsCreated, jobs_added=added, created_on=created_on, complete=False
            )
        if target is Stage.QUALIFIED and previous == "detected":
            return self._event(dt.ProjectQualified)
        return self._event(dt.ProjectStageChanged, previous_stage=previous)


async def ledgers_agree(svc: Detection, shocks: list[Shock], *, where: str) -> None:
    async with svc.session_factory() as session:
        for shock in shocks:
            for until in (None, date(2019, 1, 1), date(2022, 3, 10), date(2031, 1, 1)):
                kept = await views.shock_ledger(session, shock.shock_id, until)
                assert kept is not None
                recomputed = await views.recomputed_ledger(session, shock, until)
                assert LedgerOut.of(kept) == LedgerOut.of(recomputed), (where, shock, until)


async def kept_counts(svc: Detection, shocks: list[Shock]) -> dict[uuid.UUID, Counts]:
    async with svc.session_factory() as session:
        return {s.shock_id: (await stored_counts(session, s.shock_id)).nonzero() for s in shocks}


def shock_of(event: sr.ClosureAnnounced) -> Shock:
    territory = event.primary_territory_id
    assert territory is not None
    return Shock(event.shock_id, territory, event.announced_on, event.jobs_lost, event.site_id)


@pytest.mark.parametrize("seed", [1305, 2024])
async def test_kept_counts_equal_the_recomputed_ledger(detection: Detection, seed: int) -> None:
    rng = random.Random(seed)
    early = [closure(rng, TA, date(2021, 1, 1)), closure(rng, TB, date(2020, 9, 16))]
    late = closure(rng, TA, date(2022, 6, 15))  # declared when its projects exist
    lives = [Life(rng) for _ in range(30)]
    delivered: list[Envelope[EventPayload]] = []
    shocks: list[Shock] = []

    async def replica(envelopes: list[Envelope[EventPayload]]) -> None:
        for env in envelopes:
            await deliver(detection, env)

    for event in early:
        announced: Envelope[EventPayload] = Envelope.new(event, source="test")
        assert await deliver(detection, announced) is Outcome.PROCESSED
        shocks.append(shock_of(event))
    for round_ in range(12):
        # Two replicas, each with its partitions' projects, deliver at the same time.
        streams: tuple[list[Envelope[EventPayload]], list[Envelope[EventPayload]]] = ([], [])
        for _ in range(30):
            live = [life for life in lives if not life.final]
            if not live:
                break
            life = rng.choice(live)
            env: Envelope[EventPayload] = Envelope.new(life.next(lives), source="test")
            stream = streams[life.id.int % 2]
            stream.append(env)
            if rng.random() < 0.1:  # redelivered: the same message again
                stream.append(env)
            elif rng.random() < 0.05:  # the same fact re-sent under another id
                stream.append(Envelope.new(env.payload, source="test"))
        if round_ == 6:
            streams[0].append(Envelope.new(late, source="test"))
            shocks.append(shock_of(late))
        await asyncio.gather(replica(streams[0]), replica(streams[1]))
        delivered += streams[0] + streams[1]
        if round_ % 3 == 2:
            await ledgers_agree(detection, shocks, where=f"round {round_}")

    # An old message delivered again changes nothing.
    for env in rng.sample(delivered, 10):
        assert await deliver(detection, env) is Outcome.DUPLICATE
    assert await deliver(detection, Envelope.new(early[0], source="test")) is Outcome.DUPLICATE
    await ledgers_agree(detection, shocks, where="end")

    # The rebuild's recount from the rows gives the very counters kept event by event.
    kept = await kept_counts(detection, shocks)
    async with detection.uow() as uow:
        await uow.ledger.recount()
        await uow.commit()
    assert await kept_counts(detection, shocks) == kept
    await ledgers_agree(detection, shocks, where="after recount")

    # Something was counted in each shock's territory, and nothing of TC anywhere.
    for shock in shocks:
        assert kept[shock.shock_id].totals, shock


async def test_the_ledger_read_is_scoped_to_the_crisis_cells_territories(
    detection: Detection,
) -> None:
    rng = random.Random(13)
    event = closure(rng, TA, date(2021, 1, 1))
    await deliver(detection, Envelope.new(event, source="test"))
    mine = Principal(
        subject="cell", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({TA})
    )
    other = Principal(
        subject="cell", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({TB})
    )
    async with detection.session_factory() as session:
        seen = await views.visible_ledger(session, event.shock_id, mine, None)
        assert seen.shock.shock_id == event.shock_id and seen.total.projects == 0
        with pytest.raises(NotFound):
            await views.visible_ledger(session, event.shock_id, other, None)


async def test_the_migration_counts_the_ledger_already_projected(database_url: str) -> None:
    """A database at revision 0004 (rows, no counts) upgraded: the counts it backfills give
    the ledger recomputed from the rows."""
    from shared.migrations import upgrade

    svc = bootstrap(
        DetectionSettings(
            environment="test",
            database_url=database_url,
            kafka_bootstrap_servers="127.0.0.1:9",
            kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
            jwt_secret=SECRET,
        )
    )
    try:
        await upgrade(svc.migrations_dir, database_url, "0004")
        rng = random.Random(4)
        announcements = [closure(rng, TA, date(2021, 1, 1)), closure(rng, TA, date(2022, 6, 15))]
        events: list[EventPayload] = [*announcements]
        lives = [Life(rng) for _ in range(40)]
        for _ in range(200):
            live = [life for life in lives if not life.final]
            events.append(rng.choice(live).next(lives))
        async with svc.uow() as uow:
            await uow.ledger.write_only(events)  # what the previous release wrote
            await uow.commit()
        await upgrade(svc.migrations_dir, database_url)
        shocks = [shock_of(a) for a in announcements]
        await ledgers_agree(svc, shocks, where="after the migration")
        assert all((await kept_counts(svc, shocks)).values())
    finally:
        await svc.aclose()
