"""What the end-of-run summaries print (the infrastructure used, the fault table, the web
pages' figures), gathered from every pytest-xdist worker.

Under xdist a test runs in a worker process while the summary is printed by the
controller, which runs no test: a module-level list filled by the tests would reach the
summary empty. Each worker hands its records to the controller when it finishes
(`config.workeroutput`, xdist's channel for this); without xdist the records stay in
the one process. Records are JSON values, the only thing that crosses the channel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

_KEY = "rebond_summary"
_records: dict[str, list[Any]] = {}


def add(kind: str, record: Any) -> None:
    """Keep `record` (JSON-serialisable) for the summary of `kind`."""
    _records.setdefault(kind, []).append(json.loads(json.dumps(record)))


def records(kind: str) -> list[Any]:
    """Every record of `kind`, from every worker, in the order the workers finished."""
    return list(_records.get(kind, []))


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def send(config: pytest.Config) -> None:
    """On a worker, at the end of its session: hand the records to the controller."""
    if is_worker(config):
        config.workeroutput[_KEY] = json.dumps(_records)  # type: ignore[attr-defined]


def receive(workeroutput: dict[str, Any]) -> None:
    """On the controller, when a worker is done: take its records."""
    for kind, items in json.loads(workeroutput.get(_KEY, "{}")).items():
        _records.setdefault(kind, []).extend(items)
