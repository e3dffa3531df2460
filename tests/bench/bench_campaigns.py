"""Campaigns: how soon consultants see their visits after a closure shock, and what their
"my visits" read costs under load, real Apache Kafka and PostgreSQL.

1. Shock-to-visits latency, on two territories. Each run starts a FRESH stack: new
   PostgreSQL databases for both services, a new topic prefix, `python -m
   services.site_registry serve` and `python -m services.campaigns serve` as processes
   (relay poll intervals at their defaults), with
   - the real Béthune demo (`serve --demo`: 165 sites of ti-3205, Bridgestone
     36120038900019 closing), `BENCH_SHOCK_RUNS` runs;
   - a GENERATED territory of `BENCH_GENERATED_SITES` sites in ti-3205's communes
     (`tests/bench/generated_territory.py`: names starting with "GENERATED", source
     `generated`, valid SIRETs; the first one, 500-999 employees, closing), written into
     the registry once it answers, `BENCH_GENERATED_RUNS` runs (0: none).
   Once both answer `/healthz` and the campaigns service has projected the sites
   (`campaign_sites`), the crisis cell POSTs the shock to the registry; the clock stops
   when, for every consultant of the roster, the visits of `GET /me/visits` over the whole
   campaign period (31-day windows from `starts_on`, every page) add up to the campaign's
   `planned` in `GET /campaigns`. Polled every 20 ms.

2. "My visits" under load, on the last demo stack: `wrk` (Debian's package, installed by
   the benchmark when missing and `REBOND_ALLOW_APT_INSTALL=1`, as `make bench` sets;
   `tests/bench/wrk.py`), one thread, pinned with `taskset` to one core and the servers to
   another when there are two, `--latency`, keep-alive connections (`BENCH_LOAD_CONNECTIONS`)
   sending `GET /me/visits?from=<starts_on>&days=7` with the 3 consultants' tokens in turn
   (a Lua script) and `Accept-Encoding: gzip`; against a bare FastAPI app
   (`tests/bench/bare_app.py`, same uvicorn settings) serving the same body: bare, my
   visits, bare again, at each connection count. Ratios: my visits over the mean of the
   two bare runs. The load average is recorded with every figure: other work on the
   machine moves the rates, the same-run ratios less.

Environment: BENCH_SHOCK_RUNS (8), BENCH_GENERATED_SITES (5000), BENCH_GENERATED_RUNS (3),
BENCH_LOAD_SECONDS (15; 0: no load phase), BENCH_LOAD_CONNECTIONS (50,200). Logs of every
process in `.run/bench/campaigns/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from tests.bench import wrk
from tests.support.infra import Broker, Database

ROOT = Path(__file__).resolve().parents[2]
SHOCK_RUNS = int(os.environ.get("BENCH_SHOCK_RUNS", "8"))
GENERATED_SITES = int(os.environ.get("BENCH_GENERATED_SITES", "5000"))
GENERATED_RUNS = int(os.environ.get("BENCH_GENERATED_RUNS", "3"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "15"))
# "shared": one httpx.AsyncClient with a pool of 50 connections; "per_client": 50 clients
# of one connection each (see `clients_for`).
CONNECTIONS = tuple(
    int(n) for n in os.environ.get("BENCH_LOAD_CONNECTIONS", "50,200").split(",") if n.strip()
)
POLL_S = 0.02
TERRITORY = "ti-3205"
CLOSING_SITE = "36120038900019"  # Bridgestone, Béthune
DEMO_SITES = 165
ROSTER = ("consultant-1", "consultant-2", "consultant-3")  # the campaigns' default roster
WINDOW_DAYS = 31  # the API's maximum `days`
SECRET = "bench-campaigns-secret-of-at-least-32-characters"
LOGS = ROOT / ".run" / "bench" / "campaigns"
READY_TIMEOUT_S = 120.0
SHOCK_TIMEOUT_S = 60.0


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


def base_env() -> dict[str, str]:
    """This process's environment without per-service overrides (`SITE_REGISTRY_*`,
    `CAMPAIGNS_*`): relay poll intervals, roster and campaign terms stay at their defaults."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SITE_REGISTRY_", "CAMPAIGNS_"))
        and k not in ("KAFKA_TOPIC_PREFIX", "REBOND_LOG_LEVEL")
    }
    env.update(
        {
            "REBOND_ENVIRONMENT": "test",
            "REBOND_JWT_SECRET": SECRET,
            "REBOND_LOG_JSON": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def mint_tokens(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """One crisis-cell token and one per consultant, minted by the project's CLI."""
    specs = {
        "crisis": ["--role", "crisis_cell", "--sub", "bench-cell", "--territory", TERRITORY],
        **{c: ["--role", "consultant", "--sub", c, "--territory", TERRITORY] for c in ROSTER},
    }
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "shared.auth", "mint", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in specs.items()
    }
    tokens = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"minting the {name} token failed: {err}")
        tokens[name] = out.strip()
    return tokens.pop("crisis"), tokens


# --- processes --------------------------------------------------------------------------


@dataclass
class Processes:
    """Every process this benchmark starts, stopped by `stop_all` even on error."""

    running: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str], log: Path) -> Any:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        self.running.append((name, proc, log))
        return proc

    def pid_of(self, name: str) -> int:
        return next(p.pid for n, p, _ in self.running if n == name)

    def check_alive(self) -> None:
        for name, proc, log in self.running:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited ({proc.returncode}); log {log}:\n{tail}")

    def stop_all(self) -> None:
        for _, proc, _ in self.running:
            if proc.poll() is None:
                proc.terminate()
        for _, proc, _ in self.running:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.running.clear()


