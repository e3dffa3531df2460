"""The fault suite: real processes on real Kafka and PostgreSQL, killed, stopped and
starved for real. For each fault, the accepted inputs, the events and the effects are
counted (see `harness`), and the suite asserts zero lost and zero duplicated effects and
the expected dead-letter entries. The table of results is printed at the end of the run
(`bench-results/faults.md`) and copied into docs/reliability.md.

Run alone: `make faults`; longer: `make soak` (FAULT_SCALE, FAULT_ROUNDS).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.events.catalogue import ALL_TOPICS, PROJECTS, SURVEYS, Topic
from tests.faults.conftest import Cluster
from tests.faults.harness import (
    Census,
    Stack,
    Workload,
    census,
    converged,
    record,
    until,
)
from tests.support.kafka import Message, lag, read_all

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

SCALE = max(1, int(os.environ.get("FAULT_SCALE", "1")))
CORE = ("site_registry", "campaigns", "detection")
EVERYTHING = (*CORE, "funding")


def burst(n: int) -> int:
    return n * SCALE


def assert_clean(c: Census, *, dead_letters: int = 0) -> None:
    assert c.lost == [], f"{len(c.lost)} accepted leads have no project"
    assert c.duplicated_reports == 0, "a survey revision was applied twice"
    assert sum(c.dead_letters.values()) == dead_letters, c.dlq_reasons[:10]
    assert c.personal_data_on_topics == 0


async def ready(stack: Stack, *names: str) -> None:
    for name in names:
        for proc in stack.processes[name]:
            await proc.wait_healthy()


async def detected_projects(stack: Stack) -> int:
    conn = await asyncpg.connect(stack.database_urls["detection"].replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM projects"))
    finally:
        await conn.close()


async def funding_matches(stack: Stack) -> int:
    conn = await asyncpg.connect(stack.database_urls["funding"].replace("+asyncpg", ""))
    try:
        return int(await conn.fetchval("SELECT count(*) FROM matches WHERE eligible"))
    finally:
        await conn.close()


async def committed(stack: Stack, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


async def produce(stack: Stack, records: Iterable[tuple[str, bytes | None, bytes | None, list]]):
    """Send raw records; returns {(topic, partition): highest offset written}."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    written: dict[tuple[str, int], int] = {}
    try:
        for topic, key, value, headers in records:
            meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
            spot = (topic, meta.partition)
            written[spot] = max(written.get(spot, -1), meta.offset)
    finally:
        await producer.stop()
    return written


async def consumed_past(stack: Stack, group: str, written: dict[tuple[str, int], int]) -> None:
    """Wait until `group` committed past every offset in `written`."""

    async def probe() -> dict[TopicPartition, int]:
        return await committed(stack, group)

    def done(offsets: dict[TopicPartition, int]) -> bool:
        return all(
            offsets.get(TopicPartition(topic, partition), -1) > offset
            for (topic, partition), offset in written.items()
        )

    await until(probe, done, timeout=90, what=f"{group} past the re-sent records")


def headers_of(m: Message, **change: str) -> list[tuple[str, bytes]]:
    return [(k, v.encode()) for k, v in {**m.headers, **change}.items()]


def per_key_in_order(messages: list[Message]) -> bool:
    """Each site's survey revisions on the topic in order (duplicates aside)."""
    seen: dict[bytes | None, list[int]] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        if m.headers.get("ce_type", "").endswith("survey_submitted.v1") and m.value:
            seen.setdefault(m.key, []).append(json.loads(m.value)["revision"])
    return all(revs == sorted(revs) for revs in seen.values())


async def launched(make_stack: Any, names: tuple[str, ...] = CORE, **kw: Any) -> tuple:
    stack: Stack = await make_stack(**kw)
    await stack.start(names)
    workload = Workload(stack, seed=hash(stack.prefix) % 10_000)
    await workload.launch()
    return stack, workload


# --- the faults --------------------------------------------------------------------------


