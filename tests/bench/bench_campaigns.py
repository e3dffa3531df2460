"""Campaigns: how soon consultants see their visits after a closure shock, and what their
"my visits" read costs under load, on the real Béthune demo (`serve --demo`: 165 sites of
ti-3205, Bridgestone 36120038900019 closing), real Apache Kafka and PostgreSQL.

1. Shock-to-visits latency. Each run starts a FRESH stack: new PostgreSQL databases for
   both services, a new topic prefix, `python -m services.site_registry serve --demo` and
   `python -m services.campaigns serve` as processes (relay poll intervals at their
   defaults). Once both answer `/healthz` and the campaigns service has projected the 165
   sites (`campaign_sites`), the crisis cell POSTs the shock to the registry; the clock
   stops when, for every consultant of the roster, the visits of `GET /me/visits` over the
   whole campaign period (31-day windows from `starts_on`, every page) add up to the
   campaign's `planned` in `GET /campaigns`. Polled every 20 ms.

2. "My visits" under load: 50 concurrent keep-alive clients for a fixed duration against
   `GET /me/visits?from=<starts_on>&days=7` (the 3 consultants in turn), and against a bare
   FastAPI app (`tests/bench/bare_app.py`, same uvicorn settings) serving one captured
   response body: bare, my visits, bare again. The load generator runs in this process, so
   the client and the servers share the machine's cores; the CPU each side used is printed.
   Two client set-ups (`BENCH_LOAD_POOLS`, both by default): one httpx.AsyncClient whose
   pool holds the 50 connections, and 50 AsyncClients of one connection each. The shared
   pool's bookkeeping costs the generator several ms of CPU per request, so with it the
   bare runs measure the client rather than the server (encode/httpx#3215).

Environment: BENCH_SHOCK_RUNS (12), BENCH_LOAD_SECONDS (15), BENCH_LOAD_POOLS
(shared,per_client). Logs of every process in `.run/bench/campaigns/`.
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

from tests.support.infra import Broker, Database

ROOT = Path(__file__).resolve().parents[2]
SHOCK_RUNS = int(os.environ.get("BENCH_SHOCK_RUNS", "12"))
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "15"))
# "shared": one httpx.AsyncClient with a pool of 50 connections; "per_client": 50 clients
# of one connection each (see `clients_for`).
LOAD_POOLS = tuple(
    p.strip() for p in os.environ.get("BENCH_LOAD_POOLS", "shared,per_client").split(",")
)
CLIENTS = 50
POLL_S = 0.02
TERRITORY = "ti-3205"
CLOSING_SITE = "36120038900019"  # Bridgestone, Béthune
DEMO_SITES = 165
ROSTER = ("consultant-1", "consultant-2", "consultant-3")  # the campaigns' default roster
WINDOW_DAYS = 31  # the API's maximum `days`
SECRET = "bench-campaigns-secret-of-at-least-32-characters"
LOGS = ROOT / ".run" / "bench" / "campaigns"
POOL_LABELS = {
    "shared": "one httpx.AsyncClient, pool of 50 connections",
    "per_client": "50 httpx.AsyncClients of 1 connection each",
}
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
    startup_s: float = 0.0


async def start_stack(
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
    procs.start(
        "site_registry",
        ["-m", "services.site_registry", "serve", "--demo"],
        {
            **env,
            "SITE_REGISTRY_DATABASE_URL": registry_url,
            "SITE_REGISTRY_HTTP_PORT": str(ports["site_registry"]),
        },
        LOGS / f"run{n:02d}-site_registry.log",
    )
    procs.start(
        "campaigns",
        ["-m", "services.campaigns", "serve"],
        {
            **env,
            "CAMPAIGNS_DATABASE_URL": campaigns_url,
            "CAMPAIGNS_HTTP_PORT": str(ports["campaigns"]),
        },
        LOGS / f"run{n:02d}-campaigns.log",
    )
    stack = Stack(
        registry_url=f"http://127.0.0.1:{ports['site_registry']}",
        campaigns_url=f"http://127.0.0.1:{ports['campaigns']}",
        campaigns_dsn=asyncpg_dsn(campaigns_url),
        prefix=prefix,
    )

    async def both_healthy() -> bool:
        return await healthy(client, stack.registry_url) and await healthy(
            client, stack.campaigns_url
        )

    await wait_until(both_healthy, procs, "both /healthz", READY_TIMEOUT_S)
    conn = await asyncpg.connect(stack.campaigns_dsn)
    try:

        async def sites_projected() -> bool:
            count = await conn.fetchval("SELECT count(*) FROM campaign_sites")
            return bool(count >= DEMO_SITES)

        await wait_until(
            sites_projected, procs, f"{DEMO_SITES} sites in campaign_sites", READY_TIMEOUT_S
        )
    finally:
        await conn.close()
    stack.startup_s = time.perf_counter() - started
    return stack


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
        "site_id": CLOSING_SITE,
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


def clients_for(pool: str) -> list[httpx.AsyncClient]:
    """`shared`: one AsyncClient whose pool holds the 50 keep-alive connections (as asked);
    `per_client`: one AsyncClient of 1 keep-alive connection per client (50 in all), which
    spares the generator httpcore's pool bookkeeping, whose cost grows with the pool."""
    if pool == "shared":
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        return [httpx.AsyncClient(limits=limits, timeout=30)] * CLIENTS
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [httpx.AsyncClient(limits=one, timeout=30) for _ in range(CLIENTS)]


