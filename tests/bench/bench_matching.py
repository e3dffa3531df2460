"""Matching latency per project against catalogues of 10,000 and 100,000 GENERATED schemes.

For each catalogue size (`BENCH_MATCHING_SCHEMES`, default "10000,100000"), in the same
run so that the ratio holds whatever the machine's load:

* the **full scan** (baseline): every scheme examined with the status rules, ranked, a
  financing plan stacked — `match` given a plain list;
* the **indexed catalogue** (what the service runs): `match` given an `IndexedCatalogue`,
  ranked, the same plan; the two results are checked equal for the baseline's projects;
* the catalogue's build time and memory (traced allocations of the index, the schemes'
  reason parts included), and the first match of a day (the day's open schemes computed);
* what is written on request: the eligible schemes' reasons (the service stores them),
  and the "why not" of the 200 nearest rejected schemes (`?rejected=true`);
* at 10,000 only by default (`BENCH_MATCHING_SERVICE_SCHEMES`), the service path:
  `Matcher.rematch` through the unit of work (catalogue cache check, matching, plan, the
  match rows and the funder-feed outbox rows, commit) on PostgreSQL.

Median and p99 are per project (`BENCH_MATCHING_PROJECTS`, 300; at 100,000 the full
scan takes the first `BENCH_MATCHING_BASELINE_PROJECTS`, 100, of the same projects, the
reasons on request 100 and the rejections 15; at 10,000 the rejections 50). Schemes
come from `tests/bench/generate_schemes.py` and are marked generated.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from services.funding.domain.catalogue import Scheme
from services.funding.domain.matching import (
    IndexedCatalogue,
    ProjectProfile,
    explain_rejections,
    match,
)
from services.funding.domain.plan import IntensityCaps, financing_plan
from tests.bench.generate_schemes import generate_schemes

SIZES = tuple(
    int(n) for n in os.environ.get("BENCH_MATCHING_SCHEMES", "10000,100000").split(",") if n
)
PROJECTS = int(os.environ.get("BENCH_MATCHING_PROJECTS", "300"))
BASELINE_PROJECTS = int(os.environ.get("BENCH_MATCHING_BASELINE_PROJECTS", "100"))
SERVICE_SIZES = tuple(
    int(n) for n in os.environ.get("BENCH_MATCHING_SERVICE_SCHEMES", "10000").split(",") if n
)
SERVICE_PROJECTS = int(os.environ.get("BENCH_MATCHING_SERVICE_PROJECTS", "100"))
TODAY = date(2026, 11, 23)
KINDS = ("capacity_extension", "new_line", "modernisation_automation", "decarbonation_energy",
         "rnd_innovation", "site_takeover", "new_site", "skills_training")  # fmt: skip
SIZES_OF_FIRMS = ("micro", "sme", "sme", "sme", "midcap", "large", None)
TERRITORIES = ("ti-3205", "ti-3205", "ti-3209", "ti-8401", "ti-7601", "ti-5301")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def profiles(n: int, seed: int = 7) -> list[ProjectProfile]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        territory = rng.choice(TERRITORIES)
        capex = rng.choice((None, 150_000, 600_000, 1_200_000, 4_000_000, 25_000_000))
        out.append(
            ProjectProfile(
                project_id=uuid.UUID(int=rng.getrandbits(128)),
                territory_id=territory,
                region_code=territory[3:5],
                department_code="62" if territory.startswith("ti-32") else None,
                epci_sirens=(),
                firm_size=rng.choice(SIZES_OF_FIRMS),  # type: ignore[arg-type]
                naf_code=rng.choice(("22.11Z", "25.62A", "10.71C", "28.29B", "20.16Z")),
                kind=rng.choice(KINDS),  # type: ignore[arg-type]
                jobs_planned=rng.randint(0, 120),
                capex_eur=capex,
                funding_need_eur=None if capex is None else capex // rng.choice((2, 3, 5)),
                consent_to_share=True,
            )
        )
    return out


def timed(
    projects: Sequence[ProjectProfile], work: Callable[[ProjectProfile], int]
) -> dict[str, Any]:
    work(projects[0])  # warm-up
    samples, sizes = [], []
    for p in projects:
        t = time.perf_counter()
        sizes.append(work(p))
        samples.append((time.perf_counter() - t) * 1000)
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "max_ms": round(max(samples), 2),
        "mean_results": round(statistics.mean(sizes), 1),
        "projects": len(samples),
    }


def domain(schemes: Sequence[Scheme], projects: Sequence[ProjectProfile]) -> dict[str, Any]:
    """match + rank + plan, per project."""
    caps = IntensityCaps()

    def work(p: ProjectProfile) -> int:
        found = match(p, schemes, TODAY)
        financing_plan(p, found, caps, "none")
        return len(found)

    return timed(projects, work)


def with_reasons(catalogue: IndexedCatalogue, projects: Sequence[ProjectProfile]) -> dict[str, Any]:
    """match + rank + plan + every eligible scheme's reasons (what the service stores)."""
    caps = IntensityCaps()

    def work(p: ProjectProfile) -> int:
        found = match(p, catalogue, TODAY)
        financing_plan(p, found, caps, "none")
        for m in found:
            m.criteria  # noqa: B018 - written when read
        return len(found)

    return timed(projects, work)


