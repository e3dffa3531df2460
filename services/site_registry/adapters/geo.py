"""Projected French coordinates → WGS84 (lon, lat).

Sirene v3 publishes Lambert-93 (EPSG:2154) for mainland establishments and each
overseas département's legal UTM projection for the others (``sirene_to_wgs84``);
the IREP registry uses the older Lambert II étendu (EPSG:27572). Building a pyproj
``Transformer`` loads PROJ's database and costs milliseconds, so each one is
built on first use and cached, never at import time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyproj import Transformer

from services.site_registry.adapters.reference_data import department_of

LAMBERT_93 = "EPSG:2154"
LAMBERT_II_ETENDU = "EPSG:27572"
RGAF09_UTM_20N = "EPSG:5490"
RGFG95_UTM_22N = "EPSG:2972"
RGR92_UTM_40S = "EPSG:2975"
RGSPM06_UTM_21N = "EPSG:4467"
RGM04_UTM_38S = "EPSG:4471"
WGS84 = "EPSG:4326"

# Metropolitan France and Corsica, with a margin. Both Lambert projections are
# defined for mainland France only: a point outside this box means swapped
# axes, the wrong projection, or an overseas establishment (Sirene uses other
# CRSs there), and must not be stored as if it were right.
LON_MIN, LON_MAX = -5.5, 10.0
LAT_MIN, LAT_MAX = 41.0, 51.5


@dataclass(frozen=True, slots=True)
class Zone:
    """Where a projection's points must land: the name an error gives, and a WGS84 box."""

    name: str
    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.lon_min <= lon <= self.lon_max and self.lat_min <= lat <= self.lat_max


METROPOLITAN = Zone("metropolitan France", LON_MIN, LON_MAX, LAT_MIN, LAT_MAX)

# Sirene's projection per overseas département (the commune code's first three
# characters). INSEE's description of the columns says only "coordonnées Lambert":
# overseas they are in the territory's legal UTM projection, the one IGN publishes
# that territory in (Saint-Barthélemy and Saint-Martin share the Antilles' RGAF09),
# with the EPSG codes data.gouv's annuaire-entreprises uses to read the same stock.
# Each box is the territory's land with about a quarter of a degree (25-30 km)
# around it: a point outside is a wrong projection, swapped axes or a typo.
OVERSEAS: dict[str, tuple[str, Zone]] = {
    "971": (RGAF09_UTM_20N, Zone("Guadeloupe (971)", -62.1, -60.7, 15.6, 16.8)),
    "972": (RGAF09_UTM_20N, Zone("Martinique (972)", -61.5, -60.5, 14.1, 15.1)),
    "973": (RGFG95_UTM_22N, Zone("Guyane (973)", -54.9, -51.3, 1.8, 6.1)),
    "974": (RGR92_UTM_40S, Zone("La Réunion (974)", 54.9, 56.1, -21.7, -20.6)),
    "975": (RGSPM06_UTM_21N, Zone("Saint-Pierre-et-Miquelon (975)", -56.7, -55.9, 46.5, 47.4)),
    "976": (RGM04_UTM_38S, Zone("Mayotte (976)", 44.7, 45.6, -13.3, -12.4)),
    "977": (RGAF09_UTM_20N, Zone("Saint-Barthélemy (977)", -63.1, -62.6, 17.6, 18.2)),
    "978": (RGAF09_UTM_20N, Zone("Saint-Martin (978)", -63.4, -62.7, 17.8, 18.4)),
}


@lru_cache(maxsize=16)
def _transformer(source_crs: str) -> Any:
    return Transformer.from_crs(source_crs, WGS84, always_xy=True)


def _to_wgs84(
    source_crs: str, x: float, y: float, zone: Zone = METROPOLITAN
) -> tuple[float, float]:
    lon, lat = _transformer(source_crs).transform(x, y)
    lon = float(lon)
    lat = float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"({x}, {y}) in {source_crs} cannot be converted to WGS84")
    if not zone.contains(lon, lat):
        raise ValueError(
            f"({x}, {y}) in {source_crs} lands at lon {lon:.4f}, lat {lat:.4f}, outside {zone.name}"
        )
    return lon, lat


def sirene_to_wgs84(commune_insee: str, x: float, y: float) -> tuple[float, float]:
    """A Sirene establishment's projected coordinates → (lon, lat), in the projection of
    its commune's département; ValueError when the point falls outside that
    département."""
    source_crs, zone = OVERSEAS.get(department_of(commune_insee), (LAMBERT_93, METROPOLITAN))
    return _to_wgs84(source_crs, x, y, zone)


def lambert93_to_wgs84(x: float, y: float) -> tuple[float, float]:
    """Lambert-93 (EPSG:2154) metres → (lon, lat) in degrees."""
    return _to_wgs84(LAMBERT_93, x, y)


def lambert2e_to_wgs84(x: float, y: float) -> tuple[float, float]:
    """Lambert II étendu (EPSG:27572) metres → (lon, lat) in degrees."""
    return _to_wgs84(LAMBERT_II_ETENDU, x, y)


def wgs84_to_lambert93(lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) → Lambert-93 metres; used to write Sirene-shaped fixtures."""
    x, y = _transformer_from_wgs84(LAMBERT_93).transform(lon, lat)
    return float(x), float(y)


@lru_cache(maxsize=4)
def _transformer_from_wgs84(target_crs: str) -> Any:
    return Transformer.from_crs(WGS84, target_crs, always_xy=True)


def distance_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius): enough for km-level checks."""
    rlat1, rlat2 = math.radians(lat1), math.radians(lat2)
    dlat = rlat2 - rlat1
    dlon = math.radians(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(rlat1) * math.cos(rlat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))
