"""End-to-end fixtures: services run as real processes (`python -m services.<name>`),
configured only through their environment, as in production."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.infra import Broker

ROOT = Path(__file__).resolve().parents[2]
SECRET = "end-to-end-tests-secret-of-at-least-32-chars"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningService:
    base_url: str
    bootstrap_servers: str
    topic_prefix: str
    env: dict[str, str]

    def token(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "shared.auth", "mint", *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"service exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not healthy in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def site_registry_process(
    broker: Broker, database_url: str, topic_prefix: str, tmp_path: Path
) -> Iterator[RunningService]:
    port = free_port()
    env = {
        **os.environ,
        "REBOND_ENVIRONMENT": "test",
        "REBOND_JWT_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "SITE_REGISTRY_DATABASE_URL": database_url,
        "SITE_REGISTRY_HTTP_PORT": str(port),
        "SITE_REGISTRY_RELAY_POLL_INTERVAL_S": "0.1",
        "REBOND_LOG_JSON": "true",
    }
    log = tmp_path / "site_registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.site_registry", "serve", "--demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log)
        yield RunningService(
            f"http://127.0.0.1:{port}", broker.bootstrap_servers, topic_prefix, env
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
