"""The fault suite's own infrastructure: an Apache Kafka broker and two PostgreSQL
clusters that the tests stop, restart and starve (the session's broker and database are
never touched), and the table of results, printed at the end of the run and written to
`bench-results/faults.json` and `bench-results/faults.md`.

`FAULT_SCALE` (default 1) multiplies every burst; `make soak` runs the suite with a
larger scale, several rounds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.infra.kafka_local import LocalKafka
from shared.infra.postgres_local import LocalPostgres, ensure_postgres_installed
from tests.faults.harness import ROOT, Stack


@dataclass
class Cluster:
    kafka: LocalKafka
    postgres: LocalPostgres  # every service's database
    aside: LocalPostgres  # a second server, for the fault that takes one database down
    root: Path

    async def databases(self, *, on_aside: tuple[str, ...] = ()) -> dict[str, str]:
        urls: dict[str, str] = {}
        for name in ("site_registry", "campaigns", "detection", "funding"):
            server = self.aside if name in on_aside else self.postgres
            db = f"f_{name[:4]}_{uuid.uuid4().hex[:10]}"
            await server.create_database_async(db)
            urls[name] = server.dsn(db)
        return urls


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    ensure_postgres_installed()
    root = Path(tempfile.mkdtemp(prefix="rebond-faults-"))
    root.chmod(0o755)  # the PostgreSQL clusters run as the `postgres` OS user under root
    kafka = LocalKafka(root / "kafka", extra_properties={"num.partitions": "3"})
    postgres = LocalPostgres(root / "pg", fast_unsafe=True, settings={"max_connections": "300"})
    aside = LocalPostgres(root / "pg-aside", fast_unsafe=True)
    try:
        kafka.start()
        postgres.start()
        aside.start()
        yield Cluster(kafka, postgres, aside, root)
    finally:
        for server in (aside, postgres):
            server.stop()
        kafka.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def make_stack(cluster: Cluster, tmp_path: Path) -> AsyncIterator[object]:
    stacks: list[Stack] = []

    async def make(*, on_aside: tuple[str, ...] = (), **extra_env: dict[str, str]) -> Stack:
        stack = Stack(
            bootstrap=cluster.kafka.bootstrap_servers,
            prefix=f"f{uuid.uuid4().hex[:8]}.",
            database_urls=await cluster.databases(on_aside=on_aside),
            log_dir=tmp_path,
            extra_env=dict(extra_env),
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()
    if os.environ.get("FAULT_KEEP_LOGS"):
        keep = ROOT / "bench-results" / "fault-logs" / tmp_path.name
        shutil.copytree(tmp_path, keep, dirs_exist_ok=True)
