"""Which real Kafka broker and PostgreSQL server the tests use.

In order of preference: the one named by the environment (`KAFKA_BOOTSTRAP_SERVERS`,
`TEST_DATABASE_URL`), a testcontainers container where a Docker engine answers, or a
local server (Apache Kafka from Maven Central jars; PostgreSQL from the Debian package).
Never a fake: these tests are about what the real broker and database do.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url


@dataclass
class Broker:
    bootstrap_servers: str
    description: str
    _stop: Any = field(default=None, repr=False)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


@dataclass
class Database:
    """A PostgreSQL server on which each test creates its own database."""

    admin_url: str  # SQLAlchemy asyncpg URL of the maintenance database
    description: str
    _stop: Any = field(default=None, repr=False)
    server: Any = field(default=None, repr=False)  # the LocalPostgres, when we started it
    backend: str = "postgresql"

    def url(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    async def create_database(self, name: str) -> str:
        url = make_url(self.admin_url)
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


@dataclass
class SqliteDatabases:
    """The embedded default of `make run`, as a test backend: each test's "database" is a
    fresh SQLite file (WAL, as the services open it) in a folder of the test session."""

    folder: Path
    description: str = field(default="")
    backend: str = "sqlite"

    def __post_init__(self) -> None:
        import sqlite3

        self.folder.mkdir(parents=True, exist_ok=True)
        self.description = (
            f"SQLite {sqlite3.sqlite_version} (the embedded default: aiosqlite, WAL files"
            f" in {self.folder})"
        )

    def url(self, database: str) -> str:
        return f"sqlite+aiosqlite:///{self.folder / database}.db"

    async def create_database(self, name: str) -> str:
        return self.url(name)

    def stop(self) -> None:
        return None


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


async def _kafka_version(bootstrap: str) -> str:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        meta = await admin.describe_cluster()
        return f"{len(meta.get('brokers', []))} broker(s)"
    finally:
        await admin.close()


def start_broker() -> Broker:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        info = asyncio.run(_kafka_version(external))
        return Broker(external, f"external Apache Kafka at {external} ({info})")
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer().with_kraft()
        container.start()
        bootstrap = container.get_bootstrap_server()
        return Broker(bootstrap, f"testcontainers {container.image} at {bootstrap}", container.stop)
    from shared.infra.kafka_local import LocalKafka

    kafka = LocalKafka(extra_properties={"num.partitions": "3"}).start()
    return Broker(
        kafka.bootstrap_servers,
        f"Apache Kafka {kafka.version} (KRaft, jars from Maven Central) at"
        f" {kafka.bootstrap_servers}",
        kafka.stop,
    )


def start_database() -> Database:
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        return Database(external, f"external PostgreSQL at {make_url(external).host}")
    if docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver="asyncpg")
        container.start()
        url = container.get_connection_url()
        return Database(url, f"testcontainers {container.image}", container.stop)
    from shared.infra.postgres_local import LocalPostgres, ensure_postgres_installed

    ensure_postgres_installed()
    pg = LocalPostgres(fast_unsafe=True).start()
    return Database(
        pg.dsn("postgres"),
        f"PostgreSQL {pg.version} (Debian package, local cluster) on port {pg.port}",
        pg.stop,
        server=pg,
    )
