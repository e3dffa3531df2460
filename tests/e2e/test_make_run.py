"""`make run`'s script as a user meets it: it brings up the broker connection, the
services and the demo and prints the API docs' URL (`--check`, with the whole flow in
`--smoke`); a running one stops every child on SIGTERM, SIGHUP or SIGINT; a second one,
or a busy port, is refused at once; the commands run beside it find its broker.

Real processes on the session's real broker. A `make run` takes ~10-20 s to start here,
so the tests that only need one running share it (`MakeRuns.running`); the signal tests,
which end it, take it over (`MakeRuns.take`) and the next one starts a fresh one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.localrun import pid_alive, process_start
from tests.support.infra import Broker

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "services/site_registry/data/sirene_stock_etablissement_sample_299.csv"
BASE_PORT = 8001  # site_registry; the others follow


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.1)


def free_offset() -> int:
    """A `--port-offset` whose five ports are free (below the ephemeral range, so that
    no broker or client picks one meanwhile)."""
    for _ in range(200):
        base = 20_000 + uuid.uuid4().int % 10_000
        if all(port_free(base + i) for i in range(5)):
            return base - BASE_PORT
    raise AssertionError("no five consecutive free ports found")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def descendants(pid: int) -> dict[int, int | None]:
    """Every process below `pid` (children, grandchildren…) → its start time."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (proc / "stat").read_text()
                parents[int(proc.name)] = int(stat.rpartition(")")[2].split()[1])
    found: dict[int, int | None] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = process_start(child)
                todo.append(child)
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus whatever would point a command at a broker or a data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KAFKA_")
        and not k.endswith(("_DATA_DIR", "_DATABASE_URL"))
        and k != "REBOND_ENVIRONMENT"
    }
    return {**env, **extra}


@dataclass
class MakeRun:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    offset: int
    log: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def ports(self) -> list[int]:
        return [BASE_PORT + self.offset + i for i in range(5)]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_running(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while "Running. Ctrl-C stops everything." not in self.output():
            assert self.proc.poll() is None, f"make run exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"not running in {timeout:.0f} s:\n{self.output()}"
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_make_run(data_dir: Path, env: dict[str, str], *args: str) -> MakeRun:
    data_dir.mkdir(parents=True, exist_ok=True)
    offset = free_offset()
    log = data_dir.parent / f"{data_dir.name}.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "deploy/local/run.py",
                "--data-dir",
                str(data_dir),
                "--port-offset",
                str(offset),
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return MakeRun(proc, data_dir, offset, log)


class MakeRuns:
    """Running `make run`s on the session broker, one shared until a test takes it."""

    def __init__(self, broker: Broker, folder: Path) -> None:
        self.broker = broker
        self.folder = folder
        self.prefix = f"makerun{uuid.uuid4().hex[:6]}."
        self.all: list[MakeRun] = []
        self._current: MakeRun | None = None

    def env(self) -> dict[str, str]:
        return clean_env(
            KAFKA_BOOTSTRAP_SERVERS=self.broker.bootstrap_servers, KAFKA_TOPIC_PREFIX=self.prefix
        )

    def running(self) -> MakeRun:
        if self._current is None or self._current.proc.poll() is not None:
            run = start_make_run(self.folder / f"run{len(self.all)}", self.env())
            self.all.append(run)
            run.wait_running()
            self._current = run
        return self._current

    def take(self) -> MakeRun:
        run, self._current = self.running(), None
        return run

    def stop_all(self) -> None:
        for run in self.all:
            run.stop()


@pytest.fixture(scope="module")
def make_runs(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRuns]:
    runs = MakeRuns(broker, tmp_path_factory.mktemp("make-run"))
    try:
        yield runs
    finally:
        runs.stop_all()


# --------------------------------------------------------------- --check and --smoke


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
    assert "108 communes" in out and "'active': 165" in out
    assert "check passed" in out
    assert "with 164 targets" in out and "900 jobs lost, 8 detected" in out
    assert "eligible" in out
    # (a) a resubmitted survey changes its project, makes no other
    assert "survey resubmitted (revision 2, same lead)" in out and "now plans 12 jobs" in out
    assert "still 1 project" in out
    # (b) one firm, two sites: the second project is flagged, its jobs under review
    assert re.search(r"one firm, two sites: project \S+ under review as a possible duplicate", out)
    assert "ledger: 62 detected, 20 under review" in out
    # (c) the same exogenous project declared twice
    assert "exogenous project declared twice: 201, 201" in out
    assert "ledger: 162 detected, 70 under review" in out
    # (d) the closing site registered again
    assert re.search(r"closing site 36120038900019 registered again: 20\d", out)
    # (e) no dead letter, and a ledger that adds up
    assert "dead-letter topics: 0 message(s)" in out
    assert "final ledger: 162 jobs detected = 62 from 3 leads reported + 100 exogenous" in out
    assert (tmp_path / "site_registry.db").exists()  # the embedded SQLite default
    assert not (tmp_path / "local-run.json").exists()  # removed on exit


# ------------------------------------------------- refused at once: second run, busy port


def test_a_second_make_run_on_the_same_data_dir_is_refused_at_once(make_runs: MakeRuns) -> None:
    first = make_runs.running()
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "deploy/local/run.py",
            "--data-dir",
            str(first.data_dir),
            "--port-offset",
            str(first.offset),
        ],
        cwd=ROOT,
        env=make_runs.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    pid = first.proc.pid
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"[rebond] another `make run` (pid {pid}) is already running from {first.data_dir};"
        f" stop it first (Ctrl-C in its terminal, or kill {pid})"
    ]
    assert elapsed < 15, f"refused after {elapsed:.1f} s"
    assert first.proc.poll() is None  # the first one is untouched


