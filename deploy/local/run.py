"""`make run`: the whole system on this machine, no Docker.

- Kafka: the broker named by `KAFKA_BOOTSTRAP_SERVERS`, else an embedded single-node
  KRaft Apache Kafka started from Maven Central jars (data kept in `.run/kafka`).
- Databases: each service's `*_DATABASE_URL`, else its embedded SQLite file in `.run/`.
- Services: one process per service (`python -m services.<name> serve --demo`), as in
  production; each runs its API, its outbox relay and its consumers.

Prints the API docs' URLs and a development token, then runs until Ctrl-C.
`--check` starts everything, verifies the demo territory is loaded, and exits (used by
the end-to-end test of `make run`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


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


def say(message: str) -> None:
    print(f"[rebond] {message}", flush=True)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def get_json(url: str, token: str) -> object:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def send_json(url: str, token: str, body: object) -> object:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def poll(fetch: Callable[[], object], ok: Callable[[object], bool], what: str) -> object:
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(urllib.error.HTTPError):
            value = fetch()
            if ok(value):
                return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"smoke: {what} not reached in 60 s")
        time.sleep(0.2)


def smoke(env: dict[str, str], offset: int) -> None:
    """The whole flow through the running services: shock → campaign → survey → project →
    qualification → funding matches → ledger."""
    url = {spec.name: f"http://127.0.0.1:{spec.port + offset}" for spec in SERVICES}
    cell = mint(env, "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "smoke-cell")
    shock: Any = send_json(
        f"{url['site_registry']}/closure-shocks",
        cell,
        {"site_id": "36120038900019", "announced_on": "2020-09-16", "jobs_lost": 900},
    )
    campaign: Any = poll(
        lambda: get_json(f"{url['campaigns']}/campaigns", cell),
        lambda cs: bool(cs) and cs[0]["targets"] == 164,  # type: ignore[index]
        "campaign of 164 targets",
    )
    say(f"smoke: campaign {campaign[0]['id']} with {campaign[0]['targets']} targets")
    consultant = mint(
        env, "--role", "consultant", "--territory", "ti-3205", "--sub", "consultant-1"
    )
    start = campaign[0]["starts_on"]
    visits: Any = get_json(f"{url['campaigns']}/me/visits?from={start}&days=31", consultant)
    send_json(
        f"{url['campaigns']}/visits/{visits['items'][0]['id']}/survey",
        consultant,
        {
            "questionnaire_version": "2026-1",
            "projects": [
                {
                    "kind": "decarbonation_energy",
                    "description": "smoke test project",
                    "capex_eur": 1_000_000,
                    "jobs_to_create": 8,
                    "maturity": "ready",
                    "known_to_public_actors": False,
                    "funding_need_eur": 300_000,
                    "consent_to_share": True,
                }
            ],
        },
    )
    projects: Any = poll(
        lambda: get_json(f"{url['detection']}/projects", cell),
        lambda p: len(p["items"]) == 1,  # type: ignore[index]
        "the survey's project",
    )
    project_id = projects["items"][0]["id"]
    send_json(f"{url['detection']}/projects/{project_id}/qualify", cell, {})
    matches: Any = poll(
        lambda: get_json(f"{url['funding']}/projects/{project_id}/matches", cell),
        lambda m: "eligible" in m and "rejected" in m,  # type: ignore[operator]
        "funding matches",
    )
    say(
        f"smoke: project {project_id} qualified; funding: {len(matches['eligible'])} eligible,"
        f" {len(matches['rejected'])} rejected schemes, each with its reasons"
    )
    ledger: Any = poll(
        lambda: get_json(f"{url['detection']}/shocks/{shock['id']}/ledger", cell),
        lambda led: led["total"]["detected"] == 8,  # type: ignore[index]
        "the ledger",
    )
    say(f"smoke: ledger: {ledger['jobs_lost']} jobs lost, {ledger['total']['detected']} detected")


def mint(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "shared.auth", "mint", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".run")
    parser.add_argument("--check", action="store_true", help="start, verify, stop")
    parser.add_argument("--port-offset", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="with --check: run the whole flow")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    env.setdefault("REBOND_ENVIRONMENT", "development")
    env.setdefault("PYTHONUNBUFFERED", "1")
    broker = None
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        say(f"Kafka: using {env['KAFKA_BOOTSTRAP_SERVERS']} (KAFKA_BOOTSTRAP_SERVERS)")
    else:
        from shared.infra.kafka_local import LocalKafka

        say("Kafka: starting the embedded Apache Kafka (first run fetches its jars)…")
        broker = LocalKafka(data_dir / "kafka").start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
        say(f"Kafka: Apache Kafka {broker.version} (KRaft) at {broker.bootstrap_servers}")

    procs: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []
    try:
        for spec in SERVICES:
            port = spec.port + args.port_offset
            svc_env = dict(env)
            svc_env[f"{spec.env_prefix}DATA_DIR"] = str(data_dir)
            svc_env[f"{spec.env_prefix}HTTP_PORT"] = str(port)
            db = svc_env.get(f"{spec.env_prefix}DATABASE_URL") or (
                f"SQLite {data_dir / (spec.name + '.db')}"
            )
            log_path = data_dir / f"{spec.name}.log"
            say(f"{spec.name}: starting on port {port} (database: {db}; log: {log_path})")
            log = log_path.open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{spec.name}", *spec.args],
                cwd=ROOT,
                env=svc_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append((spec, proc))
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)

        token = mint(env, "--role", "crisis_cell", "--territory", "ti-3205", "--sub", "demo-cell")
        registry_port = SERVICES[0].port + args.port_offset
        detail = get_json(f"http://127.0.0.1:{registry_port}/territories/ti-3205", token)
        assert isinstance(detail, dict)
        say(
            f"Béthune demo loaded: {detail['name']}, {len(detail['communes'])} communes,"
            f" sites {detail['site_counts']}"
        )
        for spec, _ in procs:
            say(f"{spec.name} API docs: http://127.0.0.1:{spec.port + args.port_offset}/docs")
        say("Development token (crisis cell of ti-3205), valid 12 h:")
        print(token, flush=True)
        say(
            'Try: curl -H "Authorization: Bearer $TOKEN"'
            f" http://127.0.0.1:{registry_port}/sites/36120038900019"
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
                smoke(env, args.port_offset)
            say("check passed")
            return 0
        say("Running. Ctrl-C stops everything.")
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.poll() is None for _, p in procs):
                time.sleep(0.5)
        for spec, p in procs:
            if p.poll() is not None:
                say(f"{spec.name} exited with code {p.returncode}; see its log")
                return 1
        return 0
    finally:
        for _, p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for _, p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=20)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    raise SystemExit(main())
