"""Sirene import against a plain csv scan of the same file, at two sizes.

1. GENERATED files in the real 53-column StockEtablissement layout
   (`tests/bench/generate_sirene.py`, every row marked GENERATED), seen from ti-3205
   with about 0.5 % of the rows kept (active, in its communes, NAF rév. 2 section C):
   the share a territory keeps of the national file. `BENCH_SIRENE_ROWS` gives the
   sizes (1,000,000 and 5,000,000 by default); the files are kept in `.run/bench/`.
2. The baseline: `tests/bench/plain_sirene_scan.py`, Python's csv module applying the
   same filter to the same file and nothing else, as its own process.
3. The importer: the real CLI (`python -m services.site_registry import-sirene`) into a
   fresh PostgreSQL database, publishing its events to Kafka, then again (a re-import,
   which changes nothing). Each is its own process and reports its own peak RSS (VmHWM);
   the importer's scanning child reports its own, and the two are added.

Rows/s counts every row read. The ratio (importer / plain scan) is the figure of
issue 11 (goal ≥ 0.5); peak memory at the two sizes shows whether it is flat in the
file's size (goal: within 10 %). The created sites must equal the rows the plain scan
keeps (active ones; the generator's manifest says the same): printed, not asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SIZES = [int(n) for n in os.environ.get("BENCH_SIRENE_ROWS", "1000000,5000000").split(",") if n]
SEED = 62
TERRITORY = "ti-3205"
SHARE = 0.006  # rows of the territory with a section C code; 85 % of them active → ~0.5 %


def _generated_file(rows: int) -> tuple[Path, dict[str, Any]]:
    folder = ROOT / ".run" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"GENERATED_StockEtablissement_{rows}_seed{SEED}_{TERRITORY}_{SHARE}.csv"
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
                "--territory",
                TERRITORY,
                "--territory-share",
                str(SHARE),
                "--malformed",
                "--manifest",
                str(manifest),
            ],
            cwd=ROOT,
            check=True,
            stderr=subprocess.DEVNULL,
        )
    return path, json.loads(manifest.read_text())


def _process(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one Python process; its last stdout line (JSON), wall time and peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args],
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
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({code})")
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    summary["wall_seconds"] = round(wall, 2)
    # The process's own figure (VmHWM) when it gave one: ru_maxrss of a child started
    # by vfork and exec starts from this harness's high-water mark.
    summary.setdefault("peak_rss_mib", round(usage.ru_maxrss / 1024, 1))
    summary["rows_per_s"] = round(summary["rows_read"] / summary["seconds"])
    # The importer's file is scanned by a child of its own: both count.
    summary["total_peak_rss_mib"] = round(
        summary["peak_rss_mib"] + summary.get("scanner_peak_rss_mib", 0.0), 1
    )
    return summary


def _plain_scan(path: Path) -> dict[str, Any]:
    return _process(["-m", "tests.bench.plain_sirene_scan", str(path), TERRITORY])


def _import(env: dict[str, str], path: Path) -> dict[str, Any]:
    return _process(
        ["-m", "services.site_registry", "import-sirene", str(path), "--territory", TERRITORY],
        env,
    )


def _environment(broker: Any, database: Any) -> dict[str, str]:
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
    return env


def _size(broker: Any, database: Any, rows: int) -> dict[str, Any]:
    path, manifest = _generated_file(rows)
    plain = _plain_scan(path)
    env = _environment(broker, database)  # a fresh database: the first import creates
    first = _import(env, path)
    again = _import(env, path)
    result = {
        "file": path.name,
        "generated": True,
        "bytes": path.stat().st_size,
        "rows": manifest["rows"],
        "kept_share": round(plain["kept_active"] / plain["rows_read"], 4),
        "expected_sites": manifest["expected_matches"],
        "malformed_rows_planted": len(manifest.get("malformed", [])),
        "plain_scan": plain,
        "first_import": first,
        "re_import": again,
        "ratio": round(first["rows_per_s"] / plain["rows_per_s"], 3),
        "re_import_ratio": round(again["rows_per_s"] / plain["rows_per_s"], 3),
        "exact": first["created"] == manifest["expected_matches"],
    }
    print(
        f"[bench] Sirene import, {rows:,} GENERATED rows ({result['bytes'] / 2**20:,.0f} MiB,"
        f" {result['kept_share']:.2%} kept):\n"
        f"  plain csv scan: {plain['rows_per_s']:>9,} rows/s   peak RSS"
        f" {plain['peak_rss_mib']:>6} MiB\n"
        f"  first import:   {first['rows_per_s']:>9,} rows/s   peak RSS"
        f" {first['total_peak_rss_mib']:>6} MiB   ratio {result['ratio']:.2f}"
        f"   ({first['seconds']:.1f} s; {first['wall_seconds']:.1f} s wall incl. start-up"
        f" and publishing {first['created']:,} events)\n"
        f"  re-import:      {again['rows_per_s']:>9,} rows/s   peak RSS"
        f" {again['total_peak_rss_mib']:>6} MiB   ratio {result['re_import_ratio']:.2f}"
        f"   (created {again['created']}, updated {again['updated']})\n"
        f"  sites created {first['created']:,}; the plain scan keeps {plain['kept_active']:,}"
        f" active rows, the generator expects {result['expected_sites']:,}"
        f" ({'exact' if result['exact'] else 'MISMATCH'}); errors reported"
        f" {first['error_count']}",
        flush=True,
    )
    return result


def run() -> dict[str, Any]:
    from tests.support.infra import start_broker, start_database

    broker = start_broker()
    database = start_database()
    try:
        sizes = [_size(broker, database, rows) for rows in SIZES]
    finally:
        broker.stop()
        database.stop()
    result: dict[str, Any] = {
        "territory": TERRITORY,
        "broker": broker.description,
        "database": database.description,
        "goal": "import rows/s >= 0.5 x plain csv scan; peak RSS within 10 % across sizes",
        "sizes": sizes,
    }
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        key = "total_peak_rss_mib"
        growth = large["first_import"][key] / small["first_import"][key]
        result["peak_rss_growth"] = round(growth - 1, 3)
        print(
            f"[bench] Sirene import peak RSS (importer + its scanning process):"
            f" {small['first_import'][key]} MiB at"
            f" {small['rows']:,} rows, {large['first_import'][key]} MiB at"
            f" {large['rows']:,} rows ({growth - 1:+.1%})",
            flush=True,
        )
    return result
