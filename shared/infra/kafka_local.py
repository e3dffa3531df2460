"""A real single-node Apache Kafka broker (KRaft, combined mode) without Docker.

The machines we test on have Java 17 and Maven but no container engine, so the
broker is started from the jars on Maven Central (see deploy/local/kafka/pom.xml).

In Python::

    with LocalKafka() as kafka:            # temporary data dir, removed on stop
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)

    LocalKafka(data_dir=Path(".run/kafka"))  # persistent: topics survive restarts

From a shell (the broker keeps running after the command returns)::

    python -m shared.infra.kafka_local start --data-dir .run/kafka [--port 9092]
    python -m shared.infra.kafka_local status --data-dir .run/kafka
    python -m shared.infra.kafka_local stop --data-dir .run/kafka
    python -m shared.infra.kafka_local fetch

Auto topic creation is off: services create their topics explicitly, and a
local broker that silently creates misspelt topics would hide bugs.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from aiokafka.admin import AIOKafkaAdminClient

from shared.infra._process import (
    file_lock,
    free_ports,
    pid_alive,
    port_is_free,
    read_tail,
    run_in_fresh_loop,
    tail,
)

__all__ = [
    "HOST",
    "KafkaLocalError",
    "LocalKafka",
    "default_jars_dir",
    "ensure_kafka_jars",
    "kafka_deploy_dir",
    "kafka_version_of",
    "read_bootstrap",
    "running_pid",
    "stop_detached",
]

HOST = "127.0.0.1"

_COMPLETE_MARKER = ".rebond-complete"
_PID_FILE = "kafka.pid"
_BOOTSTRAP_FILE = "bootstrap.txt"
_PROPERTIES_FILE = "server.properties"
_BROKER_LOG = "broker.log"
_LOG_DIRS = "data"
_KAFKA_JAR = re.compile(r"^kafka_2\.13-(?P<version>.+)\.jar$")

# Kafka's own kafka-run-class.sh defaults, minus -Xms1G: a test broker rarely needs
# much heap, and committing 1 GB up front hurts CI runners that run several.
_JVM_FLAGS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)

_T = TypeVar("_T")


class KafkaLocalError(RuntimeError):
    """The local broker could not be fetched, started or stopped."""


# --------------------------------------------------------------------------- jars


def kafka_deploy_dir() -> Path:
    """Folder holding pom.xml and log4j2.properties (REBOND_KAFKA_DEPLOY_DIR overrides)."""
    override = os.environ.get("REBOND_KAFKA_DEPLOY_DIR")
    deploy = (
        Path(override)
        if override
        else Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka"
    )
    if not (deploy / "pom.xml").is_file():
        raise KafkaLocalError(
            f"{deploy / 'pom.xml'} not found; run from a checkout of the repository "
            "or set REBOND_KAFKA_DEPLOY_DIR"
        )
    return deploy


def _pom_kafka_version(pom: Path) -> str:
    # The cache folder is named after the version in the POM so that bumping it
    # there fetches a fresh classpath instead of mixing two versions' jars.
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(pom).getroot().findtext("m:properties/m:kafka.version", namespaces=ns)
    if not version:
        raise KafkaLocalError(f"{pom} has no <kafka.version> property")
    return version.strip()


def default_jars_dir() -> Path:
    """`$REBOND_CACHE_DIR/kafka-<version>/libs`, by default under `~/.cache/rebond`."""
    root = os.environ.get("REBOND_CACHE_DIR")
    cache_root = Path(root) if root else Path.home() / ".cache" / "rebond"
    version = _pom_kafka_version(kafka_deploy_dir() / "pom.xml")
    return cache_root / f"kafka-{version}" / "libs"


def _is_complete(libs: Path, fingerprint: str) -> bool:
    marker = libs / _COMPLETE_MARKER
    return marker.is_file() and marker.read_text().strip() == fingerprint


def ensure_kafka_jars(cache_dir: Path | None = None) -> Path:
    """Return a folder with the broker classpath, downloading it with Maven once.

    The jars are fetched into a staging folder that only becomes `cache_dir` once
    Maven succeeded and the marker is written, so an interrupted download is redone
    rather than used. Editing the POM also invalidates the cache (the marker holds
    the POM's hash).
    """
    pom = kafka_deploy_dir() / "pom.xml"
    libs = (cache_dir or default_jars_dir()).resolve()
    fingerprint = hashlib.sha256(pom.read_bytes()).hexdigest()
    if _is_complete(libs, fingerprint):
        return libs

    libs.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(libs.parent / f".{libs.name}.lock"):
        if _is_complete(libs, fingerprint):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaLocalError(
                "Maven (mvn) is needed once to fetch the Kafka jars; "
                "install it (Debian: apt-get install -y maven)"
            )
        for stale in libs.parent.glob(f"{libs.name}.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{libs.name}.partial-", dir=libs.parent))
        try:
            # Maven runs on a copy so that nothing (target/, …) lands in the repository.
            work = staging / ".pom"
            work.mkdir()
            shutil.copy2(pom, work / "pom.xml")
            result = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-Dstyle.color=never",
                    "-f",
                    str(work / "pom.xml"),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={staging}",
                    "-DincludeScope=runtime",
                ],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                raise KafkaLocalError(
                    f"mvn could not fetch the Kafka jars (exit {result.returncode}):\n"
                    + tail(output, 40)
                )
            shutil.rmtree(work)
            kafka_version_of(staging)
            (staging / _COMPLETE_MARKER).write_text(fingerprint + "\n")
            if libs.exists():
                shutil.rmtree(libs)
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs


def kafka_version_of(libs: Path) -> str:
    """Version of the `kafka_2.13` jar in a classpath folder, e.g. "4.1.1"."""
    for jar in libs.glob("kafka_2.13-*.jar"):
        match = _KAFKA_JAR.match(jar.name)
        if match and not match["version"].endswith(("-test", "-sources", "-javadoc")):
            return match["version"]
    raise KafkaLocalError(f"no kafka_2.13-<version>.jar in {libs}")


# ------------------------------------------------------------------ small helpers


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    if not path.is_file():
        return props
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _terminate_group(pid: int, timeout: float, wait: Callable[[float], bool]) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after `timeout` seconds."""
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        if wait(grace):
            return
    raise KafkaLocalError(f"broker process {pid} survived SIGKILL")


def _poll_exit(pid: int) -> Callable[[float], bool]:
    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return not pid_alive(pid)

    return wait


# ---------------------------------------------------------------- detached state


def _is_our_broker(pid: int, data_dir: Path) -> bool:
    cmdline = _cmdline(pid)
    if cmdline is None:  # no /proc (macOS): trust the pid file
        return pid_alive(pid)
    return "kafka.Kafka" in cmdline and str(data_dir / _PROPERTIES_FILE) in cmdline


def running_pid(data_dir: Path) -> int | None:
    """Pid of the broker started from `data_dir`, if it is still running."""
    data_dir = data_dir.resolve()
    try:
        pid = int((data_dir / _PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    # The pid file may be stale and the pid reused by an unrelated process.
    if pid_alive(pid) and _is_our_broker(pid, data_dir):
        return pid
    return None


def read_bootstrap(data_dir: Path) -> str | None:
    """`host:port` written by the broker started from `data_dir`, if it is running."""
    data_dir = data_dir.resolve()
    if running_pid(data_dir) is None:
        return None
    try:
        return (data_dir / _BOOTSTRAP_FILE).read_text().strip() or None
    except OSError:
        return None


def stop_detached(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop a broker started from `data_dir` by another process; False if none ran."""
    data_dir = data_dir.resolve()
    pid = running_pid(data_dir)
    if pid is not None:
        _terminate_group(pid, timeout, _poll_exit(pid))
    for name in (_PID_FILE, _BOOTSTRAP_FILE):
        (data_dir / name).unlink(missing_ok=True)
    return pid is not None


# ------------------------------------------------------------------------ broker


class LocalKafka:
    """A single-node KRaft broker (broker and controller in one JVM) on 127.0.0.1.

    `data_dir=None` uses a temporary folder deleted by `stop()`; a given folder is
    kept, formatted once, and reused by later starts (topics and offsets survive).
    `port=None` reuses the previous port of a persistent folder when it is free,
    so addresses in a developer's config stay valid, otherwise picks a free one.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        sasl_users: Mapping[str, str] | None = None,
        jars_dir: Path | None = None,
        heap: str = "512m",
        startup_timeout: float = 60.0,
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        self._requested_dir = data_dir.resolve() if data_dir is not None else None
        self._requested_port = port
        self._requested_controller_port = controller_port
        # Optional SASL/PLAIN listener (user → password), to test clients that authenticate.
        self._sasl_users = dict(sasl_users or {})
        self._sasl_port: int | None = None
        self._jars_dir = jars_dir
        self._heap = heap
        self._startup_timeout = startup_timeout
        self._extra = dict(extra_properties or {})
        self._data_dir: Path | None = self._requested_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        self._version: str | None = None

    # -- public state

    @property
    def bootstrap_servers(self) -> str:
        if self._port is None:
            raise KafkaLocalError("the broker is not started")
        return f"{HOST}:{self._port}"

    @property
    def port(self) -> int:
        if self._port is None:
            raise KafkaLocalError("the broker is not started")
        return self._port

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = kafka_version_of(self._jars_dir or ensure_kafka_jars())
        return self._version

    @property
    def data_dir(self) -> Path:
        if self._data_dir is None:
            raise KafkaLocalError("the broker is not started")
        return self._data_dir

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / _BROKER_LOG

    # -- lifecycle

    def start(self) -> Self:
        if self._proc is not None:
            raise KafkaLocalError("the broker is already started")
        jars = self._jars_dir or ensure_kafka_jars()
        self._jars_dir = jars
        self._version = kafka_version_of(jars)
        java = _java()

        if self._requested_dir is None:
            data_dir = Path(tempfile.mkdtemp(prefix="rebond-kafka-"))
        else:
            data_dir = self._requested_dir
            data_dir.mkdir(parents=True, exist_ok=True)
            other = running_pid(data_dir)
            if other is not None:
                raise KafkaLocalError(
                    f"a broker started from {data_dir} is already running (pid {other})"
                )
        self._data_dir = data_dir

        try:
            props_path = data_dir / _PROPERTIES_FILE
            port, controller_port = self._choose_ports(_read_properties(props_path))
            props_path.write_text(self._properties(data_dir, port, controller_port))
            classpath = f"{jars}/*"
            log4j = f"-Dlog4j2.configurationFile={kafka_deploy_dir() / 'log4j2.properties'}"
            if not (data_dir / _LOG_DIRS / "meta.properties").is_file():
                self._format(java, log4j, classpath, props_path)

            log_path = data_dir / _BROKER_LOG
            self._log = log_path.open("ab")
            log_start = self._log.tell()
            self._log.write(f"==== rebond: starting Kafka {self._version} ====\n".encode())
            self._log.flush()
            self._proc = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self._heap}",
                    *_JVM_FLAGS,
                    log4j,
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(props_path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                # Own process group: a Ctrl-C meant for pytest or `make` must not kill
                # the broker mid-write, and stop() can signal the whole JVM group.
                start_new_session=True,
            )
            self._port = port
            (data_dir / _PID_FILE).write_text(f"{self._proc.pid}\n")
            atexit.register(self.stop)
            self._wait_ready(log_path, log_start)
            (data_dir / _BOOTSTRAP_FILE).write_text(f"{self.bootstrap_servers}\n")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout`); idempotent."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        try:
            if proc is not None:

                def wait(seconds: float) -> bool:
                    try:
                        proc.wait(seconds)
                    except subprocess.TimeoutExpired:
                        return False
                    return True

                _terminate_group(proc.pid, timeout, wait)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            self._port = None
            data_dir = self._data_dir
            if data_dir is not None:
                if self._requested_dir is None:
                    shutil.rmtree(data_dir, ignore_errors=True)
                    self._data_dir = None
                elif proc is not None:
                    for name in (_PID_FILE, _BOOTSTRAP_FILE):
                        (data_dir / name).unlink(missing_ok=True)

    def detach(self) -> int:
        """Leave the broker running after this process exits; returns its pid.

        Only meaningful with a persistent data dir: `stop_detached(data_dir)` stops it.
        """
        if self._proc is None:
            raise KafkaLocalError("the broker is not started")
        if self._requested_dir is None:
            raise KafkaLocalError("detach() needs a persistent data_dir")
        atexit.unregister(self.stop)
        pid = self._proc.pid
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return pid

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._port is not None else "stopped"
        return f"LocalKafka({where}, data_dir={self._data_dir})"

    # -- internals

    def _choose_ports(self, previous: Mapping[str, str]) -> tuple[int, int]:
        def previous_port(name: str) -> int | None:
            match = re.search(rf"{name}://[^:,]+:(\d+)", previous.get("listeners", ""))
            return int(match[1]) if match else None

        wanted = [
            self._requested_port or previous_port("PLAINTEXT"),
            self._requested_controller_port or previous_port("CONTROLLER"),
        ]
        if self._requested_port is not None and not port_is_free(self._requested_port):
            raise KafkaLocalError(f"port {self._requested_port} on {HOST} is already in use")
        spare = iter(free_ports(2))
        chosen: list[int] = []
        for candidate in wanted:
            if candidate is None or candidate in chosen or not port_is_free(candidate):
                candidate = next(port for port in spare if port not in chosen)
            chosen.append(candidate)
        return chosen[0], chosen[1]

    @property
    def sasl_bootstrap_servers(self) -> str:
        if self._sasl_port is None:
            raise KafkaLocalError("no SASL listener: start LocalKafka with sasl_users")
        return f"{HOST}:{self._sasl_port}"

    def _sasl_properties(self, port: int, controller_port: int) -> dict[str, str]:
        if not self._sasl_users:
            return {}
        self._sasl_port = self._sasl_port or free_ports(1)[0]
        users = " ".join(f'user_{u}="{pw}"' for u, pw in self._sasl_users.items())
        return {
            "listeners": (
                f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port},"
                f"SASL_PLAINTEXT://{HOST}:{self._sasl_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{HOST}:{port},SASL_PLAINTEXT://{HOST}:{self._sasl_port}"
            ),
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
            ),
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required " + users + ";"
            ),
        }

    def _properties(self, data_dir: Path, port: int, controller_port: int) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data_dir / _LOG_DIRS),
            # One node: every internal topic must fit on it.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "min.insync.replicas": "1",
            "default.replication.factor": "1",
            # The 3 s default delays every test consumer group's first assignment.
            "group.initial.rebalance.delay.ms": "0",
            # More than one partition so that per-key ordering bugs can show up locally.
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            **self._sasl_properties(port, controller_port),
            **self._extra,
        }
        lines = ["# Written by shared/infra/kafka_local.py on every start; edits are lost."]
        lines += [f"{key}={value}" for key, value in props.items()]
        return "\n".join(lines) + "\n"

    def _format(self, java: str, log4j: str, classpath: str, props_path: Path) -> None:
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
        # With controller.quorum.voters (static quorum) the format must not use
        # --standalone, which is for controller.quorum.bootstrap.servers.
        result = subprocess.run(
            [
                java,
                "-Xmx256m",
                log4j,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                # "=" form: a random id may start with "-", which argparse takes for a flag.
                f"--cluster-id={cluster_id}",
                "-c",
                str(props_path),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaLocalError(
                f"kafka-storage format failed (exit {result.returncode}):\n"
                + tail(result.stdout + result.stderr, 40)
            )

    def _wait_ready(self, log_path: Path, log_start: int) -> None:
        proc = self._proc
        assert proc is not None and self._port is not None
        deadline = time.monotonic() + self._startup_timeout

        def failure(reason: str) -> KafkaLocalError:
            return KafkaLocalError(
                f"Kafka broker {reason}; tail of {log_path}:\n{read_tail(log_path, log_start)}"
            )

        # A plain TCP connect first: the JVM takes seconds to open the port, and
        # aiokafka would log a connection error for every early attempt.
        while True:
            if proc.poll() is not None:
                raise failure(f"exited with code {proc.returncode} during startup")
            try:
                socket.create_connection((HOST, self._port), timeout=1.0).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise failure(
                        f"did not open port {self._port} within {self._startup_timeout:.0f} s"
                    ) from None
                time.sleep(0.1)

        # Then a real Kafka round trip (ApiVersions + Metadata listing this broker):
        # the port opens before the broker has registered with its controller.
        bootstrap = self.bootstrap_servers
        error = run_in_fresh_loop(lambda: _probe(bootstrap, deadline, proc))
        if error is not None:
            raise failure(error)


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise KafkaLocalError("Java 17+ is needed for Kafka 4 (Debian: openjdk-17-jre-headless)")
    return found


async def _probe(bootstrap: str, deadline: float, proc: subprocess.Popen[bytes]) -> str | None:
    """None once the broker answers a metadata request listing itself, else why not."""
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode} during startup"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            if cluster.get("brokers"):
                return None
            last_error = "metadata lists no broker yet"
        except Exception as exc:  # any failure here only means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.2)
    return f"did not answer a metadata request in time (last error: {last_error})"


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.infra.kafka_local",
        description="A local single-node Apache Kafka broker (KRaft), no Docker needed.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a detached broker, print host:port")
    start.add_argument("--data-dir", type=Path, required=True)
    start.add_argument("--port", type=int, default=None)
    start.add_argument("--timeout", type=float, default=60.0, help="startup timeout (s)")
    stop = commands.add_parser("stop", help="stop the broker started from --data-dir")
    stop.add_argument("--data-dir", type=Path, required=True)
    status = commands.add_parser("status", help="exit 0 and print host:port if running")
    status.add_argument("--data-dir", type=Path, required=True)
    commands.add_parser("fetch", help="only download the broker jars (Maven)")
    args = parser.parse_args(argv)

    try:
        if args.command == "fetch":
            libs = ensure_kafka_jars()
            print(f"Kafka {kafka_version_of(libs)} jars in {libs}")
            return 0
        data_dir: Path = args.data_dir.resolve()
        if args.command == "start":
            address = read_bootstrap(data_dir)
            if address is None:
                kafka = LocalKafka(data_dir, port=args.port, startup_timeout=args.timeout)
                kafka.start()
                address = kafka.bootstrap_servers
                kafka.detach()
            print(address)
            return 0
        if args.command == "stop":
            stopped = stop_detached(data_dir)
            print("stopped" if stopped else "not running")
            return 0
        address = read_bootstrap(data_dir)
        if address is None:
            print("not running")
            return 1
        print(f"running (pid {running_pid(data_dir)}) at {address}")
        return 0
    except KafkaLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
