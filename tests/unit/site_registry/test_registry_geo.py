from __future__ import annotations

import pytest

from services.site_registry.adapters.geo import (
    distance_km,
    lambert2e_to_wgs84,
    lambert93_to_wgs84,
    wgs84_to_lambert93,
)
from services.site_registry.adapters.reference_data import load_communes


def test_irep_bridgestone_lands_in_bethune() -> None:
    # IREP 070.00473, Lambert II étendu.
    lon, lat = lambert2e_to_wgs84(621777, 2614874)
    assert distance_km(lon, lat, 2.64, 50.53) < 2.0
    bethune = next(c for c in load_communes() if c.insee_code == "62119")
    assert distance_km(lon, lat, bethune.lon, bethune.lat) < 2.0


def test_lambert93_false_origin_is_exact() -> None:
    # By definition of EPSG:2154: (3°E, 46.5°N) is at (700000, 6600000).
    lon, lat = lambert93_to_wgs84(700000, 6600000)
    assert lon == pytest.approx(3.0, abs=1e-9)
    assert lat == pytest.approx(46.5, abs=1e-9)


def test_lambert93_paris_notre_dame() -> None:
    lon, lat = lambert93_to_wgs84(652469, 6861717)
    # This commonly quoted point sits about 190 m east of the cathedral's
    # centre (2.3499, 48.8530), hence the tolerance.
    assert distance_km(lon, lat, 2.3499, 48.8530) < 0.3
    assert lon == pytest.approx(2.3522, abs=5e-4)
    assert lat == pytest.approx(48.8537, abs=5e-4)


def test_round_trip() -> None:
    x, y = wgs84_to_lambert93(2.6449, 50.5289)
    lon, lat = lambert93_to_wgs84(x, y)
    assert (lon, lat) == pytest.approx((2.6449, 50.5289), abs=1e-9)


def test_swapped_axes_are_rejected() -> None:
    with pytest.raises(ValueError, match="outside metropolitan France"):
        lambert93_to_wgs84(6861717, 652469)
    with pytest.raises(ValueError, match="outside metropolitan France"):
        lambert2e_to_wgs84(2614874, 621777)


def test_non_finite_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        lambert93_to_wgs84(float("nan"), 6600000)


def test_distance_km() -> None:
    assert distance_km(2.0, 50.0, 2.0, 51.0) == pytest.approx(111.2, abs=0.1)
    assert distance_km(2.0, 50.0, 2.0, 50.0) == 0.0
