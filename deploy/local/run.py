"""`make run`: the whole system on this machine, no Docker.

- Kafka: the broker named by `KAFKA_BOOTSTRAP_SERVERS`, else an embedded single-node
  KRaft Apache Kafka started from Maven Central jars (data kept in `.run/kafka`).
- Databases: each service's `*_DATABASE_URL`, else its embedded SQLite file in `.run/`.
- Services: one process per service (`python -m services.<name> serve --demo`), as in
  production; each runs its API, its outbox relay and its consumers.

Prints the API docs' URLs and a development token, then runs until Ctrl-C, SIGTERM or
SIGHUP, which stop every service and the embedded broker in order; if this process is
killed outright (SIGKILL), the kernel and `guardian.py` stop them instead.

Refused at once, before anything starts, with one line saying why: a second `make run`
on the same data dir (an exclusive lock, `<data dir>/make-run.lock`), or one of its
ports already taken (naming the program that holds it).

While it runs, `<data dir>/local-run.json` says where its broker and data dir are, so
the commands run beside it (`python -m services.site_registry import-sirene …`,
`… detection rebuild-ledger`, `… redrive`) find them by themselves (see
`shared/localrun.py` and the settings' precedence in `shared/settings.py`).

`--check` starts everything, verifies the demo territory is loaded, and exits; with
`--smoke` it also drives the whole flow through the services and fails on any
dead-lettered message (used by the end-to-end tests of `make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = "make-run.lock"
SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # python package under services/
    env_prefix: str
    port: int
    args: tuple[str, ...] = ("serve",)


SERVICES = (
    ServiceSpec("site_registry", "SITE_REGISTRY_", 8001, ("serve", "--demo")),
    ServiceSpec("campaigns", "CAMPAIGNS_", 8002),
    ServiceSpec("detection", "DETECTION_", 8003),
    ServiceSpec("funding", "FUNDING_", 8004),
)
#: the web pages: no database, no topic; it relays the browser's calls to the four APIs
WEB = ServiceSpec("web", "WEB_", 8005)
PROCESSES = (*SERVICES, WEB)


def say(message: str, *, stream: IO[str] | None = None) -> None:
    # After a SIGHUP the terminal may be gone: a failed print must not stop the cleanup.
    with contextlib.suppress(OSError, ValueError):
        print(f"[rebond] {message}", file=stream or sys.stdout, flush=True)


# --------------------------------------------- refused at once: a second run, a busy port


class Refused(Exception):
    """`make run` cannot start; the message is the one line that says why."""


def take_lock(data_dir: Path) -> int:
    """An exclusive lock on the data dir, held (with the guardian) until everything is
    stopped; the file holds the pid of the `make run` that has it."""
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise Refused(already_running(data_dir, holder)) from None
    except OSError as exc:  # a file system without locks
        os.close(fd)
        raise Refused(f"cannot lock {path} ({exc}); use another --data-dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def already_running(data_dir: Path, holder: str) -> str:
    from shared.localrun import pid_alive

    if not holder.isdigit():
        return f"another `make run` is already running from {data_dir}; stop it first"
    pid = int(holder)
    if pid_alive(pid):
        return (
            f"another `make run` (pid {pid}) is already running from {data_dir};"
            f" stop it first (Ctrl-C in its terminal, or kill {pid})"
        )
    return (
        f"the previous `make run` from {data_dir} (pid {pid}) was killed and its processes"
        " are still being stopped; try again in a few seconds"
    )


def check_ports(wanted: dict[int, str]) -> None:
    """Refuse when one of the ports (port → host) is taken, saying by whom."""
    from shared.infra._process import port_is_free

    for port, host in wanted.items():
        if port_is_free(port, host):
            continue
        low, high = min(wanted), max(wanted)
        raise Refused(
            f"port {port} is already in use by {holder_of(port)}; `make run` needs ports"
            f" {low}-{high}: stop that program, or move them"
            " (`uv run python deploy/local/run.py --port-offset 100`)"
        )


def holder_of(port: int) -> str:
    """Who listens on `port`: 'pid N (its command line)', from the socket's inode in
    /proc/net/tcp{,6} and the process whose /proc/<pid>/fd points at it."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 the inode.
                if (
                    len(fields) > 9
                    and fields[3] == "0A"
                    and fields[9] != "0"
                    and int(fields[1].rpartition(":")[2], 16) == port
                ):
                    sockets.add(f"socket:[{fields[9]}]")
    if sockets:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (proc / "fd").iterdir():
                    with contextlib.suppress(OSError):
                        if os.readlink(fd) in sockets:
                            return describe_process(int(proc.name))
    return "another program"


