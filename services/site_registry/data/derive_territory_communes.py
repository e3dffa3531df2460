"""Build the registry's national commune files: territory → communes, outlines, centroids.

Usage (from the repository root)::

    # 1. refresh the copied sources (needs the shared data collection, see PROVENANCE.md)
    uv run python services/site_registry/data/derive_territory_communes.py \
        --sources /work/shared/data
    # 2. re-derive from the copies in this folder alone (what a clone can always do)
    uv run python services/site_registry/data/derive_territory_communes.py

Step 1 copies ``communes_france_cog.csv`` (gzipped, content unchanged),
``ept_grand_paris_members.csv`` and checks ``territoires_industrie_183_groupements.csv``
is the collection's; it rebuilds ``communes_contours/communes-<dept>.geojson.gz`` from
the collection's ``communes_contours_1000m/`` (re-keyed on the 2026 COG, coordinates
rounded to 5 decimals, properties ``code`` and ``nom`` only) and
``communes_contours/outline_matches.csv`` (the communes whose outline is not the one
with their own code). Step 2 writes ``territoires_industrie_communes_2023_derived.csv``
and ``communes_france_centroids.csv.gz``. Every output is deterministic (sorted rows,
gzip without timestamp): re-running on the same inputs gives the same bytes. The
rules are in ``services/site_registry/adapters/territory_derivation.py``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.site_registry.adapters import territory_derivation as td

HERE = Path(__file__).parent
COG = "communes_france_cog.csv"
EPT = "ept_grand_paris_members.csv"
GROUPEMENTS = "territoires_industrie_183_groupements.csv"
OUTLINES_DIR = "communes_contours"
MATCHES = "outline_matches.csv"
TERRITORY_COMMUNES = "territoires_industrie_communes_2023_derived.csv"
CENTROIDS = "communes_france_centroids.csv.gz"


@contextmanager
def _write_gzip(path: Path) -> Iterator[gzip.GzipFile]:
    # mtime=0 and no file name in the header: the same content gives the same bytes.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        yield gz


def _read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def import_sources(sources: Path, data: Path) -> dict[str, int]:
    """Step 1: copy the sources the registry needs and rebuild the packaged outlines."""
    groupements = (sources / GROUPEMENTS).read_bytes()
    if groupements != (data / GROUPEMENTS).read_bytes():
        raise SystemExit(f"{GROUPEMENTS} differs from the collection's: copy it and review")
    with _write_gzip(data / f"{COG}.gz") as gz:
        gz.write((sources / COG).read_bytes())
    (data / EPT).write_bytes((sources / EPT).read_bytes())

    communes = _read_csv(data / f"{COG}.gz")
    outlines: dict[str, Any] = {}
    names: dict[str, tuple[str, str]] = {}
    for path in sorted((sources / "communes_contours_1000m").glob("communes-1000m-*.geojson")):
        for feature in json.loads(path.read_text(encoding="utf-8"))["features"]:
            props = feature["properties"]
            outlines[props["code"]] = feature["geometry"]
            names[props["code"]] = (props["departement"], props["nom"])
    matches, missing = td.match_outlines(communes, names)
    by_code = {c["code_insee"]: c for c in communes}
    per_dept: dict[str, list[dict[str, Any]]] = {}
    for m in matches:
        polygons = [p for code in m.source_codes for p in td.polygons_of(outlines[code])]
        rounded = td.round_polygons(polygons)
        if not rounded:
            missing.append(m.commune_insee)
            continue
        commune = by_code[m.commune_insee]
        per_dept.setdefault(commune["departement"], []).append(
            {
                "type": "Feature",
                "properties": {"code": m.commune_insee, "nom": commune["nom"]},
                "geometry": td.geometry_of(rounded),
            }
        )
    target = data / OUTLINES_DIR
    target.mkdir(exist_ok=True)
    for old in target.glob("communes-*.geojson.gz"):
        old.unlink()
    for dept, features in sorted(per_dept.items()):
        features.sort(key=lambda f: f["properties"]["code"])
        body = json.dumps(
            {"type": "FeatureCollection", "features": features},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        with _write_gzip(target / f"communes-{dept}.geojson.gz") as gz:
            gz.write(body.encode("utf-8"))
    odd = sorted((m for m in matches if m.how != "same_code"), key=lambda m: m.commune_insee)
    (target / MATCHES).write_bytes(
        _csv_bytes(
            ["commune_insee", "how", "source_codes"],
            [[m.commune_insee, m.how, "|".join(m.source_codes)] for m in odd]
            + [[code, "none", ""] for code in sorted(missing)],
        )
    )
    return {
        "outlines": sum(len(f) for f in per_dept.values()),
        "departements": len(per_dept),
        "without_outline": len(missing),
    }


def load_outlines(data: Path) -> Iterator[tuple[str, td.Geometry]]:
    for path in sorted((data / OUTLINES_DIR).glob("communes-*.geojson.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for feature in json.load(fh)["features"]:
                yield feature["properties"]["code"], feature["geometry"]


def derive(data: Path) -> dict[str, int]:
    """Step 2: territory → communes and commune centroids, from the copies in ``data``."""
    memberships = td.resolve_territories(
        _read_csv(data / GROUPEMENTS), _read_csv(data / f"{COG}.gz"), _read_csv(data / EPT)
    )
    (data / TERRITORY_COMMUNES).write_bytes(
        _csv_bytes(
            ["id_ti", "groupement_siren", "groupement_kind", "commune_insee"],
            [
                [m.territory_id, m.groupement_siren, m.groupement_kind, m.commune_insee]
                for m in memberships
            ],
        )
    )
    rows = []
    for code, geometry in load_outlines(data):
        lon, lat = td.centroid(td.polygons_of(geometry))
        rows.append([code, f"{lon:.6f}", f"{lat:.6f}"])
    rows.sort()
    with _write_gzip(data / CENTROIDS) as gz:
        gz.write(_csv_bytes(["code_insee", "lon", "lat"], rows))
    return {
        "territories": len({m.territory_id for m in memberships}),
        "memberships": len(memberships),
        "centroids": len(rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sources", type=Path, help="the shared data collection: refresh the copies first"
    )
    parser.add_argument("--data", type=Path, default=HERE, help="the registry's data folder")
    args = parser.parse_args(argv)
    if args.sources is not None:
        print(json.dumps(import_sources(args.sources, args.data)), file=sys.stderr)
    print(json.dumps(derive(args.data)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
