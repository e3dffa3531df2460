"""Pure tests of the nomenclature objects, built from hand-made records (no file)."""

from __future__ import annotations

import pytest

from services.site_registry.domain.nomenclature import (
    HeadcountBand,
    HeadcountBands,
    NafCode,
    NafNomenclature,
    UnknownHeadcountBand,
    UnknownNafCode,
    normalize_naf_code,
)

TYRES = NafCode("22.11Z", "Fabrication et rechapage de pneumatiques", "22.11", "22.1", "22", "C")
STEEL = NafCode("24.10Z", "Sidérurgie", "24.10", "24.1", "24", "C")
HYPERMARKETS = NafCode("47.11F", "Hypermarchés", "47.11", "47.1", "47", "G")


@pytest.fixture
def naf() -> NafNomenclature:
    return NafNomenclature([TYRES, STEEL, HYPERMARKETS])


@pytest.fixture
def bands() -> HeadcountBands:
    return HeadcountBands(
        [
            HeadcountBand("NN", "Unités non employeuses", None, None),
            HeadcountBand("00", "0 salarié", 0, 0),
            HeadcountBand("12", "20 à 49 salariés", 20, 49),
            HeadcountBand("41", "500 à 999 salariés", 500, 999),
            HeadcountBand("53", "10 000 salariés et plus", 10000, None),
        ]
    )


@pytest.mark.parametrize("raw", ["2211Z", "22.11Z", "22.11z", "2211z", " 22.11Z "])
def test_normalize_accepts_sirene_and_ape_forms(raw: str, naf: NafNomenclature) -> None:
    assert naf.normalize(raw) == "22.11Z"
    assert naf.get(raw) == TYRES


@pytest.mark.parametrize("raw", ["", "22.11", "221Z", "22.111Z", "2211ZZ", "22-11Z", "25.1A"])
def test_normalize_rejects_other_shapes(raw: str) -> None:
    with pytest.raises(UnknownNafCode):
        normalize_naf_code(raw)


def test_get_returns_none_for_unknown_or_malformed(naf: NafNomenclature) -> None:
    assert naf.get("99.99Z") is None
    assert naf.get("not a code") is None
    assert "22.11Z" in naf
    assert "99.99Z" not in naf


def test_require_raises_a_readable_error(naf: NafNomenclature) -> None:
    assert naf.require("2410Z") == STEEL
    with pytest.raises(UnknownNafCode, match=r"NAF code 99\.99Z is not in the NAF rév\. 2"):
        naf.require("9999Z")
    with pytest.raises(UnknownNafCode, match="'22-11Z' is not a NAF"):
        naf.require("22-11Z")
    assert issubclass(UnknownNafCode, ValueError)


def test_sections(naf: NafNomenclature) -> None:
    assert len(naf) == 3
    assert naf.section_of("2211Z") == "C"
    assert naf.section_of("47.11F") == "G"
    assert [c.code for c in naf.codes_in_section("C")] == ["22.11Z", "24.10Z"]
    assert [c.code for c in naf.codes_in_section("c")] == ["22.11Z", "24.10Z"]
    assert naf.codes_in_section("A") == []


def test_duplicate_naf_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        NafNomenclature([TYRES, TYRES])


def test_headcount_require(bands: HeadcountBands) -> None:
    assert bands.require("41").label == "500 à 999 salariés"
    assert bands.require("41").min == 500
    assert "12" in bands and "13" not in bands
    with pytest.raises(UnknownHeadcountBand, match="'13' is not an INSEE code"):
        bands.require("13")
    assert len(bands) == 5


def test_midpoint_is_an_estimate_per_band(bands: HeadcountBands) -> None:
    assert bands.midpoint("12") == 34
    assert bands.midpoint("41") == 749
    assert bands.midpoint("00") == 0
    assert bands.midpoint("NN") is None
    assert bands.midpoint("53") == 10000
    with pytest.raises(UnknownHeadcountBand):
        bands.midpoint("99")
