"""Importers: Aides-territoires API pages and ADEME "Agir pour la transition" responses.

Both return ``(schemes, problems)``: what could become a valid ``Scheme``, and for every
record that could not, its position, its id and why (an ``ImportProblem``). Nothing is
guessed silently: an unknown perimeter, an unreadable rate or date, an aid not open to
businesses is a problem, not a scheme with made-up fields.

**Aides-territoires** (``/api/aids/``, DRF; see ``MTES-MCT/aides-territoires``
``src/aids/api/serializers.py`` and ``src/aids/constants.py``). The API serialises choice
fields with their *labels* ("Subvention", "Entreprises privées"); some feeds carry the
codes ("grant", "private_sector"): both are read.

* ``targeted_audiences``: the aid is for firms when it names private companies
  (``private_sector`` / "Entreprises privées"), and then for every firm size (the API
  has no size). Otherwise the record is a problem, "not for businesses".
* ``aid_types``: one ``AidType`` per scheme, the first money type in the order grant,
  recoverable advance, loan, other financial aid (CEE included), else engineering
  support; all the record's types are kept in ``source``.
* ``perimeter``: the API prints ``str(Perimeter)``: "Drôme (Département)", "Hauts-de-France
  (Région)", "France", "Métropole", "Outre-mer". Departments and regions are found by name
  (case and accents ignored), "France"/"Europe" is national, "Métropole" and "Outre-mer"
  are their regions; anything else (EPCI and commune names, basins, ad-hoc areas) is a
  problem: there is no name table for them here.
* ``subvention_rate`` (``[20, 80)``, ``{"lower": 20, "upper": 80}``, ``[20, 80]``) or
  ``subvention_rate_lower_bound`` / ``_upper_bound`` → the rate range.
* ``categories`` ("Thème|Catégorie" or plain names) → themes, by keywords
  (``_THEME_KEYWORDS``); categories that meet none give the theme ``other``, so an aid
  about food or housing never matches an industrial project by accident.
* ``source`` = "Aides-territoires API, aid <id>"; ``source_url`` = ``origin_url``, else
  the aid's Aides-territoires page (``url``, or built from ``slug``).

**ADEME Agir** (``ListeDispositifs``): national business schemes. ``date_debut`` /
``date_fin`` give the dates (their calendar date as written, Paris time); the financial
instrument is not in the response and ADEME's Agir financial aids are grants, so
``aid_type`` is ``grant`` (an assumption, stated in ``source``); firms of every size
(``cible_projet``'s codes are not documented in the file); ``de_minimis`` when the text
says so; rates only when the description states them, read by ``RATE_PATTERN``:

    "aides … peuvent atteindre 15 % à 55 %" → 15–55;  "jusqu'à 40 %" → –40

— a percentage range "N % à M %" or "N à M %" (also "-" or "–" between them), else an
upper bound "jusqu'à M %" / "au plus M %" / "maximum M %"; nothing else is taken, so a
percentage about something else ("50 % de produits…") is never read as a rate.
Thematic codes map to themes by ``ADEME_THEMES`` (their meanings are inferred from the
schemes' titles: ECD eco-design, ECO circular economy, PRODUR sustainable production,
ENR / ENRAUT / GEOTER / BOIBIO renewable energy, MTR mobility).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.funding.domain.catalogue import (
    DEPARTMENTS,
    REGIONS,
    InvalidScheme,
    Perimeter,
    Scheme,
    validate_scheme,
)
from shared.events.funding import AidType, FirmSize

__all__ = [
    "ADEME_THEMES",
    "AT_BASE_URL",
    "RATE_PATTERN",
    "ImportProblem",
    "parse_ademe_agir",
    "parse_aides_territoires",
]

AT_BASE_URL: Final = "https://aides-territoires.beta.gouv.fr"
ALL_SIZES: Final[frozenset[FirmSize]] = frozenset({"micro", "sme", "midcap", "large"})


@dataclass(frozen=True)
class ImportProblem:
    """A record that did not become a scheme: its index in the list, its id, and why."""

    index: int  # position in the document's list (-1: the document itself)
    id: str | None
    reason: str


def _fold(text: str) -> str:
    """Lower case, no accents, apostrophes and dashes unified: for matching names."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.lower().replace("’", "'").replace("–", "-").strip()


# --- Aides-territoires vocabularies ------------------------------------------------------

_BUSINESS_AUDIENCES: Final = frozenset({"private_sector", _fold("Entreprises privées")})

