"""Build the Béthune-Bruay et Flandre-Lys (ti-3205) demo site list.

Writes ``services/site_registry/data/demo/ti-3205_sites.csv``, which is
committed: ``make run`` only reads it. Re-run this script after changing the
reference data or the rules below::

    uv run python services/site_registry/data/build_bethune_demo.py [--output PATH] [--seed 2020]

The territory's 2020 campaign visited 165 industrial sites (domain brief). No
Sirene extract for the territory is available offline, so the list is:

1. REAL sites: the IREP industrial-emissions registry rows (real SIRETs, names,
   APE codes, Lambert II étendu positions) located in the territory's
   dept-62 communes, restricted to NAF section C (manufacturing), since the
   rebond campaign targets industrial establishments and IREP also lists
   farms, landfills, power plants and retail.
2. GENERATED sites topping the list up to exactly 165, marked ``GENERATED``
   in their name and ``source=generated``.

Matching IREP rows to INSEE communes: IREP postal codes are often CEDEX codes
(62401 BETHUNE) and its commune names are upper-case without accents, so the
match is tried in order on (postal code, normalized name), then on the
normalized name alone when it is unique in the department, then on a commune
déléguée's name (mapped to its current commune), then, when the name is empty,
on a postal code that belongs to a single commune. Rows still unmatched are
reported. Every kept site is cross-checked against its commune's centroid.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from services.site_registry.adapters.geo import distance_km, lambert2e_to_wgs84
from services.site_registry.adapters.reference_data import (
    DEPT62_COMMUNES_FILE,
    CommuneRecord,
    load_communes,
    load_naf,
    load_territory_communes,
    open_data,
)
from services.site_registry.domain.nomenclature import NafCode, UnknownNafCode
from services.site_registry.domain.siret import InvalidIdentifier, make_siret, validate_siret

TERRITORY = "ti-3205"
TARGET_SITES = 165  # sites visited door to door in 2020 (domain brief)
IREP_FILE = "irep_etablissements_industriels_dept62.csv"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "demo/ti-3205_sites.csv"
COLUMNS = (
    "siret",
    "siren",
    "name",
    "naf_code",
    "headcount_band",
    "commune_insee",
    "lon",
    "lat",
    "status",
    "source",
    "provenance",
)

# The one headcount known for a real site: the domain brief (from the
# October 2025 La Fabrique de la Cité note) says the Bridgestone closure cost
# 900 industrial jobs, i.e. INSEE band 41 (500 to 999 employees).
KNOWN_BANDS = {"36120038900019": "41"}

# Divisions of section C weighted toward the fabric of the Béthune-Bruay
# basin (metalworking, agri-food, plastics/rubber, machinery, automotive
# suppliers, wood, printing...). A judgement call, not a statistic.
DIVISION_WEIGHTS = {
    "25": 20,
    "10": 14,
    "22": 10,
    "28": 9,
    "33": 8,
    "16": 6,
    "18": 5,
    "23": 5,
    "29": 5,
    "20": 4,
    "24": 3,
    "27": 3,
    "31": 3,
    "17": 3,
    "32": 3,
    "13": 2,
    "26": 2,
    "11": 1,
    "14": 1,
    "30": 1,
}
# SMEs of about 30 employees dominate (domain brief): bands 11 (10-19) and
# 12 (20-49) first, then 21 (50-99), a few micro and larger sites.
BAND_WEIGHTS = {"03": 10, "11": 30, "12": 35, "21": 15, "22": 7, "31": 3}
# SIRENs 98xxxxxxx for demo sites; tests/bench/generate_sirene.py uses 99xxxxxxx.
GENERATED_SIREN_BASE = 98_000_000
MAX_CENTROID_DISTANCE_KM = 10.0


@dataclass(frozen=True)
class Site:
    siret: str
    name: str
    naf_code: str
    headcount_band: str
    commune_insee: str
    lon: float
    lat: float
    source: str
    provenance: str


def normalize_name(name: str) -> str:
    """Upper-case ASCII, words separated by single spaces, ST/STE spelled out."""
    # NFKD does not split the Œ ligature (Œuf-en-Ternois, Nœux-les-Mines).
    name = name.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.sub(r"[^A-Z0-9]+", " ", ascii_name.upper()).split()
    return " ".join({"ST": "SAINT", "STE": "SAINTE"}.get(w, w) for w in words)


class CommuneMatcher:
    def __init__(self) -> None:
        self.by_postal_and_name: dict[tuple[str, str], str] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_postal: dict[str, list[str]] = {}
        self.delegated: dict[str, str] = {}
        with open_data(DEPT62_COMMUNES_FILE) as fh:
            for row in csv.DictReader(fh):
                key = normalize_name(row["nom"])
                if row["type"] != "commune-actuelle":
                    self.delegated.setdefault(key, row["chef_lieu"])
                    continue
                code = row["code_insee"]
                self.by_name.setdefault(key, []).append(code)
                for postal in row["codes_postaux"].split("|"):
                    self.by_postal_and_name[(postal, key)] = code
                    self.by_postal.setdefault(postal, []).append(code)

    def match(self, postal_code: str, name: str) -> tuple[str, str] | None:
        """(INSEE code, method) or None."""
        key = normalize_name(name)
        code = self.by_postal_and_name.get((postal_code, key))
        if code:
            return code, "postal code + name"
        candidates = self.by_name.get(key, [])
        if len(candidates) == 1:
            return candidates[0], f"name only (postal code {postal_code} is a CEDEX or old code)"
        if key in self.delegated:
            return self.delegated[key], f"commune déléguée {name} → current commune"
        if not key:
            by_postal = self.by_postal.get(postal_code, [])
            if len(by_postal) == 1:
                return by_postal[0], f"empty commune name, postal code {postal_code} is unique"
        return None


def real_sites(
    communes: dict[str, CommuneRecord], territory: set[str], report: list[str]
) -> list[Site]:
    naf = load_naf()
    matcher = CommuneMatcher()
    sites: dict[str, Site] = {}
    unmatched: list[str] = []
    all_rows: list[tuple[str, str, str]] = []
    in_territory = 0
    with open_data(IREP_FILE) as fh:
        for row in csv.DictReader(fh):
            ident = row["Identifiant"]
            all_rows.append((ident, row["Numero_SIRET"], row["Commune"]))
            label = f"IREP {ident} {row['Nom_Etablissement']!r}"
            found = matcher.match(row["Code_Postal"], row["Commune"])
            if found is None:
                unmatched.append(f"{label}: {row['Code_Postal']} {row['Commune'] or '(empty)'}")
                continue
            code, method = found
            if code not in territory:
                continue
            in_territory += 1
            try:
                naf_code: NafCode = naf.require(row["Code_APE"])
            except UnknownNafCode as exc:
                report.append(f"skipped {label}: {exc}")
                continue
            if naf_code.section != "C":
                continue
            try:
                siret = validate_siret(row["Numero_SIRET"])
            except InvalidIdentifier as exc:
                report.append(f"skipped {label}: {exc}")
                continue
            lon, lat = lambert2e_to_wgs84(float(row["Coordonnees_X"]), float(row["Coordonnees_Y"]))
            commune = communes[code]
            assert commune.lon is not None and commune.lat is not None  # dept 62: all known
            gap = distance_km(lon, lat, commune.lon, commune.lat)
            if gap > MAX_CENTROID_DISTANCE_KM:
                report.append(f"check {label}: {gap:.1f} km from the centroid of {commune.name}")
            if not method.startswith("postal code + name"):
                report.append(f"matched {label} to {code} {commune.name} by {method}")
            if siret in sites:
                report.append(
                    f"skipped {label}: SIRET {siret} already taken by {sites[siret].provenance}"
                )
                continue
            sites[siret] = Site(
                siret=siret,
                name=row["Nom_Etablissement"].strip(),
                naf_code=naf_code.code,
                headcount_band=KNOWN_BANDS.get(siret, ""),
                commune_insee=code,
                lon=lon,
                lat=lat,
                source="irep",
                provenance=f"IREP {ident}",
            )
    # IREP sometimes lists one SIRET under two sites (two inspection
    # services, or a head-office SIRET reused): keep the row in the territory
    # and say where else the SIRET appears.
    for ident, other_siret, commune_name in all_rows:
        if other_siret in sites and sites[other_siret].provenance != f"IREP {ident}":
            report.append(
                f"note: SIRET {other_siret} ({sites[other_siret].provenance}) is also "
                f"IREP {ident} in {commune_name}, outside the demo"
            )
    report.insert(0, f"IREP rows in {TERRITORY} communes (any sector): {in_territory}")
    report.extend(f"unmatched {u}" for u in unmatched)
    return sorted(sites.values(), key=lambda s: (s.commune_insee, s.siret))


def irep_sirens() -> set[str]:
    with open_data(IREP_FILE) as fh:
        return {row["Numero_SIRET"][:9] for row in csv.DictReader(fh)}


def generated_sites(
    count: int,
    seed: int,
    communes: dict[str, CommuneRecord],
    territory: list[str],
    taken_sirens: set[str],
) -> list[Site]:
    rng = random.Random(seed)
    naf = load_naf()
    by_division: dict[str, list[NafCode]] = {}
    for code in naf.codes_in_section("C"):
        by_division.setdefault(code.division, []).append(code)
    divisions = list(DIVISION_WEIGHTS)
    division_weights = [DIVISION_WEIGHTS[d] for d in divisions]
    bands = list(BAND_WEIGHTS)
    band_weights = [BAND_WEIGHTS[b] for b in bands]
    commune_weights = [communes[c].population or 1 for c in territory]
    provenance = f"generated by services/site_registry/data/build_bethune_demo.py seed {seed}"

    sites: list[Site] = []
    siren8 = GENERATED_SIREN_BASE
    while len(sites) < count:
        siren8 += 1
        siret = make_siret(str(siren8), "0001")
        if siret[:9] in taken_sirens:
            continue
        division = rng.choices(divisions, division_weights)[0]
        naf_code = rng.choice(by_division[division])
        commune = communes[rng.choices(territory, commune_weights)[0]]
        assert commune.lon is not None and commune.lat is not None  # dept 62: all known
        # ~500 m of jitter so generated sites of one commune do not stack up
        # on the centroid; 1° of longitude is ~71 km at 50.5°N.
        lon = commune.lon + rng.gauss(0.0, 0.007)
        lat = commune.lat + rng.gauss(0.0, 0.0045)
        number = len(sites) + 1
        sites.append(
            Site(
                siret=siret,
                name=f"GENERATED site {number:03d} ({naf_code.label})",
                naf_code=naf_code.code,
                headcount_band=rng.choices(bands, band_weights)[0],
                commune_insee=commune.insee_code,
                lon=lon,
                lat=lat,
                source="generated",
                provenance=provenance,
            )
        )
    return sites


def write_sites(path: Path, sites: list[Site]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for s in sites:
            writer.writerow(
                (
                    s.siret,
                    s.siret[:9],
                    s.name,
                    s.naf_code,
                    s.headcount_band,
                    s.commune_insee,
                    f"{s.lon:.6f}",
                    f"{s.lat:.6f}",
                    "active",
                    s.source,
                    s.provenance,
                )
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the ti-3205 demo site list.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args(argv)

    communes = {c.insee_code: c for c in load_communes()}
    territory = sorted(load_territory_communes()[TERRITORY])
    report: list[str] = []
    real = real_sites(communes, set(territory), report)
    if len(real) > TARGET_SITES:
        raise SystemExit(f"{len(real)} real sites, more than the {TARGET_SITES} target")
    # Generated SIRENs must not collide with any real SIREN of the IREP file,
    # not only with the ones kept in the demo.
    generated = generated_sites(
        TARGET_SITES - len(real), args.seed, communes, territory, irep_sirens()
    )
    sites = real + generated
    assert len({s.siret for s in sites}) == len(sites), "duplicate SIRET in demo list"
    write_sites(args.output, sites)

    print(f"wrote {len(sites)} sites to {args.output}")
    print(f"  real (IREP, section C): {len(real)}")
    print(f"  generated:              {len(generated)}")
    for line in report:
        print(f"  {line}")
    print("per commune (real + generated = total):")
    real_by = Counter(s.commune_insee for s in real)
    gen_by = Counter(s.commune_insee for s in generated)
    for code in sorted(set(real_by) | set(gen_by), key=lambda c: -(real_by[c] + gen_by[c])):
        print(
            f"  {code} {communes[code].name:<28} {real_by[code]:>3} + {gen_by[code]:>3}"
            f" = {real_by[code] + gen_by[code]:>3}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
