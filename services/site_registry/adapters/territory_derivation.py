"""How the packaged territory and commune files are derived from their sources.

Pure functions over parsed rows and GeoJSON dictionaries (no file is read here):
``data/derive_territory_communes.py`` drives them, the unit tests check them.

- **Territory → communes**: each groupement of a Territoire d'industrie resolves to
  communes: an EPCI to the current communes whose ``epci_siren`` it is (COG), a Grand
  Paris EPT to its members (``ept_grand_paris_members.csv``), a single commune to its
  ``commune_insee``.
- **Outlines**: the 1000 m outlines date from about 2022, the COG from 2026. Each
  current commune takes the outline with its code; else the outlines of its former
  communes (the déléguées / associées whose ``chef_lieu`` it is, a merger since 2022);
  else the one outline of the same département and name whose code the COG no longer
  knows (a commune that changed code). Coordinates are rounded to 5 decimals (about a
  metre), and points that rounding made equal are dropped.
- **Centroids**: the area-weighted centroid of a commune's polygons (holes subtracted),
  computed on a local equirectangular plane (longitudes scaled by the cosine of the
  latitude), accurate to metres at a commune's size, in mainland France and overseas
  alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Ring = Sequence[Sequence[float]]
Polygon = Sequence[Ring]
Geometry = dict[str, Any]

EPCI = "epci_2026"
EPT = "non_resolu"  # the groupements file's value for the 3 Grand Paris EPTs
COMMUNE = "commune"
CURRENT = "commune-actuelle"
DECIMALS = 5


class UnresolvedGroupement(ValueError):
    pass


@dataclass(frozen=True)
class Membership:
    """One commune of a territory, and the groupement that brings it in."""

    territory_id: str
    groupement_siren: str
    groupement_kind: str  # EPCI, EPT or commune
    commune_insee: str


def resolve_territories(
    groupements: Iterable[Mapping[str, str]],
    communes: Iterable[Mapping[str, str]],
    ept_members: Iterable[Mapping[str, str]],
) -> list[Membership]:
    """Every (territory, commune) of the groupements file, in file order of the
    groupements and INSEE order within each; a groupement that resolves to no current
    commune raises (the sources disagree, and a territory would silently shrink)."""
    current = [c for c in communes if c["type"] == CURRENT]
    current_codes = {c["code_insee"] for c in current}
    by_epci: dict[str, list[str]] = {}
    for c in current:
        if c["epci_siren"]:
            by_epci.setdefault(c["epci_siren"], []).append(c["code_insee"])
    by_ept: dict[str, list[str]] = {}
    for m in ept_members:
        by_ept.setdefault(m["ept_siren"], []).append(m["commune_insee"])
    result: list[Membership] = []
    seen: set[tuple[str, str]] = set()
    for g in groupements:
        ti, siren, resolved = g["id_ti"], g["groupement_siren"], g["groupement_resolu"]
        if resolved == EPCI:
            kind, codes = "EPCI", by_epci.get(siren, [])
        elif resolved == EPT:
            kind, codes = "EPT", by_ept.get(siren, [])
        elif resolved == COMMUNE:
            kind, codes = "commune", [g["commune_insee"]] if g["commune_insee"] else []
        else:
            raise UnresolvedGroupement(f"{ti}: groupement {siren} of unknown kind {resolved!r}")
        codes = [c for c in codes if c in current_codes]
        if not codes:
            raise UnresolvedGroupement(f"{ti}: groupement {siren} ({kind}) has no current commune")
        for code in sorted(codes):
            if (ti, code) not in seen:
                seen.add((ti, code))
                result.append(Membership(ti, siren, kind, code))
    return result


# --- outlines ------------------------------------------------------------------------


def polygons_of(geometry: Geometry) -> list[Any]:
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    if geometry["type"] == "MultiPolygon":
        return list(geometry["coordinates"])
    raise ValueError(f"unsupported geometry type {geometry['type']!r}")


def _round_ring(ring: Ring) -> list[list[float]] | None:
    out: list[list[float]] = []
    for point in ring:
        p = [round(float(point[0]), DECIMALS), round(float(point[1]), DECIMALS)]
        if not out or out[-1] != p:
            out.append(p)
    if len(out) >= 2 and out[0] != out[-1]:
        out.append(out[0])
    return out if len(out) >= 4 else None  # a closed ring needs three distinct points


def round_polygons(polygons: Iterable[Polygon]) -> list[list[list[list[float]]]]:
    """Polygons with coordinates rounded to 5 decimals; rings that rounding collapsed
    are dropped (a polygon whose outer ring collapsed goes with it)."""
    result: list[list[list[list[float]]]] = []
    for polygon in polygons:
        rings = [_round_ring(ring) for ring in polygon]
        if rings and rings[0] is not None:
            result.append([r for r in rings if r is not None])
    return result


def geometry_of(polygons: list[list[list[list[float]]]]) -> Geometry:
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


@dataclass(frozen=True)
class OutlineMatch:
    """Which source outlines make up a current commune's, and how they were found."""

    commune_insee: str
    source_codes: tuple[str, ...]
    how: str  # same_code, former_communes, same_name


