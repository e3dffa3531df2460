"""The fault suite's harness: the services as real processes on a broker and PostgreSQL
servers of the suite's own (so it can stop, restart and kill them), a workload through
the public APIs, and a census that counts inputs, events and effects.

Counting, for each fault:

- **accepted inputs**: the surveys the campaigns API answered 201 (with their leads, by
  the lead ids the client chose) and the exogenous projects detection answered 201;
- **events**: the survey events on the surveys topic (distinct `ce_id`, and messages:
  at-least-once delivery may publish one twice) and the project events on the projects
  topic (distinct business identities), read with `read_committed` as every reader must;
- **effects**: detection's projects and their leads, the reports (one per survey
  revision and lead), and the ledger's detected jobs — read from detection's database and
  API. *Lost* = an accepted lead with no project; *duplicated* = a lead reported twice in
  one project's timeline for one revision, or a ledger that counts more jobs than the
  accepted leads hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from shared.auth import AuthConfig, mint_token
from shared.events.catalogue import ALL_TOPICS, PROJECTS, SURVEYS
from tests.support import summary
from tests.support.kafka import read_all
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SECRET = "fault-suite-secret-of-at-least-32-characters"
BRIDGESTONE = "36120038900019"
TERRITORY = "ti-3205"
T = TypeVar("T")

SERVICES = {
    "site_registry": ("SITE_REGISTRY_", ("serve", "--demo")),
    "campaigns": ("CAMPAIGNS_", ("serve",)),
    "detection": ("DETECTION_", ("serve",)),
    "funding": ("FUNDING_", ("serve",)),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(
    probe: Callable[[], Awaitable[T]],
    ok: Callable[[T], bool] = bool,
    *,
    timeout: float = 60.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """`eventually`, for services that are being killed: a probe that cannot reach them
    yet (connection refused, a 5xx mid-restart) is one more try, not a failure."""

    async def tolerant() -> T | BaseException:
        try:
            return await probe()
        except (httpx.HTTPError, OSError, asyncpg.PostgresError) as exc:
            return exc

    result = await eventually(
        tolerant,
        lambda v: not isinstance(v, BaseException) and ok(v),
        timeout=timeout,
        interval=interval,
        what=what,
    )
    assert not isinstance(result, BaseException)
    return result


# --- processes ---------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """One service (`python -m services.<name> serve`) as a real process."""

    name: str
    env: dict[str, str]
    log_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}-{self.port}.log"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        args = SERVICES[self.name][1]
        with self.log.open("ab") as out:
            out.write(f"\n==== start {self.starts} ====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}", *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    async def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not healthy in {timeout}s: {self.tail()}")
            await asyncio.sleep(0.2)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, no offset is committed, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGCONT)  # a stopped process cannot exit
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_lines(self, needle: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            if needle in line:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out


# --- the stack ---------------------------------------------------------------------------


@dataclass
class Stack:
    """The services of one fault experiment: their own topics (a prefix) and databases."""

    bootstrap: str
    prefix: str
    database_urls: dict[str, str]
    log_dir: Path
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    auth: AuthConfig = field(default_factory=lambda: AuthConfig(SECRET))

    def env_for(self, name: str, port: int) -> dict[str, str]:
        prefix = SERVICES[name][0]
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")},
            "REBOND_ENVIRONMENT": "test",
            "REBOND_JWT_SECRET": SECRET,
            "REBOND_LOG_JSON": "true",
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            f"{prefix}DATABASE_URL": self.database_urls[name],
            f"{prefix}HTTP_PORT": str(port),
            f"{prefix}RELAY_POLL_INTERVAL_S": "0.1",
            f"{prefix}RELAY_LEASE_TTL_S": "4",
            f"{prefix}CONSUMER_TRANSIENT_BACKOFF_S": "0.2",
            f"{prefix}CONSUMER_MAX_TRANSIENT_BACKOFF_S": "2",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.extra_env.get(name, {}))
        return env

    def add(self, name: str, **env: str) -> ServiceProcess:
        port = free_port()
        merged = {**self.env_for(name, port), **env}
        proc = ServiceProcess(name, merged, self.log_dir, port)
        self.processes.setdefault(name, []).append(proc)
        proc.start()
        return proc

    def first(self, name: str) -> ServiceProcess:
        return self.processes[name][0]

    def url(self, name: str) -> str:
        return self.first(name).url

    async def start(self, names: Sequence[str]) -> None:
        # The registry creates the sites topic and loads the demo; the others can start
        # together afterwards.
        if "site_registry" in names:
            await self.add("site_registry").wait_healthy()
        rest = [self.add(n) for n in names if n != "site_registry"]
        await asyncio.gather(*(p.wait_healthy() for p in rest))

    def stop(self) -> None:
        for procs in self.processes.values():
            for p in procs:
                p.stop()

    def token(self, role: str, sub: str = "fault-cell") -> dict[str, str]:
        token = mint_token(self.auth, subject=sub, roles=[role], territories=[TERRITORY])
        return {"Authorization": f"Bearer {token}"}

    @property
    def cell(self) -> dict[str, str]:
        return self.token("crisis_cell")


# --- the workload ------------------------------------------------------------------------


@dataclass
class Accepted:
    surveys: dict[str, dict[str, Any]] = field(default_factory=dict)  # visit id → last body
    revisions: int = 0  # survey submissions answered 201 (first or later revisions)
    leads: dict[str, int] = field(default_factory=dict)  # lead id → jobs (latest revision)
    exogenous: dict[str, int] = field(default_factory=dict)  # project id → jobs
    refused: int = 0  # 4xx answers (none expected)
    unavailable: int = 0  # 5xx / connection failures, retried with the same key

    @property
    def jobs(self) -> int:
        return sum(self.leads.values()) + sum(self.exogenous.values())


class Workload:
    """The flow the crisis cell and consultants drive: one shock, one campaign, surveys."""

    KINDS = ("capacity_extension", "new_line", "modernisation_automation", "rnd_innovation")

    def __init__(self, stack: Stack, seed: int) -> None:
        self.stack = stack
        self.rng = random.Random(seed)
        self.accepted = Accepted()
        self.shock_id: str | None = None
        self.visits: list[str] = []

    async def launch(self) -> None:
        announced = (datetime.now(UTC) - timedelta(days=30)).date()
        async with httpx.AsyncClient(timeout=30) as client:
            resp = await client.post(
                f"{self.stack.url('site_registry')}/closure-shocks",
                json={"site_id": BRIDGESTONE, "announced_on": str(announced), "jobs_lost": 900},
                headers=self.stack.cell,
            )
            assert resp.status_code == 201, resp.text
            self.shock_id = resp.json()["id"]

            async def campaign() -> list[dict[str, Any]]:
                r = await client.get(
                    f"{self.stack.url('campaigns')}/campaigns", headers=self.stack.cell
                )
                return list(r.json()) if r.status_code == 200 else []

            campaigns = await until(campaign, lambda c: len(c) == 1, what="the campaign")
            plan = (
                await client.get(
                    f"{self.stack.url('campaigns')}/campaigns/{campaigns[0]['id']}/plan",
                    headers=self.stack.cell,
                )
            ).json()
        self.visits = [t["visit_id"] for t in plan["targets"] if t.get("visit_id")]
        self.rng.shuffle(self.visits)

    def survey_body(self, leads: int) -> dict[str, Any]:
        return {
            "questionnaire_version": "2026-1",
            "headcount": self.rng.randint(5, 400),
            "contact_name": "Mme Fault Suite",  # personal data: must never reach a topic
            "projects": [
                {
                    "lead_id": str(uuid.uuid4()),
                    "kind": self.rng.choice(self.KINDS),
                    "description": "fault-suite project",
                    "capex_eur": self.rng.randint(1, 50) * 100_000,
                    "jobs_to_create": self.rng.randint(1, 40),
                    "maturity": self.rng.choice(["idea", "study", "ready"]),
                    "known_to_public_actors": self.rng.random() < 0.5,
                    "consent_to_share": self.rng.random() < 0.7,
                }
                for _ in range(leads)
            ],
        }

    async def submit(
        self, client: httpx.AsyncClient, visit_id: str, body: dict[str, Any], *, base: str
    ) -> None:
        """POST a survey until answered (a phone retries with the same Idempotency-Key)."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + 180
        while True:
            try:
                resp = await client.post(
                    f"{base}/visits/{visit_id}/survey",
                    json=body,
                    headers={**self.stack.cell, "Idempotency-Key": key},
                )
            except httpx.HTTPError:
                resp = None
            if resp is not None and resp.status_code == 201:
                if resp.headers.get("Idempotent-Replayed") != "true" or visit_id not in (
                    self.accepted.surveys
                ):
                    self.accepted.revisions += 1
                self.accepted.surveys[visit_id] = body
                for lead in body["projects"]:
                    self.accepted.leads[lead["lead_id"]] = lead["jobs_to_create"]
                return
            if resp is not None and 400 <= resp.status_code < 500:
                self.accepted.refused += 1
                raise AssertionError(f"survey refused: {resp.status_code} {resp.text}")
            self.accepted.unavailable += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"survey of {visit_id} never accepted")
            await asyncio.sleep(0.3)

    async def burst(
        self, count: int, *, concurrency: int = 4, base: str | None = None, resubmit: int = 0
    ) -> None:
        """`count` new surveys (1 or 2 leads), then `resubmit` resubmissions (same leads,
        more jobs), `concurrency` at a time."""
        base = base or self.stack.url("campaigns")
        fresh = [v for v in self.visits if v not in self.accepted.surveys][:count]
        assert len(fresh) == count, "not enough planned visits left for this burst"
        jobs: list[tuple[str, dict[str, Any]]] = [
            (v, self.survey_body(self.rng.choice((1, 1, 2)))) for v in fresh
        ]
        semaphore = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=15) as client:

            async def one(visit: str, body: dict[str, Any]) -> None:
                async with semaphore:
                    await self.submit(client, visit, body, base=base)

            await asyncio.gather(*(one(v, b) for v, b in jobs))
            again = []
            for visit in list(self.accepted.surveys)[:resubmit]:
                body = json.loads(json.dumps(self.accepted.surveys[visit]))
                for lead in body["projects"]:
                    lead["jobs_to_create"] += 5
                again.append((visit, body))
            await asyncio.gather(*(one(v, b) for v, b in again))

    async def exogenous(self, count: int, *, base: str | None = None) -> None:
        base = base or self.stack.url("detection")
        async with httpx.AsyncClient(timeout=15) as client:
            for n in range(count):
                jobs = self.rng.randint(10, 80)
                resp = await client.post(
                    f"{base}/projects/exogenous",
                    json={
                        "territory_id": TERRITORY,
                        "shock_id": self.shock_id,
                        "firm_name": f"Outside Firm {uuid.uuid4().hex[:6]} {n}",
                        "kind": "new_site",
                        "description": "fault-suite exogenous project",
                        "jobs_planned": jobs,
                        "consent_to_share": True,
                    },
                    headers=self.stack.cell,
                )
                assert resp.status_code == 201, resp.text
                self.accepted.exogenous[resp.json()["id"]] = jobs


