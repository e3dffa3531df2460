"""Ledger rebuild: how fast `python -m services.detection rebuild-ledger` replays the
projects topic into the job-compensation ledger, and whether the ledger it rebuilds is
the one the events describe.

1. A fresh PostgreSQL database and topic prefix; the projects and sites topics created.
2. GENERATED data, never real: 100,000 project events (`BENCH_LEDGER_EVENTS`), the life
   cycles of some 20,000 projects of ti-3205 (detected, updated, qualified, in funding,
   refused, funded, launched, jobs created, abandoned; legal stage moves only, versions
   1, 2, 3... per project, detected 2021-2025), plus the closure shock they answer (900
   jobs lost, announced 2020-09-16) on the sites topic. Every firm name starts with
   "GENERATED" and every envelope's `ce_source` is `bench-generator`. Published with one
   producer that does not await each acknowledgement; its throughput is printed too.
   (A volume test, not a plausible territory: 20,000 projects against one 900-job shock
   put the rates in the hundreds.)
3. The EXPECTED ledger, computed here by `domain.ledger.ledger` from the generator's own
   bookkeeping of each project's final state (never read back from the database).
4. BASELINE of the rebuild's rate: the same topics read to their end by a plain aiokafka
   consumer (`shared.messaging.replay.records_to_end`, the rebuild's own reader, with
   nothing decoded or written), as a process, 3 times.
5. The rebuild, 3 times per worker count of BENCH_LEDGER_WORKERS ("2,0": decoded by 2
   spawned processes, then in the CLI's own, the default; each run drops the
   ledger and rebuilds it): the real CLI as a process, its wall and CPU time and peak
   RSS (`os.wait4`: its reaped workers included), the `seconds` it reports, and its rate
   against the raw read's (the ratio, for the last worker count). With
   BENCH_LEDGER_PROFILE=1, one more rebuild under cProfile
   (`.run/bench/ledger/rebuild.prof`, top functions printed).
6. The ledger read from the database in-process (`views.shock_ledger`) against the
   expected one: equal, or the keys that differ.
7. Ledger reads over HTTP (`tests/bench/ledger_app.py`: the real detection app, workers
   off, served by uvicorn as a process), one client, sequential: `GET /shocks/{id}/ledger`
   (the kept counts) BENCH_LEDGER_READS times, and the BASELINE, the ledger computed at
   read time from every project's row as the route did before issue 13, on the same
   server and token, BENCH_LEDGER_BASELINE_READS times; p50/p95 of each, and the bodies
   compared. First on the rebuilt database (~20,000 projects), then on a database of
   BENCH_LEDGER_SCALE (10) × those projects (~200,000): the generated projects' rows
   replicated with fresh ids (GENERATED too), written in bulk and counted by the
   rebuild's recount (timed) — reads depend on rows and counts only, not on how they came.

Environment: BENCH_LEDGER_EVENTS (100000; 1000000 works, slowly: generation and
publishing take minutes), BENCH_LEDGER_REBUILDS (3), BENCH_LEDGER_READS (200),
BENCH_LEDGER_BASELINE_READS (20, or fewer, at least 3, once BENCH_LEDGER_READ_BUDGET_S,
120, have passed), BENCH_LEDGER_SCALE (10; 0: no large read),
BENCH_LEDGER_PROFILE (unset), BENCH_LEDGER_WORKERS (2,0). Logs of the processes in
`.run/bench/ledger/`. The machine's load (`os.getloadavg`) is recorded before and
after each step: on a shared machine the rates move with it, the ratios less.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_args

from services.detection.domain.ledger import Ledger, LedgerProject, Shock, ledger
from services.detection.domain.stages import Stage, check_transition
from services.detection.entrypoints.schemas import LedgerOut
from shared.events import detection as dt
from shared.events import site_registry as sr
from shared.events.campaigns import Maturity, Obstacle, ProjectKind
from shared.events.catalogue import PROJECTS, SITES
from shared.events.envelope import Envelope
from tests.bench.bench_campaigns import (
    delete_topics,
    drop_databases,
    free_port,
    percentile,
    say,
)
from tests.bench.infra import on_real_infrastructure
from tests.support.infra import Broker, Database

ROOT = Path(__file__).resolve().parents[2]
EVENTS = int(os.environ.get("BENCH_LEDGER_EVENTS", "100000"))
REBUILDS = int(os.environ.get("BENCH_LEDGER_REBUILDS", "3"))
# `DETECTION_REBUILD_WORKERS` of the rebuilds, each run REBUILDS times; the last is the
# headline figure (0, the setting's default: decoded in the CLI's own process).
WORKERS = [int(n) for n in os.environ.get("BENCH_LEDGER_WORKERS", "2,0").split(",") if n]
READS = int(os.environ.get("BENCH_LEDGER_READS", "200"))
BASELINE_READS = int(os.environ.get("BENCH_LEDGER_BASELINE_READS", "20"))
BASELINE_BUDGET_S = float(os.environ.get("BENCH_LEDGER_READ_BUDGET_S", "120"))
SCALE = int(os.environ.get("BENCH_LEDGER_SCALE", "10"))
PROFILE = bool(os.environ.get("BENCH_LEDGER_PROFILE"))
RAW_READS = 3
SEED = 3205
SOURCE = "bench-generator"  # the `ce_source` of every GENERATED event
SECRET = "bench-ledger-secret-of-at-least-32-characters"
LOGS = ROOT / ".run" / "bench" / "ledger"
REBUILD_TIMEOUT_S = 600.0
PUBLISH_CHUNK = 10_000  # sends in flight before their acknowledgements are awaited

TERRITORY = "ti-3205"
SHOCK_ID = uuid.UUID("6c0b5e55-3205-4000-8000-000000000900")
CAMPAIGN_ID = uuid.UUID("6c0b5e55-3205-4000-8000-00000000ca11")
ANNOUNCED_ON = date(2020, 9, 16)
JOBS_LOST = 900
CLOSING_SITE = "36120038900019"  # the closure's site (a real SIRET; the shock is GENERATED)
FIRST_DAY = date(2021, 1, 1)
LAST_MOMENT = datetime(2025, 12, 31, 23, 59, tzinfo=UTC)  # no event after it
DETECTION_DAYS = (LAST_MOMENT.date() - FIRST_DAY).days + 1

KINDS: tuple[str, ...] = get_args(ProjectKind)
MATURITIES: tuple[str, ...] = get_args(Maturity)
OBSTACLES: tuple[str, ...] = get_args(Obstacle)
NAF_CODES = ("22.11Z", "25.62B", "28.29B", "10.71C", "20.59Z", "29.32Z", "33.12Z", "46.69B")
ABANDON_REASONS = (
    "the firm dropped the investment",
    "financing could not be closed",
    "the parent group chose another site",
    "market downturn",
)


# --- GENERATED project life cycles --------------------------------------------------------


class _Exhausted(Exception):
    """The event budget is spent: generation stops here."""


class _Later(Exception):
    """The project's next step would come after the data's last moment: it stays put."""


@dataclass
class _Output:
    remaining: int
    events: list[dt.ProjectState] = field(default_factory=list)


class _Life:
    """One GENERATED project: emits its events and keeps, on the side, what the ledger
    should say about it (stage, jobs, first qualified and funded days, job entries)."""

    def __init__(self, n: int, rng: random.Random, out: _Output) -> None:
        self.rng = rng
        self.out = out
        origin = "endogenous" if rng.random() < 0.62 else "exogenous"
        siren = str(rng.randrange(10**8, 10**9))
        day = FIRST_DAY + timedelta(days=rng.randrange(DETECTION_DAYS))
        self.at = datetime(day.year, day.month, day.day, 8, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(600)
        )
        planned = int(rng.lognormvariate(2.3 if origin == "endogenous" else 3.4, 0.8)) + 1
        capex = planned * rng.randrange(40_000, 250_000)
        self.state: dict[str, Any] = {
            "project_id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "territory_id": TERRITORY,
            "shock_id": SHOCK_ID if origin == "endogenous" or rng.random() < 0.6 else None,
            "campaign_id": CAMPAIGN_ID if origin == "endogenous" else None,
            "site_id": f"{siren}{rng.randrange(100_000):05d}" if origin == "endogenous" else None,
            "siren": siren,
            "firm_name": f"GENERATED firm {n:05d}",  # GENERATED: no real company
            "naf_code": rng.choice(NAF_CODES),
            "origin": origin,
            "kind": rng.choice(KINDS),
            "stage": "detected",
            "hidden": rng.random() < 0.3,
            "jobs_planned": min(planned, 800),
            "jobs_created": 0,
            "capex_eur": capex,
            "funding_need_eur": capex // rng.choice((3, 4, 5)),
            "maturity": rng.choice(MATURITIES),
            "obstacles": [o for o in OBSTACLES if rng.random() < 0.15],
            "consent_to_share": rng.random() < 0.8,
            "detected_on": self.at.date(),
        }
        self.version = 0
        self.qualified_on: date | None = None
        self.funded_on: date | None = None
        self.entries: list[tuple[date, int]] = []

    @property
    def stage(self) -> str:
        return str(self.state["stage"])

    def _next(self) -> datetime:
        """When the next step happens (strictly later), or `_Later`/`_Exhausted`."""
        if self.out.remaining == 0:
            raise _Exhausted
        at = self.at + timedelta(days=self.rng.randint(2, 75), minutes=self.rng.randrange(1440))
        if at > LAST_MOMENT:
            raise _Later
        return at

    def _emit(self, event: type[dt.ProjectState], at: datetime, **extra: Any) -> None:
        self.version += 1
        self.at = at
        self.out.events.append(event(**self.state, version=self.version, occurred_at=at, **extra))
        self.out.remaining -= 1

    def _stage(self, target: str, at: datetime) -> str:
        previous = self.stage
        check_transition(Stage(previous), Stage(target))  # the generator moves legally
        self.state["stage"] = target
        if target == "qualified" and self.qualified_on is None:
            self.qualified_on = at.date()
        if target in ("funded", "launched", "jobs_created") and self.funded_on is None:
            self.funded_on = at.date()
        return previous

    def detect(self) -> None:
        if self.out.remaining == 0:
            raise _Exhausted
        source = "survey" if self.state["origin"] == "endogenous" else "crisis_cell"
        self._emit(dt.ProjectDetected, self.at, source=source)

    def update(self) -> None:
        at = self._next()
        self.state["jobs_planned"] = max(1, self.state["jobs_planned"] + self.rng.randint(-5, 12))
        changed = ["jobs_planned"]
        if self.rng.random() < 0.4:
            per_job = self.rng.randrange(40_000, 250_000)
            self.state["capex_eur"] = self.state["jobs_planned"] * per_job
            changed.append("capex_eur")
        source = self.rng.choice(("survey", "crisis_cell"))
        self._emit(dt.ProjectUpdated, at, source=source, changed_fields=changed)

    def qualify(self) -> None:
        at = self._next()
        self._stage("qualified", at)
        self._emit(dt.ProjectQualified, at)

    def move(self, target: str) -> None:
        at = self._next()
        previous = self._stage(target, at)
        self._emit(dt.ProjectStageChanged, at, previous_stage=previous)

    def jobs(self, total: int, *, complete: bool) -> None:
        at = self._next()
        created_on = max(self.at.date(), at.date() - timedelta(days=self.rng.randint(0, 10)))
        added = total - self.state["jobs_created"]
        self._stage("jobs_created", at)
        self.state["jobs_created"] = total
        if added:
            self.entries.append((created_on, added))
        self._emit(dt.JobsCreated, at, jobs_added=added, created_on=created_on, complete=complete)

    def abandon(self) -> None:
        at = self._next()
        previous = self._stage("abandoned", at)
        reason = self.rng.choice(ABANDON_REASONS)
        self._emit(dt.ProjectAbandoned, at, previous_stage=previous, reason=reason)

    def expected(self) -> LedgerProject:
        s = self.state
        return LedgerProject(
            project_id=s["project_id"],
            territory_id=s["territory_id"],
            origin=s["origin"],
            stage=s["stage"],
            jobs_planned=s["jobs_planned"],
            jobs_created=s["jobs_created"],
            detected_on=s["detected_on"],
            qualified_on=self.qualified_on,
            funded_on=self.funded_on,
            job_entries=tuple(sorted(self.entries)),
        )


def _live(p: _Life, rng: random.Random) -> None:
    """A project's life, up to where it ends, is still waiting, or time runs out."""
    p.detect()
    if rng.random() < 0.25:
        p.update()
    if rng.random() < 0.12:
        return p.abandon()
    if rng.random() < 0.06:
        return  # still detected
    p.qualify()
    if rng.random() < 0.15:
        p.update()
    while p.stage == "qualified":  # financing, with refused applications tried again
        r = rng.random()
        if r < 0.07:
            return p.abandon()
        if r < 0.12:
            return  # qualified, nothing decided yet
        if r < 0.25:
            p.move("launched")  # self-financed
        elif r < 0.40:
            p.move("funded")  # money without a tracked application
        else:
            p.move("in_funding")
            r = rng.random()
            if r < 0.06:
                return p.abandon()
            if r < 0.12:
                return  # waiting for the funder
            p.move("qualified" if r < 0.27 else "funded")  # refused, or granted
    if p.stage == "funded":
        r = rng.random()
        if r < 0.06:
            return p.abandon()
        if r < 0.14:
            return
        if r < 0.64:
            p.move("launched")
    if p.stage == "launched":
        r = rng.random()
        if r < 0.08:
            return p.abandon()
        if r < 0.20:
            return
    # Jobs, in 1 to 3 reports; reality may beat the plan. Sometimes a last report only
    # says the project is complete (no job added).
    target = max(1, round(p.state["jobs_planned"] * rng.uniform(0.4, 1.25)))
    reports = min(target, rng.choice((1, 2, 2, 3)))  # totals strictly increase
    complete = False
    for k in range(1, reports + 1):
        complete = k == reports and rng.random() < 0.6
        p.jobs(target * k // reports, complete=complete)
    if not complete and rng.random() < 0.1:
        p.jobs(p.state["jobs_created"], complete=True)


@dataclass
class Generated:
    messages: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]  # key, value, headers
    closure: tuple[bytes, bytes, list[tuple[str, bytes]]]
    projects: list[LedgerProject]
    by_type: dict[str, int]
    seconds: float


