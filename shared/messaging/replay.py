"""Reading topics from the beginning to their current end, outside any consumer group:
how a projection is rebuilt from the events it was built from."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from shared.events.envelope import Envelope, EventPayload, MalformedEvent, decode
from shared.logging import get_logger
from shared.messaging.kafka import KafkaAccess, access_of

log = get_logger(__name__)
F = TypeVar("F")


@dataclass
class ReplayReport:
    messages: int = 0
    events: int = 0
    malformed: int = 0
    seconds: float = 0.0


async def records_to_end(
    access: KafkaAccess | str, topics: Sequence[str], *, batch_size: int = 2000
) -> AsyncGenerator[list[ConsumerRecord[bytes, bytes]], None]:
    """Every committed record of `topics`, from the beginning up to the end offsets taken
    at the start, in batches (partition order kept within a batch). No consumer group is
    joined: nothing is committed, nobody's partitions are taken."""
    consumer = AIOKafkaConsumer(
        **access_of(access).client_kwargs(),
        enable_auto_commit=False,
        max_poll_records=batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        isolation_level="read_committed",  # never an aborted relay batch
    )
    try:
        await consumer.start()
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        while remaining:
            # A fetch returns what one partition's response held (often a few records):
            # gathered up to `batch_size`, so that the handler's statements carry
            # thousands of rows instead of a round trip per handful. Records are appended
            # in fetch order: each partition's order holds.
            batches = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=batch_size - len(records)
            )
            records += [
                record
                for tp, batch in batches.items()
                for record in batch
                if record.offset < ends[tp]
            ]
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if records and (len(records) >= batch_size or not remaining):
                yield records
                records = []
    finally:
        await consumer.stop()


Fold = Callable[[list[Envelope[EventPayload]]], F]


def envelopes(batch: list[Envelope[EventPayload]]) -> list[Envelope[EventPayload]]:
    """The fold that keeps every envelope as decoded."""
    return batch


async def replay(
    access: KafkaAccess | str,
    topics: Sequence[str],
    registry: Mapping[str, type[EventPayload]],
    on_batch: Callable[[F], Awaitable[None]],
    *,
    fold: Fold[F],
    batch_size: int = 2000,
    workers: int = 0,
) -> ReplayReport:
    """Decode every message up to the end offsets taken at the start, `fold` each batch
    (partition order kept within a batch) and hand the results to `on_batch`, in the
    order of the batches. Malformed messages are counted and skipped: they already went
    to a dead-letter topic when first consumed.

    `workers` > 0 decodes and folds in that many processes (`spawn`): per message it is
    all CPU (pydantic's validation, the fold), and one process tops out far below what
    Kafka delivers. `fold` must then be a module-level function and its result
    picklable; this process only reads Kafka and runs `on_batch`."""
    started = time.perf_counter()
    report = ReplayReport()
    # Batches are decoded ahead (one in this process, `workers` + 1 in a pool) while
    # `on_batch` of the previous one runs: its statements wait on the database (another
    # process) meanwhile. Results are handed over in batch order, one `on_batch` at a
    # time, and a failure anywhere stops the replay at that batch. Memory stays bounded:
    # at most `workers` + 2 batches exist at once.
    ahead = workers + 1 if workers > 0 else 1
    decoding: deque[asyncio.Future[_Decoded[F]]] = deque()
    in_flight: asyncio.Task[None] | None = None
    pool = _pool(registry, fold, workers) if workers > 0 else None
    loop = asyncio.get_running_loop()

    async def hand_over(decoded: _Decoded[F]) -> None:
        nonlocal in_flight
        report.messages += decoded.messages
        report.malformed += decoded.messages - decoded.events
        if in_flight is not None:
            await in_flight
            in_flight = None
        if decoded.events:
            report.events += decoded.events
            in_flight = asyncio.ensure_future(on_batch(decoded.folded))

    try:
        async with contextlib.aclosing(records_to_end(access, topics, batch_size=batch_size)) as it:
            async for records in it:
                raw = [(r.headers, r.value) for r in records]
                if pool is None:
                    future: asyncio.Future[_Decoded[F]] = loop.create_future()
                    future.set_result(_decode_and_fold(raw, registry, fold))
                else:
                    future = asyncio.wrap_future(pool.submit(_in_worker, raw))
                decoding.append(future)
                while len(decoding) >= ahead:
                    await hand_over(await decoding.popleft())
        while decoding:
            await hand_over(await decoding.popleft())
        if in_flight is not None:
            await in_flight
            in_flight = None
    finally:
        # The replay failed (or is cancelled): nothing more is handed over.
        for pending in decoding:
            pending.cancel()
        if in_flight is not None:
            in_flight.cancel()
            with contextlib.suppress(BaseException):
                await in_flight
        if pool is not None:  # waited for: a worker's batch in progress ends within seconds
            pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Decoded(Generic[F]):
    folded: F
    messages: int
    events: int


RawRecord = tuple[Sequence[tuple[str, bytes]], bytes | None]


def _decode_and_fold(
    raw: list[RawRecord], registry: Mapping[str, type[EventPayload]], fold: Fold[F]
) -> _Decoded[F]:
    decoded: list[Envelope[EventPayload]] = []
    for headers, value in raw:
        with contextlib.suppress(MalformedEvent):  # counted by the difference
            decoded.append(decode(headers, value, registry))
    return _Decoded(fold(decoded), len(raw), len(decoded))


# A worker process's registry and fold, set once by the pool's initializer rather than
# pickled with every batch.
_worker: tuple[Mapping[str, type[EventPayload]], Fold[Any]] | None = None


def _init_worker(registry: Mapping[str, type[EventPayload]], fold: Fold[Any]) -> None:
    global _worker
    _worker = (registry, fold)


def _in_worker(raw: list[RawRecord]) -> _Decoded[Any]:
    assert _worker is not None, "the pool's initializer sets it"
    return _decode_and_fold(raw, *_worker)


def _pool(
    registry: Mapping[str, type[EventPayload]], fold: Fold[Any], workers: int
) -> ProcessPoolExecutor:
    # `spawn`: never fork a process that holds an event loop, sockets and threads.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(dict(registry), fold),
    )
