"""Re-drive: put dead-lettered messages back through their handlers, after a fix.

A dead-letter topic keeps every message a consumer gave up on, with the reason. Once the
cause is fixed (a handler bug, a missing projection row), `python -m services.<name>
redrive` reads the service's dead-letter topics from the beginning to their current end
and hands each message dead-lettered by one of *its* consumer groups back to that
group's handler — all of them, or those whose `ce_id` is given. It is idempotent: the
handler runs inside the same inbox transaction as live consumption, so a message already
applied (by an earlier re-drive, or because it was dead-lettered after a transient
blip and delivered again) changes nothing and is reported "already applied". Nothing is
removed from the dead-letter topic (Kafka keeps its history); the report says what
happened to each message.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.events.envelope import H_ID, H_TYPE
from shared.messaging.consumer import (
    DLQ_CONSUMER,
    DLQ_HEADERS,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_TOPIC,
    ConsumerRunner,
    Outcome,
)
from shared.messaging.kafka import KafkaAccess
from shared.messaging.replay import records_to_end


@dataclass(frozen=True)
class RedriveLine:
    event_id: str
    event_type: str
    consumer: str
    outcome: str  # applied, already applied, failed, ignored, skipped, not run (dry run)
    detail: str


@dataclass
class RedriveReport:
    lines: list[RedriveLine] = field(default_factory=list)
    stopped: str | None = None  # why the re-drive stopped early (a dependency down)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(1 for line in self.lines if line.outcome == outcome)

    @property
    def failed(self) -> int:
        return self.count("failed")

    def summary(self) -> str:
        parts = [
            f"{self.count('applied')} applied",
            f"{self.count('already applied')} already applied",
            f"{self.failed} failed",
        ]
        for extra in ("not run (dry run)", "ignored"):
            if self.count(extra):
                parts.append(f"{self.count(extra)} {extra}")
        text = f"{len(self.lines)} dead-lettered message(s) of this service: " + ", ".join(parts)
        if self.stopped:
            text += f"; stopped early: {self.stopped}"
        return text


def _headers(record: Any) -> dict[str, str]:
    return {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers or ()}


async def redrive(
    access: KafkaAccess | str,
    runners: Sequence[ConsumerRunner[Any]],
    *,
    event_ids: Collection[str] = (),
    dry_run: bool = False,
) -> RedriveReport:
    started = time.perf_counter()
    report = RedriveReport()
    by_name = {r.name: r for r in runners}
    dlq_topics = sorted({f"{physical}.dlq" for r in runners for physical in r.topics})
    wanted = set(event_ids)
    async with contextlib.aclosing(records_to_end(access, dlq_topics)) as records:
        async for batch in records:
            for record in batch:
                line = await _one(record, by_name, wanted, dry_run)
                if line is None:
                    continue
                if line.outcome == "stopped":  # a dependency is down: stop, say so
                    report.stopped = line.detail
                    break
                report.lines.append(line)
            if report.stopped is not None:
                break
    report.seconds = time.perf_counter() - started
    return report


async def _one(
    record: Any,
    runners: dict[str, ConsumerRunner[Any]],
    wanted: set[str],
    dry_run: bool,
) -> RedriveLine | None:
    h = _headers(record)
    runner = runners.get(h.get(DLQ_CONSUMER, ""))
    event_id = h.get(H_ID, "(no ce_id)")
    if runner is None or (wanted and event_id not in wanted):
        return None  # another service's consumer, or not asked for
    event_type = h.get(H_TYPE, "(no ce_type)")
    if dry_run:
        return RedriveLine(
            event_id, event_type, runner.name, "not run (dry run)", h.get(DLQ_REASON, "")
        )
    original = [(k, v) for k, v in record.headers or () if k not in DLQ_HEADERS]
    outcome, detail = await runner.redrive(
        original,
        record.value,
        topic=h.get(DLQ_TOPIC, record.topic.removesuffix(".dlq")),
        partition=int(h.get(DLQ_PARTITION, "0") or 0),
        offset=int(h.get(DLQ_OFFSET, "0") or 0),
    )
    if outcome is Outcome.TRANSIENT:
        return RedriveLine(event_id, event_type, runner.name, "stopped", detail)
    names = {
        Outcome.PROCESSED: "applied",
        Outcome.DUPLICATE: "already applied",
        Outcome.IGNORED: "ignored",
    }
    return RedriveLine(event_id, event_type, runner.name, names.get(outcome, "failed"), detail)