async def test_a_consumer_killed_with_sigkill_mid_batch(make_stack: Any) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    sending = asyncio.create_task(workload.burst(burst(30)))
    await until(lambda: detected_projects(stack), lambda n: n >= 3, what="detection at work")
    stack.first("detection").kill()  # mid-batch: some effects committed, offsets not
    await sending
    stack.first("detection").start()
    await ready(stack, "detection")
    c = await converged(stack, workload)
    assert_clean(c)
    record("detection SIGKILLed mid-batch, restarted", workload, c, started=started)


async def test_a_publisher_killed_with_sigkill_mid_burst(make_stack: Any) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    sending = asyncio.create_task(workload.burst(burst(30), concurrency=6))
    await until(
        lambda: asyncio.sleep(0, workload.accepted.revisions), lambda n: n >= 8, what="8 accepted"
    )
    stack.first("campaigns").kill()  # requests in flight; rows in the outbox, unsent
    await asyncio.sleep(1)  # the phones keep retrying meanwhile
    stack.first("campaigns").start()
    await sending  # every survey retried with its Idempotency-Key until answered
    c = await converged(stack, workload)
    assert_clean(c)
    assert c.survey_events == workload.accepted.revisions  # one event per accepted survey
    record(
        "campaigns SIGKILLed mid-burst (HTTP + relay), restarted",
        workload,
        c,
        started=started,
        note=f"{workload.accepted.unavailable} requests retried by the clients",
    )


async def test_the_broker_stopped_and_restarted(make_stack: Any, cluster: Cluster) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    await workload.burst(burst(10))
    cluster.kafka.stop()
    try:
        # The APIs still accept: the outbox keeps the events until the broker is back.
        await workload.burst(burst(10))
        await asyncio.sleep(15)  # the outage itself, long enough for every client to notice
    finally:
        cluster.kafka.start()
    await workload.burst(burst(5))
    c = await converged(stack, workload, timeout=180)
    assert_clean(c)
    errors = sum(
        len(p.log_lines('"level": "error"')) for ps in stack.processes.values() for p in ps
    )
    record(
        "broker stopped ~20 s during a burst, restarted",
        workload,
        c,
        started=started,
        note=f"{errors} error lines in all services' logs during the outage",
    )


async def test_the_relay_killed_between_publishing_and_marking_sent(make_stack: Any) -> None:
    """The relay's leader dies by SIGKILL mid-batch (the broker committed it, the rows are
    not marked sent); the other campaigns process takes over once the lease expired and
    re-publishes the batch: nothing lost, each site's revisions still in order."""
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    campaigns = stack.first("campaigns")
    await caught_up(stack, "campaigns")  # its next batch is then the burst's
    campaigns.stop()
    # Its next process dies by SIGKILL right after the broker committed its first batch,
    # before the rows are marked sent: the standby re-publishes them.
    campaigns.env["CAMPAIGNS_CHAOS_KILL_AFTER_PUBLISH"] = "1"
    campaigns.start()
    await campaigns.wait_healthy()
    assert campaigns.proc is not None
    leader_pid = campaigns.proc.pid
    await until(
        lambda: lease_holder_pid(stack, "campaigns"),
        lambda pid: pid == leader_pid,
        what="the chaos process leading",
    )
    standby = stack.add("campaigns")
    await standby.wait_healthy()
    assert not standby.log_lines("outbox relay leads")
    # Resubmissions too (revision 2 of the first sites, published after the takeover):
    # the re-published batch must come before them on each site's partition.
    sending = asyncio.create_task(workload.burst(burst(15), base=standby.url, resubmit=4))
    await until(lambda: asyncio.sleep(0, campaigns.proc.poll()), lambda rc: rc is not None)
    killed_at, killed_wall = time.monotonic(), time.time()
    assert campaigns.proc.returncode == -signal.SIGKILL
    leads = await until(
        lambda: asyncio.sleep(0, standby.log_lines("outbox relay leads")),
        timeout=30,
        interval=0.1,
        what="the standby taking over",
    )
    takeover = logged_at(leads[0]) - killed_wall
    ttl = float(standby.env["CAMPAIGNS_RELAY_LEASE_TTL_S"])
    assert takeover < ttl + 3, takeover  # the expiry, then one poll of the standby
    await sending
    c = await converged(stack, workload)
    assert_clean(c)
    assert c.survey_messages > c.survey_events  # the batch really was published twice
    assert c.survey_events == workload.accepted.revisions
    assert per_key_in_order(await read_all(stack.bootstrap, SURVEYS.physical(stack.prefix)))
    del campaigns.env["CAMPAIGNS_CHAOS_KILL_AFTER_PUBLISH"]
    record(
        "relay leader SIGKILLed after the broker's commit, before marking sent; standby took over",
        workload,
        c,
        started=started,
        note=(
            f"standby led {takeover:.1f} s after the kill (lease TTL {ttl:.0f} s);"
            f" {c.survey_messages - c.survey_events} survey events published twice;"
            f" per-site order kept ({time.monotonic() - killed_at:.0f} s to converge)"
        ),
    )


