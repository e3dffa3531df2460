"""Matching latency per project against a catalogue of 10,000 GENERATED schemes.

Two figures: the pure domain (match every criterion of every scheme, rank, stack a
financing plan) and the service path (`Matcher.rematch` through the unit of work's
repositories: catalogue cache check, matching, plan, writing the match rows and the
funder-feed outbox rows, commit) on PostgreSQL.
Schemes come from `tests/bench/generate_schemes.py` and are marked generated.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import time
import uuid
from typing import Any

from services.funding.domain.matching import IndexedCatalogue, ProjectProfile, match
from services.funding.domain.plan import IntensityCaps, financing_plan
from tests.bench.generate_schemes import generate_schemes

SCHEMES = int(os.environ.get("BENCH_MATCHING_SCHEMES", "10000"))
PROJECTS = int(os.environ.get("BENCH_MATCHING_PROJECTS", "300"))
KINDS = ("capacity_extension", "new_line", "modernisation_automation", "decarbonation_energy",
         "rnd_innovation", "site_takeover", "new_site", "skills_training")  # fmt: skip
SIZES = ("micro", "sme", "sme", "sme", "midcap", "large", None)
TERRITORIES = ("ti-3205", "ti-3205", "ti-3209", "ti-8401", "ti-7601", "ti-5301")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


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
                firm_size=rng.choice(SIZES),  # type: ignore[arg-type]
                naf_code=rng.choice(("22.11Z", "25.62A", "10.71C", "28.29B", "20.16Z")),
                kind=rng.choice(KINDS),  # type: ignore[arg-type]
                jobs_planned=rng.randint(0, 120),
                capex_eur=capex,
                funding_need_eur=None if capex is None else capex // rng.choice((2, 3, 5)),
                consent_to_share=True,
            )
        )
    return out


def pure_domain(schemes: list[Any], projects: list[ProjectProfile]) -> dict[str, Any]:
    from datetime import date

    today = date(2026, 11, 23)
    caps = IntensityCaps()
    samples, eligible = [], []
    match(projects[0], schemes, today)  # warm-up
    for p in projects:
        t = time.perf_counter()
        found = match(p, schemes, today)
        financing_plan(p, found, caps, "none")
        samples.append((time.perf_counter() - t) * 1000)
        eligible.append(len(found))
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(percentile(samples, 99), 2),
        "max_ms": round(max(samples), 2),
        "mean_eligible": round(statistics.mean(eligible), 1),
    }


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
            assert len(await svc.matcher.cache.schemes(session)) == len(schemes)  # warm cache
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
            "database": database.description,
        }
    finally:
        if svc is not None:
            await svc.aclose()
        database.stop()


def run() -> dict[str, Any]:
    t = time.perf_counter()
    schemes = generate_schemes(SCHEMES, 2026)
    generated_s = time.perf_counter() - t
    projects = profiles(PROJECTS)
    domain = pure_domain(schemes, projects)  # every scheme examined
    t = time.perf_counter()
    catalogue = IndexedCatalogue(schemes)
    index_s = time.perf_counter() - t
    indexed = pure_domain(catalogue, projects)  # what the service's catalogue cache does
    service = asyncio.run(service_path(schemes, projects))
    result = {
        "schemes": SCHEMES,
        "generated": True,
        "projects": PROJECTS,
        "generation_s": round(generated_s, 2),
        "domain": domain,
        "domain_indexed": {**indexed, "index_build_s": round(index_s, 3)},
        "service": service,
    }
    print(
        f"[bench] matching one project against {SCHEMES:,} GENERATED schemes, {PROJECTS}"
        f" projects:\n"
        f"  domain (match + rank + plan): median {domain['median_ms']} ms,"
        f" p99 {domain['p99_ms']} ms, max {domain['max_ms']} ms;"
        f" {domain['mean_eligible']} eligible schemes per project on average\n"
        f"  domain, indexed catalogue (built in {index_s * 1000:.0f} ms): median"
        f" {indexed['median_ms']} ms, p99 {indexed['p99_ms']} ms (p99 ratio to the full scan"
        f" {indexed['p99_ms'] / domain['p99_ms']:.2f})\n"
        f"  service (rematch: cache check, match, plan, match rows + outbox rows, commit) on"
        f" {service['database']}: median {service['median_ms']} ms, p99 {service['p99_ms']} ms,"
        f" max {service['max_ms']} ms",
        flush=True,
    )
    return result
