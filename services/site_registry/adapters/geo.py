"""Projected French coordinates → WGS84 (lon, lat).

Sirene v3 publishes Lambert-93 (EPSG:2154) for mainland establishments; the
IREP registry uses the older Lambert II étendu (EPSG:27572). Building a pyproj
``Transformer`` loads PROJ's database and costs milliseconds, so each one is
built on first use and cached, never at import time.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from pyproj import Transformer

LAMBERT_93 = "EPSG:2154"
LAMBERT_II_ETENDU = "EPSG:27572"
WGS84 = "EPSG:4326"

# Metropolitan France and Corsica, with a margin. Both Lambert projections are
# defined for mainland France only: a point outside this box means swapped
# axes, the wrong projection, or an overseas establishment (Sirene uses other
# CRSs there), and must not be stored as if it were right.
LON_MIN, LON_MAX = -5.5, 10.0
LAT_MIN, LAT_MAX = 41.0, 51.5


@lru_cache(maxsize=4)
def _transformer(source_crs: str) -> Any:
    return Transformer.from_crs(source_crs, WGS84, always_xy=True)


def _to_wgs84(source_crs: str, x: float, y: float) -> tuple[float, float]:
    lon, lat = _transformer(source_crs).transform(x, y)
    lon = float(lon)
    lat = float(lat)
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError(f"({x}, {y}) in {source_crs} cannot be converted to WGS84")
    if not (LON_MIN <= lon <= LON_MAX and LAT_MIN <= lat <= LAT_MAX):
        raise ValueError(
            f"({x}, {y}) in {source_crs} lands at lon {lon:.4f}, lat {lat:.4f}, "
            "outside metropolitan France"
        )
    return lon, lat


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