async def test_the_same_events_twice_and_out_of_order(make_stack: Any) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack, EVERYTHING)
    await workload.burst(burst(15), resubmit=3)
    await workload.exogenous(2)
    before = await converged(stack, workload)
    # Qualified projects are matched by funding: its effects are counted too.
    async with httpx.AsyncClient(timeout=15) as client:
        listed = await client.get(
            f"{stack.url('detection')}/projects", params={"limit": 8}, headers=stack.cell
        )
        for project in listed.json()["items"]:
            resp = await client.post(
                f"{stack.url('detection')}/projects/{project['id']}/qualify",
                json={},
                headers=stack.cell,
            )
            assert resp.status_code == 200, resp.text
    qualified = len(listed.json()["items"])

    async def qualified_events() -> int:
        messages = await read_all(stack.bootstrap, PROJECTS.physical(stack.prefix))
        return sum(m.headers.get("ce_type", "").endswith("qualified.v1") for m in messages)

    await until(qualified_events, lambda n: n >= qualified, what="the qualifications published")
    await until(
        lambda: lag(
            stack.bootstrap, f"{stack.prefix}funding.main", [PROJECTS.physical(stack.prefix)]
        ),
        lambda n: n == 0,
        what="funding caught up",
    )
    matches_before = await funding_matches(stack)
    assert matches_before > 0
    surveys = await read_all(stack.bootstrap, SURVEYS.physical(stack.prefix))
    projects = await read_all(stack.bootstrap, PROJECTS.physical(stack.prefix))
    again: list[tuple[str, bytes | None, bytes | None, list]] = []
    for m in reversed(surveys):  # the same ids, newest first
        again.append((m.topic, m.key, m.value, headers_of(m)))
    for m in surveys[::2]:  # the same facts under new ids (a hand re-send)
        again.append((m.topic, m.key, m.value, headers_of(m, ce_id=str(uuid.uuid4()))))
    for m in reversed(projects):
        again.append((m.topic, m.key, m.value, headers_of(m)))
    written = await produce(stack, again)
    p = stack.prefix
    for group, topics in (
        (f"{p}detection.main", {SURVEYS.physical(p)}),
        (f"{p}detection.ledger", {PROJECTS.physical(p)}),
        (f"{p}funding.main", {PROJECTS.physical(p)}),
    ):
        await consumed_past(stack, group, {k: v for k, v in written.items() if k[0] in topics})
    after = await census(stack, workload)
    assert_clean(after)
    assert after.projects == before.projects
    assert await funding_matches(stack) == matches_before
    assert after.ledger_detected == before.ledger_detected == workload.accepted.jobs
    async with httpx.AsyncClient(timeout=15) as client:
        # Funding kept one match set per project: no proposal was made twice.
        feed = await read_all(stack.bootstrap, f"{p}rebond.funding.funder_feed.v1")
        proposals = [m for m in feed if m.headers.get("ce_type", "").endswith("proposed.v1")]
        keys = [
            (json.loads(m.value)["project_id"], json.loads(m.value)["scheme_id"]) for m in proposals
        ]
        assert len(keys) == len(set(keys))
        resp = await client.get(f"{stack.url('detection')}/projects/stats", headers=stack.cell)
        assert resp.json()["projects"] == before.projects
    record(
        "every survey and project event re-delivered, reversed; half again under new ids",
        workload,
        after,
        started=started,
        note=f"{len(again)} records re-sent; effects unchanged",
    )