async def wait_until(
    check: Callable[[], Awaitable[bool]], procs: Processes, what: str, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        with contextlib.suppress(httpx.TransportError, OSError, asyncpg.PostgresError):
            if await check():
                return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


async def healthy(client: httpx.AsyncClient, url: str) -> bool:
    return (await client.get(f"{url}/healthz", timeout=2)).status_code == 200


# --- one fresh stack --------------------------------------------------------------------


@dataclass
class Stack:
    registry_url: str
    campaigns_url: str
    campaigns_dsn: str
    prefix: str
    closing_site: str
    sites: int
    startup_s: float = 0.0


@dataclass(frozen=True)
class Territory:
    """What a fresh stack's registry holds: the Béthune demo, or a GENERATED territory."""

    label: str
    sites: int
    generated: bool

    @classmethod
    def demo(cls) -> Territory:
        return cls(f"Béthune demo ({DEMO_SITES} sites)", DEMO_SITES, generated=False)

    @classmethod
    def generated_of(cls, sites: int) -> Territory:
        return cls(f"GENERATED territory ({sites:,} sites)", sites, generated=True)


async def start_stack(
    territory: Territory,
    n: int,
    broker: Broker,
    database: Database,
    procs: Processes,
    client: httpx.AsyncClient,
    created: list[str],
) -> Stack:
    """Fresh databases (their names appended to `created`) and topic prefix; both services
    started and ready: healthy, and the demo's sites projected by the campaigns service."""
    started = time.perf_counter()
    tag = uuid.uuid4().hex[:8]
    registry_db, campaigns_db = f"bench_sr_{tag}", f"bench_cp_{tag}"
    registry_url = await database.create_database(registry_db)
    created.append(registry_db)
    campaigns_url = await database.create_database(campaigns_db)
    created.append(campaigns_db)
    prefix = f"bench{tag}."
    env = {
        **base_env(),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": prefix,
    }
    ports = {"site_registry": free_port(), "campaigns": free_port()}
    tag_run = f"{'gen' if territory.generated else 'demo'}{n:02d}"
    registry_env = {
        **env,
        "SITE_REGISTRY_DATABASE_URL": registry_url,
        "SITE_REGISTRY_HTTP_PORT": str(ports["site_registry"]),
    }
    procs.start(
        "site_registry",
        ["-m", "services.site_registry", "serve", *([] if territory.generated else ["--demo"])],
        registry_env,
        LOGS / f"{tag_run}-site_registry.log",
    )
    procs.start(
        "campaigns",
        ["-m", "services.campaigns", "serve"],
        {
            **env,
            "CAMPAIGNS_DATABASE_URL": campaigns_url,
            "CAMPAIGNS_HTTP_PORT": str(ports["campaigns"]),
        },
        LOGS / f"{tag_run}-campaigns.log",
    )
    stack = Stack(
        registry_url=f"http://127.0.0.1:{ports['site_registry']}",
        campaigns_url=f"http://127.0.0.1:{ports['campaigns']}",
        campaigns_dsn=asyncpg_dsn(campaigns_url),
        prefix=prefix,
        closing_site=CLOSING_SITE,
        sites=territory.sites,
    )

    async def both_healthy() -> bool:
        return await healthy(client, stack.registry_url) and await healthy(
            client, stack.campaigns_url
        )

    await wait_until(both_healthy, procs, "both /healthz", READY_TIMEOUT_S)
    if territory.generated:
        stack.closing_site = await load_generated(territory.sites, registry_env, tag_run)
    conn = await asyncpg.connect(stack.campaigns_dsn)
    try:

        async def sites_projected() -> bool:
            count = await conn.fetchval("SELECT count(*) FROM campaign_sites")
            return bool(count >= territory.sites)

        await wait_until(
            sites_projected, procs, f"{territory.sites} sites in campaign_sites", READY_TIMEOUT_S
        )
    finally:
        await conn.close()
    stack.startup_s = time.perf_counter() - started
    return stack


async def load_generated(sites: int, env: dict[str, str], tag: str) -> str:
    """The GENERATED sites written into the running registry's database (its relay
    publishes them); the closing site's SIRET."""
    log = LOGS / f"{tag}-generated_territory.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.generated_territory",
            "--sites",
            str(sites),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
        )
        out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"loading the GENERATED territory failed; log {log}")
    return out.decode().strip().splitlines()[-1]