def rejections(catalogue: IndexedCatalogue, projects: Sequence[ProjectProfile]) -> dict[str, Any]:
    """The "why not" on request: the 200 nearest rejected schemes, with their reasons."""

    def work(p: ProjectProfile) -> int:
        found = explain_rejections(p, catalogue, TODAY, limit=200)
        for m in found:
            m.criteria  # noqa: B018
        return len(found)

    return timed(projects, work)


def build(schemes: list[Scheme]) -> tuple[IndexedCatalogue, dict[str, Any]]:
    fresh = [replace(s) for s in schemes]  # copies: no reason parts kept from another build
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    traced = IndexedCatalogue(fresh)
    memory = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del traced, fresh
    t = time.perf_counter()
    catalogue = IndexedCatalogue(schemes)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    catalogue.open_on(TODAY - timedelta(days=1))  # a first match on a new day
    day_ms = (time.perf_counter() - t) * 1000
    catalogue.open_on(TODAY)
    return catalogue, {
        "build_s": round(build_s, 3),
        "index_memory_mib": round(memory / 2**20, 1),
        "first_match_of_a_day_extra_ms": round(day_ms, 1),
    }


def same_results(
    schemes: list[Scheme], catalogue: IndexedCatalogue, projects: Sequence[ProjectProfile]
) -> None:
    for p in projects[: 20 if len(schemes) <= 10_000 else 5]:
        full = [(m.scheme.id, m.unknowns) for m in match(p, schemes, TODAY)]
        assert full == [(m.scheme.id, m.unknowns) for m in match(p, catalogue, TODAY)], p


async def service_path(schemes: list[Any], projects: list[ProjectProfile]) -> dict[str, Any]:
    from services.funding.adapters.orm import FundingProjectRow
    from services.funding.adapters.repository import scheme_row
    from services.funding.bootstrap import bootstrap
    from services.funding.settings import FundingSettings
    from tests.support.infra import start_database

    database = start_database()
    svc = None
    try:
        url = await database.create_database(f"bench_match_{uuid.uuid4().hex[:8]}")
        svc = bootstrap(
            FundingSettings(
                environment="test",
                database_url=url,
                load_seed=False,
                jwt_secret="bench-secret-of-at-least-thirty-two-chars",
            )  # type: ignore[arg-type]
        )
        await svc.migrate()
        async with svc.uow() as uow:
            uow.session.add_all([scheme_row(s) for s in schemes])
            for p in projects:
                uow.session.add(
                    FundingProjectRow(
                        project_id=p.project_id,
                        version=1,
                        territory_id=p.territory_id,
                        kind=p.kind,
                        stage="qualified",
                        origin="endogenous",
                        jobs_planned=p.jobs_planned,
                        capex_eur=p.capex_eur,
                        funding_need_eur=p.funding_need_eur,
                        consent_to_share=True,
                        firm_name="GENERATED firm",
                        naf_code=p.naf_code,
                    )
                )
            await uow.commit()
        async with svc.session_factory() as session:
            t = time.perf_counter()
            assert len(await svc.matcher.cache.schemes(session)) == len(schemes)  # warm cache
            cache_s = time.perf_counter() - t
        samples = []
        for p in projects:
            t = time.perf_counter()
            async with svc.uow() as uow:
                project = await uow.projects.get(p.project_id)
                assert project is not None
                await svc.matcher.rematch(uow, project)
                await uow.commit()
            samples.append((time.perf_counter() - t) * 1000)
        return {
            "median_ms": round(statistics.median(samples), 2),
            "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 2),
            "projects": len(samples),
            "catalogue_cache_load_s": round(cache_s, 2),
            "database": database.description,
        }
    finally:
        if svc is not None:
            await svc.aclose()
        database.stop()


