"""Sirene coordinates overseas: each département's UTM projection, checked against the
packaged commune outlines rather than against the code under test.

Each case projects a point inside a real commune's outline to the projection named here
by its literal EPSG code (pyproj directly), then asks ``sirene_to_wgs84`` to bring it
back: it must land in the same outline. A wrong projection for the département moves the
point by hundreds of kilometres (or off the planet), far outside the commune.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from typing import Any

import pytest
from pyproj import CRS, Transformer

from services.site_registry.adapters import reference_data
from services.site_registry.adapters.geo import (
    distance_km,
    lambert93_to_wgs84,
    sirene_to_wgs84,
    wgs84_to_lambert93,
)
from services.site_registry.adapters.sirene import SireneEstablishment
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import ImportScope, Nomenclatures, _to_input
from tests.unit.site_registry.fakes import FakeUowFactory, RegistryDb

pytestmark = pytest.mark.unit

Ring = list[list[float]]
Polygons = list[list[Ring]]

# (commune, its département's file, EPSG code, a point well inside the commune's outline)
OVERSEAS_SITES = [
    pytest.param("97103", "971", 5490, (-61.5735, 16.2562), id="971 Baie-Mahault (Jarry)"),
    pytest.param("97213", "972", 5490, (-60.9853, 14.6332), id="972 Le Lamentin"),
    pytest.param("97304", "973", 2972, (-52.7656, 5.0656), id="973 Kourou"),
    pytest.param("97411", "974", 2975, (55.4485, -20.9292), id="974 Saint-Denis"),
    pytest.param("97611", "976", 4471, (45.1876, -12.7909), id="976 Mamoudzou"),
]
MAINLAND_SITES = [
    pytest.param("62119", "62", (2.6421, 50.5250), id="62 Béthune"),
    pytest.param("2A004", "2A", (8.6956, 41.9292), id="2A Ajaccio"),
]


def outline(department: str, commune: str) -> Polygons:
    """A commune's polygons (rings of [lon, lat]) from the packaged outlines."""
    name = f"communes_contours/communes-{department}.geojson.gz"
    raw = gzip.decompress(reference_data.data_file(name).read_bytes())
    features: list[dict[str, Any]] = json.loads(raw)["features"]
    (geometry,) = [f["geometry"] for f in features if f["properties"]["code"] == commune]
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    assert geometry["type"] == "MultiPolygon"
    return list(geometry["coordinates"])


def inside(lon: float, lat: float, polygons: Polygons) -> bool:
    """Even-odd ray casting over every ring: holes and islands come out right whatever
    the winding."""
    crossings = 0
    for polygon in polygons:
        for ring in polygon:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    crossings += 1
    return crossings % 2 == 1


def projected(epsg: int, lon: float, lat: float) -> tuple[float, float]:
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
    return float(x), float(y)


def test_the_point_in_polygon_helper() -> None:
    square: Polygons = [[[[0, 0], [4, 0], [4, 4], [0, 4]], [[1, 1], [1, 3], [3, 3], [3, 1]]]]
    assert inside(0.5, 0.5, square)
    assert not inside(2, 2, square)  # in the hole
    assert not inside(5, 2, square)


@pytest.mark.parametrize(("commune", "department", "epsg", "point"), OVERSEAS_SITES)
def test_an_overseas_site_lands_in_its_commune(
    commune: str, department: str, epsg: int, point: tuple[float, float]
) -> None:
    polygons = outline(department, commune)
    assert inside(*point, polygons)  # the case itself is right

    x, y = projected(epsg, *point)
    lon, lat = sirene_to_wgs84(commune, x, y)

    assert inside(lon, lat, polygons)
    assert distance_km(lon, lat, *point) < 0.001


@pytest.mark.parametrize(
    ("commune", "epsg", "point"),
    [
        pytest.param("97502", 4467, (-56.1780, 46.7780), id="975 Saint-Pierre"),
        pytest.param("97701", 5490, (-62.8490, 17.8960), id="977 Saint-Barthélemy"),
        pytest.param("97801", 5490, (-63.0820, 18.0680), id="978 Saint-Martin (Marigot)"),
    ],
)
def test_the_territories_without_outline_round_trip(
    commune: str, epsg: int, point: tuple[float, float]
) -> None:
    # No packaged outline for these (see PROVENANCE.md): the point comes back where it was.
    lon, lat = sirene_to_wgs84(commune, *projected(epsg, *point))
    assert distance_km(lon, lat, *point) < 0.001


@pytest.mark.parametrize(
    ("epsg", "central_meridian", "false_northing"),
    [
        pytest.param(5490, -63.0, 0.0, id="RGAF09 / UTM 20N"),
        pytest.param(2972, -51.0, 0.0, id="RGFG95 / UTM 22N"),
        pytest.param(2975, 57.0, 10_000_000.0, id="RGR92 / UTM 40S"),
        pytest.param(4467, -57.0, 0.0, id="RGSPM06 / UTM 21N"),
        pytest.param(4471, 45.0, 10_000_000.0, id="RGM04 / UTM 38S"),
    ],
)
def test_the_epsg_codes_are_the_utm_zones_they_are_named_after(
    epsg: int, central_meridian: float, false_northing: float
) -> None:
    # Zone n's central meridian is 6n - 183 degrees; the southern zones' false northing
    # is 10,000 km. Guards the literal codes above against a typo of a neighbouring code.
    params = {
        p["name"]: p["value"]
        for p in CRS.from_epsg(epsg).to_json_dict()["conversion"]["parameters"]
    }
    assert params["Longitude of natural origin"] == central_meridian
    assert params["False northing"] == false_northing
    assert params["Scale factor at natural origin"] == 0.9996


