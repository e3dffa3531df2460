"""Write a GENERATED Sirene StockEtablissement file, for import benchmarks.

Every row of the output is SYNTHETIC: identifiers, names, dates and
coordinates are drawn from a seeded random generator. Only the layout is real
(the 53-column v3 header of INSEE's StockEtablissement, same quoting and value
formats) and the commune codes, postal codes and NAF codes come from the real
reference tables. Each row's ``denominationUsuelleEtablissement`` starts with
"GENERATED" so a generated row can never be mistaken for a real establishment.

Usage::

    python -m tests.bench.generate_sirene /tmp/stock.csv [--rows 1000000]
        [--seed 62] [--territory ti-3205] [--territory-share 0.035]
        [--malformed] [--manifest /tmp/stock.json]

The mix imitates the national file seen from one territory (``--territory``,
ti-3205 Béthune-Bruay et Flandre-Lys by default): most rows are in other
departments and most are closed; a share (``--territory-share``, 3.5 % by
default; about 0.6 % gives the 0.5 % kept of the issue-11 benchmark) are
establishments of the territory with a NAF rév. 2 section C code, which is what
the registry import keeps when they are active. Near misses (closed, wrong
section, legacy NAF nomenclature, communes of the same departments outside the
territory) are included on purpose so a wrong filter shows up in the count.

On stderr the script prints how many rows pass the territory / section C /
active / NAFRev2 filter; ``--manifest`` also writes it as JSON together with
the physical line number and kind of every malformed row (``--malformed``).
SIRENs are drawn from 900000000 up (room for 20 million rows) with valid check digits; that range
may hold real SIRENs too, so never join this file with real Sirene data.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TextIO

from services.site_registry.adapters.geo import wgs84_to_lambert93
from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    load_communes,
    load_naf,
    load_territory_communes,
)
from services.site_registry.adapters.sirene import STOCK_ETABLISSEMENT_COLUMNS
from services.site_registry.domain.siret import complete_luhn, make_siren

TERRITORY = "ti-3205"
SIREN_BASE = 90_000_000  # 8-digit prefix; the 9th digit is the Luhn key
COLUMN = {name: i for i, name in enumerate(STOCK_ETABLISSEMENT_COLUMNS)}
WIDTH = len(STOCK_ETABLISSEMENT_COLUMNS)

STREET_TYPES = ("RUE", "RUE", "RUE", "AV", "BD", "RTE", "CHE", "PL", "ZI", "ZA", "IMP", "ALL")
STREET_NAMES = (
    "DE LA GARE",
    "JEAN JAURES",
    "DU GENERAL DE GAULLE",
    "VICTOR HUGO",
    "PASTEUR",
    "DES ATELIERS",
    "DE L INDUSTRIE",
    "DU CANAL",
    "DES FOSSES",
    "ROGER SALENGRO",
    "DE LILLE",
    "D ARRAS",
    "DU MOULIN",
    "DES PRES",
    "DE LA REPUBLIQUE",
    "EMILE ZOLA",
)
LEGACY = (("NAFRev1", "25.1A"), ("NAF1993", "28.5D"), ("NAP", "2211"), ("NAFRev1", "15.8C"))
TARGET_BANDS = ("NN", "01", "02", "03", "03", "11", "11", "12", "12", "12", "21", "22", "31")
OTHER_BANDS = ("", "", "", "", "NN", "NN", "00", "01", "02", "03", "11", "12")


@dataclass
class Malformation:
    line: int
    kind: str
    siret: str | None


@dataclass
class GenerationStats:
    rows: int = 0
    lines: int = 1  # the header
    expected_matches: int = 0
    department_rows: int = 0  # rows in the territory's departments, in it or not
    territory_rows: int = 0
    with_coordinates: int = 0
    malformed: list[Malformation] = field(default_factory=list)


def _random_date(rng: random.Random, start_year: int, end_year: int) -> date:
    start = date(start_year, 1, 1).toordinal()
    end = date(end_year, 12, 31).toordinal()
    return date.fromordinal(rng.randint(start, end))


def generate(
    out: TextIO,
    rows: int,
    seed: int,
    malformed: bool,
    *,
    territory_id: str = TERRITORY,
    territory_share: float = 0.035,
) -> GenerationStats:
    """Write ``rows`` data rows to ``out``, one at a time (memory stays flat)."""
    if not 0 < territory_share <= 0.5:
        raise ValueError("territory_share must be in (0, 0.5]")
    rng = random.Random(seed)
    naf = load_naf()
    section_c = [n.code for n in naf.codes_in_section("C")]
    section_c_set = frozenset(section_c)
    other_naf = [n.code for n in naf if n.section != "C"]
    all_naf = other_naf + section_c
    territory = sorted(load_territory_communes()[territory_id])
    territory_set = frozenset(territory)
    everywhere = load_communes()
    departments = {c.department for c in everywhere if c.insee_code in territory_set}
    # The territory and the departments around it; communes without a centroid (no
    # outline, see the data's PROVENANCE.md) cannot be given coordinates.
    communes = {
        c.insee_code: c
        for c in everywhere
        if (c.department in departments or c.insee_code in territory_set) and c.lon is not None
    }
    territory = [code for code in territory if code in communes]
    outside = sorted(code for code in communes if code not in territory_set)
    # Projected once per commune; each site then gets a jitter in metres,
    # which keeps pyproj out of the per-row loop.
    # Overseas Sirene coordinates are in local UTM systems, not Lambert-93: this
    # generator writes none there rather than wrong ones.
    l93: dict[str, tuple[float, float]] = {
        code: wgs84_to_lambert93(c.lon, c.lat)
        for code, c in communes.items()
        if c.lon is not None and c.lat is not None and not c.department.startswith("97")
    }
    other_departments = [
        f"{d:02d}" for d in range(1, 96) if d != 20 and f"{d:02d}" not in departments
    ]
    in_territory = territory_share
    in_territory_other = in_territory + territory_share * 0.7
    in_departments = in_territory_other + 0.04

    step = min(100_000, max(rows // 10, 10))
    kinds = ("field_count", "bad_siret", "bad_date", "bad_coordinate")

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STOCK_ETABLISSEMENT_COLUMNS)
    stats = GenerationStats()

    siren8 = SIREN_BASE
    siren = make_siren(str(siren8))
    nic_counter = 0
    establishments_left = 0

    for index in range(rows):
        if establishments_left == 0:
            siren8 += 1
            siren = make_siren(str(siren8))
            nic_counter = 0
            establishments_left = rng.choice((1, 1, 1, 1, 2, 2, 3, 5))
        establishments_left -= 1
        nic_counter += 1
        siret = complete_luhn(f"{siren}{nic_counter:04d}")
        nic = siret[9:]

        draw = rng.random()
        commune: CommuneRecord | None
        if draw < in_territory:
            # The population the import keeps (when active and NAFRev2).
            commune = communes[rng.choice(territory)]
            naf_code, nomenclature = rng.choice(section_c), "NAFRev2"
            active = rng.random() < 0.85
            if rng.random() < 0.05:
                nomenclature, naf_code = rng.choice(LEGACY)
        elif draw < in_territory_other:
            # Same territory, other sections: services, trade, construction.
            commune = communes[rng.choice(territory)]
            naf_code, nomenclature = rng.choice(other_naf), "NAFRev2"
            active = rng.random() < 0.6
        elif draw < in_departments and outside:
            # The same departments outside the territory (for ti-3205: Lens, Arras...).
            commune = communes[rng.choice(outside)]
            naf_code = rng.choice(section_c if rng.random() < 0.3 else other_naf)
            nomenclature = "NAFRev2"
            active = rng.random() < 0.5
        else:
            commune = None
            if rng.random() < 0.7:
                naf_code, nomenclature = rng.choice(all_naf), "NAFRev2"
            elif rng.random() < 0.8:
                nomenclature, naf_code = rng.choice(LEGACY)
            else:
                naf_code, nomenclature = "", ""
            active = rng.random() < 0.3

        row = [""] * WIDTH
        row[COLUMN["siren"]] = siren
        row[COLUMN["nic"]] = nic
        row[COLUMN["siret"]] = siret
        diffusion = "P" if rng.random() < 0.02 else "O"
        row[COLUMN["statutDiffusionEtablissement"]] = diffusion
        created = _random_date(rng, 1965, 2023)
        row[COLUMN["dateCreationEtablissement"]] = created.isoformat()
        row[COLUMN["dateDernierTraitementEtablissement"]] = "2024-03-22T15:40:57"
        row[COLUMN["etablissementSiege"]] = "true" if nic_counter == 1 else "false"
        row[COLUMN["nombrePeriodesEtablissement"]] = str(rng.randint(1, 4))
        # Closed establishments carry no current headcount band.
        if not active:
            band = ""
        else:
            band = rng.choice(TARGET_BANDS if commune is not None else OTHER_BANDS)
        row[COLUMN["trancheEffectifsEtablissement"]] = band
        if band and band != "NN":
            row[COLUMN["anneeEffectifsEtablissement"]] = "2021"
        row[COLUMN["caractereEmployeurEtablissement"]] = (
            "O" if band and band not in ("NN", "00") else "N"
        )

        if commune is not None:
            code = commune.insee_code
            row[COLUMN["codeCommuneEtablissement"]] = code
            row[COLUMN["codePostalEtablissement"]] = commune.postal_codes[0]
            row[COLUMN["libelleCommuneEtablissement"]] = commune.name.upper()
            stats.department_rows += 1
            if code in territory_set:
                stats.territory_rows += 1
            cx, cy = l93.get(code, (float("nan"), float("nan")))
        else:
            dept = rng.choice(other_departments)
            code = f"{dept}{rng.randint(1, 650):03d}"
            row[COLUMN["codeCommuneEtablissement"]] = code
            row[COLUMN["codePostalEtablissement"]] = (
                f"{dept}{rng.randint(0, 9)}{rng.randint(0, 9)}0"
            )
            row[COLUMN["libelleCommuneEtablissement"]] = f"COMMUNE {code}"
            cx = rng.uniform(200_000, 1_050_000)
            cy = rng.uniform(6_250_000, 7_050_000)

        if diffusion == "P":
            for name in (
                "numeroVoieEtablissement",
                "typeVoieEtablissement",
                "libelleVoieEtablissement",
                "identifiantAdresseEtablissement",
                "coordonneeLambertAbscisseEtablissement",
                "coordonneeLambertOrdonneeEtablissement",
            ):
                row[COLUMN[name]] = "[ND]"
        else:
            row[COLUMN["numeroVoieEtablissement"]] = str(rng.randint(1, 250))
            row[COLUMN["typeVoieEtablissement"]] = rng.choice(STREET_TYPES)
            row[COLUMN["libelleVoieEtablissement"]] = rng.choice(STREET_NAMES)
            # Recent geocoding covers active establishments better than old
            # closed ones, as in the real file.
            if cx == cx and rng.random() < (0.8 if active else 0.3):  # NaN: none known
                x = cx + rng.uniform(-1500.0, 1500.0)
                y = cy + rng.uniform(-1500.0, 1500.0)
                row[COLUMN["coordonneeLambertAbscisseEtablissement"]] = f"{x:.1f}"
                row[COLUMN["coordonneeLambertOrdonneeEtablissement"]] = f"{y:.1f}"
                row[COLUMN["identifiantAdresseEtablissement"]] = (
                    f"{code}_{rng.randint(1, 9999):04d}_{rng.randint(1, 250):05d}"
                )
                stats.with_coordinates += 1
        extra_lines = 0
        if rng.random() < 0.001:
            # Legal in CSV and present in INSEE files: a quoted field with a
            # line break. It makes physical lines and records drift apart.
            row[COLUMN["complementAdresseEtablissement"]] = "BATIMENT B\nZONE ARTISANALE"
            extra_lines = 1

        row[COLUMN["dateDebut"]] = _random_date(rng, created.year, 2024).isoformat()
        row[COLUMN["etatAdministratifEtablissement"]] = "A" if active else "F"
        if rng.random() < 0.2:
            row[COLUMN["enseigne1Etablissement"]] = f"ENSEIGNE {index + 1}"
        row[COLUMN["denominationUsuelleEtablissement"]] = f"GENERATED establishment {index + 1}"
        row[COLUMN["activitePrincipaleEtablissement"]] = naf_code
        row[COLUMN["nomenclatureActivitePrincipaleEtablissement"]] = nomenclature

        line = stats.lines + 1
        broken = malformed and index % step == step // 2
        if broken:
            kind = kinds[(index // step) % len(kinds)]
            if kind == "field_count":
                row = row[:-2]
            elif kind == "bad_siret":
                row[COLUMN["siret"]] = siret[:-1] + str((int(siret[-1]) + 1) % 10)
            elif kind == "bad_date":
                row[COLUMN["dateCreationEtablissement"]] = "2019-13-45"
            else:
                row[COLUMN["coordonneeLambertAbscisseEtablissement"]] = "65O123.4"
            stats.malformed.append(Malformation(line, kind, row[COLUMN["siret"]]))
        elif (
            active
            and commune is not None
            and commune.insee_code in territory_set
            and nomenclature == "NAFRev2"
            and naf_code in section_c_set
        ):
            stats.expected_matches += 1

        writer.writerow(row)
        stats.rows += 1
        stats.lines += 1 + extra_lines
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a GENERATED StockEtablissement CSV.")
    parser.add_argument("output", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=62)
    parser.add_argument(
        "--malformed",
        action="store_true",
        help="replace one row in every 100,000 (or N/10) with a malformed one",
    )
    parser.add_argument(
        "--territory", default=TERRITORY, help="the territory the file is seen from"
    )
    parser.add_argument(
        "--territory-share",
        type=float,
        default=0.035,
        help="share of rows in the territory with a section C code (active or not)",
    )
    parser.add_argument("--manifest", type=Path, help="write the expected counts as JSON")
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= 20_000_000:
        parser.error("--rows must be between 1 and 20,000,000 (the SIREN range's room)")

    began = time.perf_counter()
    with args.output.open("w", encoding="utf-8", newline="", buffering=1 << 20) as out:
        stats = generate(
            out,
            args.rows,
            args.seed,
            args.malformed,
            territory_id=args.territory,
            territory_share=args.territory_share,
        )
    elapsed = time.perf_counter() - began

    print(
        f"wrote {stats.rows:,} GENERATED rows ({stats.lines:,} lines) to {args.output} "
        f"in {elapsed:.1f} s ({stats.rows / elapsed:,.0f} rows/s)",
        file=sys.stderr,
    )
    print(
        f"the territory's departments: {stats.department_rows:,} rows, {args.territory}: "
        f"{stats.territory_rows:,} rows, "
        f"with Lambert-93 coordinates: {stats.with_coordinates:,}",
        file=sys.stderr,
    )
    print(
        f"expected matches ({args.territory} communes, active, NAFRev2 section C): "
        f"{stats.expected_matches:,}",
        file=sys.stderr,
    )
    for m in stats.malformed:
        print(f"malformed row at line {m.line}: {m.kind} (siret {m.siret})", file=sys.stderr)
    if args.manifest:
        manifest = {
            "file": str(args.output),
            "seed": args.seed,
            "rows": stats.rows,
            "lines": stats.lines,
            "territory": args.territory,
            "territory_share": args.territory_share,
            "expected_matches": stats.expected_matches,
            "malformed": [asdict(m) for m in stats.malformed],
        }
        args.manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