def one_size(n: int, projects: list[ProjectProfile]) -> dict[str, Any]:
    load_start = loadavg()
    t = time.perf_counter()
    schemes = generate_schemes(n, 2026)
    generated_s = time.perf_counter() - t
    catalogue, built = build(schemes)
    baseline_projects = projects if n <= 10_000 else projects[:BASELINE_PROJECTS]
    same_results(schemes, catalogue, baseline_projects)
    full = domain(schemes, baseline_projects)
    indexed = domain(catalogue, projects)
    small = n <= 10_000  # at 100,000 the figures on request take fewer projects
    reasons = with_reasons(catalogue, projects if small else projects[:100])
    why_not = rejections(catalogue, projects[: 50 if small else 15])
    result: dict[str, Any] = {
        "schemes": n,
        "generated": True,
        "generation_s": round(generated_s, 2),
        "full_scan": full,
        "indexed": indexed,
        "ratio_median": round(full["median_ms"] / indexed["median_ms"], 1),
        "ratio_p99": round(full["p99_ms"] / indexed["p99_ms"], 1),
        "catalogue": built,
        "indexed_with_every_eligible_reason": reasons,
        "rejections_on_request_200": why_not,
        "loadavg_start": load_start,
        "loadavg_end_of_domain": loadavg(),
    }
    print(
        f"[bench] matching, {n:,} GENERATED schemes (load {load_start} → {loadavg()}):\n"
        f"  full scan (baseline; match + rank + plan), {full['projects']} projects: median"
        f" {full['median_ms']} ms, p99 {full['p99_ms']} ms;"
        f" {full['mean_results']} eligible schemes per project on average\n"
        f"  indexed, {indexed['projects']} projects: median {indexed['median_ms']} ms, p99"
        f" {indexed['p99_ms']} ms, max {indexed['max_ms']} ms (full scan / indexed: median"
        f" ×{result['ratio_median']}, p99 ×{result['ratio_p99']})\n"
        f"  catalogue: built in {built['build_s']} s, {built['index_memory_mib']} MiB traced;"
        f" a day's first match +{built['first_match_of_a_day_extra_ms']} ms\n"
        f"  on request: every eligible reason written too, median {reasons['median_ms']} ms,"
        f" p99 {reasons['p99_ms']} ms; the 200 nearest rejections explained, median"
        f" {why_not['median_ms']} ms, p99 {why_not['p99_ms']} ms",
        flush=True,
    )
    if n in SERVICE_SIZES:
        service = asyncio.run(service_path(schemes, projects[:SERVICE_PROJECTS]))
        result["service"] = service
        print(
            f"  service (rematch: cache check, match, plan, match rows + outbox rows, commit)"
            f" on {service['database']}, {service['projects']} projects: median"
            f" {service['median_ms']} ms, p99 {service['p99_ms']} ms, max {service['max_ms']} ms"
            f" (catalogue cache loaded and indexed in {service['catalogue_cache_load_s']} s)",
            flush=True,
        )
    result["loadavg_end"] = loadavg()
    return result


def run() -> dict[str, Any]:
    projects = profiles(PROJECTS)
    t = time.perf_counter()
    sizes = {str(n): one_size(n, projects) for n in SIZES}
    return {
        "projects": PROJECTS,
        "today": TODAY.isoformat(),
        "sizes": sizes,
        "duration_s": round(time.perf_counter() - t, 1),
    }