def match_outlines(
    communes: Iterable[Mapping[str, str]], outline_names: Mapping[str, tuple[str, str]]
) -> tuple[list[OutlineMatch], list[str]]:
    """Map each current commune to source outlines. ``outline_names``: source code →
    (département, name). Returns the matches and the current communes left without."""
    rows = list(communes)
    known = {c["code_insee"] for c in rows}
    parts: dict[str, list[str]] = {}
    for c in rows:
        if c["type"] != CURRENT and c["chef_lieu"]:
            parts.setdefault(c["chef_lieu"], []).append(c["code_insee"])
    orphans: dict[tuple[str, str], list[str]] = {}
    for code, (dept, name) in outline_names.items():
        if code not in known:
            orphans.setdefault((dept, name), []).append(code)
    matches: list[OutlineMatch] = []
    missing: list[str] = []
    for c in rows:
        if c["type"] != CURRENT:
            continue
        code = c["code_insee"]
        former = [p for p in sorted(parts.get(code, [])) if p in outline_names]
        same_name = orphans.get((c["departement"], c["nom"]), [])
        if code in outline_names:
            matches.append(OutlineMatch(code, (code,), "same_code"))
        elif former:
            matches.append(OutlineMatch(code, tuple(former), "former_communes"))
        elif len(same_name) == 1:
            matches.append(OutlineMatch(code, (same_name[0],), "same_name"))
        else:
            missing.append(code)
    return matches, missing


# --- centroids -----------------------------------------------------------------------


def _ring_moments(ring: Ring, scale: float) -> tuple[float, float, float]:
    """Signed shoelace area and first moments of a ring, longitudes scaled."""
    area2 = mx = my = 0.0
    n = len(ring)
    for i in range(n):
        x0, y0 = ring[i][0] * scale, ring[i][1]
        x1, y1 = ring[(i + 1) % n][0] * scale, ring[(i + 1) % n][1]
        cross = x0 * y1 - x1 * y0
        area2 += cross
        mx += (x0 + x1) * cross
        my += (y0 + y1) * cross
    return area2 / 2.0, mx / 6.0, my / 6.0


def centroid(polygons: Sequence[Polygon]) -> tuple[float, float]:
    """Area-weighted centroid (lon, lat) of polygons given as [outer, *holes] each.

    The outer ring counts positive and every hole negative whatever their winding
    (older files ignore RFC 7946's orientation). Polygons the simplification flattened
    to no area (one commune of the source, 39140, is a line) give the mean of their
    outer rings' distinct points."""
    lats = [p[1] for polygon in polygons for p in polygon[0]]
    if not lats:
        raise ValueError("no polygon")
    scale = math.cos(math.radians((min(lats) + max(lats)) / 2))
    total_a = total_x = total_y = 0.0
    for polygon in polygons:
        for index, ring in enumerate(polygon):
            a, mx, my = _ring_moments(ring, scale)
            sign = (1.0 if a >= 0 else -1.0) * (1.0 if index == 0 else -1.0)
            total_a += sign * a
            total_x += sign * mx
            total_y += sign * my
    if total_a <= 0:
        points = {(p[0], p[1]) for polygon in polygons for p in polygon[0]}
        return (
            sum(x for x, _ in points) / len(points),
            sum(y for _, y in points) / len(points),
        )
    return total_x / total_a / scale, total_y / total_a