def test_the_ports_of_a_running_make_run_are_refused_for_another_data_dir(
    make_runs: MakeRuns, tmp_path: Path
) -> None:
    first = make_runs.running()
    result = subprocess.run(
        [
            sys.executable,
            "deploy/local/run.py",
            "--data-dir",
            str(tmp_path),
            "--port-offset",
            str(first.offset),
        ],
        cwd=ROOT,
        env=make_runs.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"[rebond] port {first.ports[0]} is already in use by pid "), line
    assert "services.site_registry serve --demo" in line
    assert f"a service of another `make run` (pid {first.proc.pid})" in line
    assert not (tmp_path / "local-run.json").exists()


def test_a_port_in_use_is_refused_at_once_naming_it_and_its_holder(tmp_path: Path) -> None:
    offset = free_offset()
    taken = BASE_PORT + offset + 2  # detection's
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "deploy/local/run.py",
                "--data-dir",
                str(tmp_path),
                "--port-offset",
                str(offset),
            ],
            cwd=ROOT,
            env=clean_env(),  # no broker named: it would start Kafka, were it not refused
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert result.stdout == ""  # nothing started, not even Kafka
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"[rebond] port {taken} is already in use by pid {os.getpid()} ("), line
    assert f"`make run` needs ports {BASE_PORT + offset}-{BASE_PORT + offset + 4}" in line
    assert elapsed < 15, f"refused after {elapsed:.1f} s"
    assert not (tmp_path / "kafka").exists()


# ------------------------------------------------ the commands beside a running make run


def test_local_run_file_names_the_broker_and_the_data_dir(make_runs: MakeRuns) -> None:
    run = make_runs.running()
    published = json.loads((run.data_dir / "local-run.json").read_text())
    assert published["pid"] == run.proc.pid
    assert published["bootstrap_servers"] == make_runs.broker.bootstrap_servers
    assert published["data_dir"] == str(run.data_dir)
    assert published["topic_prefix"] == make_runs.prefix


@pytest.mark.parametrize(
    "command",
    [
        ("services.detection", "rebuild-ledger"),
        ("services.detection", "redrive", "--dry-run"),
        ("services.campaigns", "redrive", "--dry-run"),
        ("services.site_registry", "import-sirene", str(SAMPLE), "--territory", "ti-3205"),
    ],
    ids=lambda c: " ".join(c[:2]).removeprefix("services."),
)
def test_commands_beside_make_run_find_its_broker_and_databases(
    make_runs: MakeRuns, command: tuple[str, ...]
) -> None:
    run = make_runs.running()
    # No KAFKA_* nor *_DATA_DIR: only the data dir, as `.run/` is found from the checkout.
    env = clean_env(REBOND_DATA_DIR=str(run.data_dir), REBOND_ENVIRONMENT="development")
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if command[1] == "rebuild-ledger":
        # It read make run's own topics (its broker, its prefix): the demo's 165 sites.
        assert json.loads(result.stdout.splitlines()[-1])["messages"] >= 165
    if command[1] == "import-sirene":
        assert json.loads(result.stdout.splitlines()[-1])["rows_read"] == 299
    assert run.proc.poll() is None


# ------------------------------------------------------------ every child stops with it


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)
def test_a_stop_signal_stops_every_child_and_frees_every_port(
    make_runs: MakeRuns, sig: signal.Signals
) -> None:
    run = make_runs.take()
    children = descendants(run.proc.pid)
    assert len(children) >= 6, children  # five processes and the guardian
    run.proc.send_signal(sig)
    assert run.proc.wait(timeout=60) == 0, run.output()
    wait_until(
        lambda: not any(pid_alive(pid, start) for pid, start in children.items()),
        f"every child of make run gone after {sig.name}",
    )
    wait_until(lambda: all(port_free(p) for p in run.ports), f"ports {run.ports} free")
    out = run.output()
    assert f"{sig.name}: stopping every process `make run` started" in out
    assert out.rstrip().endswith("[rebond] stopped")
    assert not (run.data_dir / "local-run.json").exists()


def test_sigkill_of_make_run_still_stops_its_services_and_its_embedded_broker(
    tmp_path: Path,
) -> None:
    """No cleanup can run in a SIGKILLed process: the kernel (PR_SET_PDEATHSIG) stops the
    services and the guardian stops the broker — then releases the data dir's lock."""
    run = start_make_run(tmp_path / "data", clean_env())  # no broker named: the embedded one
    try:
        run.wait_running()
        match = re.search(r"\(KRaft\) at 127\.0\.0\.1:(\d+) \(pid (\d+)\)", run.output())
        assert match, run.output()
        broker_port, broker_pid = int(match[1]), int(match[2])
        children = descendants(run.proc.pid)
        assert broker_pid in children and len(children) >= 6, children
        os.kill(run.proc.pid, signal.SIGKILL)
        run.proc.wait(timeout=10)
        wait_until(
            lambda: not any(pid_alive(pid, start) for pid, start in children.items()),
            "every child of the killed make run gone",
            timeout=60,
        )
        ports = [*run.ports, broker_port]
        wait_until(lambda: all(port_free(p) for p in ports), f"ports {ports} free")
        assert not (run.data_dir / "local-run.json").exists()
        with (run.data_dir / "make-run.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: a new run may start
    finally:
        run.stop()
