"""Loaders for the reference CSVs shipped in ``services/site_registry/data``.

Every loader reads its file on first call and caches the parsed result
(``functools.lru_cache``); nothing is read at import time. Cached values are
immutable (tuples, frozen dataclasses); the public functions hand out fresh
lists and dicts so a caller that mutates its copy cannot corrupt the cache.

Provenance of each file: ``services/site_registry/data/PROVENANCE.md``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from typing import Any, NamedTuple, TextIO

from services.site_registry.domain.nomenclature import (
    HeadcountBand,
    HeadcountBands,
    NafCode,
    NafNomenclature,
)

NAF_FILE = "naf_rev2_5_niveaux.csv"
HEADCOUNT_FILE = "insee_tranches_effectifs.csv"
TERRITORIES_FILE = "territoires_industrie_183_groupements.csv"
COMMUNES_FILE = "communes_france_cog.csv.gz"
DEPT62_COMMUNES_FILE = "communes_dept62_cog2026.csv"  # the demo build's matcher
CENTROIDS_FILE = "communes_france_centroids.csv.gz"
TERRITORY_COMMUNES_FILE = "territoires_industrie_communes_2023_derived.csv"
# The 2019-2022 generation is known in Pas-de-Calais only (its rows are tagged).
DEPT62_TERRITORY_COMMUNES_FILE = "territoires_industrie_communes_dept62_derived.csv"
EPCI_FILE = "epci_france_2026.csv"
OUTLINES_DIR = "communes_contours"

TERRITORY_VERSIONS = {"2023": "183_2023-2027", "2019": "149_2019-2022"}


def data_file(name: str) -> Traversable:
    """The packaged data file ``name`` (works from a checkout or an installed wheel)."""
    return files("services.site_registry").joinpath("data", *name.split("/"))


@contextmanager
def open_data(name: str) -> Iterator[TextIO]:
    """Open a packaged data file as UTF-8 text, ready for the csv module."""
    # as_file gives a real path (extracting to a temporary file only if the
    # package is zipped), so the file can be opened with newline="": csv
    # must see quoted line breaks untranslated. A ``.gz`` file is read through gzip.
    with as_file(data_file(name)) as path:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="") as gz:
                yield gz
        else:
            with path.open("r", encoding="utf-8", newline="") as fh:
                yield fh


EPT_KIND = "EPT"
#: Groupement kinds that are intercommunalities (an EPCI à fiscalité propre or an EPT),
#: as opposed to a single commune.
INTERCOMMUNAL_KINDS = frozenset({"CA", "CC", "CU", "METRO", EPT_KIND})


class Groupement(NamedTuple):
    """A member of a Territoire d'industrie as listed by ANCT.

    ``kind`` is the 2026 EPCI type (``CA``, ``CC``, ``CU``, ``METRO``) when the
    SIREN resolved to an EPCI, ``commune`` for the few commune-level members,
    ``EPT`` for the 3 Grand Paris établissements publics territoriaux (not EPCIs à
    fiscalité propre; their members are in ``ept_grand_paris_members.csv``).
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
    lon: float | None  # None: no outline to take a centroid from (see PROVENANCE.md)
    lat: float | None
    department: str = ""


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
            if resolved == "non_resolu":
                kind = EPT_KIND
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
            lon, lat = centroids.get(code, (None, None))
            records.append(
                CommuneRecord(
                    insee_code=code,
                    name=row["nom"],
                    epci_siren=row["epci_siren"] or None,
                    population=_int_or_none(row["population"]),
                    postal_codes=tuple(p for p in row["codes_postaux"].split("|") if p),
                    lon=lon,
                    lat=lat,
                    department=row["departement"],
                )
            )
    return tuple(records)


def load_communes() -> list[CommuneRecord]:
    """The 34,969 current communes of France (COG 2026) with their centroid (None for
    the 102 without an outline: Saint-Pierre-et-Miquelon, Saint-Barthélemy,
    Saint-Martin, the Pacific, and 6 communes restored since 2022)."""
    return list(_communes())


@lru_cache(maxsize=4)
def _territory_communes(tag: str) -> dict[str, tuple[str, ...]]:
    result: dict[str, list[str]] = {}
    if tag == TERRITORY_VERSIONS["2023"]:
        with open_data(TERRITORY_COMMUNES_FILE) as fh:
            for row in csv.DictReader(fh):
                result.setdefault(row["id_ti"], []).append(row["commune_insee"])
    else:
        with open_data(DEPT62_TERRITORY_COMMUNES_FILE) as fh:
            for row in csv.DictReader(fh):
                if row["ti_version"] == tag:
                    result.setdefault(row["id_ti"], []).append(row["commune_insee"])
    return {ti: tuple(codes) for ti, codes in result.items()}


def load_territory_communes(version: str = "2023") -> dict[str, list[str]]:
    """Territory id → INSEE codes of its communes.

    DERIVED, not the official ANCT commune list: each territory's groupements
    were expanded with the 2026 EPCI composition (EPT members for the Grand
    Paris, the commune itself for single communes), so perimeters that moved
    since the list was set are not reflected (``data/derive_territory_communes.py``).
    ``version`` is ``"2023"`` (183 territories, 2023-2027, all of France) or
    ``"2019"`` (149 territories, 2019-2022, Pas-de-Calais communes only); note
    that territory ids are reused across generations with different perimeters
    (ti-3205 is Béthune-Bruay et Flandre-Lys in 2023, Boulonnais-Calaisis in 2019).
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


def department_of(commune_insee: str) -> str:
    """The département of an INSEE commune code: 3 characters overseas (97x), else 2."""
    return commune_insee[:3] if commune_insee.startswith("97") else commune_insee[:2]


@lru_cache(maxsize=8)
def _outlines(department: str) -> dict[str, tuple[str, str]]:
    """Commune code → (name, geometry as compact JSON) of one département's file."""
    name = f"{OUTLINES_DIR}/communes-{department}.geojson.gz"
    if not data_file(name).is_file():
        return {}
    with open_data(name) as fh:
        features = json.load(fh)["features"]
    return {
        f["properties"]["code"]: (
            f["properties"]["nom"],
            json.dumps(f["geometry"], separators=(",", ":")),
        )
        for f in features
    }


def communes_geojson(communes: Iterable[str], **members: Any) -> tuple[bytes, list[str]]:
    """A GeoJSON FeatureCollection (compact UTF-8 bytes) of these communes' outlines,
    one Feature each with properties ``code`` and ``nom``, in INSEE order; and the
    communes that have no outline, also listed in the collection's foreign member
    ``communes_without_outline``. ``members`` become foreign members too
    (``"territory": "ti-3205"``)."""
    out = io.StringIO()
    out.write('{"type":"FeatureCollection"')
    for key, value in members.items():
        out.write(f",{json.dumps(key)}:{json.dumps(value, ensure_ascii=False)}")
    out.write(',"features":[')
    missing: list[str] = []
    first = True
    for code in sorted(set(communes)):
        found = _outlines(department_of(code)).get(code)
        if found is None:
            missing.append(code)
            continue
        name, geometry = found
        props = json.dumps({"code": code, "nom": name}, ensure_ascii=False)
        out.write(("" if first else ",") + '{"type":"Feature","properties":')
        out.write(f'{props},"geometry":{geometry}}}')
        first = False
    out.write(f'],"communes_without_outline":{json.dumps(missing)}}}')
    return out.getvalue().encode("utf-8"), missing
