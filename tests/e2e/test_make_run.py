"""`make run`'s script brings up the broker connection, the service and the demo, prints
the API docs' URL, and stops cleanly (its --check mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.infra import Broker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_starts_the_stack_with_the_bethune_demo(broker: Broker, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": f"makerun{tmp_path.name[-6:]}.",
    }
    env.pop("REBOND_ENVIRONMENT", None)
    result = subprocess.run(
        [
            sys.executable,
            "deploy/local/run.py",
            "--check",
            "--data-dir",
            str(tmp_path),
            "--port-offset",
            "100",
            "--smoke",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "http://127.0.0.1:8101/docs" in out
    assert "104 communes" in out and "'active': 165" in out
    assert "check passed" in out
    assert "with 164 targets" in out and "900 jobs lost, 8 detected" in out
    assert "eligible" in out
    assert (tmp_path / "site_registry.db").exists()  # the embedded SQLite default