async def drop_databases(database: Database, names: list[str]) -> None:
    """Best effort: a throw-away cluster disappears anyway; an external one should not
    keep 2 databases per run."""
    url = make_url(database.admin_url)
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        try:
            for name in names:
                with contextlib.suppress(Exception):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def delete_topics(bootstrap: str, prefixes: list[str]) -> None:
    """Best effort, for an external broker: the topics of this benchmark's prefixes."""
    from aiokafka.admin import AIOKafkaAdminClient

    with contextlib.suppress(Exception):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = [t for t in await admin.list_topics() if t.startswith(tuple(prefixes))]
            if topics:
                await admin.delete_topics(topics)
        finally:
            await admin.close()


# --- reading what consultants see -------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def campaign_of(
    client: httpx.AsyncClient, stack: Stack, crisis: str, shock_id: str
) -> dict[str, Any] | None:
    r = await client.get(f"{stack.campaigns_url}/campaigns", headers=bearer(crisis))
    r.raise_for_status()
    return next((c for c in r.json() if c["shock_id"] == shock_id), None)


async def visits_in_window(client: httpx.AsyncClient, stack: Stack, token: str, start: date) -> int:
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"from": start.isoformat(), "days": WINDOW_DAYS, "limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(
            f"{stack.campaigns_url}/me/visits", params=params, headers=bearer(token)
        )
        r.raise_for_status()
        page = r.json()
        count += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return count


def windows(starts_on: date, ends_on: date) -> Iterator[date]:
    day = starts_on
    while day <= ends_on:
        yield day
        day += timedelta(days=WINDOW_DAYS)


async def visible_visits(
    client: httpx.AsyncClient, stack: Stack, consultants: dict[str, str], campaign: dict[str, Any]
) -> int:
    """The roster's visits over the campaign period, window after window (the consultants
    of a window in parallel). A fresh stack holds one campaign, so its consultants' visits
    are the plan's: once they add up to `planned`, later windows cannot hold more."""
    starts_on = date.fromisoformat(campaign["starts_on"])
    ends_on = date.fromisoformat(campaign["ends_on"])
    total = 0
    for day in windows(starts_on, ends_on):
        counts = await asyncio.gather(
            *(visits_in_window(client, stack, token, day) for token in consultants.values())
        )
        total += sum(counts)
        if total >= campaign["planned"]:
            break
    return total


