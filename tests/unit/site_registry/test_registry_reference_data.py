from __future__ import annotations

from collections import Counter

import pytest

from services.site_registry.adapters.reference_data import (
    load_communes,
    load_epcis,
    load_headcount_bands,
    load_naf,
    load_territories,
    load_territory_communes,
)

CABBALR = "200072460"
CC_FLANDRE_LYS = "245900758"


def test_183_territories_with_unique_ids() -> None:
    territories = load_territories()
    assert len(territories) == 183
    assert len({t.id for t in territories}) == 183
    assert all(t.id.startswith("ti-") and t.epcis for t in territories)


def test_bethune_territory_and_its_two_epcis() -> None:
    bethune = next(t for t in load_territories() if t.id == "ti-3205")
    assert bethune.name == "Béthune-Bruay et Flandre-Lys"
    assert {(g.siren, g.kind) for g in bethune.epcis} == {(CABBALR, "CA"), (CC_FLANDRE_LYS, "CC")}
    assert {g.name for g in bethune.epcis} == {
        "CA de Béthune-Bruay, Artois-Lys Romane",
        "CC Flandre Lys",
    }


def test_commune_and_unresolved_groupements_are_kept_with_their_kind() -> None:
    kinds = Counter(g.kind for t in load_territories() for g in t.epcis)
    assert kinds["commune"] == 12
    assert kinds["EPT"] == 3
    assert sum(kinds.values()) == 641


def test_naf_nomenclature() -> None:
    naf = load_naf()
    assert len(naf) == 732
    assert len(naf.codes_in_section("C")) == 259
    tyres = naf.require("2211Z")
    assert tyres.label == "Fabrication et rechapage de pneumatiques"
    assert (tyres.class_code, tyres.group_code, tyres.division, tyres.section) == (
        "22.11",
        "22.1",
        "22",
        "C",
    )
    assert naf.section_of("47.11F") == "G"


def test_headcount_bands() -> None:
    bands = load_headcount_bands()
    assert [b.code for b in bands] == [
        "NN",
        "00",
        "01",
        "02",
        "03",
        "11",
        "12",
        "21",
        "22",
        "31",
        "32",
        "41",
        "42",
        "51",
        "52",
        "53",
    ]
    assert (bands.require("41").min, bands.require("41").max) == (500, 999)
    assert bands.require("53").max is None
    assert bands.midpoint("12") == 34


def test_communes_of_france_with_those_of_pas_de_calais() -> None:
    everywhere = load_communes()
    assert len(everywhere) == 34969  # current communes only, no déléguées
    # 102 have no outline, hence no centroid: the collectivités d'outre-mer and 6
    # communes restored since 2022 (PROVENANCE.md).
    assert sum(1 for c in everywhere if c.lon is None) == 102
    communes = {c.insee_code: c for c in everywhere if c.department == "62"}
    assert len(communes) == 887
    assert all(c.lon is not None for c in communes.values())
    assert "62549" not in communes  # Marconne, commune déléguée of Hesdin-la-Forêt
    bethune = communes["62119"]
    assert bethune.name == "Béthune"
    assert bethune.epci_siren == CABBALR
    assert bethune.postal_codes == ("62400",)
    assert bethune.population == 25224
    assert bethune.lon == pytest.approx(2.64, abs=0.02)
    assert bethune.lat == pytest.approx(50.53, abs=0.02)
    assert communes["62691"].postal_codes == ("62120", "62129")


def test_ti_3205_has_108_communes_in_its_two_epcis_in_nord_and_pas_de_calais() -> None:
    members = load_territory_communes()["ti-3205"]
    assert len(members) == 108 == len(set(members))
    communes = {c.insee_code: c for c in load_communes()}
    by_epci = Counter(communes[code].epci_siren for code in members)
    assert by_epci == {CABBALR: 100, CC_FLANDRE_LYS: 8}
    assert Counter(communes[code].department for code in members) == {"62": 104, "59": 4}


def test_territory_versions() -> None:
    territories = load_territory_communes("2023")
    assert len(territories) == 183 and all(territories.values())
    in_62 = {ti: sum(1 for c in codes if c.startswith("62")) for ti, codes in territories.items()}
    assert {ti: n for ti, n in in_62.items() if n} == {
        "ti-3201": 15,
        "ti-3205": 104,
        "ti-3206": 14,
        "ti-3209": 50,
        "ti-3210": 74,
        "ti-3212": 89,
    }
    assert len(territories["ti-3201"]) == 122  # with its Nord communes (CU de Dunkerque…)
    assert len(load_territory_communes("2019")["ti-3204"]) == 150
    with pytest.raises(ValueError, match="unknown territory list version"):
        load_territory_communes("2030")


def test_loaders_hand_out_copies() -> None:
    communes = load_territory_communes()
    communes["ti-3205"].clear()
    load_territories().clear()
    assert len(load_territory_communes()["ti-3205"]) == 108
    assert len(load_territories()) == 183


def test_epcis() -> None:
    epcis = load_epcis()
    assert len(epcis) == 1255
    assert epcis[CC_FLANDRE_LYS].departments == ("59", "62")
    assert epcis[CABBALR].commune_count == 100
