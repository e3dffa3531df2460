"""Streaming reader for the INSEE Sirene ``StockEtablissement`` file (format v3).

The national file has tens of millions of rows (several GB), so the reader is
a generator over ``csv.reader``: one row in memory at a time, header names
mapped to indexes once, no per-row dict. A bad row never aborts the stream; it
comes out as a ``SireneRowError`` carrying the physical line number where the
row starts (line 1 is the header), so an import can report it and go on.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

from services.site_registry.domain.nomenclature import NafNomenclature
from services.site_registry.domain.siret import InvalidIdentifier, validate_siret

# The 53 columns of StockEtablissement as published by INSEE (format of 2024,
# with identifiantAdresse and the Lambert coordinates), in file order.
STOCK_ETABLISSEMENT_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

# Columns the reader needs. The Lambert columns are not listed: files from
# before 2023 lack them, and an establishment without coordinates is still an
# establishment.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "etablissementSiege",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "codeCommuneEtablissement",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
)
LAMBERT_X = "coordonneeLambertAbscisseEtablissement"
LAMBERT_Y = "coordonneeLambertOrdonneeEtablissement"

# Partially diffusible establishments (statutDiffusion "P") have protected
# fields replaced by this marker; it means "not published", not "malformed".
NOT_DIFFUSED = "[ND]"

NAF_REV2 = "NAFRev2"


class SireneFormatError(ValueError):
    """The file is not a StockEtablissement CSV (missing or unreadable header)."""


@dataclass(frozen=True, slots=True)
class SireneEstablishment:
    line: int
    siret: str
    siren: str
    nic: str
    name: str | None
    naf_code: str | None
    naf_nomenclature: str | None
    headcount_band: str | None
    headcount_year: int | None
    commune_insee: str | None
    postal_code: str | None
    address: str | None
    is_active: bool
    is_head_office: bool
    created_on: date | None
    lambert_x: float | None
    lambert_y: float | None


@dataclass(frozen=True, slots=True)
class SireneRowError:
    line: int
    reason: str
    siret: str | None


def _opt(value: str) -> str | None:
    if not value or value == NOT_DIFFUSED:
        return None
    return value


def read_stock_etablissement(
    source: TextIO,
) -> Iterator[SireneEstablishment | SireneRowError]:
    """Yield one establishment or one row error per data row of ``source``.

    ``source`` should be opened with ``newline=""`` (``open_sirene`` does) so
    that quoted fields containing line breaks survive. Raises
    ``SireneFormatError`` before yielding anything if the header lacks a
    required column. Blank lines carry no record and are skipped.
    """
    reader = csv.reader(source)
    try:
        header = next(reader)
    except StopIteration:
        raise SireneFormatError("empty file: no StockEtablissement header") from None
    except csv.Error as exc:
        raise SireneFormatError(f"unreadable header: {exc}") from None
    header = [name.strip() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise SireneFormatError(
            "not a StockEtablissement header: missing column(s) " + ", ".join(missing)
        )
    width = len(header)
    pos = {name: i for i, name in enumerate(header)}
    i_siren = pos["siren"]
    i_nic = pos["nic"]
    i_siret = pos["siret"]
    i_created = pos["dateCreationEtablissement"]
    i_band = pos["trancheEffectifsEtablissement"]
    i_year = pos["anneeEffectifsEtablissement"]
    i_head = pos["etablissementSiege"]
    i_num = pos["numeroVoieEtablissement"]
    i_type = pos["typeVoieEtablissement"]
    i_street = pos["libelleVoieEtablissement"]
    i_postal = pos["codePostalEtablissement"]
    i_commune = pos["codeCommuneEtablissement"]
    i_state = pos["etatAdministratifEtablissement"]
    i_sign = pos["enseigne1Etablissement"]
    i_denom = pos["denominationUsuelleEtablissement"]
    i_naf = pos["activitePrincipaleEtablissement"]
    i_nomen = pos["nomenclatureActivitePrincipaleEtablissement"]
    i_x = pos.get(LAMBERT_X)
    i_y = pos.get(LAMBERT_Y)

    last_line = reader.line_num
    while True:
        # csv.Error (e.g. a runaway quote hitting the field size limit) ends a
        # for loop, so the loop is re-entered after reporting it: the reader
        # itself resumes on the next line.
        try:
            for row in reader:
                start = last_line + 1
                last_line = reader.line_num
                if len(row) != width:
                    if not row:
                        continue
                    siret_guess = row[i_siret] if len(row) > i_siret else None
                    yield SireneRowError(
                        start, f"expected {width} fields, got {len(row)}", siret_guess
                    )
                    continue
                raw_siret = row[i_siret]
                try:
                    siret = validate_siret(raw_siret)
                except InvalidIdentifier as exc:
                    yield SireneRowError(start, str(exc), raw_siret or None)
                    continue
                siren = row[i_siren]
                nic = row[i_nic]
                if siren + nic != siret:
                    yield SireneRowError(
                        start, f"siren {siren!r} + nic {nic!r} does not make siret {siret}", siret
                    )
                    continue
                # `column` tracks the field being parsed so the error can name it.
                try:
                    column = i_created
                    value = row[i_created]
                    created_on = date.fromisoformat(value) if value else None
                    column = i_year
                    value = row[i_year]
                    year = int(value) if value else None
                    if i_x is not None and i_y is not None:
                        column = i_x
                        value = row[i_x]
                        x = None if not value or value == NOT_DIFFUSED else float(value)
                        column = i_y
                        value = row[i_y]
                        y = None if not value or value == NOT_DIFFUSED else float(value)
                    else:
                        x = y = None
                except ValueError:
                    yield SireneRowError(
                        start, f"{header[column]}: unparsable value {value!r}", siret
                    )
                    continue
                number = _opt(row[i_num])
                street_type = _opt(row[i_type])
                street = _opt(row[i_street])
                address = (
                    " ".join(p for p in (number, street_type, street) if p)
                    if number or street
                    else None
                )
                yield SireneEstablishment(
                    line=start,
                    siret=siret,
                    siren=siren,
                    nic=nic,
                    name=_opt(row[i_denom]) or _opt(row[i_sign]),
                    naf_code=row[i_naf] or None,
                    naf_nomenclature=row[i_nomen] or None,
                    headcount_band=row[i_band] or None,
                    headcount_year=year,
                    commune_insee=_opt(row[i_commune]),
                    postal_code=_opt(row[i_postal]),
                    address=address,
                    is_active=row[i_state] == "A",
                    is_head_office=row[i_head] == "true",
                    created_on=created_on,
                    lambert_x=x,
                    lambert_y=y,
                )
            return
        except csv.Error as exc:
            start = last_line + 1
            last_line = reader.line_num
            yield SireneRowError(start, f"unreadable CSV row: {exc}", None)


def open_sirene(path: Path) -> TextIO:
    """Open a Sirene stock file (StockEtablissement, StockUniteLegale) as UTF-8 text,
    whether ``.csv``, ``.gz`` or ``.zip``.

    INSEE distributes ``StockEtablissement_utf8.zip`` (``StockUniteLegale_utf8.zip``)
    holding one CSV; it is
    read straight from the archive (no extraction to disk). ``utf-8-sig``
    accepts plain UTF-8 and drops a byte-order mark if a tool added one, which
    would otherwise hide the first column name.
    """
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        try:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".csv")
            ]
            if len(members) != 1:
                names = ", ".join(m.filename for m in members) or "none"
                raise SireneFormatError(f"{path}: expected one CSV in the zip, found {names}")
            binary = archive.open(members[0])
        finally:
            # The open member keeps the underlying file alive (ZipFile counts
            # references), so closing the archive here leaves a single object
            # for the caller to close.
            archive.close()
        return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    return path.open("r", encoding="utf-8-sig", newline="")


def build_filter(
    communes: set[str], naf: NafNomenclature, section: str = "C"
) -> Callable[[SireneEstablishment], bool]:
    """Predicate: active, located in ``communes``, NAF rév. 2 code in ``section``.

    Only rows whose nomenclature is ``NAFRev2`` count: legacy codes (NAP,
    NAF1993, NAFRev1) can look like rév. 2 codes ("22.1A") without meaning the
    same activity.
    """
    codes: set[str] = set()
    for naf_code in naf.codes_in_section(section):
        codes.add(naf_code.code)
        codes.add(naf_code.code.replace(".", ""))
    if not codes:
        raise ValueError(f"NAF section {section!r} has no sub-class")
    wanted_communes = frozenset(communes)
    wanted_codes = frozenset(codes)

    def keep(e: SireneEstablishment) -> bool:
        return (
            e.is_active
            and e.commune_insee in wanted_communes
            and e.naf_nomenclature == NAF_REV2
            and e.naf_code in wanted_codes
        )

    return keep