async def load(
    url: str, headers: list[dict[str, str]], seconds: float, pool: str, server_pid: int
) -> dict[str, Any]:
    """`CLIENTS` concurrent clients, each sending its next request as soon as the previous
    one answers, for `seconds`, over `CLIENTS` keep-alive connections."""
    clients = clients_for(pool)
    latencies: list[float] = []
    errors = 0
    try:
        # Warm-up (not counted): open the connections.
        await asyncio.gather(
            *(c.get(url, headers=headers[k % len(headers)]) for k, c in enumerate(clients))
        )
        deadline = time.perf_counter() + seconds

        async def one_client(k: int, client: httpx.AsyncClient) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                h = headers[i % len(headers)]
                i += 1
                t = time.perf_counter()
                try:
                    r = await client.get(url, headers=h)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1

        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(one_client(k, c) for k, c in enumerate(clients)))
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server_pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        for c in {id(c): c for c in clients}.values():
            await c.aclose()
    ms = [x * 1000 for x in latencies]
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "seconds": round(elapsed, 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p95_ms": round(percentile(ms, 95), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        # share of one core: the server process alone (PostgreSQL not counted), and this
        # process (the load generator)
        "server_cpu_core_share": round(server_cpu / elapsed, 2),
        "client_cpu_core_share": round(client_cpu / elapsed, 2),
    }


async def load_phase(
    stack: Stack, consultants: dict[str, str], starts_on: str, procs: Processes
) -> dict[str, Any]:
    my_visits = f"{stack.campaigns_url}/me/visits?from={starts_on}&days=7"
    tokens = [bearer(t) for t in consultants.values()]
    async with httpx.AsyncClient(timeout=10) as client:
        sample = await client.get(my_visits, headers=tokens[0])
        sample.raise_for_status()
        body = sample.content  # decoded (the service gzips bodies of 800 bytes and more)
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
        bare_sample = await client.get(f"{bare_url}/me/visits")
        assert bare_sample.content == body
    campaigns_pid = procs.pid_of("campaigns")
    targets = {
        "bare": (f"{bare_url}/me/visits", bare_proc.pid),
        "my_visits": (my_visits, campaigns_pid),
    }
    pools: dict[str, Any] = {}
    for pool in LOAD_POOLS:
        say(f"load ({pool} pool): {CLIENTS} clients x {LOAD_SECONDS:g} s: bare, my visits, bare")
        runs = {}
        for name, target in (("bare_1", "bare"), ("my_visits", "my_visits"), ("bare_2", "bare")):
            url, pid = targets[target]
            runs[name] = await load(url, tokens, LOAD_SECONDS, pool, pid)
            x = runs[name]
            say(
                f"  {name}: {x['throughput_rps']:,.0f} req/s, p50 {x['p50_ms']} ms,"
                f" p95 {x['p95_ms']} ms; CPU server {x['server_cpu_core_share']:.0%},"
                f" client {x['client_cpu_core_share']:.0%} of a core"
            )
        b1, b2, mv = runs["bare_1"], runs["bare_2"], runs["my_visits"]
        bare_mean = {k: (b1[k] + b2[k]) / 2 for k in ("p50_ms", "p95_ms", "throughput_rps")}
        pools[pool] = {
            "runs": runs,
            "bare_mean": {k: round(v, 2) for k, v in bare_mean.items()},
            "ratio_p50": round(mv["p50_ms"] / bare_mean["p50_ms"], 2),
            "ratio_p95": round(mv["p95_ms"] / bare_mean["p95_ms"], 2),
            "ratio_throughput": round(mv["throughput_rps"] / bare_mean["throughput_rps"], 3),
        }
    return {
        "clients": CLIENTS,
        "seconds_per_target": LOAD_SECONDS,
        "query": f"/me/visits?from={starts_on}&days=7",
        "consultants_rotated": list(consultants),
        "response_items": items,
        "response_bytes": len(body),
        "my_visits_wire_bytes": wire_bytes,
        "bare_wire_bytes": bare_sample.num_bytes_downloaded,
        "pools": pools,
        "note": (
            f"the load generator (this process) and the servers share the machine's"
            f" {os.cpu_count()} cores"
        ),
    }


# --- the benchmark ----------------------------------------------------------------------