_AID_TYPES: Final[Mapping[str, AidType]] = {
    **{_fold(k): "grant" for k in ("grant", "Subvention")},
    **{_fold(k): "loan" for k in ("loan", "Prêt")},
    **{_fold(k): "recoverable_advance" for k in ("recoverable_advance", "Avance récupérable")},
    **{
        _fold(k): "other"
        for k in (
            "other",
            "Autre aide financière",
            "cee",
            "Certificat d'économie d'énergie (CEE)",
        )
    },
    **{
        _fold(k): "engineering_support"
        for k in (
            "technical",
            "financial",
            "legal",
            "technical_engineering",
            "strategic_engineering",
            "diagnostic_engineering",
            "AMOA_engineering",
            "MOE_engineering",
            "financial_engineering",
            "legal_engineering",
            "administrative_engineering",
            "legal_and_regulatory_engineering",
            "formation_engineering",
            "Ingénierie technique",
            "Ingénierie financière",
            "Ingénierie Juridique / administrative",
            "Ingénierie de planification et stratégie",
            "Ingénierie d’études et diagnostiques",
            "AMOA / MOD",
            "MOE / MOE déléguée",
            "Ingénierie administrative",
            "Ingénierie juridique et réglementaire",
            "Formation / montée en compétence",
        )
    },
}
_AID_TYPE_PRIORITY: Final[tuple[AidType, ...]] = (
    "grant",
    "recoverable_advance",
    "loan",
    "other",
    "engineering_support",
)

#: Keywords (folded) found in a category → themes.
_THEME_KEYWORDS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("decarbon", frozenset({"decarbonation"})),
    ("carbone", frozenset({"decarbonation"})),
    ("climat", frozenset({"decarbonation"})),
    ("energ", frozenset({"energy"})),
    ("chaleur", frozenset({"energy"})),
    ("economie circulaire", frozenset({"circular_economy"})),
    ("dechet", frozenset({"circular_economy"})),
    ("recyclage", frozenset({"circular_economy"})),
    ("ecoconception", frozenset({"circular_economy"})),
    ("friche", frozenset({"land_brownfields"})),
    ("foncier", frozenset({"land_brownfields"})),
    ("immobilier d'entreprise", frozenset({"land_brownfields"})),
    ("formation", frozenset({"skills"})),
    ("emploi", frozenset({"skills"})),
    ("competence", frozenset({"skills"})),
    ("innovation", frozenset({"innovation"})),
    ("recherche", frozenset({"innovation"})),
    ("numerique", frozenset({"digital"})),
    ("industri", frozenset({"industrial_development", "modernisation"})),
    ("developpement economique", frozenset({"industrial_development"})),
    ("production", frozenset({"industrial_development"})),
)

_REGION_BY_NAME: Final = {_fold(name): code for code, name in REGIONS.items()}
_DEPARTMENT_BY_NAME: Final = {_fold(name): code for code, (name, _) in DEPARTMENTS.items()}
_OVERSEAS: Final = ("01", "02", "03", "04", "06")
_MAINLAND: Final = tuple(c for c in REGIONS if c not in _OVERSEAS)
_SCALE_SUFFIX: Final = re.compile(r"^(?P<name>.*?)\s*\((?P<scale>[^()]*)\)\s*$")
_RANGE: Final = re.compile(
    r"^\s*[\[(]\s*(?P<lo>[0-9.]*)\s*,\s*(?P<hi>[0-9.]*)\s*[\])]\s*$"
)  # "[20, 80)", "(,80]"


