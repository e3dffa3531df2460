"""What every benchmark on the real broker and database starts with: the embedded
Apache Kafka and PostgreSQL, started for the run and stopped after it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any

from tests.support.infra import Broker, Database


def on_real_infrastructure(
    bench: Callable[[Broker, Database], Coroutine[Any, Any, dict[str, Any]]],
) -> dict[str, Any]:
    """Run `bench` on a broker and a PostgreSQL cluster of its own; its figures, with the
    broker, the database and the cores they ran on."""
    from tests.support.infra import start_broker, start_database

    broker = start_broker()
    try:
        database = start_database()
        try:
            figures: dict[str, Any] = asyncio.run(bench(broker, database))
        finally:
            database.stop()
    finally:
        broker.stop()
    return {
        "broker": broker.description,
        "database": database.description,
        "cores": os.cpu_count(),
        **figures,
    }
