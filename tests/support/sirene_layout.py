"""Sirene StockEtablissement files in the real INSEE layout, built from the real IREP
industrial sites of a territory — or, where there is no such list (outside
Pas-de-Calais), from GENERATED establishments marked as such (at the end of the module).

No Sirene extract of a Pas-de-Calais territory is available offline, so a test that
imports one builds it: one row per real IREP establishment of the territory in NAF
section C (the selection and commune matching of the Béthune demo,
`services/site_registry/data/build_bethune_demo.py`), with its real SIRET, NAF code
and commune, its Lambert II étendu position converted to Lambert-93 as Sirene gives
it, and `etatAdministratifEtablissement` = `A`. What the IREP list does not say
(creation date, headcount band, head office, employer) is left empty, as Sirene leaves
unknown values; nothing is invented.

The header is read from the real INSEE sample of the registry's data
(`sirene_stock_etablissement_sample_299.csv`), not restated: the file has the columns,
in the order, that INSEE publishes. The generated files write the reader's
`STOCK_ETABLISSEMENT_COLUMNS`, the same 53 names (the scenarios check both agree).
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyproj import Transformer

from services.site_registry.adapters.geo import wgs84_to_lambert93
from services.site_registry.adapters.reference_data import (
    CommuneRecord,
    load_communes,
    open_data,
)
from services.site_registry.adapters.sirene import NOT_DIFFUSED, STOCK_ETABLISSEMENT_COLUMNS
from services.site_registry.data.build_bethune_demo import IREP_FILE, real_sites
from services.site_registry.domain.siret import make_siret, validate_siret

REAL_SAMPLE = "sirene_stock_etablissement_sample_299.csv"

#: the mark the project's rule asks for: real rows keep their provenance in the name
PROVENANCE_MARK = "built_from_real_IREP_list"


@dataclass(frozen=True)
class IrepEstablishment:
    """A real IREP industrial site, as it goes into the Sirene-layout file."""

    irep_id: str
    siret: str
    name: str
    naf_code: str  # NAF rév. 2 with the dot, as Sirene writes it (20.14Z)
    commune_insee: str
    commune_name: str
    postal_code: str
    cedex: str | None
    address: str
    lambert93_x: float
    lambert93_y: float
    irep_lambert2e: tuple[float, float]  # IREP's original coordinates (EPSG:27572)


def real_header() -> list[str]:
    """The header row of the real INSEE StockEtablissement sample."""
    with open_data(REAL_SAMPLE) as fh:
        return next(csv.reader(fh))


def _sirene_text(value: str) -> str:
    """Upper-case ASCII, as Sirene writes street and commune names."""
    value = value.replace("œ", "oe").replace("Œ", "OE")
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return " ".join(ascii_value.upper().replace("'", " ").split())


def irep_establishments(communes: set[str]) -> list[IrepEstablishment]:
    """The real IREP section-C establishments located in `communes`, by SIRET."""
    records = {c.insee_code: c for c in load_communes()}
    selected = real_sites(records, communes, [])
    with open_data(IREP_FILE) as fh:
        irep = {f"IREP {row['Identifiant']}": row for row in csv.DictReader(fh)}
    to_l93 = Transformer.from_crs("EPSG:27572", "EPSG:2154", always_xy=True)
    out: list[IrepEstablishment] = []
    for site in selected:
        row = irep[site.provenance]
        commune = records[site.commune_insee]
        x2, y2 = float(row["Coordonnees_X"]), float(row["Coordonnees_Y"])
        x93, y93 = to_l93.transform(x2, y2)
        postal = row["Code_Postal"]
        # IREP often gives a CEDEX code: Sirene keeps it apart from the postal code.
        cedex = None if postal in commune.postal_codes else postal
        out.append(
            IrepEstablishment(
                irep_id=row["Identifiant"],
                siret=site.siret,
                name=site.name,
                naf_code=site.naf_code,
                commune_insee=site.commune_insee,
                commune_name=commune.name,
                postal_code=postal if cedex is None else commune.postal_codes[0],
                cedex=cedex,
                address=row["Adresse"],
                lambert93_x=round(float(x93), 1),
                lambert93_y=round(float(y93), 1),
                irep_lambert2e=(x2, y2),
            )
        )
    return sorted(out, key=lambda e: e.siret)


def stock_etablissement_rows(establishments: list[IrepEstablishment]) -> str:
    """A UTF-8 StockEtablissement CSV (header + one row per establishment)."""
    header = real_header()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for e in establishments:
        values = dict.fromkeys(header, "")
        values.update(
            {
                "siren": e.siret[:9],
                "nic": e.siret[9:],
                "siret": e.siret,
                "statutDiffusionEtablissement": "O",
                "libelleVoieEtablissement": _sirene_text(e.address),
                "codePostalEtablissement": e.postal_code,
                "libelleCommuneEtablissement": _sirene_text(e.commune_name),
                "codeCommuneEtablissement": e.commune_insee,
                "codeCedexEtablissement": e.cedex or "",
                "libelleCedexEtablissement": (
                    f"{_sirene_text(e.commune_name)} CEDEX" if e.cedex else ""
                ),
                "coordonneeLambertAbscisseEtablissement": f"{e.lambert93_x:.1f}",
                "coordonneeLambertOrdonneeEtablissement": f"{e.lambert93_y:.1f}",
                "etatAdministratifEtablissement": "A",
                "denominationUsuelleEtablissement": e.name,
                "activitePrincipaleEtablissement": e.naf_code,
                "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
            }
        )
        writer.writerow([values[c] for c in header])
    return out.getvalue()


def write_stock_etablissement(
    folder: Path, territory_id: str, establishments: list[IrepEstablishment]
) -> Path:
    """Write the file; its name says what it is built from."""
    path = folder / f"StockEtablissement_utf8_{territory_id}_{PROVENANCE_MARK}.csv"
    path.write_text(stock_etablissement_rows(establishments), encoding="utf-8", newline="")
    return path


# --- GENERATED establishments -----------------------------------------------------------
#
# Where no real list of a territory's establishments is at hand (outside Pas-de-Calais,
# the registry's data has no IREP list), a test builds GENERATED rows, marked as the
# benchmark file (`tests/bench/generate_sirene.py`) and the demo
# (`services/site_registry/data/build_bethune_demo.py`) mark theirs: every name starts with
# "GENERATED" and the file's name says so. Only the identity is synthetic (SIRET, name,
# street, dates, headcount band, a jitter around the commune's centroid); the layout,
# the commune codes, names and postal codes and the NAF codes are the real ones.

#: the mark every generated row carries at the start of its name, and in the file's name
GENERATED_MARK = "GENERATED"
#: SIRENs of generated rows are drawn from 97000000x up (the bench file uses 99…, the demo
#: 98…); the range may hold real SIRENs too, so never join such a file with real data
GENERATED_SIREN_BASE = 97_000_000


@dataclass(frozen=True)
class GeneratedEstablishment:
    """A GENERATED establishment, as it goes into a Sirene-layout file."""

    siret: str
    name: str  # starts with GENERATED_MARK
    naf_code: str
    commune_insee: str
    commune_name: str
    postal_code: str
    headcount_band: str = ""
    active: bool = True
    nomenclature: str = "NAFRev2"
    lambert93: tuple[float, float] | None = None
    diffused: bool = True  # statutDiffusion "O"; "P" hides the address and position
    head_office: bool = True
    street: str = ""
    created_on: str = "2001-01-01"


def generated_siret(firm: int, establishment: int = 1) -> str:
    """A valid SIRET (both Luhn keys) of generated firm `firm`, its `establishment`-th NIC."""
    return make_siret(f"{GENERATED_SIREN_BASE + firm:08d}", f"{establishment:04d}")


def generated_establishment(
    siret: str,
    commune: CommuneRecord,
    naf_code: str,
    label: str,
    *,
    rng: random.Random,
    jitter_m: float = 400.0,
    **fields: Any,
) -> GeneratedEstablishment:
    """A generated establishment of `commune`, named "GENERATED — <label>", placed within
    `jitter_m` metres (on each axis) of the commune's centroid, in Lambert-93 (none for a
    partially diffusible row: Sirene does not publish its position)."""
    position = None
    if fields.get("diffused", True) and commune.lon is not None and commune.lat is not None:
        x, y = wgs84_to_lambert93(commune.lon, commune.lat)
        position = (
            round(x + rng.uniform(-jitter_m, jitter_m), 1),
            round(y + rng.uniform(-jitter_m, jitter_m), 1),
        )
    return GeneratedEstablishment(
        siret=validate_siret(siret),
        name=f"{GENERATED_MARK} — {label}",
        naf_code=naf_code,
        commune_insee=commune.insee_code,
        commune_name=commune.name,
        postal_code=commune.postal_codes[0] if commune.postal_codes else "",
        lambert93=position,
        **fields,
    )


def generated_stock_etablissement_rows(establishments: list[GeneratedEstablishment]) -> str:
    """A UTF-8 StockEtablissement CSV (the 53 columns INSEE publishes, in their order) of
    generated rows, with the values Sirene writes (upper-case ASCII names, ISO dates,
    "true"/"false", "[ND]" for what a partially diffusible row hides)."""
    header = list(STOCK_ETABLISSEMENT_COLUMNS)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for e in establishments:
        values = dict.fromkeys(header, "")
        band = e.headcount_band if e.active else ""  # closed rows carry no current band
        values.update(
            {
                "siren": e.siret[:9],
                "nic": e.siret[9:],
                "siret": e.siret,
                "statutDiffusionEtablissement": "O" if e.diffused else "P",
                "dateCreationEtablissement": e.created_on,
                "trancheEffectifsEtablissement": band,
                "anneeEffectifsEtablissement": "2022" if band and band != "NN" else "",
                "dateDernierTraitementEtablissement": "2024-03-22T15:40:57",
                "etablissementSiege": "true" if e.head_office else "false",
                "nombrePeriodesEtablissement": "1" if e.active else "2",
                "libelleVoieEtablissement": _sirene_text(e.street) if e.street else "",
                "codePostalEtablissement": e.postal_code,
                "libelleCommuneEtablissement": _sirene_text(e.commune_name),
                "codeCommuneEtablissement": e.commune_insee,
                "dateDebut": e.created_on if e.active else "2023-06-30",
                "etatAdministratifEtablissement": "A" if e.active else "F",
                "denominationUsuelleEtablissement": e.name,
                "activitePrincipaleEtablissement": e.naf_code,
                "nomenclatureActivitePrincipaleEtablissement": e.nomenclature,
                "caractereEmployeurEtablissement": (
                    "O" if band and band not in ("NN", "00") else "N"
                ),
            }
        )
        if e.street:
            values["typeVoieEtablissement"] = "RUE"
            values["numeroVoieEtablissement"] = "1"
        if e.lambert93 is not None:
            values["coordonneeLambertAbscisseEtablissement"] = f"{e.lambert93[0]:.1f}"
            values["coordonneeLambertOrdonneeEtablissement"] = f"{e.lambert93[1]:.1f}"
        if not e.diffused:
            for name in (
                "numeroVoieEtablissement",
                "typeVoieEtablissement",
                "libelleVoieEtablissement",
                "identifiantAdresseEtablissement",
                "coordonneeLambertAbscisseEtablissement",
                "coordonneeLambertOrdonneeEtablissement",
            ):
                values[name] = NOT_DIFFUSED
        writer.writerow([values[c] for c in header])
    return out.getvalue()


def write_generated_stock_etablissement(
    folder: Path, territory_id: str, establishments: list[GeneratedEstablishment]
) -> Path:
    """Write the file as INSEE distributes it (one CSV in a zip); both names say GENERATED."""
    stem = f"StockEtablissement_utf8_{territory_id}_{GENERATED_MARK}"
    path = folder / f"{stem}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}.csv", generated_stock_etablissement_rows(establishments))
    return path
