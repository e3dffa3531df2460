"""GENERATED funding schemes, for the matching benchmark.

Every scheme here is SYNTHETIC: drawn from a seeded random generator, with an id
starting "gen-", a name starting "GENERATED" and ``generated=True``, so none can be
mistaken for a real scheme. Only the vocabulary is real (the 18 regions and 101
departments, NAF rév. 2 divisions of manufacturing, the catalogue's kinds, themes and
aid types); EPCI SIRENs are drawn from 990000000-999999999 and territories are made-up
"ti-RRNN" ids, so they never name a real EPCI or Territoire d'industrie.

The mix imitates a national catalogue seen from one project: most schemes are
departmental or regional (so most are refused on the perimeter), a fifth are national;
sizes, sectors, kinds, rates, amounts and dates vary, some open, some closed, some
permanent.

Usage::

    uv run python -m tests.bench.generate_schemes [--n 10000] [--seed 2030]

prints how long matching one Béthune-like project against them takes.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import date, timedelta

from services.funding.domain.catalogue import (
    DEPARTMENTS,
    PROJECT_KINDS,
    REGIONS,
    THEMES,
    Perimeter,
    Scheme,
    validate_scheme,
)
from services.funding.domain.matching import ProjectProfile, match
from shared.events.funding import AidType, FirmSize

SIZES: tuple[FirmSize, ...] = ("micro", "sme", "midcap", "large")
AID_TYPES: tuple[AidType, ...] = (
    "grant",
    "loan",
    "recoverable_advance",
    "guarantee",
    "equity",
    "engineering_support",
    "other",
)
AID_WEIGHTS = (50, 20, 15, 5, 3, 5, 2)
KINDS = sorted(PROJECT_KINDS - {"other"})
REAL_THEMES = sorted(THEMES - {"other"})
REGION_CODES = sorted(REGIONS)
DEPARTMENT_CODES = sorted(DEPARTMENTS)
MANUFACTURING_DIVISIONS = [f"{d:02d}" for d in range(10, 34)]
AMOUNTS = (10_000, 25_000, 50_000, 100_000, 200_000, 500_000, 1_000_000, 3_000_000, 10_000_000)


def _perimeter(rng: random.Random) -> Perimeter:
    roll = rng.random()
    if roll < 0.20:
        return Perimeter.national()
    if roll < 0.45:
        return Perimeter("region", tuple(sorted(rng.sample(REGION_CODES, rng.choice((1, 1, 2))))))
    if roll < 0.80:
        k = rng.choice((1, 1, 1, 2, 3))
        return Perimeter("department", tuple(sorted(rng.sample(DEPARTMENT_CODES, k))))
    if roll < 0.90:
        sirens = {f"99{rng.randrange(10_000_000):07d}" for _ in range(rng.choice((1, 2, 3)))}
        return Perimeter("epci", tuple(sorted(sirens)))
    region = rng.choice(REGION_CODES)
    return Perimeter("territory", (f"ti-{region}{rng.randrange(1, 40):02d}",))


def _naf(rng: random.Random) -> tuple[frozenset[str], tuple[str, ...]]:
    roll = rng.random()
    if roll < 0.40:
        return frozenset(), ()
    if roll < 0.70:
        return frozenset(rng.sample(("B", "C", "C", "C", "D", "E"), 1)), ()
    prefixes = []
    for _ in range(rng.choice((1, 2, 3))):
        division = rng.choice(MANUFACTURING_DIVISIONS)
        depth = rng.random()
        if depth < 0.5:
            prefixes.append(division)
        elif depth < 0.8:
            prefixes.append(f"{division}.{rng.randrange(1, 10)}")
        else:
            prefixes.append(f"{division}.{rng.randrange(1, 10)}{rng.randrange(0, 10)}")
    return frozenset(), tuple(sorted(set(prefixes)))


def _bounds(rng: random.Random, share: float) -> tuple[int | None, int | None]:
    if rng.random() >= share:
        return None, None
    lo_i = rng.randrange(len(AMOUNTS))
    hi_i = rng.randrange(lo_i, len(AMOUNTS))
    lo = AMOUNTS[lo_i] if rng.random() < 0.6 else None
    hi = AMOUNTS[hi_i] if rng.random() < 0.8 else None
    if lo is not None and hi is not None and lo == hi:
        hi = None
    return lo, hi


def _dates(rng: random.Random) -> tuple[date | None, date | None]:
    roll = rng.random()
    if roll < 0.20:
        return None, None  # permanent
    opens = date(2019, 1, 1) + timedelta(days=rng.randrange(0, 365 * 8))
    if roll < 0.30:
        return opens, None
    return opens, opens + timedelta(days=rng.randrange(30, 365 * 3))


def generate_schemes(n: int, seed: int) -> list[Scheme]:
    """``n`` GENERATED, valid schemes; the same ``(n, seed)`` gives the same list."""
    rng = random.Random(seed)
    out: list[Scheme] = []
    for i in range(n):
        perimeter = _perimeter(rng)
        sections, prefixes = _naf(rng)
        aid_type = rng.choices(AID_TYPES, weights=AID_WEIGHTS)[0]
        sizes = (
            frozenset()
            if rng.random() < 0.4
            else frozenset(rng.sample(SIZES, rng.choice((1, 2, 2, 3))))
        )
        restriction = rng.random()
        kinds = frozenset(rng.sample(KINDS, rng.choice((1, 2, 3)))) if restriction < 0.3 else ()
        themes = (
            frozenset(rng.sample(REAL_THEMES, rng.choice((1, 2, 3))))
            if 0.3 <= restriction < 0.7
            else frozenset()
        )
        rate_min = rate_max = None
        if aid_type in ("grant", "recoverable_advance", "other") and rng.random() < 0.7:
            rate_min = float(rng.choice((10, 15, 20, 25, 30, 40)))
            rate_max = float(rng.choice((rate_min, 30, 40, 50, 60, 80)))
            rate_max = max(rate_min, rate_max)
        amount_min, amount_max = _bounds(rng, 0.5)
        capex_min, capex_max = _bounds(rng, 0.4)
        opens_on, closes_on = _dates(rng)
        theme = next(iter(sorted(themes)), None) or next(iter(sorted(kinds)), None) or "any"
        out.append(
            validate_scheme(
                Scheme(
                    id=f"gen-{seed}-{i:05d}",
                    name=f"GENERATED scheme {i} — {theme} ({perimeter.scale})",
                    funders=(f"GENERATED funder {rng.randrange(1, 60)}",),
                    perimeter=perimeter,
                    aid_type=aid_type,
                    beneficiaries=sizes,
                    naf_sections=sections,
                    naf_prefixes=prefixes,
                    kinds=frozenset(kinds),
                    themes=themes,
                    rate_min_pct=rate_min,
                    rate_max_pct=rate_max,
                    amount_min_eur=amount_min,
                    amount_max_eur=amount_max,
                    capex_min_eur=capex_min,
                    capex_max_eur=capex_max,
                    opens_on=opens_on,
                    closes_on=closes_on,
                    source=f"GENERATED by tests/bench/generate_schemes.py (seed {seed}): synthetic",
                    generated=True,
                    de_minimis=rng.random() < 0.15,
                )
            )
        )
    return out


def bethune_like_project() -> ProjectProfile:
    """A made-up decarbonation project of an SME in ti-3205 (region 32, department 62)."""
    return ProjectProfile(
        project_id=uuid.UUID("00000000-0000-4000-8000-000000003205"),
        territory_id="ti-3205",
        region_code="32",
        department_code="62",
        epci_sirens=("200072460",),
        firm_size="sme",
        naf_code="22.11Z",
        kind="decarbonation_energy",
        jobs_planned=12,
        capex_eur=1_200_000,
        funding_need_eur=600_000,
        consent_to_share=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2030)
    args = parser.parse_args()
    schemes = generate_schemes(args.n, args.seed)
    project = bethune_like_project()
    today = date(2026, 11, 22)
    timings = []
    for _ in range(7):
        t0 = time.perf_counter()
        found = match(project, schemes, today)
        timings.append(time.perf_counter() - t0)
    timings.sort()
    print(
        f"matched 1 project against {len(schemes)} GENERATED schemes: {len(found)} eligible;"
        f" median {timings[3] * 1000:.1f} ms, best {timings[0] * 1000:.1f} ms (7 runs)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