async def shock_to_visits(
    client: httpx.AsyncClient, stack: Stack, crisis: str, consultants: dict[str, str]
) -> dict[str, Any]:
    body = {
        "site_id": stack.closing_site,
        "announced_on": date.today().isoformat(),
        "jobs_lost": 900,
        "planned_closure_on": (date.today() + timedelta(days=180)).isoformat(),
        "note": "benchmark",
    }
    t0 = time.perf_counter()
    r = await client.post(f"{stack.registry_url}/closure-shocks", json=body, headers=bearer(crisis))
    post_s = time.perf_counter() - t0
    if r.status_code != 201:
        raise RuntimeError(f"POST /closure-shocks answered {r.status_code}: {r.text}")
    shock_id = r.json()["id"]
    campaign_s: float | None = None
    polls = 0
    tick = t0
    while True:
        poll_started = time.perf_counter() - t0
        if poll_started > SHOCK_TIMEOUT_S:
            raise TimeoutError(f"visits not all visible {SHOCK_TIMEOUT_S:.0f} s after the shock")
        polls += 1
        campaign = await campaign_of(client, stack, crisis, shock_id)
        if campaign is not None:
            if campaign_s is None:
                campaign_s = time.perf_counter() - t0
            planned = campaign["planned"]
            if (
                planned > 0
                and await visible_visits(client, stack, consultants, campaign) == planned
            ):
                return {
                    # when the check that saw every visit ended: what the clock measures
                    "seconds": time.perf_counter() - t0,
                    # when that check began: the visits were committed before this
                    "last_poll_started_seconds": poll_started,
                    "post_seconds": post_s,
                    "campaign_seen_seconds": campaign_s,
                    "polls": polls,
                    "campaign": campaign,
                }
        tick += POLL_S
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))


# --- load -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux `/proc`; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


@dataclass(frozen=True)
class Placement:
    """Which cores the servers and wrk run on: apart when there are 2 cores or more."""

    server: list[int] | None
    client: list[int] | None

    @classmethod
    def choose(cls) -> Placement:
        available = wrk.cores()
        if len(available) < 2 or not shutil.which("taskset"):
            return cls(None, None)
        return cls([available[0]], [available[1]])

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (fewer than 2 cores, or no taskset)"
        return f"server on core {self.server}, wrk on core {self.client} (taskset)"


