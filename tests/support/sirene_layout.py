"""Sirene StockEtablissement files in the real INSEE layout, built from the real IREP
industrial sites of a territory.

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
in the order, that INSEE publishes.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pyproj import Transformer

from services.site_registry.adapters.reference_data import load_communes, open_data
from services.site_registry.data.build_bethune_demo import IREP_FILE, real_sites

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