class _Skip(Exception):
    """A record that cannot become a scheme (the message says why)."""


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _names(value: Any) -> list[str]:
    """A list of labels from a list, or from a ';'-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return []


def _date(value: Any, what: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _Skip(f"{what} {value!r} is not a date") from None


def _number(value: Any, what: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _Skip(f"{what} {value!r} is not a number") from None


def _rates(record: Mapping[str, Any]) -> tuple[float | None, float | None]:
    raw = record.get("subvention_rate")
    if raw is None:
        return (
            _number(record.get("subvention_rate_lower_bound"), "subvention_rate_lower_bound"),
            _number(record.get("subvention_rate_upper_bound"), "subvention_rate_upper_bound"),
        )
    if isinstance(raw, Mapping):
        return _number(raw.get("lower"), "rate lower"), _number(raw.get("upper"), "rate upper")
    if isinstance(raw, list | tuple) and len(raw) == 2:
        return _number(raw[0], "rate lower"), _number(raw[1], "rate upper")
    if isinstance(raw, str):
        m = _RANGE.match(raw)
        if m:
            return _number(m["lo"], "rate lower"), _number(m["hi"], "rate upper")
    raise _Skip(f"subvention_rate {raw!r} is not a range like [20, 80)")


def _perimeter(value: Any) -> Perimeter:
    text = _text(value)
    if not text:
        raise _Skip("no perimeter")
    m = _SCALE_SUFFIX.match(text)
    name, scale = (m["name"], _fold(m["scale"])) if m else (text, "")
    key = _fold(name)
    if key in ("france", "europe") and scale in ("", "pays", "continent"):
        return Perimeter.national()
    if key == "metropole" and scale in ("", "metropole"):
        return Perimeter("region", _MAINLAND)
    if key == "outre-mer" and scale in ("", "outre-mer"):
        return Perimeter("region", _OVERSEAS)
    if scale in ("", "region") and key in _REGION_BY_NAME:
        return Perimeter("region", (_REGION_BY_NAME[key],))
    if scale in ("", "departement") and key in _DEPARTMENT_BY_NAME:
        return Perimeter("department", (_DEPARTMENT_BY_NAME[key],))
    raise _Skip(
        f"unknown perimeter {text!r}: not France, a region or a department"
        " (EPCI, commune and ad-hoc perimeters need a name table this importer lacks)"
    )


def _themes(categories: Iterable[str]) -> frozenset[str]:
    found: set[str] = set()
    any_category = False
    for category in categories:
        any_category = True
        folded = _fold(category)
        for keyword, themes in _THEME_KEYWORDS:
            if keyword in folded:
                found |= themes
    if any_category and not found:
        return frozenset({"other"})
    return frozenset(found)


def _aid_type(labels: list[str]) -> AidType:
    known = {_AID_TYPES[_fold(x)] for x in labels if _fold(x) in _AID_TYPES}
    for candidate in _AID_TYPE_PRIORITY:
        if candidate in known:
            return candidate
    raise _Skip(f"no known aid type in {labels!r}")


def _at_scheme(record: Mapping[str, Any]) -> Scheme:
    at_id = str(record.get("id", "")).strip()
    if not at_id:
        raise _Skip("the record has no id")
    name = _text(record.get("name"))
    if not name:
        raise _Skip("the record has no name")
    audiences = _names(record.get("targeted_audiences"))
    if not audiences:
        raise _Skip("no targeted audiences: cannot tell whether businesses may apply")
    if not any(_fold(a) in _BUSINESS_AUDIENCES for a in audiences):
        raise _Skip(f"not for businesses: targeted audiences are {', '.join(audiences)}")
    types = _names(record.get("aid_types"))
    aid_type = _aid_type(types)
    funders = tuple(_names(record.get("financers")))
    if not funders:
        raise _Skip("no financer")
    perimeter = _perimeter(record.get("perimeter"))
    rate_min, rate_max = _rates(record)
    opens_on = _date(record.get("start_date"), "start_date")
    closes_on = _date(record.get("submission_deadline"), "submission_deadline")
    categories = _names(record.get("categories"))
    amount_max = None
    if aid_type == "loan":
        amount_max = record.get("loan_amount")
    elif aid_type == "recoverable_advance":
        amount_max = record.get("recoverable_advance_amount")
    slug = _text(record.get("slug"))
    page = _text(record.get("url")) or (f"{AT_BASE_URL}/aides/{slug}/" if slug else None)
    if page and page.startswith("/"):
        page = AT_BASE_URL + page
    body = " ".join(_text(record.get(k)) for k in ("description", "eligibility"))
    details = [f"aid types: {', '.join(types)}", f"perimeter: {_text(record.get('perimeter'))}"]
    if categories:
        details.append(f"categories: {', '.join(categories)}")
    if record.get("in_france_relance"):
        details.append("France Relance")
    return validate_scheme(
        Scheme(
            id=f"at-{at_id}",
            name=name,
            funders=funders,
            perimeter=perimeter,
            aid_type=aid_type,
            beneficiaries=ALL_SIZES,
            themes=_themes(categories),
            rate_min_pct=rate_min,
            rate_max_pct=rate_max,
            amount_max_eur=int(amount_max) if isinstance(amount_max, int | float) else None,
            opens_on=opens_on,
            closes_on=closes_on,
            source_url=_text(record.get("origin_url")) or page,
            source=f"Aides-territoires API, aid {at_id} ({'; '.join(details)})",
            de_minimis="minimis" in body.lower(),
        )
    )


def parse_aides_territoires(doc: Mapping[str, Any]) -> tuple[list[Scheme], list[ImportProblem]]:
    """Schemes from one Aides-territoires API page (``{"count", "results": [...]}``)."""
    results = doc.get("results")
    if not isinstance(results, list):
        return [], [ImportProblem(-1, None, "no 'results' list: not an Aides-territoires page")]
    schemes: list[Scheme] = []
    problems: list[ImportProblem] = []
    for index, record in enumerate(results):
        rid = str(record.get("id")) if isinstance(record, Mapping) else None
        try:
            if not isinstance(record, Mapping):
                raise _Skip("the record is not an object")
            schemes.append(_at_scheme(record))
        except _Skip as skip:
            problems.append(ImportProblem(index, rid, str(skip)))
        except InvalidScheme as invalid:
            problems.append(ImportProblem(index, rid, invalid.message))
    return schemes, problems


# --- ADEME Agir ---------------------------------------------------------------------------

#: ADEME Agir ``thematiques`` codes → themes (meanings inferred from the titles).
ADEME_THEMES: Final[Mapping[str, frozenset[str]]] = {
    "ECD": frozenset({"circular_economy"}),  # écoconception
    "ECO": frozenset({"circular_economy"}),  # économie circulaire
    "PRODUR": frozenset({"decarbonation", "circular_economy"}),  # production durable
    "ENR": frozenset({"energy", "decarbonation"}),  # énergies renouvelables
    "ENRAUT": frozenset({"energy"}),
    "GEOTER": frozenset({"energy"}),  # géothermie
    "BOIBIO": frozenset({"energy"}),  # bois-biomasse
    "MTR": frozenset({"decarbonation"}),  # mobilité / transport
}

#: Rates stated in an ADEME description (see the module docstring).
RATE_PATTERN: Final = re.compile(
    r"(?<![\d.,])(?P<lo>\d{1,3}(?:[.,]\d+)?)\s*%?\s*(?:à|-|–)\s*"
    r"(?P<hi>\d{1,3}(?:[.,]\d+)?)\s*%"
    r"|(?:jusqu['’]à|au plus|maximum(?: de)?)\s*(?P<max>\d{1,3}(?:[.,]\d+)?)\s*%",
    re.IGNORECASE,
)
_TAGS: Final = re.compile(r"<[^>]+>")
_AGIR_URL_SPACES: Final = re.compile(r"^(https?):\s*//")


def plain_text(fragment: str) -> str:
    """HTML to one line of text (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(html.unescape(_TAGS.sub(" ", fragment)).split())


def rates_from_text(text: str) -> tuple[float | None, float | None]:
    """The first rate range (or upper bound) ``RATE_PATTERN`` finds, else ``(None, None)``."""
    for m in RATE_PATTERN.finditer(text):
        if m["max"]:
            top = float(m["max"].replace(",", "."))
            if top <= 100:
                return None, top
            continue
        lo, hi = float(m["lo"].replace(",", ".")), float(m["hi"].replace(",", "."))
        if 0 <= lo <= hi <= 100:
            return lo, hi
    return None, None


def _ademe_scheme(record: Mapping[str, Any]) -> Scheme:
    rid = _text(record.get("id"))
    if not rid:
        raise _Skip("the record has no id")
    title = _text(record.get("titre"))
    body = plain_text(_text(record.get("description_longue")))
    rate_min, rate_max = rates_from_text(body)
    coverage = record.get("couverture_geo") or {}
    regions = [str(r) for r in record.get("regions") or []]
    if _fold(str(coverage.get("libelle", ""))) == "national" or not regions:
        perimeter = Perimeter.national()
    else:
        perimeter = Perimeter("region", tuple(regions))
    codes = [str(t) for t in record.get("thematiques") or []]
    themes: frozenset[str] = frozenset().union(*(ADEME_THEMES.get(t, frozenset()) for t in codes))
    url = _AGIR_URL_SPACES.sub(r"\1://", _text(record.get("url_agir"))) or None
    kind = "call for projects" if record.get("type") == "AAP" else "open scheme"
    return validate_scheme(
        Scheme(
            id=f"ademe-{rid}",
            name=title,
            funders=("ADEME",),
            perimeter=perimeter,
            aid_type="grant",
            themes=themes or frozenset({"other"}),
            rate_min_pct=rate_min,
            rate_max_pct=rate_max,
            opens_on=_date(record.get("date_debut"), "date_debut"),
            closes_on=_date(record.get("date_fin"), "date_fin"),
            source_url=url,
            source=(
                f"ADEME Agir API, dispositif {rid} ({kind}, thématiques {', '.join(codes)});"
                " aid type assumed grant (not in the response); rates read from the"
                " description when stated"
            ),
            de_minimis="minimis" in body.lower(),
        )
    )


def parse_ademe_agir(doc: Mapping[str, Any]) -> tuple[list[Scheme], list[ImportProblem]]:
    """Schemes from an ADEME Agir response (``{"ListeDispositifs": [...]}``)."""
    items = doc.get("ListeDispositifs")
    if not isinstance(items, list):
        return [], [ImportProblem(-1, None, "no 'ListeDispositifs' list: not an Agir response")]
    schemes: list[Scheme] = []
    problems: list[ImportProblem] = []
    for index, record in enumerate(items):
        rid = str(record.get("id")) if isinstance(record, Mapping) else None
        try:
            if not isinstance(record, Mapping):
                raise _Skip("the record is not an object")
            schemes.append(_ademe_scheme(record))
        except _Skip as skip:
            problems.append(ImportProblem(index, rid, str(skip)))
        except InvalidScheme as invalid:
            problems.append(ImportProblem(index, rid, invalid.message))
    return schemes, problems
