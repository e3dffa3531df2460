"""Loaders for the reference CSVs shipped in ``services/site_registry/data``.

Every loader reads its file on first call and caches the parsed result
(``functools.lru_cache``); nothing is read at import time. Cached values are
immutable (tuples, frozen dataclasses); the public functions hand out fresh
lists and dicts so a caller that mutates its copy cannot corrupt the cache.

Provenance of each file: ``services/site_registry/data/PROVENANCE.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from typing import NamedTuple, TextIO

from services.site_registry.domain.nomenclature import (
    HeadcountBand,
    HeadcountBands,
    NafCode,
    NafNomenclature,
)

NAF_FILE = "naf_rev2_5_niveaux.csv"
HEADCOUNT_FILE = "insee_tranches_effectifs.csv"
TERRITORIES_FILE = "territoires_industrie_183_groupements.csv"
COMMUNES_FILE = "communes_dept62_cog2026.csv"
CENTROIDS_FILE = "communes_dept62_centroids.csv"
TERRITORY_COMMUNES_FILE = "territoires_industrie_communes_dept62_derived.csv"
EPCI_FILE = "epci_france_2026.csv"

# The derived TI→commune file tags rows with the programme generation.
TERRITORY_VERSIONS = {"2023": "183_2023-2027", "2019": "149_2019-2022"}


def data_file(name: str) -> Traversable:
    """The packaged data file ``name`` (works from a checkout or an installed wheel)."""
    return files("services.site_registry").joinpath("data", *name.split("/"))


@contextmanager
def open_data(name: str) -> Iterator[TextIO]:
    """Open a packaged data file as UTF-8 text, ready for the csv module."""
    # as_file gives a real path (extracting to a temporary file only if the
    # package is zipped), so the file can be opened with newline="": csv
    # must see quoted line breaks untranslated.
    with as_file(data_file(name)) as path, path.open("r", encoding="utf-8", newline="") as fh:
        yield fh


class Groupement(NamedTuple):
    """A member of a Territoire d'industrie as listed by ANCT.

    ``kind`` is the 2026 EPCI type (``CA``, ``CC``, ``CU``, ``METRO``) when the
    SIREN resolved to an EPCI, ``commune`` for the few commune-level members,
    ``non_resolu`` for the Grand Paris EPTs that are not EPCIs à fiscalité propre.
    """

    siren: str
    name: str
    kind: str


@dataclass(frozen=True)
class TerritoryRecord:
    id: str  # "ti-3205"
    name: str
    epcis: tuple[Groupement, ...]


@dataclass(frozen=True)
class CommuneRecord:
    insee_code: str
    name: str
    epci_siren: str | None
    population: int | None
    postal_codes: tuple[str, ...]
    lon: float
    lat: float


@dataclass(frozen=True)
class EpciRecord:
    siren: str
    name: str
    kind: str
    population: int | None
    commune_count: int
    departments: tuple[str, ...]


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(value) if value else None


@lru_cache(maxsize=1)
def load_naf() -> NafNomenclature:
    with open_data(NAF_FILE) as fh:
        return NafNomenclature(
            NafCode(
                code=row["code_sous_classe"],
                label=row["libelle_sous_classe"],
                class_code=row["code_classe"],
                group_code=row["code_groupe"],
                division=row["code_division"],
                section=row["code_section"],
            )
            for row in csv.DictReader(fh)
        )


@lru_cache(maxsize=1)
def load_headcount_bands() -> HeadcountBands:
    with open_data(HEADCOUNT_FILE) as fh:
        return HeadcountBands(
            HeadcountBand(
                code=row["code_tranche"],
                label=row["libelle"],
                min=_int_or_none(row["effectif_min"]),
                max=_int_or_none(row["effectif_max"]),
            )
            for row in csv.DictReader(fh)
        )


@lru_cache(maxsize=1)
def _territories() -> tuple[TerritoryRecord, ...]:
    names: dict[str, str] = {}
    members: dict[str, list[Groupement]] = {}
    with open_data(TERRITORIES_FILE) as fh:
        for row in csv.DictReader(fh):
            ti = row["id_ti"]
            names.setdefault(ti, row["lib_ti"])
            resolved = row["groupement_resolu"]
            kind = row["epci_type_2026"] if resolved == "epci_2026" else resolved
            members.setdefault(ti, []).append(
                Groupement(row["groupement_siren"], row["groupement_nom_source"], kind)
            )
    return tuple(TerritoryRecord(ti, names[ti], tuple(members[ti])) for ti in names)


def load_territories() -> list[TerritoryRecord]:
    """The 183 Territoires d'industrie of the 2023-2027 programme, in file order."""
    return list(_territories())


