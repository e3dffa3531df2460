"""Streaming reader for the INSEE Sirene ``StockUniteLegale`` file (format v3).

The establishment file names few sites (its ``enseigne`` and
``denominationUsuelleEtablissement`` are mostly empty); the firm's name, its legal
category and its company category (PME, ETI, GE) are the legal unit's. The national file
has about 29 million rows and the registry wants a few thousand of them, so the reader
drops a row on its SIREN before parsing anything else: a set lookup on one field per row
is what the whole file costs. Same shape as ``sirene.read_stock_etablissement``: one
``csv.reader``, the header mapped to indexes once, a bad row yielded as a
``SireneRowError`` with its line number, never an abort.

Who may be named (``statutDiffusionUniteLegale``):

* ``O`` (diffusible): the firm's ``denominationUniteLegale``, else its first
  ``denominationUsuelle1UniteLegale``, else its ``sigleUniteLegale``; a natural person
  (legal category ``1xxx``, *entrepreneur individuel*) without any of those is named by
  their usual first name and name (``prenomUsuelUniteLegale``,
  ``nomUsageUniteLegale`` or else ``nomUniteLegale``) — public INSEE data, flagged
  ``name_is_person`` so that it never leaves the registry in an event;
* ``P`` (partially diffusible: a natural person who objected): no person's name, ever;
  a business name is kept only if INSEE published it (not ``[ND]``);
* anything else (``N``, or a value INSEE may add): no name at all.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from typing import Final, Literal, TextIO, cast

from services.site_registry.adapters.sirene import (
    NOT_DIFFUSED,
    SireneRowError,
    open_sirene,
    read_header,
)

__all__ = [
    "COMPANY_CATEGORIES",
    "REQUIRED_COLUMNS",
    "STOCK_UNITE_LEGALE_COLUMNS",
    "CompanyCategory",
    "SireneLegalUnit",
    "open_sirene",
    "read_stock_unite_legale",
]

# The 33 columns of StockUniteLegale as published by INSEE (format of 2024), in order.
STOCK_UNITE_LEGALE_COLUMNS: Final[tuple[str, ...]] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "caractereEmployeurUniteLegale",
)

REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "siren",
    "statutDiffusionUniteLegale",
    "sigleUniteLegale",
    "prenomUsuelUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "categorieJuridiqueUniteLegale",
)

CompanyCategory = Literal["PME", "ETI", "GE"]
COMPANY_CATEGORIES: Final[frozenset[str]] = frozenset({"PME", "ETI", "GE"})

#: statutDiffusionUniteLegale: wholly diffusible, partially diffusible.
DIFFUSIBLE: Final = "O"
PARTIALLY_DIFFUSIBLE: Final = "P"


@dataclass(frozen=True, slots=True)
class SireneLegalUnit:
    line: int
    siren: str
    #: the firm's name as INSEE publishes it; None when it publishes none (or may not)
    name: str | None
    #: `name` is a natural person's name: public in Sirene, kept out of every event
    name_is_person: bool
    #: categorieJuridiqueUniteLegale, 4 digits; 1000 = entrepreneur individuel
    legal_category: str | None
    company_category: CompanyCategory | None
    company_category_year: int | None
    is_active: bool


def _opt(value: str) -> str | None:
    value = value.strip()
    if not value or value == NOT_DIFFUSED:
        return None
    return value


def is_natural_person(legal_category: str | None) -> bool:
    """Level I of INSEE's legal categories: ``1`` is the *entrepreneur individuel*."""
    return legal_category is not None and legal_category.startswith("1")


#: rows between two calls of `on_rows`: often enough for a progress bar, rarely enough
#: to cost nothing beside the parsing
ROWS_STEP: Final = 10_000


