"""The indexed catalogue examines fewer schemes and finds exactly what the full scan
finds: the same eligible schemes, in the same order, with the same criteria and reasons,
for projects whose place, NAF code or kind are known, partly known or unknown, on any day
(the schemes' date windows), with the same financing plan; and the rejections asked for
are the rest of the catalogue."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import get_args

import pytest

from services.funding.domain.catalogue import Call, Perimeter, Scheme, SelectionRound
from services.funding.domain.matching import (
    IndexedCatalogue,
    Match,
    ProjectProfile,
    count_eligible,
    evaluate,
    explain_rejections,
    match,
)
from services.funding.domain.plan import IntensityCaps, Zone, financing_plan
from shared.events.campaigns import ProjectKind
from tests.bench.generate_schemes import generate_schemes

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 23)
KINDS = get_args(ProjectKind)


def projects(n: int, epcis: list[str], seed: int) -> list[ProjectProfile]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        region = rng.choice(("32", "11", "44", "84", None))
        capex = rng.choice((None, 150_000, 1_200_000, 25_000_000))
        out.append(
            ProjectProfile(
                project_id=uuid.UUID(int=rng.getrandbits(128)),
                territory_id=rng.choice(("ti-3205", "ti-4408", f"ti-{region or '32'}07")),
                region_code=region,
                department_code=rng.choice(("62", "59", "57", None)),
                epci_sirens=tuple(rng.sample(epcis, min(len(epcis), rng.choice((0, 0, 1, 2))))),
                firm_size=rng.choice(("micro", "sme", "midcap", "large", None)),
                naf_code=rng.choice(("22.11Z", "25.62A", "10.71C", "28.29B", "2016Z", None)),
                kind=rng.choice(KINDS),  # type: ignore[arg-type]
                jobs_planned=rng.randint(0, 120),
                capex_eur=capex,
                funding_need_eur=None if capex is None else capex // 3,
                consent_to_share=True,
            )
        )
    return out


def test_the_index_finds_what_the_full_scan_finds() -> None:
    schemes = generate_schemes(3_000, seed=11)
    catalogue = IndexedCatalogue(schemes)
    epcis = sorted({c for s in schemes if s.perimeter.scale == "epci" for c in s.perimeter.codes})
    examined = 0
    found_any = 0
    for project in projects(300, epcis[:40], seed=5):
        full = match(project, schemes, TODAY)
        indexed = match(project, catalogue, TODAY)
        assert [(m.scheme.id, m.criteria) for m in indexed] == [
            (m.scheme.id, m.criteria) for m in full
        ]
        found_any += bool(full)
        examined += len(catalogue.candidates_for(project, TODAY))
    assert found_any > 100  # the comparison is not between empty lists
    assert examined < 300 * len(schemes) * 0.6  # and the index does leave schemes out


def test_an_empty_catalogue_and_a_catalogue_in_another_order() -> None:
    project = projects(1, [], seed=1)[0]
    assert match(project, IndexedCatalogue(), TODAY) == []
    schemes = generate_schemes(500, seed=3)
    shuffled = schemes[:]
    random.Random(2).shuffle(shuffled)
    assert [m.scheme.id for m in match(project, IndexedCatalogue(shuffled), TODAY)] == [
        m.scheme.id for m in match(project, schemes, TODAY)
    ]


# --- property-style: random catalogues, every criterion and date window varied ------------

REGIONS = ("32", "11", "84")
DEPARTMENTS = ("62", "59", "75", "69")
TERRITORIES = ("ti-3205", "ti-1101", "ti-8407")
EPCIS = ("990000001", "990000002", "990000003")
SIZES = ("micro", "sme", "midcap", "large")
SECTIONS = ("B", "C", "D", "G")
PREFIXES = ("22", "22.1", "22.11", "22.11Z", "25.62", "10", "28.29B", "47")
THEMES = ("industrial_development", "modernisation", "decarbonation", "energy", "innovation",
          "digital", "land_brownfields", "skills", "other")  # fmt: skip
AMOUNTS = (None, 50_000, 200_000, 400_000, 1_200_000, 5_000_000)
AID_TYPES = ("grant", "loan", "recoverable_advance", "guarantee", "equity",
             "engineering_support", "other")  # fmt: skip
FIRST_DAY = date(2026, 1, 1)


def random_scheme(rng: random.Random, i: int) -> Scheme:
    """Any combination of restrictions, valid or not (the index must agree anyway)."""
    scale = rng.choice(("national", "region", "department", "epci", "territory"))
    pool = {"region": REGIONS, "department": DEPARTMENTS, "epci": EPCIS,
            "territory": TERRITORIES}.get(scale, ())  # fmt: skip
    codes = tuple(rng.sample(pool, rng.randint(1, 2))) if pool else ()

    def some(items: tuple[str, ...], empty: float) -> frozenset[str]:
        return frozenset() if rng.random() < empty else frozenset(rng.sample(items, 2))

    def day() -> date | None:
        return None if rng.random() < 0.4 else FIRST_DAY + timedelta(days=rng.randrange(60))

    opens, closes = day(), day()
    rate = rng.choice((None, 10.0, 30.0, 30.0, 60.0))
    return Scheme(
        id=f"gen-{rng.randrange(10**6):06d}-{i}",
        name=f"GENERATED {i}",
        funders=tuple(rng.sample(("F1", "F2", "F3"), rng.randint(1, 2))),
        perimeter=Perimeter(scale, codes),  # type: ignore[arg-type]
        aid_type=rng.choice(AID_TYPES),  # type: ignore[arg-type]
        beneficiaries=some(SIZES, 0.5),  # type: ignore[arg-type]
        naf_sections=some(SECTIONS, 0.7),
        naf_prefixes=tuple(some(PREFIXES, 0.6)),
        kinds=some(KINDS, 0.7),  # type: ignore[arg-type]
        themes=some(THEMES, 0.6),
        rate_max_pct=rate,
        amount_min_eur=rng.choice(AMOUNTS),
        amount_max_eur=rng.choice(AMOUNTS),
        capex_min_eur=rng.choice(AMOUNTS),
        capex_max_eur=rng.choice(AMOUNTS),
        opens_on=opens,
        closes_on=closes,
        source="GENERATED by the test",
        generated=True,
        de_minimis=rng.random() < 0.2,
    )


def random_project(rng: random.Random) -> ProjectProfile:
    capex = rng.choice(AMOUNTS)
    return ProjectProfile(
        project_id=uuid.UUID(int=rng.getrandbits(128)),
        territory_id=rng.choice(TERRITORIES),
        region_code=rng.choice((*REGIONS, None)),
        department_code=rng.choice((*DEPARTMENTS, None)),
        epci_sirens=tuple(rng.sample(EPCIS, rng.choice((0, 0, 1, 2)))),
        firm_size=rng.choice((*SIZES, None)),  # type: ignore[arg-type]
        naf_code=rng.choice(("22.11Z", "2211Z", "25.62A", "47.11F", "10.71C", "", None)),
        kind=rng.choice(KINDS),
        jobs_planned=rng.randint(0, 50),
        capex_eur=capex,
        funding_need_eur=rng.choice((None, capex, 100_000, 2_000_000)),
        consent_to_share=True,
        firm_size_source=rng.choice((None, "company_category", "headcount_band")),
    )


def explained(found: list[Match]) -> list[tuple[str, int, int, float, tuple[object, ...]]]:
    return [(m.scheme.id, m.fails, m.unknowns, m.score, m.criteria) for m in found]


@pytest.mark.parametrize("seed", range(6))
def test_random_catalogues_the_index_gives_the_full_scan_result(seed: int) -> None:
    rng = random.Random(seed)
    schemes = [random_scheme(rng, i) for i in range(rng.choice((1, 40, 400)))]
    schemes += rng.sample(schemes, len(schemes) // 10)  # the same scheme twice
    catalogue = IndexedCatalogue(schemes)
    caps = IntensityCaps()
    examined = eligible = 0
    for _ in range(120):
        project = random_project(rng)
        today = FIRST_DAY + timedelta(days=rng.randrange(-5, 65))  # every window edge
        calls = [
            Call(
                id=f"call-{s.id}",
                scheme_id=s.id,
                name="GENERATED call",
                rounds=(SelectionRound("r1", today + timedelta(days=3)),),
            )
            for s in rng.sample(schemes, min(3, len(schemes)))
        ]
        full = match(project, schemes, today, calls=calls)
        indexed = match(project, catalogue, today, calls=calls)
        assert explained(indexed) == explained(full)
        assert all(m.eligible for m in full)
        call_of = {c.scheme_id: c for c in calls}
        assert [m.criteria for m in full] == [
            evaluate(m.scheme, project, today, call=call_of.get(m.scheme.id)) for m in full
        ]
        assert count_eligible(project, catalogue, today) == len(full)
        zone: Zone = rng.choice(("none", "afr_c", "afr_a"))
        assert financing_plan(project, indexed, caps, zone) == financing_plan(
            project, full, caps, zone
        )
        # what does not fit is the rest of the catalogue, near misses first
        rejected = explain_rejections(project, schemes, today)
        assert len(rejected) + len(full) == len(schemes)
        assert all(m.fails for m in rejected)
        assert explained(explain_rejections(project, schemes, today, limit=7)) == explained(
            rejected[:7]
        )
        examined += len(catalogue.candidates_for(project, today))
        eligible += len(full)
    assert examined <= 120 * len(schemes)
    if len(schemes) > 100:
        assert eligible > 0  # the comparison is not only between empty lists


def test_the_schemes_open_on_a_day_are_kept_per_day() -> None:
    rng = random.Random(3)
    schemes = [random_scheme(rng, i) for i in range(200)]
    catalogue = IndexedCatalogue(schemes)
    for offset in range(-2, 64, 3):
        today = FIRST_DAY + timedelta(days=offset)
        open_ids = {s.id for s in catalogue if _dates_open(s, today)}
        found = catalogue.open_on(today)
        assert found is catalogue.open_on(today)  # computed once per day
        ranked = catalogue.candidates_for(random_project(rng), today)
        assert {s.id for s in ranked} <= open_ids


def _dates_open(s: Scheme, today: date) -> bool:
    return (s.closes_on is None or today <= s.closes_on) and (
        s.opens_on is None or today >= s.opens_on
    )


def test_one_funders_schemes() -> None:
    rng = random.Random(4)
    schemes = [random_scheme(rng, i) for i in range(300)]
    catalogue = IndexedCatalogue(schemes)
    assert {s.id for s in catalogue.of_funder("F2")} == {s.id for s in schemes if "F2" in s.funders}
    assert catalogue.of_funder("nobody") == []
    assert catalogue.by_id(schemes[5].id) is next(s for s in schemes if s.id == schemes[5].id)