def generate(events: int) -> Generated:
    """GENERATED project events (never real data), encoded as the relay would send them."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    out = _Output(remaining=events)
    lives: list[_Life] = []
    while out.remaining:
        life = _Life(len(lives), rng, out)
        lives.append(life)
        try:
            _live(life, rng)
        except _Later:
            pass
        except _Exhausted:
            break
    messages = []
    by_type: dict[str, int] = {}
    for event in out.events:
        env = Envelope.new(event, source=SOURCE, time=event.occurred_at)
        messages.append((env.subject.encode(), env.value(), env.headers()))
        by_type[type(event).__name__] = by_type.get(type(event).__name__, 0) + 1
    shock = sr.ClosureAnnounced(
        shock_id=SHOCK_ID,
        site_id=CLOSING_SITE,
        siren="361200389",
        site_name="GENERATED closure shock",
        naf_code="22.11Z",
        commune_insee="62119",
        territory_ids=[TERRITORY],
        announced_on=ANNOUNCED_ON,
        planned_closure_on=date(2021, 4, 30),
        jobs_lost=JOBS_LOST,
        declared_at=datetime(2020, 9, 16, 9, tzinfo=UTC),
        version=2,
    )
    closure = Envelope.new(shock, source=SOURCE, time=shock.declared_at)
    return Generated(
        messages=messages,
        closure=(closure.subject.encode(), closure.value(), closure.headers()),
        projects=[life.expected() for life in lives if life.version],
        by_type=dict(sorted(by_type.items())),
        seconds=time.perf_counter() - started,
    )


def expected_ledger(projects: list[LedgerProject]) -> Ledger:
    shock = Shock(
        shock_id=SHOCK_ID,
        territory_id=TERRITORY,
        announced_on=ANNOUNCED_ON,
        jobs_lost=JOBS_LOST,
        site_id=CLOSING_SITE,
    )
    return ledger(shock, projects)


def as_json(result: Ledger) -> dict[str, Any]:
    """The ledger as the API gives it (`GET /shocks/{id}/ledger`): what is compared."""
    return LedgerOut.of(result).model_dump(mode="json")


# --- publishing ---------------------------------------------------------------------------


async def publish(bootstrap: str, prefix: str, data: Generated) -> dict[str, Any]:
    """Every message through one producer, acknowledgements awaited by chunks."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-ledger-generator",
        linger_ms=20,
        max_batch_size=1 << 20,
        compression_type=None,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        topic = PROJECTS.physical(prefix)
        sent = 0
        for i in range(0, len(data.messages), PUBLISH_CHUNK):
            futures = [
                await producer.send(topic, value=value, key=key, headers=headers)
                for key, value, headers in data.messages[i : i + PUBLISH_CHUNK]
            ]
            await asyncio.gather(*futures)
            sent += len(futures)
        seconds = time.perf_counter() - started
        key, value, headers = data.closure
        await (await producer.send(SITES.physical(prefix), value=value, key=key, headers=headers))
    finally:
        await producer.stop()
    payload = sum(len(v) for _, v, _ in data.messages)
    return {
        "messages": sent,
        "seconds": round(seconds, 2),
        "messages_per_s": round(sent / seconds),
        "payload_mib": round(payload / 2**20, 1),
        "payload_mib_per_s": round(payload / 2**20 / seconds, 1),
    }