async def _bench(broker: Broker, database: Database, procs: Processes) -> dict[str, Any]:
    crisis, consultants = mint_tokens(base_env())
    samples: list[dict[str, Any]] = []
    prefixes: list[str] = []
    databases: list[str] = []
    stack: Stack | None = None
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for n in range(1, SHOCK_RUNS + 1):
                stack = await start_stack(n, broker, database, procs, client, databases)
                prefixes.append(stack.prefix)
                sample = await shock_to_visits(client, stack, crisis, consultants)
                sample["startup_seconds"] = stack.startup_s
                samples.append(sample)
                c = sample["campaign"]
                say(
                    f"run {n}/{SHOCK_RUNS}: stack ready in {stack.startup_s:.1f} s;"
                    f" shock -> {c['planned']} visits visible in"
                    f" {sample['seconds'] * 1000:.0f} ms (POST {sample['post_seconds'] * 1000:.0f}"
                    f" ms, campaign listed at {sample['campaign_seen_seconds'] * 1000:.0f} ms,"
                    f" successful poll began at {sample['last_poll_started_seconds'] * 1000:.0f}"
                    f" ms, {sample['polls']} polls)"
                )
                if n < SHOCK_RUNS:  # the last stack serves the load phase
                    procs.stop_all()
                    await drop_databases(database, databases)
                    databases.clear()
            assert stack is not None
            campaign = samples[-1]["campaign"]
            loaded = await load_phase(stack, consultants, campaign["starts_on"], procs)
    finally:
        procs.stop_all()
        await drop_databases(database, databases)
        await delete_topics(broker.bootstrap_servers, prefixes)

    ms = [s["seconds"] * 1000 for s in samples]
    campaign = samples[-1]["campaign"]
    return {
        "shock_to_visits": {
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
            "last_poll_started_ms": [
                round(s["last_poll_started_seconds"] * 1000, 1) for s in samples
            ],
            "stack_startup_s": [round(s["startup_seconds"], 2) for s in samples],
        },
        "my_visits_load": loaded,
    }


def run() -> dict[str, Any]:
    from tests.support.infra import start_broker, start_database

    unknown = set(LOAD_POOLS) - set(POOL_LABELS)
    if unknown:
        raise ValueError(f"BENCH_LOAD_POOLS: unknown {sorted(unknown)}; known {list(POOL_LABELS)}")
    started = time.perf_counter()
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True, exist_ok=True)
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
    s, lo = result["shock_to_visits"], result["my_visits_load"]

    def line(runs: dict[str, Any], name: str) -> str:
        x = runs[name]
        return (
            f"      {name:<10} {x['requests']:>7,} requests, {x['errors']} errors,"
            f" {x['throughput_rps']:>7,.1f} req/s, p50 {x['p50_ms']:.1f} ms,"
            f" p95 {x['p95_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms; CPU server"
            f" {x['server_cpu_core_share']:.0%}, client {x['client_cpu_core_share']:.0%} of a core"
        )

    pools = "\n".join(
        f"    {POOL_LABELS.get(pool, pool)}:\n"
        + "\n".join(line(p["runs"], n) for n in ("bare_1", "my_visits", "bare_2"))
        + f"\n      my visits / bare (mean of both bare runs): p50 x{p['ratio_p50']},"
        f" p95 x{p['ratio_p95']}, throughput x{p['ratio_throughput']}"
        for pool, p in lo["pools"].items()
    )
    print(
        f"[bench] campaigns on the Béthune demo ({DEMO_SITES} sites, {CLOSING_SITE} closing),"
        f" {result['broker']}, {result['database']}:\n"
        f"  shock -> all {s['planned_visits']} planned visits visible to {len(s['roster'])}"
        f" consultants ({s['runs']} runs, each on a fresh stack, polled every"
        f" {s['poll_interval_ms']:.0f} ms): median {s['median_ms']:.0f} ms,"
        f" p95 {s['p95_ms']:.0f} ms, min {s['min_ms']:.0f} ms, max {s['max_ms']:.0f} ms\n"
        f"    samples (ms): {', '.join(f'{x:.0f}' for x in s['samples_ms'])}\n"
        f"    of which POST /closure-shocks answered in (median)"
        f" {statistics.median(s['post_ms']):.0f} ms; campaign listed at (median)"
        f" {statistics.median(s['campaign_listed_ms']):.0f} ms; the successful poll began at"
        f" (median) {statistics.median(s['last_poll_started_ms']):.0f} ms\n"
        f"  my visits ({lo['query']}, {lo['response_items']} items, {lo['response_bytes']:,}"
        f" bytes; gzipped to {lo['my_visits_wire_bytes']:,} on the wire, the bare app sends"
        f" {lo['bare_wire_bytes']:,} as is) vs a bare FastAPI endpoint serving the same body,"
        f" {lo['clients']} concurrent keep-alive clients, {lo['seconds_per_target']:g} s each:\n"
        f"{pools}\n"
        f"  note: {lo['note']}; when the client is near 100% of a core, it is the bottleneck"
        f" and the figures are a floor for the servers, not their capacity\n"
        f"  total {result['wall_seconds']:.0f} s; logs in {LOGS}",
        flush=True,
    )
    return result
