"""Financing plans: stacking eligible schemes without exceeding the need, the expense base
or the aid-intensity cap (grant equivalents), dropping lines below a scheme's minimum.

Schemes here are made up (national grants, loans, advances with chosen bounds) so each
rule can be seen; projects are made-up SMEs of ti-3205.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import uuid
from datetime import date
from math import ceil
from typing import Any

import pytest

from services.funding.domain.catalogue import Perimeter, Scheme
from services.funding.domain.matching import ProjectProfile, match
from services.funding.domain.plan import (
    IntensityCaps,
    InvalidCaps,
    financing_plan,
    size_class,
)
from tests.bench.generate_schemes import generate_schemes

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 22)
CAPS = IntensityCaps()
GE = {
    "grant": 1.0,
    "recoverable_advance": 0.5,
    "loan": 0.15,
    "guarantee": 0.10,
    "equity": 1.0,
    "other": 1.0,
    "engineering_support": 0.0,
}


def project(**overrides: Any) -> ProjectProfile:
    base = ProjectProfile(
        project_id=uuid.UUID("00000000-0000-4000-8000-000000000002"),
        territory_id="ti-3205",
        region_code="32",
        department_code="62",
        epci_sirens=("200072460",),
        firm_size="sme",
        naf_code="22.11Z",
        kind="decarbonation_energy",
        jobs_planned=10,
        capex_eur=1_000_000,
        funding_need_eur=800_000,
        consent_to_share=True,
    )
    return dataclasses.replace(base, **overrides)


def scheme(sid: str, aid_type: str = "grant", **overrides: Any) -> Scheme:
    """A made-up national scheme, open in 2026."""
    return Scheme(
        id=sid,
        name=f"Made-up {aid_type} {sid}",
        funders=("Test funder",),
        perimeter=Perimeter.national(),
        aid_type=aid_type,  # type: ignore[arg-type]
        source="made up for a unit test",
        **overrides,
    )


def plan_for(p: ProjectProfile, schemes: list[Scheme], zone: str = "afr_c") -> Any:
    return financing_plan(p, match(p, schemes, TODAY), CAPS, zone)  # type: ignore[arg-type]


def check_invariants(p: ProjectProfile, schemes: list[Scheme], plan: Any) -> None:
    by_id = {s.id: s for s in schemes}
    assert plan.total_eur == sum(line.amount_eur for line in plan.lines)
    assert plan.grant_equivalent_eur == sum(line.grant_equivalent_eur for line in plan.lines)
    assert plan.total_eur <= plan.need_eur
    assert plan.total_eur <= plan.base_eur
    assert plan.grant_equivalent_eur <= plan.cap_eur
    assert plan.cap_eur <= plan.base_eur * plan.cap_pct / 100
    assert plan.remaining_need_eur == plan.need_eur - plan.total_eur
    assert len({line.scheme_id for line in plan.lines}) == len(plan.lines)
    for line in plan.lines:
        s = by_id[line.scheme_id]
        assert line.amount_eur > 0
        assert line.aid_type != "engineering_support"
        assert line.grant_equivalent_eur == ceil(line.amount_eur * GE[line.aid_type] - 1e-9)
        if s.amount_max_eur is not None:
            assert line.amount_eur <= s.amount_max_eur
        if s.amount_min_eur is not None:
            assert line.amount_eur >= s.amount_min_eur
        if s.rate_max_pct is not None:
            assert line.amount_eur <= p.capex_eur * s.rate_max_pct / 100  # type: ignore[operator]


MIXED = [
    scheme("g-regional", rate_max_pct=30.0, amount_max_eur=150_000),
    scheme("g-big", rate_max_pct=50.0),
    scheme("loan", "loan", amount_max_eur=500_000),
    scheme("advance", "recoverable_advance", rate_max_pct=40.0),
    scheme("guarantee", "guarantee", amount_max_eur=300_000),
    scheme("advice", "engineering_support"),
]


@pytest.mark.parametrize(
    ("size", "zone", "need"),
    list(
        itertools.product(
            ["micro", "sme", "midcap", "large", None],
            ["none", "afr_c", "afr_a"],
            [50_000, 800_000, 3_000_000, None],
        )
    ),
)
def test_funding_plan_never_exceeds_need_nor_cap(
    size: str | None, zone: str, need: int | None
) -> None:
    p = project(firm_size=size, funding_need_eur=need)
    plan = plan_for(p, MIXED, zone)
    assert plan.cap_pct == CAPS.cap_pct(size, zone)  # type: ignore[arg-type]
    check_invariants(p, MIXED, plan)


def test_funding_plan_invariants_hold_on_generated_catalogues() -> None:
    rng = random.Random(5)
    catalogue = generate_schemes(3_000, seed=3)
    for _ in range(60):
        p = project(
            firm_size=rng.choice(["micro", "sme", "midcap", "large", None]),
            capex_eur=rng.choice([80_000, 400_000, 1_000_000, 2_500_000, 9_000_000]),
            funding_need_eur=rng.choice([None, 30_000, 300_000, 1_000_000, 12_000_000]),
            kind=rng.choice(["decarbonation_energy", "new_line", "capacity_extension"]),
        )
        plan = plan_for(p, catalogue, rng.choice(["none", "afr_c", "afr_a"]))
        check_invariants(p, catalogue, plan)


def test_funding_default_caps_by_size_and_zone() -> None:
    table = {
        (size, zone): CAPS.cap_pct(size, zone)
        for size in ("micro", "sme", "midcap", "large", None)
        for zone in ("none", "afr_c", "afr_a")
    }
    assert table[("micro", "none")] == 20.0  # GBER Art. 17, small
    assert table[("sme", "none")] == 10.0  # medium (prudent for an "sme")
    assert table[("large", "none")] == 0.0
    assert table[("micro", "afr_c")] == 35.0
    assert table[("sme", "afr_c")] == 25.0
    assert table[("midcap", "afr_c")] == 15.0  # a mid-cap is a large enterprise in EU terms
    assert table[(None, "afr_c")] == table[("large", "afr_c")] == 15.0  # unknown → large
    assert table[("micro", "afr_a")] == 70.0
    assert size_class(None) == "large"


def test_funding_caps_are_configurable_and_checked() -> None:
    caps = IntensityCaps(afr_c_medium=30.0, ge_loan=0.2)
    assert caps.cap_pct("sme", "afr_c") == 30.0
    assert caps.grant_equivalent("loan") == 0.2
    with pytest.raises(InvalidCaps):
        IntensityCaps(none_small=120.0)
    with pytest.raises(InvalidCaps):
        IntensityCaps(ge_loan=1.5)
    with pytest.raises(InvalidCaps):
        CAPS.cap_pct("sme", "zone_x")  # type: ignore[arg-type]


def test_funding_cap_binds_grants_and_loans_count_at_their_grant_equivalent() -> None:
    # An SME outside assisted areas: cap 10 % of 1 000 000 € = 100 000 € of grant equivalent.
    p = project(funding_need_eur=900_000)
    schemes = [scheme("grant", rate_max_pct=50.0), scheme("loan", "loan", amount_max_eur=400_000)]
    plan = plan_for(p, schemes, "none")
    assert plan.cap_eur == 100_000
    assert [(x.scheme_id, x.amount_eur, x.grant_equivalent_eur) for x in plan.lines] == [
        ("grant", 100_000, 100_000)
    ]
    assert "not used, the aid-intensity cap being reached: loan" in plan.notes
    # In a 'c' zone (cap 25 % = 250 000 €) the loan fits: 400 000 € counts 60 000 €.
    plan_c = plan_for(p, schemes, "afr_c")
    lines = {x.scheme_id: x for x in plan_c.lines}
    assert lines["grant"].amount_eur == 250_000
    assert "loan" not in lines  # the grant used the whole room
    loan_first = plan_for(
        p,
        [scheme("grant", rate_max_pct=20.0), scheme("loan", "loan", amount_max_eur=400_000)],
        "afr_c",
    )
    lines = {x.scheme_id: x for x in loan_first.lines}
    assert lines["grant"].amount_eur == 200_000
    assert lines["loan"].amount_eur == 333_333  # 50 000 € of room / 15 %
    assert lines["loan"].grant_equivalent_eur == 50_000
    assert loan_first.grant_equivalent_eur == 250_000 == loan_first.cap_eur
    assert loan_first.total_eur == 533_333


def test_funding_plan_respects_amount_max_and_rate_max() -> None:
    p = project(firm_size="micro", funding_need_eur=1_000_000)
    plan = plan_for(
        p,
        [scheme("capped", amount_max_eur=60_000), scheme("rated", rate_max_pct=10.0)],
        "afr_c",
    )
    lines = {x.scheme_id: x for x in plan.lines}
    assert lines["capped"].amount_eur == 60_000
    assert lines["rated"].amount_eur == 100_000 and lines["rated"].rate_pct_of_base == 10.0


def test_funding_plan_drops_lines_below_a_schemes_minimum_with_a_note() -> None:
    p = project(funding_need_eur=220_000)
    schemes = [
        scheme("first", rate_max_pct=20.0),  # takes 200 000 €, 20 000 € of need remain
        scheme("needs-50k", amount_min_eur=50_000),
        scheme("small", amount_max_eur=15_000),
    ]
    plan = plan_for(p, schemes, "afr_c")
    assert [x.scheme_id for x in plan.lines] == ["first", "small"]
    assert (
        "needs-50k dropped: only 20 000 € could be planned, below its minimum aid of 50 000 €"
        in plan.notes
    )
    assert plan.remaining_need_eur == 5_000


def test_funding_plan_without_capex_is_empty_with_a_note() -> None:
    p = project(capex_eur=None)
    plan = financing_plan(p, match(p, MIXED, TODAY), CAPS, "afr_c")
    assert plan.lines == () and plan.total_eur == 0
    assert plan.notes == ("unknown capex: no base for the aid intensity",)


def test_funding_plan_notes_skips_unknowns_and_de_minimis() -> None:
    p = project(firm_size=None, funding_need_eur=None)
    schemes = [scheme("advice", "engineering_support"), scheme("dm", de_minimis=True)]
    plan = plan_for(p, schemes, "afr_c")
    assert plan.need_eur == 1_000_000
    text = " | ".join(plan.notes)
    assert "funding need unknown: taken as the whole investment (1 000 000 €)" in text
    assert "firm size unknown, so the large-firm cap applies" in text
    assert "advice skipped: engineering support" in text
    assert "dm is de minimis aid" in text
    assert plan.cap_pct == 15.0 and plan.total_eur == 150_000


def test_funding_plan_need_above_the_expense_is_capped_by_the_expense() -> None:
    p = project(firm_size="micro", funding_need_eur=2_000_000)
    plan = plan_for(p, [scheme("loan1", "loan"), scheme("loan2", "loan")], "afr_a")
    assert plan.total_eur == 1_000_000
    assert any("exceeds the eligible expense" in n for n in plan.notes)
    assert "loan2 and the schemes after it not needed: the need is covered" in plan.notes


def test_funding_plan_is_deterministic() -> None:
    p = project()
    catalogue = generate_schemes(1_000, seed=9) + MIXED
    first = plan_for(p, catalogue, "afr_c")
    shuffled = catalogue[:]
    random.Random(1).shuffle(shuffled)
    assert plan_for(p, shuffled, "afr_c") == first