@lru_cache(maxsize=1)
def _centroids() -> dict[str, tuple[float, float]]:
    with open_data(CENTROIDS_FILE) as fh:
        return {
            row["code_insee"]: (float(row["lon"]), float(row["lat"])) for row in csv.DictReader(fh)
        }


@lru_cache(maxsize=1)
def _communes() -> tuple[CommuneRecord, ...]:
    centroids = _centroids()
    records: list[CommuneRecord] = []
    with open_data(COMMUNES_FILE) as fh:
        for row in csv.DictReader(fh):
            # Communes déléguées / associées are parts of a current commune:
            # sites are registered against the current commune only.
            if row["type"] != "commune-actuelle":
                continue
            code = row["code_insee"]
            try:
                lon, lat = centroids[code]
            except KeyError:
                raise ValueError(
                    f"{CENTROIDS_FILE} has no centroid for commune {code}; "
                    "rebuild it with data/build_centroids.py"
                ) from None
            records.append(
                CommuneRecord(
                    insee_code=code,
                    name=row["nom"],
                    epci_siren=row["epci_siren"] or None,
                    population=_int_or_none(row["population"]),
                    postal_codes=tuple(p for p in row["codes_postaux"].split("|") if p),
                    lon=lon,
                    lat=lat,
                )
            )
    return tuple(records)


def load_communes() -> list[CommuneRecord]:
    """The 887 current communes of Pas-de-Calais (COG 2026) with their centroid."""
    return list(_communes())


@lru_cache(maxsize=4)
def _territory_communes(tag: str) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    with open_data(TERRITORY_COMMUNES_FILE) as fh:
        for row in csv.DictReader(fh):
            if row["ti_version"] == tag:
                result.setdefault(row["id_ti"], []).append(row["commune_insee"])
    return {ti: tuple(codes) for ti, codes in result.items()}


def load_territory_communes(version: str = "2023") -> dict[str, list[str]]:
    """Territory id → INSEE codes of its dept-62 communes.

    DERIVED, not the official ANCT commune list: each territory's groupements
    were expanded with the 2026 EPCI composition, so perimeters that moved
    since the list was set are not reflected. Only dept-62 territories appear.
    ``version`` is ``"2023"`` (183 territories, 2023-2027) or ``"2019"``
    (149 territories, 2019-2022); note that territory ids are reused across
    generations with different perimeters (ti-3205 is Béthune-Bruay et
    Flandre-Lys in 2023, Boulonnais-Calaisis in 2019).
    """
    tag = TERRITORY_VERSIONS.get(version, version)
    if tag not in TERRITORY_VERSIONS.values():
        raise ValueError(
            f"unknown territory list version {version!r}; use one of {sorted(TERRITORY_VERSIONS)}"
        )
    return {ti: list(codes) for ti, codes in _territory_communes(tag).items()}


@lru_cache(maxsize=1)
def _epcis() -> dict[str, EpciRecord]:
    with open_data(EPCI_FILE) as fh:
        return {
            row["epci_siren"]: EpciRecord(
                siren=row["epci_siren"],
                name=row["nom"],
                kind=row["type"],
                population=_int_or_none(row["population_totale"]),
                commune_count=int(row["nb_communes"]),
                departments=tuple(d for d in row["departements"].split("|") if d),
            )
            for row in csv.DictReader(fh)
        }


def load_epcis() -> dict[str, EpciRecord]:
    """All 1,255 French EPCI à fiscalité propre (2026), keyed by SIREN."""
    return dict(_epcis())
