"""Build ``communes_dept62_centroids.csv`` from the dept-62 commune polygons.

Usage::

    uv run python services/site_registry/data/build_centroids.py \
        [/work/shared/data/communes_dept62_contours_1000m.geojson]

The 320 kB polygon file is deliberately not copied into the repository: the
registry only needs one representative point per commune (to place generated
sites and to sanity-check real coordinates), so the script is kept here to make
the derived CSV reproducible. See ``PROVENANCE.md`` for the source of the input.

The centroid is the area-weighted centroid of each polygon (holes subtracted),
computed in Lambert-93 (EPSG:2154) rather than in raw degrees: a degree of
longitude is about 0.64 of a degree of latitude at 50°N, so shoelace formulas on
lon/lat would weight the shape wrongly. The result is converted back to WGS84.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyproj import Transformer

DEFAULT_SOURCE = Path("/work/shared/data/communes_dept62_contours_1000m.geojson")
OUTPUT = Path(__file__).with_name("communes_dept62_centroids.csv")

Ring = Sequence[tuple[float, float]]


def ring_area_and_moments(ring: Ring) -> tuple[float, float, float]:
    """Signed shoelace area and first moments (sum for cx, sum for cy) of a ring."""
    area2 = 0.0
    mx = 0.0
    my = 0.0
    n = len(ring)
    for i in range(n):
        x0, y0 = ring[i]
        x1, y1 = ring[(i + 1) % n]
        cross = x0 * y1 - x1 * y0
        area2 += cross
        mx += (x0 + x1) * cross
        my += (y0 + y1) * cross
    return area2 / 2.0, mx / 6.0, my / 6.0


def polygon_centroid(rings: Sequence[Ring]) -> tuple[float, float, float]:
    """Centroid (x, y) and area of a polygon given as [outer, *holes].

    Ring orientation in the source is not guaranteed (RFC 7946 asks for it but
    older files ignore it), so the outer ring counts positive and every hole
    negative whatever their winding.
    """
    total_a = total_mx = total_my = 0.0
    for index, ring in enumerate(rings):
        a, mx, my = ring_area_and_moments(ring)
        sign = (1.0 if a >= 0 else -1.0) * (1.0 if index == 0 else -1.0)
        total_a += sign * a
        total_mx += sign * mx
        total_my += sign * my
    if total_a == 0:
        raise ValueError("degenerate polygon with zero area")
    return total_mx / total_a, total_my / total_a, abs(total_a)


def geometry_polygons(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"unsupported geometry type {geometry['type']!r}")


def build(source: Path, output: Path) -> int:
    to_l93 = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)
    to_wgs = Transformer.from_crs("EPSG:2154", "EPSG:4326", always_xy=True)
    with source.open(encoding="utf-8") as fh:
        collection = json.load(fh)
    rows: list[tuple[str, float, float]] = []
    for feature in collection["features"]:
        code = feature["properties"]["code"]
        sum_a = sum_x = sum_y = 0.0
        for polygon in geometry_polygons(feature["geometry"]):
            rings = [[to_l93.transform(lon, lat) for lon, lat, *_ in ring] for ring in polygon]
            cx, cy, area = polygon_centroid(rings)
            sum_a += area
            sum_x += cx * area
            sum_y += cy * area
        lon, lat = to_wgs.transform(sum_x / sum_a, sum_y / sum_a)
        rows.append((code, lon, lat))
    rows.sort()
    with output.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["code_insee", "lon", "lat"])
        for code, lon, lat in rows:
            writer.writerow([code, f"{lon:.6f}", f"{lat:.6f}"])
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    count = build(args.source, args.output)
    print(f"wrote {count} centroids to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