def command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    if words and words[0] == sys.executable:
        words[0] = Path(words[0]).name
    text = " ".join(" ".join(words).split())  # one line, whatever the arguments hold
    return text if len(text) <= 160 else text[:157] + "..."


def describe_process(pid: int) -> str:
    text = f"pid {pid} ({command_line(pid) or 'command line unknown'})"
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        parent = int(stat.rpartition(")")[2].split()[1])
        if "run.py" in (command_line(parent) or ""):
            text += f", a service of another `make run` (pid {parent})"
    return text


# ---------------------------------------------------------------------------- signals


class Stopped(BaseException):
    """SIGTERM, SIGHUP or SIGINT: unwind into the orderly shutdown. A BaseException, so
    that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Signals:
    """The three stop signals raise `Stopped` once; while a child is being registered
    (`deferred`) or once the shutdown has begun (`ignore`), they wait or are dropped."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferred = 0
        self._ignoring = False

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)

    def ignore(self) -> None:
        self._ignoring = True

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._ignoring or self.received is not None:
            return  # already stopping: the cleanup goes on
        self.received = signum
        if not self._deferred:
            raise Stopped(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1
        if not self._deferred and self.received is not None and not self._ignoring:
            raise Stopped(self.received)


# ------------------------------------------------------------------- the child processes


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to SIGTERM the child when this process dies.

    The services run in their own sessions (so that a Ctrl-C in the terminal reaches only
    this process, which stops them in order); a signal to this process no longer reaches
    them, and if it dies without cleaning up (SIGKILL, the OOM killer) nothing would stop
    them: they would keep their ports. Linux's PR_SET_PDEATHSIG makes the kernel signal
    them when their parent goes, whatever killed it. It fires when the *thread* that
    forked exits: children are spawned from the main thread only. Elsewhere (macOS) the
    guardian alone covers this.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class Guardian:
    """The process that stops what we started if we die without doing it (guardian.py)."""

    def __init__(self, data_dir: Path, lock_fd: int) -> None:
        with (data_dir / "guardian.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("guardian.py")), str(lock_fd)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(lock_fd,),
                start_new_session=True,
            )

    def tell(self, **order: object) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.write((json.dumps(order) + "\n").encode())
            self.proc.stdin.flush()

    def done(self) -> None:
        self.tell(done=True)
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ServiceFailed(Exception):
    pass


class Stack:
    """What `make run` started, and how to stop it all (services, then the broker)."""

    def __init__(self, data_dir: Path, env: dict[str, str], signals: Signals) -> None:
        self.data_dir = data_dir
        self.env = env
        self.signals = signals
        self.guardian: Guardian | None = None
        self.broker: Any = None  # LocalKafka, when we started the embedded one
        self.kafka_dir: Path | None = None
        self.procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []
        self._logs: list[IO[bytes]] = []
        self._run_file = False

    def start_guardian(self, lock_fd: int) -> None:
        self.guardian = Guardian(self.data_dir, lock_fd)

    def start_kafka(self) -> None:
        env = self.env
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            say(f"Kafka: using {env['KAFKA_BOOTSTRAP_SERVERS']} (KAFKA_BOOTSTRAP_SERVERS)")
            return
        from shared.infra.kafka_local import (
            KafkaLocalError,
            LocalKafka,
            running_pid,
            stop_detached,
        )

        self.kafka_dir = self.data_dir / "kafka"
        assert self.guardian is not None
        self.guardian.tell(kafka=str(self.kafka_dir))
        left = running_pid(self.kafka_dir)
        if left is not None:  # we hold the lock: no `make run` uses it any more
            say(f"Kafka: stopping the broker a killed `make run` left running (pid {left})")
            stop_detached(self.kafka_dir)
        say("Kafka: starting the embedded Apache Kafka (first run fetches its jars)…")
        try:
            self.broker = LocalKafka(self.kafka_dir).start()
        except KafkaLocalError as exc:  # no Java, no Maven, a broker that would not start
            raise ServiceFailed(f"Kafka: {exc}") from None
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap_servers
        say(
            f"Kafka: Apache Kafka {self.broker.version} (KRaft) at"
            f" {self.broker.bootstrap_servers} (pid {self.broker.pid})"
        )

    def start_services(self, offset: int) -> None:
        """Start the four at once (each creates the topics it uses and its consumers read
        from the earliest offset, so no order is needed), then wait for each."""
        from shared.localrun import process_start

        preexec = die_with_parent()
        for spec in PROCESSES:
            port = spec.port + offset
            svc_env = dict(self.env)
            if spec is WEB:  # the APIs it relays to, where this run put them
                for api in SERVICES:
                    svc_env[f"WEB_{api.env_prefix}URL"] = f"http://127.0.0.1:{api.port + offset}"
            svc_env[f"{spec.env_prefix}DATA_DIR"] = str(self.data_dir)
            svc_env[f"{spec.env_prefix}HTTP_PORT"] = str(port)
            db = svc_env.get(f"{spec.env_prefix}DATABASE_URL") or (
                f"SQLite {self.data_dir / (spec.name + '.db')}" if spec is not WEB else "none"
            )
            log_path = self.data_dir / f"{spec.name}.log"
            log = log_path.open("ab")
            self._logs.append(log)
            with self.signals.deferred():  # no signal between the fork and the bookkeeping
                proc = subprocess.Popen(
                    [sys.executable, "-m", f"services.{spec.name}", *spec.args],
                    cwd=ROOT,
                    env=svc_env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=preexec,  # safe: no other thread runs at this point
                )
                self.procs.append((spec, proc))
                assert self.guardian is not None
                self.guardian.tell(group=proc.pid, start=process_start(proc.pid))
            say(
                f"{spec.name}: starting on port {port} (pid {proc.pid}; database: {db};"
                f" log: {log_path})"
            )
        for spec, proc in self.procs:
            port = spec.port + offset
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            except (RuntimeError, TimeoutError) as exc:
                raise ServiceFailed(
                    f"{spec.name}: {exc}; see {self.data_dir / (spec.name + '.log')}"
                ) from None

    def publish_run_file(self, offset: int) -> Path:
        from shared import localrun

        path = localrun.write(
            self.data_dir,
            localrun.LocalRun(
                pid=os.getpid(),
                pid_start=localrun.process_start(os.getpid()),
                bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"],
                data_dir=str(self.data_dir),
                topic_prefix=self.env.get("KAFKA_TOPIC_PREFIX", ""),
                http_ports={spec.name: spec.port + offset for spec in PROCESSES},
            ),
        )
        self._run_file = True
        assert self.guardian is not None
        self.guardian.tell(file=str(self.data_dir), pid=os.getpid())
        return path

    def exited(self) -> list[tuple[ServiceSpec, int]]:
        return [(spec, p.returncode) for spec, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        if self._run_file:
            from shared import localrun

            localrun.remove(self.data_dir, os.getpid())
        for _, proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for spec, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{spec.name} did not stop in {STOP_GRACE_S:.0f} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()
        if self.broker is not None:
            self.broker.stop()
        elif self.kafka_dir is not None:
            stop_unregistered_broker(self.kafka_dir)  # its start was interrupted
        if self.guardian is not None:
            self.guardian.done()


def stop_unregistered_broker(kafka_dir: Path) -> None:
    """A broker JVM of `kafka_dir` whose start was interrupted before its pid file was
    written: found by its command line (it names its server.properties)."""
    from shared.infra.kafka_local import stop_detached

    stop_detached(kafka_dir)
    marker = str(kafka_dir / "server.properties")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and marker in (command_line(int(proc.name)) or ""):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(proc.name), signal.SIGKILL)


# ------------------------------------------------------------------------------- HTTP


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} during start-up")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class SmokeFailed(Exception):
    pass


