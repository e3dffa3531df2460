"""The commands of the README run beside `make run`: where their settings come from
(`local-run.json` is the lowest-priority source, only while its writer lives, only in
development), and with no broker or database, one readable `error:` line — no traceback.

No `make run` is started here: the file is written by the test (with the test's own pid
as the writer), and the failures need nothing listening.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.detection.settings import DetectionSettings
from shared import localrun
from shared.settings import SHARED_ENV
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "services/site_registry/data/sirene_stock_etablissement_sample_299.csv"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KAFKA_")
        and not k.endswith(("_DATA_DIR", "_DATABASE_URL"))
        and k != "REBOND_ENVIRONMENT"
    }
    # Beside `make run`, as its README says: development is named, never assumed.
    return {**env, "REBOND_DATA_DIR": str(data_dir), "REBOND_ENVIRONMENT": "development", **extra}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# ------------------------------------------------------------------ one line, no trace


def test_import_sirene_without_a_broker_fails_with_one_error_line(tmp_path: Path) -> None:
    env = cli_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    result = run_cli(
        env, "services.site_registry", "import-sirene", str(SAMPLE), "--territory", "ti-3205"
    )
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


@pytest.mark.parametrize("case", ["nothing listens", "no such host", "database down"])
def test_a_command_without_its_broker_or_database_fails_with_one_error_line(
    tmp_path: Path, case: str
) -> None:
    port = free_port()
    if case == "nothing listens":
        env = cli_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
        expected = (
            f"error: cannot reach the Kafka broker at 127.0.0.1:{port}"
            " (connection refused: nothing listens there)."
        )
    elif case == "no such host":
        env = cli_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS="no-such-host.invalid:9092")
        expected = (
            "error: cannot reach the Kafka broker at no-such-host.invalid:9092"
            " (its host name does not resolve)."
        )
    else:
        url = f"postgresql+asyncpg://rebond:s3cret@127.0.0.1:{port}/detection"
        env = cli_env(tmp_path, DETECTION_DATABASE_URL=url)
        expected = (
            f"error: cannot reach the database postgresql+asyncpg://rebond:***@127.0.0.1:{port}"
            "/detection (connection refused: nothing listens there). Check DETECTION_DATABASE_URL."
        )
    result = run_cli(env, "services.detection", "rebuild-ledger")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected), lines[0]
    assert "s3cret" not in result.stderr


def test_minting_a_token_needs_no_broker(tmp_path: Path) -> None:
    env = cli_env(tmp_path, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    result = run_cli(
        env, "shared.auth", "mint", "--role", "consultant", "--territory", "ti-3205", "--sub", "c1"
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.count(".") == 2  # header.claims.signature


# ------------------------------------------------- where the settings of a command come from


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """None of our variables but an explicit development (there is no default), and the
    data dir pointed at a fresh folder."""
    for name in list(os.environ):
        if name.startswith(("DETECTION_", "KAFKA_")) or name in SHARED_ENV.values():
            monkeypatch.delenv(name)
    monkeypatch.setenv("REBOND_ENVIRONMENT", "development")
    monkeypatch.setenv(localrun.DATA_DIR_VAR, str(tmp_path))
    yield tmp_path


def publish(data_dir: Path, *, pid: int | None = None) -> None:
    writer = os.getpid() if pid is None else pid
    localrun.write(
        data_dir,
        localrun.LocalRun(
            pid=writer,
            pid_start=localrun.process_start(writer),
            bootstrap_servers="127.0.0.1:40404",
            data_dir=str(data_dir),
            topic_prefix="local.",
        ),
    )


def test_a_running_make_run_gives_the_broker_its_prefix_and_the_data_dir(
    environment: Path,
) -> None:
    publish(environment)

    settings = DetectionSettings()

    assert settings.kafka_bootstrap_servers == "127.0.0.1:40404"
    assert settings.kafka_topic_prefix == "local."
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{environment}/detection.db"


def test_environment_variables_win_over_a_running_make_run(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(environment)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")

    settings = DetectionSettings()

    assert settings.kafka_bootstrap_servers == "elsewhere:9092"
    assert settings.kafka_topic_prefix == ""  # make run's prefix is for make run's broker
    monkeypatch.setenv("DETECTION_KAFKA_BOOTSTRAP_SERVERS", "own:9092")
    assert DetectionSettings().kafka_bootstrap_servers == "own:9092"
    assert DetectionSettings(kafka_bootstrap_servers="arg:9092").kafka_bootstrap_servers == (
        "arg:9092"
    )


def test_a_stopped_make_run_is_ignored(environment: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    publish(environment, pid=gone.pid)  # its writer has exited

    assert DetectionSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_a_reused_pid_is_not_taken_for_the_make_run_that_wrote_the_file(
    environment: Path,
) -> None:
    publish(environment)
    raw = json.loads(localrun.run_file(environment).read_text())
    raw["pid_start"] = (raw["pid_start"] or 0) + 1  # same pid, another process
    localrun.run_file(environment).write_text(json.dumps(raw))

    assert DetectionSettings().kafka_bootstrap_servers == "127.0.0.1:9092"


def test_outside_development_the_file_is_never_read(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(environment)
    monkeypatch.setenv("REBOND_ENVIRONMENT", "test")
    monkeypatch.setenv("REBOND_JWT_SECRET", "x" * 40)

    assert DetectionSettings().kafka_bootstrap_servers == "127.0.0.1:9092"
    assert DetectionSettings(environment="test").kafka_bootstrap_servers == "127.0.0.1:9092"


def test_without_a_data_dir_variable_the_checkout_run_folder_is_where_make_run_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(localrun.DATA_DIR_VAR, raising=False)

    assert localrun.default_data_dir() == ROOT / ".run"
    assert localrun.run_file() == ROOT / ".run" / "local-run.json"