def _poison(topic: str, partition: int, n: int) -> list[tuple[str, int, bytes, bytes, list]]:
    from shared.events.envelope import Envelope
    from shared.events.examples import EXAMPLES

    sample = next(iter(EXAMPLES.values()))
    good = Envelope.new(sample, source="faults")
    ce = dict((k, v.decode()) for k, v in good.headers())
    key = f"poison-{partition}-{n}".encode()
    return [
        # not JSON, under valid CloudEvents headers
        (topic, partition, key, b"{not json", [(k, v.encode()) for k, v in ce.items()]),
        # no CloudEvents headers at all
        (topic, partition, key, b'{"hello": "world"}', []),
        # JSON that is not the payload its type names
        (topic, partition, key, b'{"site_id": 3}', [(k, v.encode()) for k, v in ce.items()]),
    ]


async def test_a_poison_message_on_every_partition_of_every_consumed_topic(
    make_stack: Any,
) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack, EVERYTHING)
    subscribed = _subscriptions(stack.prefix)
    poison = []
    expected = 0
    for topic, groups in subscribed.items():
        for partition in range(topic.partitions):
            batch = _poison(topic.physical(stack.prefix), partition, 0)
            poison += batch
            expected += len(batch) * len(groups)
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap)
    await producer.start()
    try:
        for topic_name, partition, key, value, headers in poison:
            await producer.send_and_wait(
                topic_name, value, key=key, headers=headers, partition=partition
            )
        # A type of the owner's namespace this release does not know: skipped, not poison.
        _, _, key, _, headers = _poison(SURVEYS.physical(stack.prefix), 0, 1)[0]
        await producer.send_and_wait(
            SURVEYS.physical(stack.prefix),
            b"{}",
            key=key,
            headers=[
                (k, b"rebond.campaigns.survey_withdrawn.v1" if k == "ce_type" else v)
                for k, v in headers
            ],
        )
    finally:
        await producer.stop()
    await workload.burst(burst(15))
    c = await converged(stack, workload)

    async def dead() -> int:
        return sum((await census(stack, workload)).dead_letters.values())

    await until(dead, lambda n: n >= expected, timeout=90, what="every poison dead-lettered")
    c = await census(stack, workload)
    assert_clean(c, dead_letters=expected)
    record(
        "3 kinds of poison on every partition of every consumed topic",
        workload,
        c,
        started=started,
        expected_dead_letters=expected,
        note=f"{len(poison)} poison records × the groups reading each topic",
    )


def _subscriptions(prefix: str) -> dict[Topic, list[str]]:
    """Which of our consumer groups read each topic, from the services' own wiring."""
    from services.campaigns.bootstrap import bootstrap as campaigns
    from services.campaigns.settings import CampaignsSettings
    from services.detection.bootstrap import bootstrap as detection
    from services.detection.settings import DetectionSettings
    from services.funding.bootstrap import bootstrap as funding
    from services.funding.settings import FundingSettings

    out: dict[Topic, list[str]] = {}
    for make, settings in (
        (campaigns, CampaignsSettings),
        (detection, DetectionSettings),
        (funding, FundingSettings),
    ):
        svc = make(
            settings(
                environment="test",
                jwt_secret="fault-suite-secret-of-at-least-32-chars",
                kafka_topic_prefix=prefix,
                database_url="sqlite+aiosqlite://",
            )
        )
        for worker in svc.workers():
            for topic in getattr(worker, "topics", {}).values():
                out.setdefault(topic, []).append(worker.name)
    assert {t.name for t in out} == {t.name for t in ALL_TOPICS if t.owner != "campaigns"} | {
        SURVEYS.name
    }
    return out