def call(method: str, url: str, token: str, body: object = None) -> tuple[int, Any]:
    """(status, JSON body); a 4xx or 5xx is a failed smoke, with the service's answer."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise SmokeFailed(
            f"{method} {url} answered {exc.code}: {exc.read().decode(errors='replace')[:500]}"
        ) from None


def get_json(url: str, token: str) -> Any:
    return call("GET", url, token)[1]


def send_json(url: str, token: str, body: object) -> Any:
    return call("POST", url, token, body)[1]


def poll(
    fetch: Callable[[], Any], ok: Callable[[Any], bool], what: str, timeout: float = 60.0
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        with contextlib.suppress(SmokeFailed):
            last = fetch()
            if ok(last):
                return last
        if time.monotonic() > deadline:
            raise SmokeFailed(f"{what} not reached in {timeout:.0f} s (last: {str(last)[:300]})")
        time.sleep(0.2)


def mint(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "shared.auth", "mint", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


# ------------------------------------------------------------------------------ smoke

BRIDGESTONE = "36120038900019"
#: the two Faurecia plants of ti-3205 (real IREP sites, one SIREN: 071502397)
FAURECIA = ("07150239700020", "07150239700061")
EXOGENOUS_JOBS = 50


def smoke(env: dict[str, str], offset: int, data_dir: Path) -> None:
    """The whole flow through the running services: shock → campaign → survey → project →
    qualification → funding matches → ledger; then a resubmitted survey, a firm with two
    sites, an exogenous project declared twice, the closing site registered again — and
    no dead letter anywhere, and a ledger that adds up."""
    url = {spec.name: f"http://127.0.0.1:{spec.port + offset}" for spec in SERVICES}
    registry, campaigns, detection = url["site_registry"], url["campaigns"], url["detection"]
    cell = mint(env, "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "smoke-cell")
    shock: Any = send_json(
        f"{registry}/closure-shocks",
        cell,
        {"site_id": BRIDGESTONE, "announced_on": "2020-09-16", "jobs_lost": 900},
    )
    ledger_url = f"{detection}/shocks/{shock['id']}/ledger"
    campaign: Any = poll(
        lambda: get_json(f"{campaigns}/campaigns", cell),
        lambda cs: bool(cs) and cs[0]["targets"] == 164,
        "campaign of 164 targets",
    )[0]
    say(f"smoke: campaign {campaign['id']} with {campaign['targets']} targets")
    jobs_of_leads: dict[str, int] = {}  # lead id → its latest jobs figure

    # A survey with one project lead, at consultant-1's first visit (not a Faurecia plant).
    consultant = mint(
        env, "--role", "consultant", "--territory", "ti-3205", "--sub", "consultant-1"
    )
    start = campaign["starts_on"]
    visits: Any = get_json(f"{campaigns}/me/visits?from={start}&days=31", consultant)
    visit = next((v for v in visits["items"] if v["site_id"] not in FAURECIA), None)
    if visit is None:
        raise SmokeFailed(f"consultant-1 has no visit in the 31 days from {start}")
    lead = {
        "kind": "decarbonation_energy",
        "description": "smoke test project",
        "capex_eur": 1_000_000,
        "jobs_to_create": 8,
        "maturity": "ready",
        "known_to_public_actors": False,
        "funding_need_eur": 300_000,
        "consent_to_share": True,
    }
    survey_url = f"{campaigns}/visits/{visit['id']}/survey"
    first: Any = send_json(
        survey_url, consultant, {"questionnaire_version": "2026-1", "projects": [lead]}
    )
    lead_id = first["lead_ids"][0]
    jobs_of_leads[lead_id] = 8
    projects: Any = poll(
        lambda: get_json(f"{detection}/projects", cell),
        lambda p: len(p["items"]) == 1,
        "the survey's project",
    )
    project_id = projects["items"][0]["id"]
    send_json(f"{detection}/projects/{project_id}/qualify", cell, {})
    matches: Any = poll(
        # the reasons of the rejected schemes are computed on request (`rejected=true`)
        lambda: get_json(f"{url['funding']}/projects/{project_id}/matches?rejected=true", cell),
        lambda m: "eligible" in m and m.get("rejected") is not None,
        "funding matches",
    )
    say(
        f"smoke: project {project_id} qualified; funding: {len(matches['eligible'])} eligible,"
        f" {len(matches['rejected'])} rejected schemes, each with its reasons"
    )
    ledger: Any = poll(
        lambda: get_json(ledger_url, cell),
        lambda led: led["total"]["detected"] == 8,
        "the ledger",
    )
    say(f"smoke: ledger: {ledger['jobs_lost']} jobs lost, {ledger['total']['detected']} detected")

    # (a) The same survey resubmitted: same lead id, more jobs → the same project changes.
    again: Any = send_json(
        survey_url,
        consultant,
        {
            "questionnaire_version": "2026-1",
            "projects": [{**lead, "lead_id": lead_id, "jobs_to_create": 12}],
        },
    )
    if again["lead_ids"] != [lead_id]:
        raise SmokeFailed(f"the resubmission changed the lead ids: {again['lead_ids']}")
    jobs_of_leads[lead_id] = 12
    poll(
        lambda: get_json(f"{detection}/projects/{project_id}", cell),
        lambda p: p["jobs_planned"] == 12,
        "the resubmitted figures on the project",
    )
    count = len(get_json(f"{detection}/projects", cell)["items"])
    if count != 1:
        raise SmokeFailed(f"the resubmission made {count} projects instead of 1")
    say(
        f"smoke: survey resubmitted (revision {again['revision']}, same lead):"
        f" project {project_id} now plans 12 jobs, still 1 project"
    )

    # (b) One firm, two sites: a new line reported at each Faurecia plant.
    plan: Any = get_json(f"{campaigns}/campaigns/{campaign['id']}/plan", cell)
    targets = {t["site_id"]: t for t in plan["targets"]}
    found: list[Any] = []
    faurecia_jobs = (30, 20)
    for siret, jobs in zip(FAURECIA, faurecia_jobs, strict=True):
        target = targets.get(siret)
        if target is None or not target.get("visit_id") or not target.get("consultant_id"):
            raise SmokeFailed(f"Faurecia {siret} has no planned visit: {target}")
        token = mint(
            env, "--role", "consultant", "--territory", "ti-3205", "--sub", target["consultant_id"]
        )
        out: Any = send_json(
            f"{campaigns}/visits/{target['visit_id']}/survey",
            token,
            {
                "questionnaire_version": "2026-1",
                "projects": [
                    {
                        "kind": "new_line",
                        "description": f"smoke: a new production line at {siret}",
                        "capex_eur": 4_000_000,
                        "jobs_to_create": jobs,
                        "maturity": "study",
                        "known_to_public_actors": True,
                        "consent_to_share": True,
                    }
                ],
            },
        )
        jobs_of_leads[out["lead_ids"][0]] = jobs
        found.append(project_at(detection, cell, siret))
    flagged: Any = poll(
        lambda: get_json(f"{detection}/projects?under_review=true", cell),
        lambda p: any(i["id"] == found[1]["id"] for i in p["items"]),
        "the second Faurecia project under review",
    )
    second = next(i for i in flagged["items"] if i["id"] == found[1]["id"])
    if second["possible_duplicate_of"] != found[0]["id"]:
        raise SmokeFailed(
            f"Faurecia's second project is flagged as a duplicate of"
            f" {second['possible_duplicate_of']}, not of {found[0]['id']}"
        )
    under_review = faurecia_jobs[1]  # the second plant's project, in full, and apart
    ledger = poll(
        lambda: get_json(ledger_url, cell),
        lambda led: (
            led["total"]["jobs_under_review"] == under_review
            and led["total"]["detected"] == sum(jobs_of_leads.values())
        ),
        "the ledger with Faurecia's two projects",
    )
    say(
        f"smoke: one firm, two sites: project {found[1]['id']} under review as a possible"
        f" duplicate of {found[0]['id']}; ledger: {ledger['total']['detected']} detected,"
        f" {ledger['total']['jobs_under_review']} under review"
    )

    # (c) An exogenous project declared twice with the same body: two projects, one flagged.
    exogenous = {
        "territory_id": "ti-3205",
        "shock_id": shock["id"],
        "firm_name": "Blackstar",
        "kind": "new_site",
        "description": "smoke: a plant from outside looking for 10 ha",
        "jobs_planned": EXOGENOUS_JOBS,
        "consent_to_share": True,
    }
    declared = [call("POST", f"{detection}/projects/exogenous", cell, exogenous) for _ in range(2)]
    statuses = [status for status, _ in declared]
    if statuses != [201, 201]:
        raise SmokeFailed(f"declaring an exogenous project twice answered {statuses}")
    (_, one), (_, two) = declared
    if two["possible_duplicate_of"] != one["id"]:
        raise SmokeFailed(f"the second declaration is not flagged as a duplicate of {one['id']}")
    exogenous_jobs = 2 * EXOGENOUS_JOBS
    ledger = poll(
        lambda: get_json(ledger_url, cell),
        lambda led: (
            led["total"]["jobs_under_review"] == under_review + EXOGENOUS_JOBS
            and led["total"]["detected"] == sum(jobs_of_leads.values()) + exogenous_jobs
        ),
        "the ledger with the exogenous projects",
    )
    say(
        f"smoke: exogenous project declared twice: 201, 201; project {two['id']} under review"
        f" as a possible duplicate of {one['id']}; ledger: {ledger['total']['detected']}"
        f" detected, {ledger['total']['jobs_under_review']} under review"
    )

    # (d) The closing site registered again by hand, after its shock.
    status, site = call(
        "POST",
        f"{registry}/sites",
        cell,
        {
            "siret": BRIDGESTONE,
            "name": "BRIDGESTONE",
            "naf_code": "22.11Z",
            "headcount_band": "41",
            "commune_insee": "62119",
            "lon": 2.642972,
            "lat": 50.528102,
        },
    )
    say(f"smoke: closing site {BRIDGESTONE} registered again: {status}, {site['status']}")

    # (e) Once every event has been published and consumed: no dead letter anywhere, and
    # a ledger that adds up.
    access, prefix = kafka_access(env), env.get("KAFKA_TOPIC_PREFIX", "")
    databases = {
        spec.name: env.get(f"{spec.env_prefix}DATABASE_URL")
        or f"sqlite+aiosqlite:///{data_dir / (spec.name + '.db')}"
        for spec in SERVICES
    }
    poll(
        lambda: asyncio.run(unsettled(access, prefix, databases)),
        lambda why: why is None,
        "every outbox published and every consumer group caught up",
    )
    dead = asyncio.run(dead_letters(access, prefix))
    say(f"smoke: dead-letter topics: {len(dead)} message(s)")
    for topic, reason in dead:
        say(f"smoke:   {topic}: {reason}")
    if dead:
        raise SmokeFailed(f"{len(dead)} message(s) dead-lettered")
    expected = sum(jobs_of_leads.values()) + exogenous_jobs
    ledger = poll(
        lambda: get_json(ledger_url, cell),
        lambda led: led["total"]["detected"] == expected,
        f"a ledger of {expected} detected jobs",
        timeout=10,
    )
    total = ledger["total"]
    say(
        f"smoke: final ledger: {total['detected']} jobs detected ="
        f" {sum(jobs_of_leads.values())} from {len(jobs_of_leads)} leads reported"
        f" + {exogenous_jobs} exogenous; {total['jobs_under_review']} under review"
    )


def project_at(detection: str, token: str, siret: str) -> Any:
    """The project detected at a site, once detection has it."""
    page = poll(
        lambda: get_json(f"{detection}/projects?limit=500", token),
        lambda p: any(i["site_id"] == siret for i in p["items"]),
        f"the project at {siret}",
    )
    return next(i for i in page["items"] if i["site_id"] == siret)


def kafka_access(env: dict[str, str]) -> Any:
    """The services' own way to reach the broker (TLS, SASL), from the same variables."""
    from shared.settings import ServiceSettings

    class Access(ServiceSettings):
        needs_database = False

    return Access(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        environment=env.get("REBOND_ENVIRONMENT", "development"),  # the services' own
    ).kafka_access()


