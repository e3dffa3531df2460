"""The derivation of the national commune files (`adapters/territory_derivation.py`,
`data/derive_territory_communes.py`), and the packaged result checked against its
sources: all 183 Territoires d'industrie, resolved here independently with the csv
module from the copies in `services/site_registry/data/`."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import shutil
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.adapters import territory_derivation as td

DATA = Path(reference_data.__file__).parents[1] / "data"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "derive_territory_communes", DATA / "derive_territory_communes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commune(code: str, epci: str = "", kind: str = "commune-actuelle", **more: str):
    return {"code_insee": code, "type": kind, "epci_siren": epci, "chef_lieu": "", **more}


def _groupement(ti: str, siren: str, resolved: str, insee: str = "") -> dict[str, str]:
    return {
        "id_ti": ti,
        "groupement_siren": siren,
        "groupement_resolu": resolved,
        "commune_insee": insee,
    }


# --- resolution -------------------------------------------------------------------------


def test_each_kind_of_groupement_resolves_to_its_current_communes() -> None:
    communes = [
        _commune("59400", "245900758"),
        _commune("62119", "200072460"),
        _commune("62338", "245900758"),
        _commune("62549", kind="commune-deleguee"),  # a déléguée never counts
        _commune("93001"),
        _commune("58046"),
    ]
    ept = [{"ept_siren": "200057867", "commune_insee": "93001"}]
    groupements = [
        _groupement("ti-1", "245900758", "epci_2026"),
        _groupement("ti-1", "200072460", "epci_2026"),
        _groupement("ti-2", "200057867", "non_resolu"),
        _groupement("ti-3", "215800467", "commune", "58046"),
    ]
    got = td.resolve_territories(groupements, communes, ept)
    assert [(m.territory_id, m.groupement_kind, m.commune_insee) for m in got] == [
        ("ti-1", "EPCI", "59400"),
        ("ti-1", "EPCI", "62338"),
        ("ti-1", "EPCI", "62119"),
        ("ti-2", "EPT", "93001"),
        ("ti-3", "commune", "58046"),
    ]


def test_a_commune_reached_twice_in_one_territory_is_listed_once() -> None:
    communes = [_commune("58046", "200000001")]
    groupements = [
        _groupement("ti-1", "200000001", "epci_2026"),
        _groupement("ti-1", "215800467", "commune", "58046"),
    ]
    assert len(td.resolve_territories(groupements, communes, [])) == 1


@pytest.mark.parametrize(
    "groupement",
    [
        _groupement("ti-1", "999999999", "epci_2026"),  # an EPCI with no member
        _groupement("ti-1", "215800467", "commune", "99999"),  # not a current commune
        _groupement("ti-1", "215800467", "commune"),  # no code at all
        _groupement("ti-1", "200057867", "non_resolu"),  # an EPT without members
        _groupement("ti-1", "200057867", "something_else"),
    ],
)
def test_a_groupement_that_resolves_to_nothing_is_refused(groupement: dict[str, str]) -> None:
    with pytest.raises(td.UnresolvedGroupement, match="ti-1"):
        td.resolve_territories([groupement], [_commune("58046")], [])


# --- outlines ---------------------------------------------------------------------------


def test_outlines_are_matched_by_code_then_former_communes_then_name() -> None:
    communes = [
        _commune("01001", departement="01", nom="A"),
        _commune("27676", departement="27", nom="Les Trois Lacs"),  # changed code
        _commune("75056", departement="75", nom="Paris"),
        _commune("75101", kind="arrondissement-municipal", chef_lieu="75056"),
        _commune("75102", kind="arrondissement-municipal", chef_lieu="75056"),
        _commune("15031", departement="15", nom="Celles"),  # no outline anywhere
    ]
    names = {
        "01001": ("01", "A"),
        "27058": ("27", "Les Trois Lacs"),
        "75101": ("75", "Paris 1er"),
        "75102": ("75", "Paris 2e"),
    }
    matches, missing = td.match_outlines(communes, names)
    assert {(m.commune_insee, m.source_codes, m.how) for m in matches} == {
        ("01001", ("01001",), "same_code"),
        ("27676", ("27058",), "same_name"),
        ("75056", ("75101", "75102"), "former_communes"),
    }
    assert missing == ["15031"]


def test_rounding_keeps_5_decimals_and_drops_what_collapsed() -> None:
    square = [[0.123456, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.123456, 0.0]]
    speck = [[0.5, 0.5], [0.500001, 0.5], [0.5, 0.500001], [0.5, 0.5]]
    doubled = [[2.0, 2.0], [2.0, 2.0], [3.0, 2.0], [3.0, 3.0], [2.0, 2.0]]
    got = td.round_polygons([[square, speck], [speck], [doubled]])
    assert got == [
        [[[0.12346, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.12346, 0.0]]],
        [[[2.0, 2.0], [3.0, 2.0], [3.0, 3.0], [2.0, 2.0]]],
    ]
    assert td.geometry_of(got[:1])["type"] == "Polygon"
    assert td.geometry_of(got)["type"] == "MultiPolygon"


# --- centroids --------------------------------------------------------------------------


def test_centroid_of_a_square_with_a_hole_whatever_the_winding() -> None:
    outer = [[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [0.0, 0.0]]
    hole = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]]  # same winding
    lon, lat = td.centroid([[outer, hole]])
    # Three unit-2 squares left: (1,3), (3,1), (3,3) → (7/3, 7/3) on the plane (at the
    # equator the longitude scale is ~1; a 4° square is not at the equator, hence approx)
    assert lon == pytest.approx(7 / 3, abs=0.01) and lat == pytest.approx(7 / 3, abs=0.01)
    assert td.centroid([[outer[::-1]]]) == pytest.approx((2.0, 2.0))


def test_centroid_weights_polygons_by_their_area_in_metres() -> None:
    # At 60°N a degree of longitude is half a degree of latitude: the 2°×1° rectangle
    # and the 1°×2° one have the same area on the ground.
    wide = [[0.0, 60.0], [2.0, 60.0], [2.0, 61.0], [0.0, 61.0], [0.0, 60.0]]
    tall = [[10.0, 60.0], [11.0, 60.0], [11.0, 62.0], [10.0, 62.0], [10.0, 60.0]]
    lon, _ = td.centroid([[wide], [tall]])
    assert 5.3 < lon < 6.0  # area-weighted on the ground, not in square degrees (≈ 5.5)


def test_a_polygon_with_no_area_gives_the_mean_of_its_points() -> None:
    line = [[5.432, 46.861], [5.434, 46.861], [5.431, 46.861], [5.432, 46.861]]
    assert td.centroid([[line]]) == pytest.approx((5.4323333, 46.861))


# --- the packaged files -----------------------------------------------------------------


def _rows(name: str) -> list[dict[str, str]]:
    path = DATA / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _expected_resolution() -> dict[str, set[str]]:
    """The 183 territories resolved from the packaged source copies with csv alone."""
    current = [r for r in _rows("communes_france_cog.csv.gz") if r["type"] == "commune-actuelle"]
    members: dict[str, set[str]] = defaultdict(set)
    for r in current:
        members[r["epci_siren"]].add(r["code_insee"])
    for r in _rows("ept_grand_paris_members.csv"):
        members[r["ept_siren"]].add(r["commune_insee"])
    expected: dict[str, set[str]] = defaultdict(set)
    for g in _rows("territoires_industrie_183_groupements.csv"):
        if g["commune_insee"]:
            expected[g["id_ti"]].add(g["commune_insee"])
        else:
            expected[g["id_ti"]] |= members[g["groupement_siren"]]
    return dict(expected)


def test_all_183_territories_have_the_communes_of_their_sources() -> None:
    expected = _expected_resolution()
    known = {ti: set(codes) for ti, codes in reference_data.load_territory_communes().items()}
    assert len(expected) == 183 and all(expected.values())
    assert known == expected
    assert sum(len(c) for c in known.values()) == 18639
    current = {c.insee_code for c in reference_data.load_communes()}
    assert set().union(*known.values()) <= current


def test_the_packaged_derived_files_are_what_the_script_builds(tmp_path: Path) -> None:
    script = _script()
    for name in (
        "communes_france_cog.csv.gz",
        "ept_grand_paris_members.csv",
        "territoires_industrie_183_groupements.csv",
    ):
        shutil.copy(DATA / name, tmp_path / name)
    shutil.copytree(DATA / "communes_contours", tmp_path / "communes_contours")
    counts = script.derive(tmp_path)
    assert counts == {"territories": 183, "memberships": 18639, "centroids": 34867}
    for name in (
        "territoires_industrie_communes_2023_derived.csv",
        "communes_france_centroids.csv.gz",
    ):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_every_commune_of_a_territory_but_six_has_an_outline() -> None:
    in_territories = {c for codes in _expected_resolution().values() for c in codes}
    _, missing = reference_data.communes_geojson(in_territories)
    # Restored since 2022 out of communes nouvelles; their 2022 outline is their
    # former commune nouvelle's (communes_contours/outline_matches.csv).
    assert sorted(missing) == ["15031", "15035", "15047", "15171", "85165", "85212"]