def load(
    wrk_path: str,
    url: str,
    connections: int,
    seconds: float,
    script: Path,
    server_pid: int,
    placement: Placement,
) -> dict[str, Any]:
    """One wrk run: `connections` keep-alive connections from one wrk thread, each sending
    its next request as soon as the previous one answers, for `seconds`."""
    spec = wrk.WrkRun(url, connections, seconds, script, core=placement.client)
    load_before = loadavg()
    server_cpu = cpu_seconds(server_pid)
    started = time.perf_counter()
    report = wrk.run_wrk(wrk_path, spec)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - server_cpu
    exact = report.get("exact", {})
    errors = report["non_2xx"] + report["socket_errors"]
    return {
        "connections": connections,
        "requests": exact.get("requests"),
        "errors": errors,
        "throughput_rps": report["throughput_rps"],
        "p50_ms": report["p50_ms"],
        "p75_ms": report["p75_ms"],
        "p90_ms": report["p90_ms"],
        "p99_ms": report["p99_ms"],
        "max_ms": round(exact["max_us"] / 1000, 2) if "max_us" in exact else None,
        # share of one core used by the server process (PostgreSQL not counted), and its
        # CPU per answered request
        "server_cpu_core_share": round(server_cpu / elapsed, 2),
        "server_cpu_ms_per_request": (
            round(server_cpu * 1000 / exact["requests"], 3) if exact.get("requests") else None
        ),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


async def load_phase(
    stack: Stack, consultants: dict[str, str], starts_on: str, procs: Processes
) -> dict[str, Any]:
    wrk_path = wrk.ensure_wrk()
    query = f"/me/visits?from={starts_on}&days=7"
    my_visits = f"{stack.campaigns_url}{query}"
    tokens = list(consultants.values())
    async with httpx.AsyncClient(timeout=10) as client:
        sample = await client.get(my_visits, headers=bearer(tokens[0]))
        sample.raise_for_status()
        body = sample.content  # decoded
        wire_bytes = sample.num_bytes_downloaded
        items = len(sample.json()["items"])
        body_file = LOGS / "my_visits_body.json"
        body_file.write_bytes(body)
        port = free_port()
        bare_url = f"http://127.0.0.1:{port}"
        bare_proc = procs.start(
            "bare_app",
            ["-m", "tests.bench.bare_app"],
            {
                **base_env(),
                "BARE_BODY_FILE": str(body_file),
                "BARE_PORT": str(port),
                "BARE_LOG_LEVEL": "info",  # the services' default log level
            },
            LOGS / "bare_app.log",
        )
        await wait_until(lambda: healthy(client, bare_url), procs, "bare /healthz", 60)
        bare_sample = await client.get(f"{bare_url}{query}")
        assert bare_sample.content == body
        # what wrk receives (it sends Accept-Encoding: gzip, as browsers do)
        gz = {"Accept-Encoding": "gzip"}
        mv_gz = await client.get(my_visits, headers={**bearer(tokens[0]), **gz})
        bare_gz = await client.get(f"{bare_url}{query}", headers=gz)
    campaigns_pid = procs.pid_of("campaigns")
    placement = Placement.choose()
    if placement.server is not None:
        for pid in (campaigns_pid, bare_proc.pid):
            wrk.pin(pid, placement.server)
    script = wrk.write_script(LOGS / "my_visits.lua", tokens, {"Accept-Encoding": "gzip"})
    targets = {
        "bare": (f"{bare_url}{query}", bare_proc.pid),
        "my_visits": (my_visits, campaigns_pid),
    }
    # Warm-up, not counted: JIT-less Python still has caches to fill (routes, statements).
    for url, pid in targets.values():
        load(wrk_path, url, 10, 2, script, pid, placement)
    levels: dict[str, Any] = {}
    for connections in CONNECTIONS:
        say(
            f"load: wrk, {connections} connections x {LOAD_SECONDS:g} s: bare, my visits, bare"
            f" ({placement.describe()}; load {loadavg()})"
        )
        runs = {}
        for name, target in (("bare_1", "bare"), ("my_visits", "my_visits"), ("bare_2", "bare")):
            url, pid = targets[target]
            runs[name] = x = load(wrk_path, url, connections, LOAD_SECONDS, script, pid, placement)
            say(
                f"  {name}: {x['throughput_rps']:,.0f} req/s, p50 {x['p50_ms']} ms,"
                f" p99 {x['p99_ms']} ms, {x['errors']} errors; server CPU"
                f" {x['server_cpu_core_share']:.0%} of a core; load {x['loadavg_after']}"
            )
        b1, b2, mv = runs["bare_1"], runs["bare_2"], runs["my_visits"]
        bare_mean = {k: (b1[k] + b2[k]) / 2 for k in ("p50_ms", "p99_ms", "throughput_rps")}
        levels[str(connections)] = {
            "runs": runs,
            "bare_mean": {k: round(v, 3) for k, v in bare_mean.items()},
            "ratio_p50": round(mv["p50_ms"] / bare_mean["p50_ms"], 2),
            "ratio_p99": round(mv["p99_ms"] / bare_mean["p99_ms"], 2),
            "ratio_throughput": round(mv["throughput_rps"] / bare_mean["throughput_rps"], 3),
        }
    return {
        "generator": "wrk, 1 thread, --latency; the 3 consultants' tokens in turn (Lua)",
        "placement": placement.describe(),
        "seconds_per_target": LOAD_SECONDS,
        "query": query,
        "consultants_rotated": list(consultants),
        "response_items": items,
        "response_bytes": len(body),
        "my_visits_wire_bytes_gzip": mv_gz.num_bytes_downloaded,
        "bare_wire_bytes_gzip": bare_gz.num_bytes_downloaded,
        "my_visits_wire_bytes_identity": wire_bytes,
        "bare_wire_bytes": bare_sample.num_bytes_downloaded,
        "levels": levels,
    }


# --- the benchmark ----------------------------------------------------------------------


async def shock_runs(
    territory: Territory,
    runs: int,
    broker: Broker,
    database: Database,
    procs: Processes,
    client: httpx.AsyncClient,
    tokens: tuple[str, dict[str, str]],
    prefixes: list[str],
    databases: list[str],
    *,
    keep_last: bool,
) -> tuple[list[dict[str, Any]], Stack | None]:
    """`runs` fresh stacks of `territory`, one shock each; the last stack kept running
    when `keep_last` (the load phase's)."""
    crisis, consultants = tokens
    samples: list[dict[str, Any]] = []
    stack: Stack | None = None
    for n in range(1, runs + 1):
        stack = await start_stack(territory, n, broker, database, procs, client, databases)
        prefixes.append(stack.prefix)
        load_before = loadavg()
        sample = await shock_to_visits(client, stack, crisis, consultants)
        sample["startup_seconds"] = stack.startup_s
        sample["loadavg"] = load_before
        samples.append(sample)
        c = sample["campaign"]
        say(
            f"{territory.label}, run {n}/{runs}: stack ready in {stack.startup_s:.1f} s;"
            f" shock -> {c['planned']} visits ({c['targets']} targets) visible in"
            f" {sample['seconds'] * 1000:.0f} ms (POST {sample['post_seconds'] * 1000:.0f}"
            f" ms, campaign listed at {sample['campaign_seen_seconds'] * 1000:.0f} ms,"
            f" successful poll began at {sample['last_poll_started_seconds'] * 1000:.0f}"
            f" ms, {sample['polls']} polls; load {load_before})"
        )
        if n < runs or not keep_last:
            procs.stop_all()
            await drop_databases(database, databases)
            databases.clear()
            stack = None
    return samples, stack


def shock_figures(territory: Territory, samples: list[dict[str, Any]]) -> dict[str, Any]:
    ms = [s["seconds"] * 1000 for s in samples]
    campaign = samples[-1]["campaign"]
    return {
        "territory": territory.label,
        "sites": territory.sites,
        "runs": len(samples),
        "poll_interval_ms": POLL_S * 1000,
        "roster": list(ROSTER),
        "planned_visits": campaign["planned"],
        "targets": campaign["targets"],
        "campaign_period": [campaign["starts_on"], campaign["ends_on"]],
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
        "samples_ms": [round(x, 1) for x in ms],
        "post_ms": [round(s["post_seconds"] * 1000, 1) for s in samples],
        "campaign_listed_ms": [round(s["campaign_seen_seconds"] * 1000, 1) for s in samples],
        "last_poll_started_ms": [round(s["last_poll_started_seconds"] * 1000, 1) for s in samples],
        "stack_startup_s": [round(s["startup_seconds"], 2) for s in samples],
        "loadavg": [s["loadavg"] for s in samples],
    }


async def _bench(broker: Broker, database: Database, procs: Processes) -> dict[str, Any]:
    tokens = mint_tokens(base_env())
    prefixes: list[str] = []
    databases: list[str] = []
    shocks: dict[str, Any] = {}
    loaded: dict[str, Any] | None = None
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            if GENERATED_RUNS > 0:
                generated = Territory.generated_of(GENERATED_SITES)
                samples, _ = await shock_runs(
                    generated,
                    GENERATED_RUNS,
                    broker,
                    database,
                    procs,
                    client,
                    tokens,
                    prefixes,
                    databases,
                    keep_last=False,
                )
                shocks["generated"] = shock_figures(generated, samples)
            demo = Territory.demo()
            samples, stack = await shock_runs(
                demo,
                max(1, SHOCK_RUNS),
                broker,
                database,
                procs,
                client,
                tokens,
                prefixes,
                databases,
                keep_last=LOAD_SECONDS > 0,
            )
            shocks["demo"] = shock_figures(demo, samples)
            if stack is not None:
                starts_on = samples[-1]["campaign"]["starts_on"]
                loaded = await load_phase(stack, tokens[1], starts_on, procs)
    finally:
        procs.stop_all()
        await drop_databases(database, databases)
        await delete_topics(broker.bootstrap_servers, prefixes)
    return {"shock_to_visits": shocks, "my_visits_load": loaded}


def run() -> dict[str, Any]:
    from tests.support.infra import start_broker, start_database

    started = time.perf_counter()
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    if LOAD_SECONDS > 0:
        wrk.ensure_wrk()  # before minutes of stacks: a missing wrk is said at once
    procs = Processes()
    broker = start_broker()
    try:
        database = start_database()
        try:
            figures = asyncio.run(_bench(broker, database, procs))
        finally:
            procs.stop_all()
            database.stop()
    finally:
        broker.stop()

    result = {
        "broker": broker.description,
        "database": database.description,
        "cores": os.cpu_count(),
        **figures,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    lines = [f"[bench] campaigns, {result['broker']}, {result['database']}:"]
    for s in result["shock_to_visits"].values():
        lines += [
            f"  {s['territory']}: shock -> all {s['planned_visits']} planned visits"
            f" ({s['targets']} targets) visible to {len(s['roster'])} consultants ({s['runs']}"
            f" runs, each on a fresh stack, polled every {s['poll_interval_ms']:.0f} ms):"
            f" median {s['median_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms, min"
            f" {s['min_ms']:.0f} ms, max {s['max_ms']:.0f} ms",
            f"    samples (ms): {', '.join(f'{x:.0f}' for x in s['samples_ms'])}",
            f"    of which POST /closure-shocks answered in (median)"
            f" {statistics.median(s['post_ms']):.0f} ms; campaign listed at (median)"
            f" {statistics.median(s['campaign_listed_ms']):.0f} ms; the successful poll began"
            f" at (median) {statistics.median(s['last_poll_started_ms']):.0f} ms",
            f"    load average at each shock: {'; '.join(s['loadavg'])}",
        ]
    lo = result["my_visits_load"]
    if lo is not None:
        lines.append(
            f"  my visits ({lo['query']}, {lo['response_items']} items, {lo['response_bytes']:,}"
            f" bytes; on the wire, gzip accepted: my visits"
            f" {lo['my_visits_wire_bytes_gzip']:,}, bare {lo['bare_wire_bytes_gzip']:,})"
            f" vs a bare FastAPI endpoint serving the same body; {lo['generator']};"
            f" {lo['placement']}; {lo['seconds_per_target']:g} s each:"
        )
        for connections, level in lo["levels"].items():
            lines.append(f"    {connections} connections:")
            for name in ("bare_1", "my_visits", "bare_2"):
                x = level["runs"][name]
                lines.append(
                    f"      {name:<10} {x['requests'] or 0:>8,} requests, {x['errors']} errors,"
                    f" {x['throughput_rps']:>8,.1f} req/s, p50 {x['p50_ms']:.2f} ms,"
                    f" p99 {x['p99_ms']:.2f} ms; server CPU {x['server_cpu_core_share']:.0%} of"
                    f" a core, {x['server_cpu_ms_per_request'] or 0:.2f} ms a request; load"
                    f" {x['loadavg_before']} -> {x['loadavg_after']}"
                )
            lines.append(
                f"      my visits / bare (mean of both bare runs): p50 x{level['ratio_p50']},"
                f" p99 x{level['ratio_p99']}, throughput x{level['ratio_throughput']}"
            )
    lines.append(f"  total {result['wall_seconds']:.0f} s; logs in {LOGS}")
    print("\n".join(lines), flush=True)
    return result