async def unsettled(access: Any, prefix: str, databases: dict[str, str]) -> str | None:
    """None once nothing is in flight, else what still is. Sound without any fixed wait:
    outboxes empty, then no consumer lag, then outboxes still empty, and no topic grew
    meanwhile (a consumer commits its database, outbox rows included, before its offset;
    a relay publishing between two looks grows a topic)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**access.client_kwargs())
    consumer = AIOKafkaConsumer(**access.client_kwargs(), enable_auto_commit=False)
    await admin.start()
    try:
        await consumer.start()
        before = await topic_ends(consumer, prefix)
        behind = (
            await unsent(databases)
            or await consumer_lag(admin, consumer, prefix)
            or await unsent(databases)
        )
        if behind:
            return str(behind)
        if await topic_ends(consumer, prefix) != before:
            return "events still being published"
        return None
    finally:
        await consumer.stop()
        await admin.close()


async def topic_ends(consumer: Any, prefix: str) -> dict[Any, int]:
    from aiokafka import TopicPartition

    from shared.events.catalogue import ALL_TOPICS

    cluster = await consumer._client.fetch_all_metadata()  # as shared/messaging/redrive.py
    tps = [
        TopicPartition(name, partition)
        for topic in ALL_TOPICS
        for name in (topic.physical(prefix), topic.physical_dlq(prefix))
        for partition in sorted(cluster.partitions_for_topic(name) or ())
    ]
    return dict(await consumer.end_offsets(tps)) if tps else {}


async def unsent(databases: dict[str, str]) -> dict[str, int]:
    """Outbox rows not yet published, per service."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    counts: dict[str, int] = {}
    for service, url in databases.items():
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                query = text("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL")
                count = (await conn.execute(query)).scalar_one()
        finally:
            await engine.dispose()
        if count:
            counts[f"{service} outbox"] = int(count)
    return counts


