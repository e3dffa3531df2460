"""The scheme catalogue: what a scheme must say to be accepted, the geography tables, and
the curated seed of real schemes (every entry sourced, unsourced figures left empty)."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest

from services.funding.adapters.seed import load_seed, load_seed_calls
from services.funding.domain.catalogue import (
    DEPARTMENTS,
    REGIONS,
    Call,
    InvalidCall,
    InvalidScheme,
    Perimeter,
    Scheme,
    SelectionRound,
    validate_call,
    validate_scheme,
)

pytestmark = pytest.mark.unit


def a_scheme(**overrides: Any) -> Scheme:
    """A made-up, valid scheme (not a real one: tests change it field by field)."""
    base = Scheme(
        id="test-scheme",
        name="Test scheme for industrial SMEs",
        funders=("Test funder",),
        perimeter=Perimeter("region", ("32",)),
        aid_type="grant",
        beneficiaries=frozenset({"micro", "sme"}),
        naf_sections=frozenset({"C"}),
        themes=frozenset({"modernisation"}),
        rate_min_pct=10.0,
        rate_max_pct=40.0,
        amount_min_eur=10_000,
        amount_max_eur=500_000,
        capex_min_eur=50_000,
        capex_max_eur=5_000_000,
        opens_on=date(2024, 1, 1),
        closes_on=date(2026, 12, 31),
        source="made up for a unit test",
    )
    return dataclasses.replace(base, **overrides)


def test_funding_valid_scheme_is_returned_unchanged() -> None:
    s = a_scheme()
    assert validate_scheme(s) is s


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"opens_on": date(2025, 6, 1), "closes_on": date(2025, 1, 1)},
            "closes on 2025-01-01, before it opens on 2025-06-01",
        ),
        ({"rate_max_pct": 120.0}, "maximum rate must be between 0 and 100 %, got 120.0"),
        ({"rate_min_pct": -5.0}, "minimum rate must be between 0 and 100 %, got -5.0"),
        (
            {"rate_min_pct": 60.0, "rate_max_pct": 40.0},
            "minimum rate (60.0 %) is above the maximum rate (40.0 %)",
        ),
        (
            {"amount_min_eur": 600_000, "amount_max_eur": 500_000},
            "aid amount minimum (600000) is above its maximum (500000)",
        ),
        (
            {"capex_min_eur": 6_000_000},
            "investment (capex) minimum (6000000) is above its maximum (5000000)",
        ),
        ({"name": "   "}, "the scheme has no name"),
        ({"funders": ()}, "name at least one funder: the scheme has none"),
        ({"funders": ("",)}, "name at least one funder"),
        ({"perimeter": Perimeter("canton", ("62",))}, "unknown perimeter scale 'canton'"),  # type: ignore[arg-type]
        ({"perimeter": Perimeter("region", ("99",))}, "unknown region code '99'"),
        ({"perimeter": Perimeter("department", ())}, "a department perimeter needs at least one"),
        ({"perimeter": Perimeter("epci", ("CABBALR",))}, "9-digit SIREN, got 'CABBALR'"),
        ({"perimeter": Perimeter("national", ("32",))}, "a national perimeter takes no codes"),
        ({"kinds": frozenset({"teleportation"})}, "unknown project kind 'teleportation'"),
        ({"themes": frozenset({"tourism"})}, "unknown theme 'tourism'"),
        ({"aid_type": "gift"}, "unknown aid type 'gift'"),
        ({"beneficiaries": frozenset({"giant"})}, "unknown firm size 'giant'"),
        ({"naf_sections": frozenset({"Z"})}, "unknown NAF section 'Z'"),
        ({"naf_prefixes": ("2211Z",)}, "a NAF prefix looks like 22, 22.1, 22.11 or 22.11Z"),
        ({"source": ""}, "say where the scheme comes from"),
        ({"generated": True}, "a generated scheme's name must start with GENERATED"),
    ],
)
def test_funding_validation_refuses_with_a_readable_message(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidScheme) as refused:
        validate_scheme(a_scheme(**overrides))
    assert message in refused.value.message
    assert refused.value.message.startswith("scheme test-scheme: ")
    assert refused.value.status_code == 422


def test_funding_validation_lists_every_problem_at_once() -> None:
    with pytest.raises(InvalidScheme) as refused:
        validate_scheme(a_scheme(name="", funders=(), rate_max_pct=101.0))
    assert len(refused.value.problems) == 3
    assert "; " in refused.value.message


def test_funding_geography_tables_cover_18_regions_and_101_departments() -> None:
    assert len(REGIONS) == 18
    assert len(DEPARTMENTS) == 101
    assert {region for _, region in DEPARTMENTS.values()} == set(REGIONS)
    assert DEPARTMENTS["62"] == ("Pas-de-Calais", "32")
    assert DEPARTMENTS["26"] == ("Drôme", "84")
    assert REGIONS["84"] == "Auvergne-Rhône-Alpes"


def test_funding_perimeter_describes_itself() -> None:
    assert Perimeter.national().describe() == "all of France"
    assert Perimeter("region", ("84",)).describe() == "region 84 (Auvergne-Rhône-Alpes)"
    assert (
        Perimeter("department", ("26", "07")).describe()
        == "department 26 (Drôme), department 07 (Ardèche)"
    )
    many = Perimeter("department", tuple(sorted(DEPARTMENTS))[:8]).describe()
    assert many.endswith("and 3 more")


def test_funding_call_rounds_must_be_in_order_and_within_the_scheme() -> None:
    scheme = a_scheme()
    late = Call(
        id="c1",
        scheme_id=scheme.id,
        name="made-up call",
        rounds=(
            SelectionRound("second", date(2025, 6, 1)),
            SelectionRound("first", date(2025, 1, 1)),
            SelectionRound("after", date(2027, 3, 1), quota=-1),
        ),
    )
    with pytest.raises(InvalidCall) as refused:
        validate_call(late, scheme)
    text = refused.value.message
    assert "not in date order" in text
    assert "after the scheme closes (2026-12-31)" in text
    assert "negative quota" in text


def test_funding_call_next_round_skips_past_rounds() -> None:
    call = Call(
        id="c2",
        scheme_id="s",
        name="made-up call",
        rounds=(SelectionRound("r1", date(2025, 3, 13)), SelectionRound("r2", date(2025, 11, 3))),
    )
    assert call.next_round(date(2025, 3, 13)) == call.rounds[0]
    assert call.next_round(date(2025, 3, 14)) == call.rounds[1]
    assert call.next_round(date(2026, 1, 1)) is None


# --- the curated seed ---------------------------------------------------------------------


def test_funding_seed_loads_real_sourced_schemes() -> None:
    seed = load_seed()
    ids = [s.id for s in seed]
    assert len(ids) == len(set(ids)) == 15
    for s in seed:
        assert not s.generated
        assert s.source.strip()
        assert s.source_url and s.source_url.startswith("https://"), s.id
    ademe = [s for s in seed if s.id.startswith("ademe-")]
    assert len(ademe) == 5
    assert {"fr-relance-aiit", "f2030-decarb-ind-25", "f2030-decarb-flash-2025"} <= set(ids)


def test_funding_seed_states_no_rate_its_sources_do_not_give() -> None:
    with_rates = {s.id: (s.rate_min_pct, s.rate_max_pct) for s in load_seed() if s.rate_max_pct}
    assert with_rates == {
        "ademe-1ed7d411": (15.0, 55.0),  # "peuvent atteindre 15 % à 55 %" in ADEME's text
        "ccpmb-fonds-air-entreprise": (30.0, 50.0),  # stated in the Aides-territoires export
    }
    hand_entered = [s for s in load_seed() if not s.id.startswith("ademe-")]
    to_verify = [s.id for s in hand_entered if s.curated and "verify" in s.curated]
    assert len(to_verify) >= 7


def test_funding_seed_france_relance_fund_is_national_and_closed() -> None:
    fund = next(s for s in load_seed() if s.id == "fr-relance-aiit")
    assert fund.perimeter.scale == "national"
    assert fund.naf_sections == frozenset({"B", "C", "D", "E"})
    assert fund.opens_on == date(2020, 9, 4)
    assert fund.closes_on is not None and fund.closes_on < date(2023, 1, 1)
    assert "710 M€" in fund.source


def test_funding_seed_has_a_scheme_limited_to_another_region() -> None:
    aura = next(s for s in load_seed() if s.id == "aura-pack-relocalisation")
    assert aura.perimeter == Perimeter("region", ("84",))
    assert not aura.generated


def test_funding_seed_calls_match_their_schemes() -> None:
    calls = {c.id: c for c in load_seed_calls()}
    assert len(calls) == 4
    reviews = calls["fr-relance-aiit-hdf-reviews"]
    assert [r.quota for r in reviews.rounds] == [25, 50, 200]
    bcib = calls["ademe-bcib-2023-closings"]
    assert [r.closes_on for r in bcib.rounds] == [date(2023, 2, 27), date(2023, 9, 20)]
    bcib_scheme = next(s for s in load_seed() if s.id == "ademe-1ec8f1be")
    assert bcib_scheme.closes_on == date(2023, 9, 20)  # the seed's documented override
    assert "seed override" in bcib_scheme.source