async def test_a_consumer_stopped_longer_than_its_poll_interval(make_stack: Any) -> None:
    started = time.monotonic()
    quick = {
        "DETECTION_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "DETECTION_CONSUMER_MAX_POLL_INTERVAL_MS": "8000",
    }
    stack, workload = await launched(make_stack, detection=quick)
    second = stack.add("detection")  # a group of two: the other takes over
    await second.wait_healthy()
    sending = asyncio.create_task(workload.burst(burst(30), concurrency=2))
    await until(lambda: detected_projects(stack), lambda n: n >= 3)
    stopped = stack.first("detection")
    stopped.signal(signal.SIGSTOP)
    await asyncio.sleep(15)  # past the session timeout and the poll interval
    stopped.signal(signal.SIGCONT)
    await sending
    c = await converged(stack, workload)
    assert_clean(c)
    record(
        "one of two detection processes SIGSTOPped 15 s (> poll interval 8 s)",
        workload,
        c,
        started=started,
    )


async def test_one_database_down_15_s_during_a_burst(make_stack: Any, cluster: Cluster) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack, on_aside=("detection",))
    sending = asyncio.create_task(workload.burst(burst(30), concurrency=2))
    await until(lambda: detected_projects(stack), lambda n: n >= 3)
    cluster.aside.stop()
    down_at = time.monotonic()
    answers: list[tuple[int, str | None]] = []
    try:
        async with httpx.AsyncClient(timeout=10) as client:

            async def probe() -> tuple[int, str | None]:
                resp = await client.get(f"{stack.url('detection')}/projects", headers=stack.cell)
                return resp.status_code, resp.headers.get("Retry-After")

            answers.append(await until(probe, lambda a: a[0] == 503, timeout=20))
            ready_resp = await client.get(f"{stack.url('detection')}/readyz")
            answers.append((ready_resp.status_code, ready_resp.headers.get("Retry-After")))
        await asyncio.sleep(max(0.0, 15 - (time.monotonic() - down_at)))
    finally:
        cluster.aside.start()
    await sending
    c = await converged(stack, workload, timeout=180)
    assert_clean(c)
    assert answers[0] == (503, "5") and answers[1][0] == 503
    record(
        "detection's database down 15 s during a burst",
        workload,
        c,
        started=started,
        note="API 503 + Retry-After, /readyz 503 meanwhile; no dead letter",
    )


async def test_the_database_restarted(make_stack: Any, cluster: Cluster) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    sending = asyncio.create_task(workload.burst(burst(20), concurrency=2))
    await until(lambda: detected_projects(stack), lambda n: n >= 3)
    cluster.postgres.stop()
    cluster.postgres.start()
    await sending
    c = await converged(stack, workload, timeout=180)
    assert_clean(c)
    record("PostgreSQL (every service's) restarted mid-burst", workload, c, started=started)


async def test_two_processes_of_one_service_through_a_postgres_restart(
    make_stack: Any, cluster: Cluster
) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    twin = stack.add("campaigns")
    await twin.wait_healthy()
    bases = [p.url for p in stack.processes["campaigns"]]
    sending = asyncio.gather(
        workload.burst(burst(10), base=bases[0], resubmit=3),
        workload.burst(burst(10), base=bases[1]),
    )
    await until(lambda: detected_projects(stack), lambda n: n >= 3)
    cluster.postgres.stop()
    cluster.postgres.start()
    await sending
    await workload.burst(burst(6), base=bases[1], resubmit=6)
    c = await converged(stack, workload, timeout=180)
    assert_clean(c)
    surveys = await read_all(stack.bootstrap, SURVEYS.physical(stack.prefix))
    assert per_key_in_order(surveys)
    leads = sum(len(p.log_lines("outbox relay leads")) for p in stack.processes["campaigns"])
    record(
        "two campaigns processes through a PostgreSQL restart",
        workload,
        c,
        started=started,
        note=f"per-site order kept; {leads} leadership start(s) in the two logs",
    )


