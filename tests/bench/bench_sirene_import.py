"""Sirene import throughput and peak memory on a GENERATED 1,000,000-row file in the real
53-column StockEtablissement layout, into PostgreSQL, events published to Kafka.

The import runs as the real CLI process (`python -m services.site_registry import-sirene`)
so its peak RSS is the whole process's, not this harness's. Rows/s counts every row read
(the national file is mostly rows outside the territory; those are the cost to beat).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ROWS = int(os.environ.get("BENCH_SIRENE_ROWS", "1000000"))
SEED = 62


def _generated_file(rows: int) -> tuple[Path, dict[str, Any]]:
    folder = ROOT / ".run" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"GENERATED_StockEtablissement_{rows}_seed{SEED}.csv"
    manifest = path.with_suffix(".json")
    if not (path.exists() and manifest.exists()):
        print(f"[bench] generating {rows:,} GENERATED rows into {path}", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.generate_sirene",
                str(path),
                "--rows",
                str(rows),
                "--seed",
                str(SEED),
                "--malformed",
                "--manifest",
                str(manifest),
            ],
            cwd=ROOT,
            check=True,
        )
    return path, json.loads(manifest.read_text())


def _import(env: dict[str, str], path: Path) -> dict[str, Any]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.site_registry",
            "import-sirene",
            str(path),
            "--territory",
            "ti-3205",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    # wait4 gives this child's own resource usage: its peak RSS, not the harness's.
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"import failed ({proc.returncode})")
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    summary["wall_seconds"] = round(wall, 2)
    summary["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
    return summary


def run() -> dict[str, Any]:
    from tests.support.infra import start_broker, start_database

    path, manifest = _generated_file(ROWS)
    broker = start_broker()
    database = start_database()
    try:
        import asyncio

        db_url = asyncio.run(database.create_database(f"bench_{uuid.uuid4().hex[:8]}"))
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
            "SITE_REGISTRY_DATABASE_URL": db_url,
            "REBOND_LOG_JSON": "true",
            # No default environment (issue 10): the bench names its own, with a secret.
            "REBOND_ENVIRONMENT": "test",
            "REBOND_JWT_SECRET": "bench-secret-of-at-least-thirty-two-chars",
        }
        subprocess.run(
            [sys.executable, "-m", "services.site_registry", "load-reference"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        first = _import(env, path)
        second = _import(env, path)
    finally:
        broker.stop()
        database.stop()

    result = {
        "file": path.name,
        "generated": True,
        "rows": manifest["rows"],
        "expected_kept": manifest["expected_matches"],
        "malformed_rows": len(manifest.get("malformed", [])),
        "broker": broker.description,
        "database": database.description,
        "first_import": first,
        "re_import": second,
        "first_rows_per_s": round(first["rows_read"] / first["seconds"]),
        "re_import_rows_per_s": round(second["rows_read"] / second["seconds"]),
    }
    print(
        f"[bench] Sirene import of {result['rows']:,} GENERATED rows into PostgreSQL:\n"
        f"  first import: {first['seconds']:.1f} s import ({result['first_rows_per_s']:,} rows/s),"
        f" {first['wall_seconds']:.1f} s wall incl. start-up and publishing"
        f" {first['created']:,} events; peak RSS {first['peak_rss_mib']} MiB\n"
        f"  created {first['created']:,} sites (expected {result['expected_kept']:,}); rows in"
        f" scope {first['in_scope']:,} incl. {first['skipped']:,} closed ones skipped;"
        f" errors {first['error_count']}"
        f" (malformed rows planted: {result['malformed_rows']})\n"
        f"  re-import: {second['seconds']:.1f} s ({result['re_import_rows_per_s']:,} rows/s),"
        f" created {second['created']}, updated {second['updated']} (nothing to emit)",
        flush=True,
    )
    return result
