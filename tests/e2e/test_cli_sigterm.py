"""The standalone `relay` and `consume` commands stop on SIGTERM as `serve` does: the
relay releases its lease (a standby leads at once), the consumers commit and leave their
groups, and the command exits 0 — as processes, on the session's broker, on the embedded
SQLite default (`consume` and `relay` beside `make run` use it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import SECRET
from tests.support.infra import Broker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("command", "started", "stopped"),
    [
        ("relay", "outbox relay leads", "outbox relay released its lease"),
        ("consume", "consumer", None),
    ],
)
def test_the_command_stops_cleanly_on_sigterm(
    command: str, started: str, stopped: str | None, broker: Broker, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "REBOND_ENVIRONMENT": "test",
        "REBOND_JWT_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
        "CAMPAIGNS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'campaigns.db'}",
        "REBOND_LOG_JSON": "true",
        "PYTHONPATH": str(ROOT),
    }
    log = tmp_path / f"{command}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.campaigns", command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        if command == "consume":
            # Its group joined: the coordinator gave it the sites topic's partitions.
            started = "consumer partitions assigned"
        wait_for(lambda: started in log.read_text(), f"{command} started")
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = proc.wait(timeout=20)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert took < 10, f"{took:.1f} s"
    if stopped:
        assert stopped in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