async def test_a_hung_relay_holder_is_replaced(make_stack: Any) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    twin = stack.add("campaigns")
    await twin.wait_healthy()
    conn = await asyncpg.connect(stack.database_urls["campaigns"].replace("+asyncpg", ""))
    try:
        holder = await conn.fetchval("SELECT holder FROM relay_leases")
    finally:
        await conn.close()
    pid = int(holder.split(":")[-2])  # host:pid:random
    hung = next(p for p in stack.processes["campaigns"] if p.proc and p.proc.pid == pid)
    other = next(p for p in stack.processes["campaigns"] if p is not hung)
    hung.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    await workload.burst(burst(10), base=other.url)
    events = await until(
        lambda: read_all(stack.bootstrap, SURVEYS.physical(stack.prefix)),
        lambda ms: len(ms) >= burst(10),
        timeout=60,
        what="the standby publishing",
    )
    takeover = time.monotonic() - stopped_at
    hung.signal(signal.SIGCONT)
    await workload.burst(burst(5), base=hung.url, resubmit=5)
    c = await converged(stack, workload)
    assert_clean(c)
    assert per_key_in_order(events)
    assert per_key_in_order(await read_all(stack.bootstrap, SURVEYS.physical(stack.prefix)))
    await until(
        lambda: asyncio.sleep(0, len(hung.log_lines("lost its lease"))),
        lambda n: n >= 1,
        what="the woken holder noticing it lost the lease",
    )
    record(
        "the relay holder SIGSTOPped (hung), then woken",
        workload,
        c,
        started=started,
        note=f"standby published {takeover:.1f} s after the hang (lease TTL 4 s)",
    )


# --- replicas and shutdown ---------------------------------------------------------------


async def group_members(stack: Stack, group: str) -> dict[str, set[TopicPartition]]:
    """The partitions each member of a consumer group holds (by member id), as the broker
    assigned them."""
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members = {}
    for response in responses:
        for described in response.to_object()["groups"]:
            for member in described["members"]:
                raw = member["member_assignment"]
                assignment = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
                members[member["member_id"]] = set(assignment.partitions()) if assignment else set()
    return members


async def split_between_two(stack: Stack, service: str) -> dict[str, list[set[TopicPartition]]]:
    """Wait until every consumer group of `service` has two members, each holding at
    least one partition of the group's topics (and all of them between the two)."""
    ours = _groups_of(stack, service)
    wanted = {g: _partitions_read_by(stack.prefix, g) for g in ours}

    async def probe() -> dict[str, list[set[TopicPartition]]]:
        return {g: list((await group_members(stack, g)).values()) for g in ours}

    def split(found: dict[str, list[set[TopicPartition]]]) -> bool:
        return all(
            len(members) == 2
            and all(members)
            and set().union(*members) == wanted[g]
            and not members[0] & members[1]
            for g, members in found.items()
        )

    return await until(probe, split, timeout=45, what=f"{service}'s groups split in two")


async def caught_up(stack: Stack, service: str) -> None:
    """Wait until every consumer group of `service` has committed all it reads (the demo's
    sites, the launch): what a test then counts is its own burst's doing."""
    subscribed = _subscriptions(stack.prefix)
    for group in _groups_of(stack, service):
        topics = [t.physical(stack.prefix) for t, gs in subscribed.items() if group in gs]
        await until(
            lambda group=group, topics=topics: lag(stack.bootstrap, group, topics),
            lambda n: n == 0,
            timeout=60,
            what=f"{group} caught up",
        )


def _groups_of(stack: Stack, service: str) -> list[str]:
    groups = [g for ws in _subscriptions(stack.prefix).values() for g in ws]
    ours = sorted({g for g in groups if g.startswith(f"{stack.prefix}{service}.")})
    assert ours, f"{service} has no consumer group"
    return ours