@pytest.mark.parametrize(("commune", "department", "point"), MAINLAND_SITES)
def test_a_mainland_site_is_still_lambert_93(
    commune: str, department: str, point: tuple[float, float]
) -> None:
    polygons = outline(department, commune)
    assert inside(*point, polygons)
    x, y = projected(2154, *point)

    lon, lat = sirene_to_wgs84(commune, x, y)

    assert inside(lon, lat, polygons)
    assert (lon, lat) == lambert93_to_wgs84(x, y)


@pytest.mark.parametrize(
    ("commune", "territory"),
    [
        ("97103", "Guadeloupe"),
        ("97213", "Martinique"),
        ("97304", "Guyane"),
        ("97411", "La Réunion"),
        ("97502", "Saint-Pierre-et-Miquelon"),
        ("97611", "Mayotte"),
        ("97701", "Saint-Barthélemy"),
        ("97801", "Saint-Martin"),
    ],
)
def test_lambert_93_numbers_for_an_overseas_commune_are_refused(
    commune: str, territory: str
) -> None:
    x, y = wgs84_to_lambert93(2.6421, 50.5250)  # Béthune
    with pytest.raises(ValueError, match=f"outside {territory} \\({commune[:3]}\\)"):
        sirene_to_wgs84(commune, x, y)


@pytest.mark.parametrize(("commune", "department", "epsg", "point"), OVERSEAS_SITES)
def test_swapped_axes_are_refused_overseas(
    commune: str, department: str, epsg: int, point: tuple[float, float]
) -> None:
    x, y = projected(epsg, *point)
    with pytest.raises(ValueError, match="outside"):
        sirene_to_wgs84(commune, y, x)


def test_utm_numbers_for_a_mainland_commune_are_refused() -> None:
    x, y = projected(2975, 55.4485, -20.9292)  # Saint-Denis de La Réunion
    with pytest.raises(ValueError, match="outside metropolitan France"):
        sirene_to_wgs84("62119", x, y)
    x, y = wgs84_to_lambert93(2.6421, 50.5250)
    with pytest.raises(ValueError, match="outside metropolitan France"):
        sirene_to_wgs84("62119", y, x)


# --- through the import ------------------------------------------------------------------

SAMPLE = "sirene_stock_etablissement_sample_299.csv"
SIRET = "00552017600016"  # an active manufacturer of the sample (80308), moved to Jarry


def moved_to_jarry(text: str, x: str, y: str) -> str:
    """The sample's header and that one row, its address and coordinates now in Jarry."""
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    values = {
        "codeCommuneEtablissement": "97103",
        "codePostalEtablissement": "97122",
        "libelleCommuneEtablissement": "BAIE-MAHAULT",
        "coordonneeLambertAbscisseEtablissement": x,
        "coordonneeLambertOrdonneeEtablissement": y,
    }
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows[1:]:
        if row[header.index("siret")] == SIRET:
            for column, value in values.items():
                row[header.index(column)] = value
            writer.writerow(row)
    return out.getvalue()


async def test_an_overseas_row_keeps_its_position_through_the_import(
    db: RegistryDb, refs: Nomenclatures
) -> None:
    point = (-61.5735, 16.2562)
    x, y = projected(5490, *point)
    text = moved_to_jarry(
        reference_data.data_file(SAMPLE).read_text(encoding="utf-8"), f"{x:.1f}", f"{y:.1f}"
    )

    report = await batch_jobs.import_sirene(
        FakeUowFactory(db),
        io.StringIO(text, newline=""),
        ImportScope(communes=frozenset({"97103"})),
        refs,
    )

    assert (report.rows_read, report.error_count, report.created) == (1, 0, 1)
    facts = db.sites[SIRET].facts
    assert facts.commune_insee == "97103"
    assert facts.lon is not None and facts.lat is not None
    assert inside(facts.lon, facts.lat, outline("971", "97103"))
    assert distance_km(facts.lon, facts.lat, *point) < 0.001  # 0.1 m rounding at most


def test_an_overseas_row_in_the_wrong_projection_keeps_the_site_not_the_position() -> None:
    x, y = wgs84_to_lambert93(2.6421, 50.5250)  # what reading it as Lambert-93 expected
    row = SireneEstablishment(
        line=2,
        siret=SIRET,
        siren=SIRET[:9],
        nic=SIRET[9:],
        name=None,
        naf_code="17.21A",
        naf_nomenclature="NAFRev2",
        headcount_band="12",
        headcount_year=2021,
        commune_insee="97103",
        postal_code="97122",
        address=None,
        is_active=True,
        is_head_office=True,
        created_on=None,
        lambert_x=x,
        lambert_y=y,
    )

    data = _to_input(row)

    assert (data.siret, data.commune_insee) == (SIRET, "97103")
    assert (data.lon, data.lat) == (None, None)