def read_stock_unite_legale(
    source: TextIO,
    wanted_sirens: Container[str],
    on_rows: Callable[[int], None] | None = None,
) -> Iterator[SireneLegalUnit | SireneRowError]:
    """Yield the legal unit of each row whose SIREN is in ``wanted_sirens``, and one
    error per unreadable row (whatever its SIREN: a row of the wrong width cannot be
    trusted to hold its SIREN where the header says).

    Most rows yield nothing, so the rows read are told to ``on_rows`` instead (a count
    every `ROWS_STEP` rows, the rest at the end of the file): the import's report and
    its progress bar. ``source`` should be opened with ``newline=""`` (``open_sirene``
    does). Raises ``SireneFormatError`` before yielding anything if the header lacks a
    required column. Blank lines carry no record and are skipped.
    """
    reader = csv.reader(source)
    header = read_header(reader, REQUIRED_COLUMNS, "StockUniteLegale")
    width = len(header)
    pos = {name: i for i, name in enumerate(header)}
    i_siren = pos["siren"]
    i_diffusion = pos["statutDiffusionUniteLegale"]
    i_sigle = pos["sigleUniteLegale"]
    i_first_name = pos["prenomUsuelUniteLegale"]
    i_category = pos["categorieEntreprise"]
    i_category_year = pos["anneeCategorieEntreprise"]
    i_state = pos["etatAdministratifUniteLegale"]
    i_last_name = pos["nomUniteLegale"]
    i_used_name = pos["nomUsageUniteLegale"]
    i_denom = pos["denominationUniteLegale"]
    i_usual_denom = pos["denominationUsuelle1UniteLegale"]
    i_legal = pos["categorieJuridiqueUniteLegale"]

    last_line = reader.line_num
    counted = 0
    while True:
        # As in the establishment reader: csv.Error ends a for loop, so the loop is
        # re-entered after reporting it and the reader resumes on the next line.
        try:
            for row in reader:
                start = last_line + 1
                last_line = reader.line_num
                if len(row) != width:
                    if not row:
                        continue
                    counted += 1
                    siren_guess = row[i_siren] if len(row) > i_siren else None
                    yield SireneRowError(
                        start, f"expected {width} fields, got {len(row)}", siren_guess
                    )
                    continue
                counted += 1
                if counted >= ROWS_STEP and on_rows is not None:
                    on_rows(counted)
                    counted = 0
                siren = row[i_siren]
                if siren not in wanted_sirens:
                    continue
                if len(siren) != 9 or not siren.isdigit():
                    yield SireneRowError(start, f"siren {siren!r} is not 9 digits", siren)
                    continue
                legal = _opt(row[i_legal])
                if legal is not None and (len(legal) != 4 or not legal.isdigit()):
                    yield SireneRowError(
                        start, f"categorieJuridiqueUniteLegale: unparsable value {legal!r}", siren
                    )
                    continue
                raw_year = _opt(row[i_category_year])
                try:
                    year = int(raw_year) if raw_year else None
                except ValueError:
                    yield SireneRowError(
                        start, f"anneeCategorieEntreprise: unparsable value {raw_year!r}", siren
                    )
                    continue
                category = _opt(row[i_category])
                if category is not None and category not in COMPANY_CATEGORIES:
                    yield SireneRowError(
                        start, f"categorieEntreprise: unknown value {category!r}", siren
                    )
                    continue
                status = row[i_diffusion]
                name: str | None = None
                is_person = False
                if status in (DIFFUSIBLE, PARTIALLY_DIFFUSIBLE):
                    name = _opt(row[i_denom]) or _opt(row[i_usual_denom]) or _opt(row[i_sigle])
                    # Only a wholly diffusible record may name the person behind a sole
                    # trader; "P" is precisely a person who objected.
                    if (
                        name is None
                        and status == DIFFUSIBLE
                        and (legal is None or is_natural_person(legal))
                    ):
                        name = _person_name(row[i_first_name], row[i_used_name], row[i_last_name])
                        is_person = name is not None
                yield SireneLegalUnit(
                    line=start,
                    siren=siren,
                    name=name,
                    name_is_person=is_person,
                    legal_category=legal,
                    company_category=cast(CompanyCategory | None, category),
                    company_category_year=year if category is not None else None,
                    is_active=row[i_state] == "A",
                )
            if on_rows is not None and counted:
                on_rows(counted)
            return
        except csv.Error as exc:
            start = last_line + 1
            last_line = reader.line_num
            counted += 1
            yield SireneRowError(start, f"unreadable CSV row: {exc}", None)


def _person_name(first_name: str, used_name: str, last_name: str) -> str | None:
    last = _opt(used_name) or _opt(last_name)
    if last is None:
        return None
    first = _opt(first_name)
    return f"{first} {last}" if first else last