async def consumer_lag(admin: Any, consumer: Any, prefix: str) -> dict[str, int]:
    """Messages not yet processed, per consumer group of this run's services."""
    from aiokafka import TopicPartition

    cluster = await consumer._client.fetch_all_metadata()
    names = tuple(f"{prefix}{spec.name}." for spec in SERVICES)
    groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(names)]
    behind: dict[str, int] = {}
    for group in groups:
        committed = {
            tp: meta.offset for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
        }
        # Every partition of the topics it reads, committed or not yet (= 0).
        tps = [
            TopicPartition(topic, partition)
            for topic in sorted({tp.topic for tp in committed})
            for partition in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        ends = await consumer.end_offsets(tps)
        lag = sum(max(0, ends[tp] - max(0, committed.get(tp, 0))) for tp in tps)
        if lag:
            behind[group] = lag
    if not groups:
        behind["(no consumer group yet)"] = 1
    return behind


async def dead_letters(access: Any, prefix: str) -> list[tuple[str, str]]:
    """(topic, dlq_reason) of every message on the dead-letter topics."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from shared.events.catalogue import ALL_TOPICS

    consumer = AIOKafkaConsumer(
        **access.client_kwargs(), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(topic.physical_dlq(prefix), partition)
            for topic in ALL_TOPICS
            for partition in sorted(cluster.partitions_for_topic(topic.physical_dlq(prefix)) or ())
        ]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[tuple[str, str]] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        deadline = time.monotonic() + 30
        while remaining and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(*remaining, timeout_ms=500)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        headers = dict(record.headers or ())
                        reason = headers.get("dlq_reason", b"(no dlq_reason)").decode()
                        found.append((tp.topic, reason))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            found.append(("(unread)", f"partitions not read to their end: {sorted(remaining)}"))
        return found
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run")
    from shared.localrun import DATA_DIR_VAR, default_data_dir

    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help=f"default: ${DATA_DIR_VAR}, else .run/ in the checkout",
    )
    parser.add_argument("--check", action="store_true", help="start, verify, stop")
    parser.add_argument("--port-offset", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="with --check: run the whole flow")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    env.setdefault("REBOND_ENVIRONMENT", "development")
    env.setdefault("PYTHONUNBUFFERED", "1")
    ports = {
        spec.port + args.port_offset: env.get(f"{spec.env_prefix}HTTP_HOST", "127.0.0.1")
        for spec in PROCESSES
    }
    signals = Signals()
    signals.install()  # from here on, the three signals stop everything in order
    stack = Stack(data_dir, env, signals)
    lock_fd: int | None = None
    stopped_by: int | None = None
    try:
        lock_fd = take_lock(data_dir)
        check_ports(ports)
        stack.start_guardian(lock_fd)
        stack.start_kafka()
        stack.start_services(args.port_offset)
        run_file = stack.publish_run_file(args.port_offset)

        token = mint(env, "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "demo-cell")
        registry_port = SERVICES[0].port + args.port_offset
        detail = get_json(f"http://127.0.0.1:{registry_port}/territories/ti-3205", token)
        assert isinstance(detail, dict)
        say(
            f"Béthune demo loaded: {detail['name']}, {len(detail['communes'])} communes,"
            f" sites {detail['site_counts']}"
        )
        for spec, _ in stack.procs:
            if spec is not WEB:
                say(f"{spec.name} API docs: http://127.0.0.1:{spec.port + args.port_offset}/docs")
        say(
            f"Web pages (crisis cell, consultants, funders): http://127.0.0.1:"
            f"{WEB.port + args.port_offset}/ (development login: choose a role and a scope)"
        )
        say("Development token (crisis cell of ti-3205), valid 12 h:")
        with contextlib.suppress(OSError):
            print(token, flush=True)
        say(
            'Try: curl -H "Authorization: Bearer $TOKEN"'
            f" http://127.0.0.1:{registry_port}/sites/{BRIDGESTONE}"
        )
        say(
            f"Commands run beside it (import-sirene, rebuild-ledger, redrive) find this"
            f" broker and data dir in {run_file}"
        )
        if args.check:
            if (
                detail["site_counts"].get("active", 0)
                + detail["site_counts"].get("closure_announced", 0)
                < 165
            ):
                say("check failed: the demo territory is not fully loaded")
                return 1
            if args.smoke:
                smoke(env, args.port_offset, data_dir)
            say("check passed")
            return 0
        say("Running. Ctrl-C stops everything.")
        while not stack.exited():
            time.sleep(0.5)
        for spec, code in stack.exited():
            say(f"{spec.name} exited with code {code}; see {data_dir / (spec.name + '.log')}")
        return 1
    except Refused as refused:
        say(str(refused), stream=sys.stderr)
        return 1
    except (ServiceFailed, SmokeFailed) as failed:
        say(f"check failed: {failed}" if args.check else f"error: {failed}", stream=sys.stderr)
        return 1
    except Stopped as stop:
        stopped_by = stop.signum
        say(f"{signal.Signals(stop.signum).name}: stopping every process `make run` started…")
        return 128 + stop.signum if args.check else 0
    finally:
        signals.ignore()  # a second signal must not cut the cleanup short
        stack.stop()
        if lock_fd is not None:
            os.close(lock_fd)
        if stopped_by is not None:
            say("stopped")


if __name__ == "__main__":
    raise SystemExit(main())
