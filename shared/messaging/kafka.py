"""Kafka clients configured the one way this system uses them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from shared.events.catalogue import Topic


@dataclass(frozen=True)
class KafkaAccess:
    """How to reach the cluster: its address, and TLS / SASL when it is not on a private
    network (a funder feed exposed to outside readers, a managed Kafka)."""

    bootstrap_servers: str
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if "SSL" in self.security_protocol:
            kwargs["ssl_context"] = create_ssl_context(cafile=self.ssl_cafile)
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password
        return kwargs


def access_of(target: KafkaAccess | str) -> KafkaAccess:
    return target if isinstance(target, KafkaAccess) else KafkaAccess(target)


def make_producer(
    access: KafkaAccess | str, client_id: str, *, transactional_id: str | None = None
) -> AIOKafkaProducer:
    # Idempotence gives acks=all and per-partition order across the producer's retries;
    # without it aiokafka defaults to acks=1 (a leader crash can lose an "acked" event).
    # A transactional id (the relay's) adds fencing: the broker lets only the newest
    # producer of that id write.
    return AIOKafkaProducer(
        **access_of(access).client_kwargs(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=30_000,
        transactional_id=transactional_id,
    )


async def ensure_topics(
    access: KafkaAccess | str,
    topics: Iterable[Topic],
    *,
    prefix: str = "",
    replication_factor: int = 1,
    with_dlq: bool = True,
) -> list[str]:
    """Create the topics (and their dead-letter topics) that do not exist yet."""
    wanted: dict[str, int] = {}
    for topic in topics:
        wanted[topic.physical(prefix)] = topic.partitions
        if with_dlq:
            wanted[topic.physical_dlq(prefix)] = 1
    admin = AIOKafkaAdminClient(**access_of(access).client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=parts, replication_factor=replication_factor)
            for name, parts in wanted.items()
            if name not in existing
        ]
        if missing:
            # Another service may create it meanwhile: that is the goal anyway.
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(missing)
                _raise_refusals(response)
        await _wait_for_metadata(admin, set(wanted))
    finally:
        await admin.close()
    return sorted(wanted)


_TOPIC_ALREADY_EXISTS = 36


def _raise_refusals(response: object) -> None:
    """Say why the broker refused a topic (too many replicas for the cluster, no right to
    create…) instead of timing out later on "topic not visible"."""
    refused = []
    for entry in getattr(response, "topic_errors", None) or ():
        topic, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else ""
        if code not in (0, _TOPIC_ALREADY_EXISTS):
            refused.append(f"{topic}: error {code} {message or ''}".strip())
    if refused:
        raise RuntimeError("the broker refused to create topics: " + "; ".join(refused))


async def _wait_for_metadata(admin: AIOKafkaAdminClient, names: set[str]) -> None:
    # A freshly created topic is not instantly visible to every client; waiting here
    # keeps producers and consumers that start next from seeing "unknown topic".
    for _ in range(100):
        if names <= set(await admin.list_topics()):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"topics not visible after creation: {sorted(names)}")


class BrokerProbe:
    """Whether the cluster answers, for the readiness probe: a metadata request of one
    long-lived admin client (opened at the first check, reconnecting by itself), bounded
    in time, its answer kept for `cache_s` so that a probe every few seconds from every
    kubelet and load balancer costs one request per interval."""

    def __init__(
        self, access: KafkaAccess | str, *, timeout_s: float = 2.0, cache_s: float = 1.0
    ) -> None:
        self._access = access_of(access)
        self._timeout_s = timeout_s
        self._cache_s = cache_s
        self._admin: AIOKafkaAdminClient | None = None
        self._checked_at = float("-inf")
        self._problem: str | None = None
        self._lock = asyncio.Lock()

    async def problem(self) -> str | None:
        """None when the broker answered; else why not (the error's type, no address)."""
        loop = asyncio.get_running_loop()
        async with self._lock:
            if loop.time() - self._checked_at >= self._cache_s:
                self._problem = await self._check()
                self._checked_at = loop.time()
            return self._problem

    async def _check(self) -> str | None:
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._admin is None:
                    admin = AIOKafkaAdminClient(
                        **self._access.client_kwargs(), request_timeout_ms=2000
                    )
                    try:
                        await admin.start()
                    except BaseException:
                        with contextlib.suppress(Exception):
                            await admin.close()
                        raise
                    self._admin = admin
                await self._admin.describe_cluster()
        except TimeoutError:
            return f"no answer within {self._timeout_s:g} s"
        except Exception as exc:
            return f"unreachable ({type(exc).__name__})"
        return None

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