# --- the census --------------------------------------------------------------------------


@dataclass
class Census:
    survey_messages: int
    survey_events: int  # distinct ce_id
    project_events: int  # distinct (project, version)
    projects: int  # live (not merged) projects in detection
    leads_with_project: int
    lost: list[str]  # accepted leads without a project
    duplicated_reports: int  # (project, survey revision) reported more than once
    ledger_detected: int | None
    dead_letters: dict[str, int]  # DLQ topic → messages
    dlq_reasons: list[str]
    personal_data_on_topics: int


def _json(value: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(value or b"")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def census(stack: Stack, workload: Workload) -> Census:
    surveys = await read_all(stack.bootstrap, SURVEYS.physical(stack.prefix))
    survey_types = [
        m
        for m in surveys
        if m.headers.get("ce_type", "").endswith("submitted.v1")
        and m.headers.get("ce_source") == "campaigns"
    ]
    projects_topic = await read_all(stack.bootstrap, PROJECTS.physical(stack.prefix))
    payloads = [_json(m.value) for m in projects_topic if m.headers.get("ce_source") == "detection"]
    versions = {(p.get("project_id"), p.get("version")) for p in payloads}
    conn = await asyncpg.connect(_plain_dsn(stack.database_urls["detection"]))
    try:
        leads = {str(r["lead_id"]) for r in await conn.fetch("SELECT lead_id FROM project_leads")}
        projects = await conn.fetchval("SELECT count(*) FROM projects WHERE merged_into IS NULL")
        duplicated = await conn.fetchval(
            "SELECT count(*) FROM (SELECT project_id, reference FROM project_reports"
            " WHERE source = 'survey' GROUP BY project_id, reference HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    ledger = None
    if workload.shock_id is not None:
        async with httpx.AsyncClient(timeout=15) as client:
            resp = await client.get(
                f"{stack.url('detection')}/shocks/{workload.shock_id}/ledger",
                headers=stack.cell,
            )
            if resp.status_code == 200:
                ledger = int(resp.json()["total"]["detected"])
    dead: dict[str, int] = {}
    reasons: list[str] = []
    for topic in ALL_TOPICS:
        with contextlib.suppress(AssertionError):  # a DLQ nobody created: empty
            messages = await read_all(stack.bootstrap, topic.physical_dlq(stack.prefix))
            if messages:
                dead[topic.physical_dlq(stack.prefix)] = len(messages)
                reasons += [m.headers.get("dlq_reason", "?")[:200] for m in messages]
    personal = 0
    for topic in ALL_TOPICS:
        with contextlib.suppress(AssertionError):
            for m in await read_all(stack.bootstrap, topic.physical(stack.prefix)):
                blob = (m.value or b"") + json.dumps(m.headers).encode()
                personal += b"Fault Suite" in blob
    return Census(
        survey_messages=len(survey_types),
        survey_events=len({m.headers["ce_id"] for m in survey_types}),
        project_events=len(versions),
        projects=int(projects),
        leads_with_project=len(leads & set(workload.accepted.leads)),
        lost=sorted(set(workload.accepted.leads) - leads),
        duplicated_reports=int(duplicated),
        ledger_detected=ledger,
        dead_letters=dead,
        dlq_reasons=reasons,
        personal_data_on_topics=personal,
    )


async def converged(stack: Stack, workload: Workload, *, timeout: float = 120) -> Census:
    """Wait until every accepted lead has its project and the ledger counts every job."""

    async def probe() -> Census:
        return await census(stack, workload)

    def done(c: Census) -> bool:
        return not c.lost and c.ledger_detected == workload.accepted.jobs

    return await until(probe, done, timeout=timeout, interval=1.0, what="convergence")


# --- results -----------------------------------------------------------------------------


@dataclass
class FaultResult:
    fault: str
    accepted_surveys: int
    accepted_leads: int
    exogenous: int
    survey_events: int
    survey_messages: int
    project_events: int
    projects: int
    lost: int
    duplicated: int
    dead_letters: int
    expected_dead_letters: int
    seconds: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.dead_letters == self.expected_dead_letters
        )


def record(
    fault: str,
    workload: Workload,
    c: Census,
    *,
    started: float,
    expected_dead_letters: int = 0,
    note: str = "",
) -> FaultResult:
    ledger_extra = max(0, (c.ledger_detected or 0) - workload.accepted.jobs)
    result = FaultResult(
        fault=fault,
        accepted_surveys=workload.accepted.revisions,
        accepted_leads=len(workload.accepted.leads),
        exogenous=len(workload.accepted.exogenous),
        survey_events=c.survey_events,
        survey_messages=c.survey_messages,
        project_events=c.project_events,
        projects=c.projects,
        lost=len(c.lost),
        duplicated=c.duplicated_reports + ledger_extra,
        dead_letters=sum(c.dead_letters.values()),
        expected_dead_letters=expected_dead_letters,
        seconds=round(time.monotonic() - started, 1),
        note=note,
    )
    summary.add("faults", asdict(result))
    return result


def table(results: Iterable[FaultResult]) -> str:
    head = (
        "| fault | surveys accepted | leads | exogenous | survey events (messages) |"
        " project events | projects | lost | duplicated | DLQ (expected) | s | note |"
    )
    lines = [head, "|" + " --- |" * 12]
    for r in results:
        lines.append(
            f"| {r.fault} | {r.accepted_surveys} | {r.accepted_leads} | {r.exogenous} |"
            f" {r.survey_events} ({r.survey_messages}) | {r.project_events} | {r.projects} |"
            f" {r.lost} | {r.duplicated} | {r.dead_letters} ({r.expected_dead_letters}) |"
            f" {r.seconds} | {r.note} |"
        )
    return "\n".join(lines)


def report(terminalreporter: pytest.TerminalReporter) -> None:
    """The fault table of the run (every worker's results): printed, and written to
    `bench-results/faults.json` and `faults.md`. Called by the root conftest, the only
    one the controller of an xdist run loads."""
    results = [FaultResult(**r) for r in summary.records("faults")]
    if not results:
        return
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "faults.json").write_text(
        json.dumps([asdict(r) | {"ok": r.ok} for r in results], indent=2) + "\n"
    )
    text = table(results)
    (out / "faults.md").write_text(text + "\n")
    terminalreporter.section("fault suite: inputs, events and effects before and after")
    for line in text.splitlines():
        terminalreporter.write_line(line)