def _partitions_read_by(prefix: str, group: str) -> set[TopicPartition]:
    return {
        TopicPartition(topic.physical(prefix), p)
        for topic, groups in _subscriptions(prefix).items()
        if group in groups
        for p in range(topic.partitions)
    }


async def db_value(stack: Stack, service: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(stack.database_urls[service].replace("+asyncpg", ""))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def lease_holder_pid(stack: Stack, service: str) -> int | None:
    holder = await db_value(
        stack,
        service,
        "SELECT holder FROM relay_leases WHERE expires_at > extract(epoch from now())",
    )
    return int(holder.split(":")[-2]) if holder else None  # host:pid:random


def logged_at(line: dict[str, Any]) -> float:
    """A JSON log line's wall-clock time (epoch seconds)."""
    return datetime.fromisoformat(line["timestamp"]).timestamp()


async def test_two_detection_processes_split_the_partitions_and_double_nothing(
    make_stack: Any,
) -> None:
    started = time.monotonic()
    stack, workload = await launched(make_stack)
    await caught_up(stack, "detection")  # the demo's sites: a rebalance mid-fetch re-reads
    twin = stack.add("detection")
    await twin.wait_healthy()
    split = await split_between_two(stack, "detection")
    first, second = stack.processes["detection"]
    await workload.burst(burst(20), concurrency=4)
    # HTTP is stateless: either process takes the exogenous projects, both answer alike.
    await workload.exogenous(1, base=first.url)
    await workload.exogenous(1, base=second.url)
    c = await converged(stack, workload)
    assert_clean(c)

    async def unsent() -> int:
        return int(
            await db_value(
                stack, "detection", "SELECT count(*) FROM outbox_events WHERE sent_at IS NULL"
            )
        )

    await until(unsent, lambda n: n == 0, what="detection's outbox drained")
    outbox = int(
        await db_value(
            stack, "detection", "SELECT count(*) FROM outbox_events WHERE topic = $1", PROJECTS.name
        )
    )
    published = [
        m
        for m in await read_all(stack.bootstrap, PROJECTS.physical(stack.prefix))
        if m.headers.get("ce_source") == "detection"
    ]
    ids = [m.headers["ce_id"] for m in published]
    assert len(ids) == len(set(ids)), "an event id published twice on the projects topic"
    assert len(ids) == outbox, (len(ids), outbox)  # every outbox row published, once
    leads = int(await db_value(stack, "detection", "SELECT count(*) FROM project_leads"))
    assert leads == len(workload.accepted.leads)
    handled = int(
        await db_value(
            stack,
            "detection",
            "SELECT count(*) FROM inbox_messages WHERE consumer = $1 AND topic = $2",
            f"{stack.prefix}detection.main",
            SURVEYS.name,
        )
    )
    assert handled == c.survey_events == workload.accepted.revisions
    assert c.ledger_detected == workload.accepted.jobs
    async with httpx.AsyncClient(timeout=15) as client:
        ledgers = [
            (
                await client.get(f"{p.url}/shocks/{workload.shock_id}/ledger", headers=stack.cell)
            ).json()["total"]
            for p in (first, second)
        ]
    assert ledgers[0] == ledgers[1]
    for p in (first, second):  # nothing was handled twice, by either process
        assert p.log_lines("duplicate event ignored") == [], p.name
    shares = {g.removeprefix(stack.prefix): [len(m) for m in ms] for g, ms in split.items()}
    record(
        "two detection processes share the work (no fault)",
        workload,
        c,
        started=started,
        note=f"partitions per member {shares}; {len(ids)} project events, each once",
    )


async def test_a_process_sigtermed_mid_burst_hands_over_at_once(make_stack: Any) -> None:
    started = time.monotonic()
    ttl = 20.0  # a standby that waited for the expiry would publish only after this
    stack, workload = await launched(
        make_stack, detection={"DETECTION_RELAY_LEASE_TTL_S": str(ttl)}
    )
    await caught_up(stack, "detection")
    twin = stack.add("detection")
    await twin.wait_healthy()
    await split_between_two(stack, "detection")
    groups = _groups_of(stack, "detection")
    leader_pid = await until(lambda: lease_holder_pid(stack, "detection"), what="a relay leader")
    leader = next(p for p in stack.processes["detection"] if p.proc and p.proc.pid == leader_pid)
    standby = next(p for p in stack.processes["detection"] if p is not leader)
    sending = asyncio.create_task(workload.burst(burst(30), concurrency=4))
    await until(lambda: detected_projects(stack), lambda n: n >= 5, what="detection at work")
    assert leader.proc is not None
    members_before = {g: await group_members(stack, g) for g in groups}
    signalled_at, signalled_wall = time.monotonic(), time.time()
    leader.signal(signal.SIGTERM)
    rc = await until(
        lambda: asyncio.sleep(0, leader.proc.poll() if leader.proc else None),
        lambda code: code is not None,
        timeout=35,
        interval=0.05,
        what="the SIGTERMed process exiting",
    )
    exited_in = time.monotonic() - signalled_at
    assert rc == 0, leader.tail()
    assert exited_in < 30, exited_in  # Kubernetes' default termination grace period
    assert leader.log_lines("outbox relay released its lease"), leader.tail()
    # It left its groups as it stopped: the standby holds every partition well before
    # the session timeout (10 s) would have given them to it.
    wanted = {g: _partitions_read_by(stack.prefix, g) for g in groups}

    async def alone() -> dict[str, dict[str, set[TopicPartition]]]:
        return {g: await group_members(stack, g) for g in groups}

    members_after = await until(
        alone,
        lambda found: all(list(ms.values()) == [wanted[g]] for g, ms in found.items()),
        timeout=30,
        what="the standby holding every partition",
    )
    regrouped_in = time.monotonic() - signalled_at
    # The leader's partitions: those of the member that is gone (the standby keeps its id).
    leader_held: set[tuple[str, int]] = set()
    for g in groups:
        (standby_member,) = members_after[g]
        assert standby_member in members_before[g], "the group changed members meanwhile"
        for member, held in members_before[g].items():
            if member != standby_member:
                leader_held |= {(tp.topic, tp.partition) for tp in held}
    assert leader_held
    leads = await until(
        lambda: asyncio.sleep(0, standby.log_lines("outbox relay leads")),
        timeout=ttl,
        what="the standby leading",
    )
    handover = logged_at(leads[-1]) - signalled_wall
    assert handover < ttl / 4, handover  # released, not expired
    await sending
    # The census asks the first process for the ledger: the one still running.
    stack.processes["detection"] = [standby, leader]
    c = await converged(stack, workload)
    assert_clean(c)
    # Its offsets were committed before it left: the standby re-handled nothing of what
    # the leader did on its partitions. (On its own partitions, the rebalance may make
    # the standby read again what it was handling when its partitions were revoked: the
    # inbox skips those.)
    again = standby.log_lines("duplicate event ignored")
    redone = [d for d in again if (d.get("topic"), d.get("partition")) in leader_held]
    assert redone == [], redone[:3]
    published = [
        m.headers["ce_id"]
        for m in await read_all(stack.bootstrap, PROJECTS.physical(stack.prefix))
        if m.headers.get("ce_source") == "detection"
    ]
    assert len(published) == len(set(published)), "the batch in hand was published twice"
    record(
        "the relay leader of two detection processes SIGTERMed mid-burst",
        workload,
        c,
        started=started,
        note=(
            f"exit 0 in {exited_in:.1f} s; standby led {handover:.1f} s after the"
            f" SIGTERM (lease TTL {ttl:.0f} s), held every partition after"
            f" {regrouped_in:.1f} s; none of its work re-handled ({len(again)} of the"
            " standby's own re-read after the rebalance)"
        ),
    )
