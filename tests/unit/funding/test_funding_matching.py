"""Matching projects to schemes: every criterion with its reason, the ranking, and speed.

Projects here are made up (an SME of the Béthune-Bruay territory, ti-3205, region 32,
department 62); schemes are the real seed's, made-up variants of them, or GENERATED ones.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from datetime import date
from typing import Any

import pytest

from services.funding.adapters.seed import load_seed, load_seed_calls
from services.funding.domain.catalogue import Perimeter, Scheme
from services.funding.domain.matching import (
    CRITERIA,
    KIND_THEMES,
    ProjectProfile,
    evaluate,
    explain_rejections,
    match,
)
from tests.bench.generate_schemes import generate_schemes

pytestmark = pytest.mark.unit

IN_2023 = date(2023, 6, 1)
TODAY = date(2026, 11, 22)
SEED = {s.id: s for s in load_seed()}
ECODESIGN = SEED["ademe-1ed7d411"]  # ADEME, eco-design investments, 15–55 %


def project(**overrides: Any) -> ProjectProfile:
    """A made-up decarbonation project of an SME (tyre maker) in ti-3205."""
    base = ProjectProfile(
        project_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
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
    return dataclasses.replace(base, **overrides)


def variant(scheme: Scheme, **overrides: Any) -> Scheme:
    """A made-up variant of a scheme (a new id, so it is never taken for the real one)."""
    overrides.setdefault("id", f"{scheme.id}-variant")
    return dataclasses.replace(scheme, **overrides)


def by_name(criteria: tuple[Any, ...]) -> dict[str, Any]:
    return {c.criterion: c for c in criteria}


def test_funding_sme_decarbonation_project_matches_ademe_ecodesign_investments() -> None:
    found = match(project(), list(SEED.values()), IN_2023)
    m = next(m for m in found if m.scheme.id == ECODESIGN.id)
    assert m.eligible and m.unknowns == 0 and m.score == 1.0
    assert (m.scheme.rate_min_pct, m.scheme.rate_max_pct) == (15.0, 55.0)
    c = by_name(m.criteria)
    assert [x.criterion for x in m.criteria] == list(CRITERIA)
    assert all(x.status == "pass" for x in m.criteria)
    assert c["perimeter"].reason == "perimeter: national scheme, open everywhere in France"
    assert c["dates"].reason == "dates: open until 2023-12-31"
    assert c["beneficiary"].reason == "beneficiary: open to firms of every size"
    assert c["naf"].reason == "naf: open to every sector"
    assert c["kind"].reason == (
        "kind: a decarbonation / energy project meets the scheme's themes (decarbonation)"
    )


def test_funding_scheme_of_another_region_fails_on_the_perimeter_naming_both() -> None:
    aura = SEED["aura-pack-relocalisation"]
    result = by_name(evaluate(aura, project(kind="capacity_extension"), TODAY))
    assert result["perimeter"].status == "fail"
    assert result["perimeter"].reason == (
        "perimeter: the scheme is limited to region 84 (Auvergne-Rhône-Alpes);"
        " the project is in region 32 (Hauts-de-France)"
    )
    assert aura.id not in {m.scheme.id for m in match(project(), [aura], TODAY)}
    rejected = explain_rejections(project(kind="capacity_extension"), [aura], TODAY)
    assert [m.scheme.id for m in rejected] == [aura.id] and rejected[0].fails == 1


def test_funding_region_is_taken_from_the_department_when_missing() -> None:
    hdf = SEED["hdf-pme-industrielles-hva"]
    result = by_name(evaluate(hdf, project(region_code=None, kind="new_line"), TODAY))
    assert result["perimeter"].status == "pass"
    assert "region 32 (Hauts-de-France), where the project is" in result["perimeter"].reason
    unknown = by_name(evaluate(hdf, project(region_code=None, department_code=None), TODAY))[
        "perimeter"
    ]
    assert unknown.status == "unknown"
    assert unknown.reason.startswith("perimeter: unknown — the project's region is not known")


def test_funding_unknown_firm_size_is_unknown_not_a_refusal() -> None:
    hdf = SEED["hdf-pme-industrielles-hva"]  # SMEs only
    p = project(firm_size=None, kind="capacity_extension")
    beneficiary = by_name(evaluate(hdf, p, TODAY))["beneficiary"]
    assert beneficiary.status == "unknown"
    assert beneficiary.reason == (
        "beneficiary: unknown — the firm's size is not known; the scheme is for"
        " micro-firms and SMEs"
    )
    m = next(m for m in match(p, [hdf], TODAY))
    assert m.eligible and m.unknowns == 1
    large = by_name(evaluate(hdf, project(firm_size="large", kind="new_line"), TODAY))
    assert large["beneficiary"].status == "fail"
    assert large["beneficiary"].reason.endswith("the firm is not a large firm")


def test_funding_closed_scheme_fails_with_its_closing_date() -> None:
    fund = SEED["fr-relance-aiit"]
    dates = by_name(evaluate(fund, project(kind="capacity_extension"), TODAY))["dates"]
    assert dates.status == "fail"
    assert dates.reason == "dates: closed on 2022-12-31"
    in_2021 = by_name(evaluate(fund, project(kind="capacity_extension"), date(2021, 3, 1)))
    assert in_2021["dates"].status == "pass"
    early = by_name(evaluate(fund, project(), date(2020, 1, 1)))["dates"]
    assert early.reason == "dates: not open yet — opens on 2020-09-04"


def test_funding_dates_name_the_next_selection_round_of_a_call() -> None:
    flash = SEED["f2030-decarb-flash-2025"]
    calls = load_seed_calls()
    m = next(m for m in match(project(), [flash], TODAY, calls=calls))
    assert by_name(m.criteria)["dates"].reason == (
        "dates: open until 2027-02-15; next selection round 'clôture 15/02/2027'"
        " closes on 2027-02-15"
    )


@pytest.mark.parametrize(
    ("naf", "sections", "prefixes", "status"),
    [
        ("22.11Z", {"C"}, (), "pass"),
        ("22.11Z", set(), ("22",), "pass"),
        ("22.11Z", set(), ("22.1",), "pass"),
        ("22.11Z", set(), ("22.11Z",), "pass"),
        ("22.11Z", set(), ("22.19",), "fail"),
        ("47.11F", {"C"}, ("22",), "fail"),
        (None, {"C"}, (), "unknown"),
    ],
)
def test_funding_naf_sections_and_prefixes(
    naf: str | None, sections: set[str], prefixes: tuple[str, ...], status: str
) -> None:
    s = variant(ECODESIGN, naf_sections=frozenset(sections), naf_prefixes=prefixes)
    assert by_name(evaluate(s, project(naf_code=naf), IN_2023))["naf"].status == status


def test_funding_naf_reasons_are_readable() -> None:
    s = variant(ECODESIGN, naf_sections=frozenset({"C"}))
    fail = by_name(evaluate(s, project(naf_code="47.11F"), IN_2023))["naf"]
    assert fail.reason == (
        "naf: 47.11F (section G) is outside the scheme's sectors (section C (manufacturing))"
    )


def test_funding_kinds_and_themes() -> None:
    innovation = SEED["hdf-f2030-projets-innovation"]
    skills = by_name(evaluate(innovation, project(kind="skills_training"), TODAY))["kind"]
    assert skills.status == "fail"
    assert skills.reason == (
        "kind: the scheme funds R&D / innovation projects or themes innovation;"
        " a skills / training project (themes: skills) does not fit"
    )
    rnd = by_name(evaluate(innovation, project(kind="rnd_innovation"), TODAY))["kind"]
    assert rnd.status == "pass" and rnd.reason == "kind: the scheme funds R&D / innovation projects"
    other = by_name(evaluate(innovation, project(kind="other"), TODAY))["kind"]
    assert other.status == "unknown"
    open_to_all = variant(innovation, kinds=frozenset(), themes=frozenset())
    assert by_name(evaluate(open_to_all, project(kind="other"), TODAY))["kind"].status == "pass"
    assert set(KIND_THEMES) == {
        "capacity_extension",
        "new_line",
        "modernisation_automation",
        "decarbonation_energy",
        "rnd_innovation",
        "site_takeover",
        "new_site",
        "skills_training",
        "other",
    }


def test_funding_investment_bounds() -> None:
    decarb_ind = SEED["f2030-decarb-ind-25"]  # at least 3 M€ of investment
    small = by_name(evaluate(decarb_ind, project(), date(2025, 6, 1)))["capex"]
    assert small.status == "fail"
    assert small.reason == (
        "capex: the scheme needs at least 3 000 000 € of investment; the project plans 1 200 000 €"
    )
    big = by_name(evaluate(decarb_ind, project(capex_eur=8_000_000), date(2025, 6, 1)))["capex"]
    assert big.status == "pass"
    unknown = by_name(evaluate(decarb_ind, project(capex_eur=None), date(2025, 6, 1)))["capex"]
    assert unknown.status == "unknown"
    flash = SEED["f2030-decarb-flash-2025"]  # 100 k€ – 3 M€
    too_big = by_name(evaluate(flash, project(capex_eur=4_000_000), TODAY))["capex"]
    assert too_big.reason == (
        "capex: the scheme is for investments up to 3 000 000 €; the project plans 4 000 000 €"
    )


def test_funding_amount_bounds_against_the_funding_need() -> None:
    innovation = SEED["hdf-f2030-projets-innovation"]  # 75 000 – 500 000 €
    p = project(kind="rnd_innovation")
    assert by_name(evaluate(innovation, p, TODAY))["amount"].reason == (
        "amount: the scheme gives at most 500 000 € of the 600 000 € needed"
    )
    tiny = by_name(
        evaluate(innovation, project(kind="rnd_innovation", funding_need_eur=40_000), TODAY)
    )
    assert tiny["amount"].status == "fail"
    assert tiny["amount"].reason == (
        "amount: the scheme's smallest aid is 75 000 €; the project needs 40 000 €"
    )
    unknown = by_name(evaluate(innovation, project(funding_need_eur=None), TODAY))["amount"]
    assert unknown.status == "unknown"


def test_funding_epci_perimeter() -> None:
    air = SEED["ccpmb-fonds-air-entreprise"]  # CC Pays du Mont-Blanc
    there = project(epci_sirens=("200034882",), region_code="84", department_code="74")
    assert by_name(evaluate(air, there, date(2022, 6, 1)))["perimeter"].status == "pass"
    here = by_name(evaluate(air, project(), date(2022, 6, 1)))["perimeter"]
    assert here.status == "fail"
    assert here.reason == (
        "perimeter: the scheme is limited to EPCI 200034882; the project's EPCI is 200072460"
    )
    nowhere = by_name(evaluate(air, project(epci_sirens=()), date(2022, 6, 1)))["perimeter"]
    assert nowhere.status == "unknown"


def test_funding_ranking_prefers_narrow_perimeters_then_higher_rates() -> None:
    national = variant(ECODESIGN, id="t-national", rate_max_pct=55.0)
    regional = variant(ECODESIGN, id="t-regional", perimeter=Perimeter("region", ("32",)))
    departmental = variant(
        ECODESIGN, id="t-dept", perimeter=Perimeter("department", ("62",)), rate_max_pct=20.0
    )
    departmental_high = variant(departmental, id="t-dept-high", rate_max_pct=40.0)
    territory = variant(ECODESIGN, id="t-ti", perimeter=Perimeter("territory", ("ti-3205",)))
    unknown_size = variant(
        ECODESIGN,
        id="t-ti-sized",
        perimeter=Perimeter("territory", ("ti-3205",)),
        beneficiaries=frozenset({"sme"}),
    )
    schemes = [national, regional, departmental, departmental_high, territory, unknown_size]
    ranked = [m.scheme.id for m in match(project(firm_size=None), schemes, IN_2023)]
    assert ranked == ["t-ti", "t-dept-high", "t-dept", "t-regional", "t-national", "t-ti-sized"]


def test_funding_ranking_is_deterministic_whatever_the_catalogue_order() -> None:
    catalogue = list(SEED.values()) + generate_schemes(2_000, seed=7)
    expected = [m.scheme.id for m in match(project(), catalogue, TODAY)]
    assert expected
    rng = random.Random(42)
    for _ in range(5):
        shuffled = catalogue[:]
        rng.shuffle(shuffled)
        assert [m.scheme.id for m in match(project(), shuffled, TODAY)] == expected


def test_funding_match_agrees_with_evaluate_on_every_scheme() -> None:
    catalogue = list(SEED.values()) + generate_schemes(3_000, seed=11)
    for p in (project(), project(firm_size=None, naf_code=None, capex_eur=None, kind="other")):
        eligible = {m.scheme.id for m in match(p, catalogue, TODAY)}
        rejected = {m.scheme.id for m in explain_rejections(p, catalogue, TODAY)}
        no_fail = {
            s.id for s in catalogue if all(c.status != "fail" for c in evaluate(s, p, TODAY))
        }
        assert eligible == no_fail
        assert rejected == {s.id for s in catalogue} - no_fail


def test_funding_explain_rejections_puts_near_misses_first() -> None:
    rejected = explain_rejections(project(), list(SEED.values()), TODAY)
    assert rejected and all(not m.eligible and m.fails >= 1 for m in rejected)
    assert [m.fails for m in rejected] == sorted(m.fails for m in rejected)


def test_funding_match_one_project_against_10000_generated_schemes() -> None:
    schemes = generate_schemes(10_000, seed=2030)
    assert all(s.generated and s.name.startswith("GENERATED") for s in schemes)
    match(project(), schemes, TODAY)  # warm-up
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        found = match(project(), schemes, TODAY)
        timings.append(time.perf_counter() - t0)
    assert all(m.eligible for m in found)
    print(
        f"\n[bench] match: 1 project × {len(schemes)} GENERATED schemes → {len(found)} eligible;"
        f" best {min(timings) * 1000:.1f} ms, median {sorted(timings)[2] * 1000:.1f} ms"
    )