# --- the rebuild, as the real CLI process ---------------------------------------------------


def cli_env(broker: Broker, db_url: str, prefix: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DETECTION_") and k not in ("KAFKA_TOPIC_PREFIX", "REBOND_LOG_LEVEL")
    }
    env.update(
        {
            "DETECTION_DATABASE_URL": db_url,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": prefix,
            "REBOND_ENVIRONMENT": "test",
            "REBOND_JWT_SECRET": SECRET,
            "REBOND_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


# The CLI runs under this small launcher, which waits for it with `wait4` and writes its
# wall time and peak RSS to a file. Not waited for from here: on Linux a child's ru_maxrss
# starts from the high-water mark of the process it was forked from (exec keeps it), and
# this harness holds the 100,000 generated events; every rebuild would read ~600 MiB.
LAUNCHER = """\
import json, os, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    cpu = usage.ru_utime + usage.ru_stime
    json.dump({"exit": code, "wall": wall, "cpu": cpu, "maxrss_kib": usage.ru_maxrss}, out)
sys.exit(code)
"""


def detection_cli(
    env: dict[str, str], command: str, log: Path, *, profile: Path | None = None
) -> dict[str, Any]:
    """Run `python -m services.detection <command>`; its wall and CPU time and peak RSS,
    and the JSON line it prints last, if any."""
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile is not None else []
    return measured(env, [*profiler, "-m", "services.detection", command], command, log)


def measured(env: dict[str, str], args: list[str], command: str, log: Path) -> dict[str, Any]:
    """Run `python <args>` under the launcher: wall and CPU time, peak RSS, and the JSON
    line it prints last, if any."""
    usage_file = log.with_suffix(".usage.json")
    usage_file.unlink(missing_ok=True)
    cli = [sys.executable, *args]
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(usage_file), *cli],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,  # its own process group: the watchdog ends both
        )
    watchdog = threading.Timer(REBUILD_TIMEOUT_S, os.killpg, (proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout.read().decode()
        proc.wait()
    finally:
        watchdog.cancel()
    if proc.returncode != 0 or not usage_file.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{command} failed ({proc.returncode}); log {log}:\n{tail}")
    usage = json.loads(usage_file.read_text())
    lines = stdout.strip().splitlines()
    summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    summary["wall_seconds"] = round(usage["wall"], 2)
    summary["cpu_seconds"] = round(usage["cpu"], 2)
    summary["peak_rss_mib"] = round(usage["maxrss_kib"] / 1024, 1)  # Linux: KiB
    return summary


# --- reading the rebuilt ledger -------------------------------------------------------------


async def read_ledger(
    broker: Broker, db_url: str, prefix: str
) -> tuple[dict[str, Any] | None, dict[str, int], float]:
    """The shock's ledger as the service computes it from its rows, the row counts, and
    how long the read took."""
    from sqlmodel import func, select

    from services.detection.adapters.orm import LedgerJobEntryRow, LedgerProjectRow, ShockRow
    from services.detection.bootstrap import bootstrap
    from services.detection.service_layer.views import shock_ledger
    from services.detection.settings import DetectionSettings

    svc = bootstrap(
        DetectionSettings(
            database_url=db_url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_topic_prefix=prefix,
            environment="test",
            jwt_secret=SECRET,
        )
    )
    try:
        async with svc.session_factory() as session:
            started = time.perf_counter()
            result = await shock_ledger(session, SHOCK_ID)
            seconds = time.perf_counter() - started
            counts = {}
            for table in (LedgerProjectRow, LedgerJobEntryRow, ShockRow):
                count = await session.exec(select(func.count()).select_from(table))
                counts[str(table.__tablename__)] = int(count.one())
    finally:
        await svc.aclose()
    return None if result is None else as_json(result), counts, seconds


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where two ledgers differ, as `path: expected ..., got ...` lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for k in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{k}" if path else str(k)
            if k not in actual:
                out.append(f"{where}: missing from the database's ledger")
            elif k not in expected:
                out.append(f"{where}: not expected, got {actual[k]!r}")
            else:
                out += differences(expected[k], actual[k], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = []
        if len(expected) != len(actual):
            out.append(f"{path}: {len(expected)} items expected, got {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            label = e.get("month", i) if isinstance(e, dict) else i
            out += differences(e, a, f"{path}[{label}]")
        return out
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


# --- the baselines: a raw read of the topics, the ledger computed at read time ---------------


async def _raw_read(bootstrap: str, topics: list[str]) -> dict[str, Any]:
    from shared.messaging.replay import records_to_end

    started = time.perf_counter()
    messages = 0
    async for records in records_to_end(bootstrap, topics):
        messages += len(records)
    return {"messages": messages, "seconds": round(time.perf_counter() - started, 3)}


def raw_read_main() -> None:
    """`python -c 'from tests.bench.bench_ledger import raw_read_main; raw_read_main()'`:
    the topics of the rebuild read to their end, nothing decoded; one JSON line."""
    from shared.events.catalogue import PROJECTS as P
    from shared.events.catalogue import SITES as S

    prefix = os.environ["KAFKA_TOPIC_PREFIX"]
    topics = [P.physical(prefix), S.physical(prefix)]
    print(json.dumps(asyncio.run(_raw_read(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topics))))


def raw_read(env: dict[str, str], log: Path) -> dict[str, Any]:
    code = "from tests.bench.bench_ledger import raw_read_main; raw_read_main()"
    r = measured(env, ["-c", code], "raw read", log)
    r["messages_per_s"] = round(r["messages"] / r["seconds"])
    return r


def start_app(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.bench.ledger_app"],
            cwd=ROOT,
            env={**env, "BENCH_PORT": str(port)},
            stdout=err,
            stderr=err,
        )


async def http_reads(env: dict[str, str], label: str) -> dict[str, Any]:
    """Start the bench app on the database of `env`; read the shock's ledger over HTTP,
    kept (the route) and recomputed (the baseline); their latencies and whether the
    bodies are equal."""
    import httpx

    from shared.auth import AuthConfig, mint_token

    port = free_port()
    log = LOGS / f"server-{label}.log"
    server = await asyncio.to_thread(start_app, env, port, log)
    base = f"http://127.0.0.1:{port}"
    jwt = mint_token(
        AuthConfig(SECRET), subject="bench-cell", roles=["crisis_cell"], territories=[TERRITORY]
    )
    headers = {"Authorization": f"Bearer {jwt}"}
    route = f"/shocks/{SHOCK_ID}/ledger"
    baseline = f"/bench/shocks/{SHOCK_ID}/ledger-recomputed"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"bench app exited; log {log}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bench app not up within 60 s; log {log}")
                await asyncio.sleep(0.1)

            async def timed(path: str, n: int) -> tuple[list[float], Any]:
                body: Any = None
                first = await client.get(path, headers=headers)  # warm-up, not counted
                first.raise_for_status()
                samples: list[float] = []
                budget = time.monotonic() + BASELINE_BUDGET_S
                for _ in range(n):
                    if len(samples) >= 3 and time.monotonic() > budget:
                        break  # the slow baseline at 200,000 projects: fewer samples
                    started = time.perf_counter()
                    resp = await client.get(path, headers=headers)
                    samples.append((time.perf_counter() - started) * 1000)
                    resp.raise_for_status()
                    body = resp.json()
                return samples, body

            load = os.getloadavg()[0]
            kept, kept_body = await timed(route, READS)
            old, old_body = await timed(baseline, BASELINE_READS)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)

    def stats(samples: list[float]) -> dict[str, Any]:
        return {
            "n": len(samples),
            "p50_ms": round(percentile(samples, 50), 1),
            "p95_ms": round(percentile(samples, 95), 1),
            "max_ms": round(max(samples), 1),
        }

    diffs = differences(old_body, kept_body)
    return {
        "projects": kept_body["total"]["projects"] + kept_body["total"]["abandoned"],
        "kept": stats(kept),
        "recomputed_baseline": stats(old),
        "p95_speedup": round(percentile(old, 95) / percentile(kept, 95), 1),
        "bodies_equal": not diffs,
        "differences": diffs[:20],
        "load_1min": round(load, 2),
    }


async def scaled_database(
    database: Database, db_name: str, broker: Broker, prefix: str, data: Generated
) -> tuple[str, dict[str, Any]]:
    """A database holding SCALE × the generated projects (fresh ids, GENERATED too) and
    the closure shock, counted by the rebuild's recount; how long writing and counting
    took."""
    from services.detection.adapters.ledger_projection import Batch, JobEntry, ProjectLine
    from services.detection.bootstrap import bootstrap
    from services.detection.settings import DetectionSettings

    db_url = await database.create_database(db_name)
    env = cli_env(broker, db_url, prefix)
    await asyncio.to_thread(detection_cli, env, "migrate", LOGS / "migrate-scaled.log")
    svc = bootstrap(
        DetectionSettings(
            database_url=db_url,
            kafka_bootstrap_servers=broker.bootstrap_servers,
            kafka_topic_prefix=prefix,
            environment="test",
            jwt_secret=SECRET,
        )
    )
    rng = random.Random(SEED + 1)
    started = time.perf_counter()
    try:
        for copy in range(SCALE):
            rows = Batch()
            for p in data.projects:
                pid = uuid.UUID(int=rng.getrandbits(128), version=4)
                rows.projects[pid] = ProjectLine(
                    project_id=pid,
                    version=1,
                    territory_id=p.territory_id,
                    origin=p.origin,
                    stage=p.stage,
                    jobs_planned=p.jobs_planned,
                    jobs_created=p.jobs_created,
                    detected_on=p.detected_on,
                    qualified_on=p.qualified_on,
                    funded_on=p.funded_on,
                    under_review=p.under_review,
                    merged_into=p.merged_into,
                )
                rows.job_entries += [
                    JobEntry(pid, v, day, jobs) for v, (day, jobs) in enumerate(p.job_entries, 2)
                ]
            if copy == 0:
                rows.shocks.append(expected_ledger([]).shock)
            async with svc.uow() as uow:
                await uow.ledger.write(rows)
                await uow.commit()
        written = time.perf_counter() - started
        started = time.perf_counter()
        async with svc.uow() as uow:
            await uow.ledger.recount()
            await uow.commit()
        recount = time.perf_counter() - started
    finally:
        await svc.aclose()
    figures = {
        "projects": SCALE * len(data.projects),
        "write_seconds": round(written, 2),
        "recount_seconds": round(recount, 2),
    }
    return db_url, figures


def print_profile(path: Path, top: int = 25) -> str:
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the benchmark --------------------------------------------------------------------------


async def _bench(broker: Broker, database: Database) -> dict[str, Any]:
    from shared.messaging.kafka import ensure_topics

    tag = uuid.uuid4().hex[:8]
    db_name, prefix = f"bench_ledger_{tag}", f"bench{tag}."
    created: list[str] = []
    try:
        db_url = await database.create_database(db_name)
        created.append(db_name)
        await ensure_topics(broker.bootstrap_servers, [PROJECTS, SITES], prefix=prefix)
        env = cli_env(broker, db_url, prefix)
        # `rebuild-ledger` migrates too (`prepare`); migrating first keeps that out of the
        # first rebuild's wall time, so the 3 runs compare.
        migrate = await asyncio.to_thread(detection_cli, env, "migrate", LOGS / "migrate.log")
        say(f"database {db_name} migrated in {migrate['wall_seconds']:.1f} s; prefix {prefix}")

        say(f"generating {EVENTS:,} GENERATED project events")
        data = generate(EVENTS)
        say(
            f"  {len(data.messages):,} events of {len(data.projects):,} projects in"
            f" {data.seconds:.1f} s: {data.by_type}"
        )
        published = await publish(broker.bootstrap_servers, prefix, data)
        say(
            f"published {published['messages']:,} events ({published['payload_mib']} MiB) in"
            f" {published['seconds']:.1f} s: {published['messages_per_s']:,} msg/s"
        )
        started = time.perf_counter()
        expected = as_json(expected_ledger(data.projects))  # schemas imported by now
        expected_s = time.perf_counter() - started

        raws = []
        for n in range(1, RAW_READS + 1):
            r = await asyncio.to_thread(raw_read, env, LOGS / f"raw{n}.log")
            r["load_1min"] = round(os.getloadavg()[0], 2)
            raws.append(r)
            say(
                f"raw read {n}/{RAW_READS} (baseline): {r['messages']:,} messages in"
                f" {r['seconds']:.2f} s ({r['messages_per_s']:,} msg/s), load {r['load_1min']}"
            )
        by_workers: dict[int, list[dict[str, Any]]] = {}
        for workers in WORKERS:
            runs = by_workers[workers] = []
            for n in range(1, REBUILDS + 1):
                r = await asyncio.to_thread(
                    detection_cli,
                    {**env, "DETECTION_REBUILD_WORKERS": str(workers)},
                    "rebuild-ledger",
                    LOGS / f"rebuild-w{workers}-{n}.log",
                )
                r["workers"] = workers
                r["events_per_s"] = round(r["events"] / r["seconds"])
                r["load_1min"] = round(os.getloadavg()[0], 2)
                runs.append(r)
                say(
                    f"rebuild {n}/{REBUILDS}, {workers} decoding workers: {r['events']:,}"
                    f" events in {r['seconds']:.2f} s ({r['events_per_s']:,} events/s),"
                    f" {r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU (workers"
                    f" included), peak RSS {r['peak_rss_mib']} MiB, malformed"
                    f" {r['malformed']}, load {r['load_1min']}"
                )
        rebuilds = by_workers[WORKERS[-1]]
        profile = None
        if PROFILE:
            path = LOGS / "rebuild.prof"
            await asyncio.to_thread(
                detection_cli, env, "rebuild-ledger", LOGS / "rebuild-prof.log", profile=path
            )
            profile = print_profile(path)
        actual, counts, read_s = await read_ledger(broker, db_url, prefix)
        say("ledger reads over HTTP on the rebuilt database")
        reads = [await http_reads(env, "rebuilt")]
        if SCALE:
            say(f"a database of {SCALE} x {len(data.projects):,} projects")
            scaled_name = f"{db_name}_x{SCALE}"
            scaled_url, scaled = await scaled_database(database, scaled_name, broker, prefix, data)
            created.append(scaled_name)
            say(
                f"  written in {scaled['write_seconds']} s,"
                f" recounted in {scaled['recount_seconds']} s"
            )
            reads.append(
                {
                    **await http_reads(cli_env(broker, scaled_url, prefix), "scaled"),
                    **{"scaled": scaled},
                }
            )
        for r in reads:
            say(
                f"  {r['projects']:,} projects: kept p50 {r['kept']['p50_ms']} ms p95"
                f" {r['kept']['p95_ms']} ms; recomputed p50 {r['recomputed_baseline']['p50_ms']}"
                f" ms p95 {r['recomputed_baseline']['p95_ms']} ms; bodies equal {r['bodies_equal']}"
            )
    finally:
        await drop_databases(database, created)
        await delete_topics(broker.bootstrap_servers, [prefix])

    diffs = ["the shock is not in the ledger"] if actual is None else differences(expected, actual)
    seconds = [r["seconds"] for r in rebuilds]
    raw_median = statistics.median(r["messages_per_s"] for r in raws)
    rebuild_median = rebuilds[0]["events"] / statistics.median(seconds)
    return {
        "workers": WORKERS[-1],
        "rebuild_median_events_per_s_by_workers": {
            str(w): round(runs[0]["events"] / statistics.median(r["seconds"] for r in runs))
            for w, runs in by_workers.items()
        },
        "rebuilds_by_workers": {str(w): runs for w, runs in by_workers.items()},
        "raw_reads": raws,
        "raw_median_messages_per_s": round(raw_median),
        "rebuild_to_raw_ratio": round(rebuild_median / raw_median, 3),
        "rebuild_median_events_per_cpu_s": round(
            rebuilds[0]["events"] / statistics.median(r["cpu_seconds"] for r in rebuilds)
        ),
        "reads": reads,
        "profile": profile,
        "load_1min_end": round(os.getloadavg()[0], 2),
        "generated": True,
        "source": SOURCE,
        "territory": TERRITORY,
        "events": len(data.messages),
        "projects": len(data.projects),
        "events_by_type": data.by_type,
        "job_entries": sum(len(p.job_entries) for p in data.projects),
        "generation_seconds": round(data.seconds, 2),
        "publish": published,
        "migrate_wall_seconds": migrate["wall_seconds"],
        "rebuilds": rebuilds,
        "rebuild_median_seconds": round(statistics.median(seconds), 3),
        "rebuild_min_seconds": round(min(seconds), 3),
        "rebuild_median_events_per_s": round(rebuilds[0]["events"] / statistics.median(seconds)),
        "rebuild_max_events_per_s": round(rebuilds[0]["events"] / min(seconds)),
        "rows": counts,
        "expected_ledger_seconds": round(expected_s, 3),
        "shock_ledger_read_seconds": round(read_s, 3),
        "ledger_matches": not diffs,
        "differences": diffs[:50],
        "difference_count": len(diffs),
        "ledger": None if actual is None else {k: v for k, v in actual.items() if k != "series"},
        "series_months": None if actual is None else len(actual["series"]),
    }


def run() -> dict[str, Any]:
    started = time.perf_counter()
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    result = {
        **on_real_infrastructure(_bench),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    led, p = result["ledger"], result["publish"]

    def group(name: str) -> str:
        g = led[name]
        return (
            f"    {name:<10} {g['projects']:>6,} projects: detected {g['detected']:,},"
            f" qualified {g['qualified']:,}, funded {g['funded']:,}, created {g['created']:,}"
            f" jobs; abandoned {g['abandoned']:,} ({g['jobs_abandoned']:,} jobs)"
        )

    verdict = (
        "MATCHES the expected ledger (equal dicts, series included)"
        if result["ledger_matches"]
        else f"DIFFERS from the expected ledger in {result['difference_count']} places:\n"
        + "\n".join(f"    {d}" for d in result["differences"])
    )
    figures_text = (
        ""
        if led is None
        else f"  ledger of the shock ({led['jobs_lost']} jobs lost, announced"
        f" {led['announced_on']}, {led['territory_id']}):\n"
        + "\n".join(group(g) for g in ("endogenous", "exogenous", "total"))
        + f"\n    compensation rate {led['compensation_rate']}, split {led['split']},"
        f" {result['series_months']} months of series\n"
    )
    r0 = result["rebuilds"]
    print(
        f"[bench] ledger rebuild from {result['events']:,} GENERATED project events"
        f" ({result['projects']:,} projects of {TERRITORY}) + 1 closure announcement,"
        f" {result['broker']}, {result['database']}, {result['cores']} cores:\n"
        f"  publish: {p['messages']:,} events ({p['payload_mib']} MiB) in {p['seconds']:.2f} s,"
        f" {p['messages_per_s']:,} msg/s, {p['payload_mib_per_s']} MiB/s (one producer,"
        f" linger 20 ms, 1 MiB batches, no compression)\n"
        f"  rebuild-ledger by decoding workers (median events/s):"
        f" {result['rebuild_median_events_per_s_by_workers']}\n"
        f"  rebuild-ledger, {result['workers']} workers ({len(r0)} runs, CLI process):"
        f" median {result['rebuild_median_seconds']}"
        f" s ({result['rebuild_median_events_per_s']:,} events/s), min"
        f" {result['rebuild_min_seconds']} s ({result['rebuild_max_events_per_s']:,} events/s);"
        f" wall {', '.join(str(r['wall_seconds']) for r in r0)} s; peak RSS"
        f" {', '.join(str(r['peak_rss_mib']) for r in r0)} MiB\n"
        f"  side by side: raw read (baseline) median {result['raw_median_messages_per_s']:,}"
        f" msg/s; rebuild median {result['rebuild_median_events_per_s']:,} events/s; ratio"
        f" {result['rebuild_to_raw_ratio']}; rebuild"
        f" {result['rebuild_median_events_per_cpu_s']:,} events per CPU second\n"
        + "".join(
            f"  ledger read, {r['projects']:,} projects, HTTP: kept p50 {r['kept']['p50_ms']} ms"
            f" p95 {r['kept']['p95_ms']} ms ({r['kept']['n']} reads) | recomputed at read time"
            f" (baseline) p50 {r['recomputed_baseline']['p50_ms']} ms p95"
            f" {r['recomputed_baseline']['p95_ms']} ms ({r['recomputed_baseline']['n']} reads)"
            f" | p95 x{r['p95_speedup']} | bodies equal {r['bodies_equal']} | load"
            f" {r['load_1min']}\n"
            for r in result["reads"]
        )
        + f"  rows: {result['rows']}; shock_ledger read in {result['shock_ledger_read_seconds']} s"
        f" (expected ledger computed in {result['expected_ledger_seconds']} s)\n"
        f"{figures_text}"
        f"  the database's ledger {verdict}\n"
        f"  total {result['wall_seconds']:.0f} s; logs in {LOGS}",
        flush=True,
    )
    if result["profile"]:
        print(result["profile"], flush=True)
    return result
