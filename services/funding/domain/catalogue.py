"""The catalogue: funding schemes, their calls, and the vocabulary they are written in.

Pure Python. A ``Scheme`` is one aid a funder offers (Aides-territoires' ``Aid``): where
it applies (``Perimeter``), to whom (firm sizes, NAF sectors), for what (project kinds
and themes), in what form (``AidType``), how much (rate and amount ranges, investment
bounds) and when (opening and closing dates). A ``Call`` is a scheme's selection rounds
(the France Relance regional reviews, an ADEME call's "relèves").

Conventions the matcher relies on:

* **Empty means "no restriction".** No firm size, no NAF section or prefix, no kind and
  no theme: open to all. ``None`` bounds and dates are "not stated".
* **Perimeter codes are INSEE codes**: region "32" (Hauts-de-France), department "62",
  an EPCI's SIREN ("200072460"), a Territoire d'industrie id ("ti-3205").
* **NAF restrictions** are sections ("C") and code prefixes ("22", "22.1", "22.11",
  "22.11Z"); a project's code passes when it matches a section *or* a prefix.
* **Themes** are a small closed vocabulary (``THEMES``); ``other`` marks a scheme whose
  subject lies outside it (food, housing…), so it never matches an industrial project by
  accident.
* **Provenance is mandatory** (``source``); ``generated`` schemes (benchmarks, examples)
  have names starting with "GENERATED" so they are never mistaken for real ones;
  ``curated`` says what a human still has to verify in a hand-entered scheme.

``validate_scheme`` checks all of this and lists every problem in one readable message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Final, Literal, get_args

from shared.errors import DomainError
from shared.events.campaigns import ProjectKind
from shared.events.funding import AidType, FirmSize

__all__ = [
    "AID_TYPES",
    "DEPARTMENTS",
    "FIRM_SIZES",
    "NAF_SECTIONS",
    "PROJECT_KINDS",
    "REGIONS",
    "SCALES",
    "SCALE_RANK",
    "THEMES",
    "Call",
    "InvalidCall",
    "InvalidScheme",
    "Perimeter",
    "RoundResult",
    "Scale",
    "Scheme",
    "SelectionRound",
    "department_label",
    "region_label",
    "validate_call",
    "validate_scheme",
]

Scale = Literal["national", "region", "department", "epci", "territory"]

SCALES: Final[tuple[str, ...]] = get_args(Scale)
#: Narrowest first: Aides-territoires orders search results by ``perimeter__scale``.
SCALE_RANK: Final[Mapping[str, int]] = MappingProxyType(
    {"territory": 0, "epci": 1, "department": 2, "region": 3, "national": 4}
)
AID_TYPES: Final = frozenset(get_args(AidType))
FIRM_SIZES: Final = frozenset(get_args(FirmSize))
PROJECT_KINDS: Final = frozenset(get_args(ProjectKind))

#: What a scheme funds, in the words of industrial projects. ``other``: outside them.
THEMES: Final = frozenset(
    {
        "industrial_development",  # creating or extending production capacity
        "modernisation",  # new equipment, automation, productivity
        "decarbonation",
        "energy",  # efficiency, renewable heat, electrification
        "circular_economy",  # eco-design, recycling, resource efficiency
        "innovation",  # R&D, industrial innovation
        "digital",
        "land_brownfields",  # land, buildings, brownfield redevelopment
        "skills",  # training, hiring
        "other",
    }
)

#: NAF rév. 2 sections (INSEE), with a short English label.
NAF_SECTIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "A": "agriculture, forestry and fishing",
        "B": "mining and quarrying",
        "C": "manufacturing",
        "D": "energy supply",
        "E": "water supply and waste management",
        "F": "construction",
        "G": "wholesale and retail trade",
        "H": "transport and storage",
        "I": "accommodation and food services",
        "J": "information and communication",
        "K": "finance and insurance",
        "L": "real estate",
        "M": "professional, scientific and technical activities",
        "N": "administrative and support services",
        "O": "public administration",
        "P": "education",
        "Q": "health and social work",
        "R": "arts and recreation",
        "S": "other services",
        "T": "households as employers",
        "U": "extraterritorial organisations",
    }
)

#: The 18 regions (INSEE COG codes, in force since 2016).
REGIONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "01": "Guadeloupe",
        "02": "Martinique",
        "03": "Guyane",
        "04": "La Réunion",
        "06": "Mayotte",
        "11": "Île-de-France",
        "24": "Centre-Val de Loire",
        "27": "Bourgogne-Franche-Comté",
        "28": "Normandie",
        "32": "Hauts-de-France",
        "44": "Grand Est",
        "52": "Pays de la Loire",
        "53": "Bretagne",
        "75": "Nouvelle-Aquitaine",
        "76": "Occitanie",
        "84": "Auvergne-Rhône-Alpes",
        "93": "Provence-Alpes-Côte d'Azur",
        "94": "Corse",
    }
)

#: The 101 departments: INSEE code → (name, region code).
DEPARTMENTS: Final[Mapping[str, tuple[str, str]]] = MappingProxyType(
    {
        "01": ("Ain", "84"),
        "02": ("Aisne", "32"),
        "03": ("Allier", "84"),
        "04": ("Alpes-de-Haute-Provence", "93"),
        "05": ("Hautes-Alpes", "93"),
        "06": ("Alpes-Maritimes", "93"),
        "07": ("Ardèche", "84"),
        "08": ("Ardennes", "44"),
        "09": ("Ariège", "76"),
        "10": ("Aube", "44"),
        "11": ("Aude", "76"),
        "12": ("Aveyron", "76"),
        "13": ("Bouches-du-Rhône", "93"),
        "14": ("Calvados", "28"),
        "15": ("Cantal", "84"),
        "16": ("Charente", "75"),
        "17": ("Charente-Maritime", "75"),
        "18": ("Cher", "24"),
        "19": ("Corrèze", "75"),
        "2A": ("Corse-du-Sud", "94"),
        "2B": ("Haute-Corse", "94"),
        "21": ("Côte-d'Or", "27"),
        "22": ("Côtes-d'Armor", "53"),
        "23": ("Creuse", "75"),
        "24": ("Dordogne", "75"),
        "25": ("Doubs", "27"),
        "26": ("Drôme", "84"),
        "27": ("Eure", "28"),
        "28": ("Eure-et-Loir", "24"),
        "29": ("Finistère", "53"),
        "30": ("Gard", "76"),
        "31": ("Haute-Garonne", "76"),
        "32": ("Gers", "76"),
        "33": ("Gironde", "75"),
        "34": ("Hérault", "76"),
        "35": ("Ille-et-Vilaine", "53"),
        "36": ("Indre", "24"),
        "37": ("Indre-et-Loire", "24"),
        "38": ("Isère", "84"),
        "39": ("Jura", "27"),
        "40": ("Landes", "75"),
        "41": ("Loir-et-Cher", "24"),
        "42": ("Loire", "84"),
        "43": ("Haute-Loire", "84"),
        "44": ("Loire-Atlantique", "52"),
        "45": ("Loiret", "24"),
        "46": ("Lot", "76"),
        "47": ("Lot-et-Garonne", "75"),
        "48": ("Lozère", "76"),
        "49": ("Maine-et-Loire", "52"),
        "50": ("Manche", "28"),
        "51": ("Marne", "44"),
        "52": ("Haute-Marne", "44"),
        "53": ("Mayenne", "52"),
        "54": ("Meurthe-et-Moselle", "44"),
        "55": ("Meuse", "44"),
        "56": ("Morbihan", "53"),
        "57": ("Moselle", "44"),
        "58": ("Nièvre", "27"),
        "59": ("Nord", "32"),
        "60": ("Oise", "32"),
        "61": ("Orne", "28"),
        "62": ("Pas-de-Calais", "32"),
        "63": ("Puy-de-Dôme", "84"),
        "64": ("Pyrénées-Atlantiques", "75"),
        "65": ("Hautes-Pyrénées", "76"),
        "66": ("Pyrénées-Orientales", "76"),
        "67": ("Bas-Rhin", "44"),
        "68": ("Haut-Rhin", "44"),
        "69": ("Rhône", "84"),
        "70": ("Haute-Saône", "27"),
        "71": ("Saône-et-Loire", "27"),
        "72": ("Sarthe", "52"),
        "73": ("Savoie", "84"),
        "74": ("Haute-Savoie", "84"),
        "75": ("Paris", "11"),
        "76": ("Seine-Maritime", "28"),
        "77": ("Seine-et-Marne", "11"),
        "78": ("Yvelines", "11"),
        "79": ("Deux-Sèvres", "75"),
        "80": ("Somme", "32"),
        "81": ("Tarn", "76"),
        "82": ("Tarn-et-Garonne", "76"),
        "83": ("Var", "93"),
        "84": ("Vaucluse", "93"),
        "85": ("Vendée", "52"),
        "86": ("Vienne", "75"),
        "87": ("Haute-Vienne", "75"),
        "88": ("Vosges", "44"),
        "89": ("Yonne", "27"),
        "90": ("Territoire de Belfort", "27"),
        "91": ("Essonne", "11"),
        "92": ("Hauts-de-Seine", "11"),
        "93": ("Seine-Saint-Denis", "11"),
        "94": ("Val-de-Marne", "11"),
        "95": ("Val-d'Oise", "11"),
        "971": ("Guadeloupe", "01"),
        "972": ("Martinique", "02"),
        "973": ("Guyane", "03"),
        "974": ("La Réunion", "04"),
        "976": ("Mayotte", "06"),
    }
)

_NAF_PREFIX: Final = re.compile(r"^[0-9]{2}(\.[0-9]{1,2}[A-Z]?)?$")
_SIREN: Final = re.compile(r"^[0-9]{9}$")


def region_label(code: str) -> str:
    """``region 32 (Hauts-de-France)``; an unknown code is shown as it is."""
    name = REGIONS.get(code)
    return f"region {code} ({name})" if name else f"region {code}"


def department_label(code: str) -> str:
    """``department 62 (Pas-de-Calais)``."""
    known = DEPARTMENTS.get(code)
    return f"department {code} ({known[0]})" if known else f"department {code}"


class InvalidScheme(DomainError):
    code = "invalid_scheme"

    def __init__(self, scheme_id: str, problems: tuple[str, ...]) -> None:
        super().__init__(f"scheme {scheme_id or '(no id)'}: " + "; ".join(problems))
        self.problems = problems


class InvalidCall(DomainError):
    code = "invalid_call"


@dataclass(frozen=True)
class Perimeter:
    """Where a scheme applies: one scale and the codes of its areas (none if national)."""

    scale: Scale
    codes: tuple[str, ...] = ()

    @classmethod
    def national(cls) -> Perimeter:
        return cls("national", ())

    def describe(self) -> str:
        """``region 84 (Auvergne-Rhône-Alpes)``, ``departments 26 (Drôme), 07 (Ardèche)``…"""
        if self.scale == "national":
            return "all of France"
        if self.scale == "region":
            labels = [region_label(c) for c in self.codes]
        elif self.scale == "department":
            labels = [department_label(c) for c in self.codes]
        elif self.scale == "epci":
            labels = [f"EPCI {c}" for c in self.codes]
        else:
            labels = [f"Territoire d'industrie {c}" for c in self.codes]
        return _join_limited(labels)


@dataclass(frozen=True, kw_only=True)
class Scheme:
    """One funding scheme of the catalogue (see the module docstring for conventions)."""

    id: str
    name: str
    funders: tuple[str, ...]
    perimeter: Perimeter
    aid_type: AidType
    beneficiaries: frozenset[FirmSize] = frozenset()
    naf_sections: frozenset[str] = frozenset()
    naf_prefixes: tuple[str, ...] = ()
    kinds: frozenset[ProjectKind] = frozenset()
    themes: frozenset[str] = frozenset()
    rate_min_pct: float | None = None
    rate_max_pct: float | None = None
    amount_min_eur: int | None = None
    amount_max_eur: int | None = None
    capex_min_eur: int | None = None
    capex_max_eur: int | None = None
    opens_on: date | None = None
    closes_on: date | None = None
    source_url: str | None = None
    source: str = ""
    generated: bool = False
    de_minimis: bool = False
    curated: str | None = None
    # Derived once, for the matcher (never compared, never printed).
    perimeter_codes: frozenset[str] = field(init=False, repr=False, compare=False)
    naf_prefix_set: frozenset[str] = field(init=False, repr=False, compare=False)
    scale_rank: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "perimeter_codes", frozenset(self.perimeter.codes))
        prefixes = frozenset(p.strip().upper() for p in self.naf_prefixes)
        object.__setattr__(self, "naf_prefix_set", prefixes)
        object.__setattr__(self, "scale_rank", SCALE_RANK.get(self.perimeter.scale, 5))

    @property
    def restricts_naf(self) -> bool:
        return bool(self.naf_sections or self.naf_prefix_set)


@dataclass(frozen=True)
class SelectionRound:
    """One selection round of a call: a deadline, and what is known of its size."""

    name: str
    closes_on: date | None = None
    envelope_eur: int | None = None
    quota: int | None = None  # how many projects the round selects, when known


@dataclass(frozen=True, kw_only=True)
class Call:
    """A scheme's calls for projects: its selection rounds, in order."""

    id: str
    scheme_id: str
    name: str
    rounds: tuple[SelectionRound, ...]
    source_url: str | None = None
    source: str = ""
    curated: str | None = None

    def next_round(self, today: date) -> SelectionRound | None:
        """The first round still open on ``today`` (a round without a date counts as open)."""
        for r in self.rounds:
            if r.closes_on is None or r.closes_on >= today:
                return r
        return None


@dataclass(frozen=True, kw_only=True)
class RoundResult:
    """What a selection round decided: e.g. 18 of 50 applications selected, by territory."""

    call_id: str
    round: str
    decided_on: date
    applications: int
    selected: int
    per_territory: Mapping[str, int] = field(default_factory=dict)


def _join_limited(labels: list[str], limit: int = 5) -> str:
    if len(labels) <= limit:
        return ", ".join(labels)
    return ", ".join(labels[:limit]) + f" and {len(labels) - limit} more"


def _check_bounds(problems: list[str], what: str, low: float | None, high: float | None) -> None:
    for label, value in (("minimum", low), ("maximum", high)):
        if value is not None and value < 0:
            problems.append(f"the {what} {label} is negative ({value})")
    if low is not None and high is not None and low > high:
        problems.append(f"the {what} minimum ({low}) is above its maximum ({high})")


def _check_perimeter(problems: list[str], perimeter: Perimeter) -> None:
    scale, codes = perimeter.scale, perimeter.codes
    if scale not in SCALES:
        problems.append(f"unknown perimeter scale {scale!r} (known: {', '.join(SCALES)})")
        return
    if scale == "national":
        if codes:
            problems.append("a national perimeter takes no codes")
        return
    if not codes:
        problems.append(f"a {scale} perimeter needs at least one code")
    for code in codes:
        if scale == "region" and code not in REGIONS:
            problems.append(f"unknown region code {code!r}")
        elif scale == "department" and code not in DEPARTMENTS:
            problems.append(f"unknown department code {code!r}")
        elif scale == "epci" and not _SIREN.match(code):
            problems.append(f"an EPCI is named by its 9-digit SIREN, got {code!r}")
        elif scale == "territory" and not code.strip():
            problems.append("a Territoire d'industrie code is empty")


def validate_scheme(scheme: Scheme) -> Scheme:
    """Return ``scheme`` if it is consistent, else raise ``InvalidScheme`` listing why."""
    p: list[str] = []
    if not scheme.id.strip():
        p.append("the scheme has no id")
    if not scheme.name.strip():
        p.append("the scheme has no name")
    if not any(f.strip() for f in scheme.funders):
        p.append("name at least one funder: the scheme has none")
    if not scheme.source.strip():
        p.append("say where the scheme comes from: its source is empty")
    if scheme.generated and not scheme.name.startswith("GENERATED"):
        p.append("a generated scheme's name must start with GENERATED")
    _check_perimeter(p, scheme.perimeter)
    if scheme.aid_type not in AID_TYPES:
        p.append(f"unknown aid type {scheme.aid_type!r} (known: {', '.join(sorted(AID_TYPES))})")
    for size in sorted(set(scheme.beneficiaries) - FIRM_SIZES):
        p.append(f"unknown firm size {size!r} (known: {', '.join(sorted(FIRM_SIZES))})")
    for kind in sorted(set(scheme.kinds) - PROJECT_KINDS):
        p.append(f"unknown project kind {kind!r} (known: {', '.join(sorted(PROJECT_KINDS))})")
    for theme in sorted(scheme.themes - THEMES):
        p.append(f"unknown theme {theme!r} (known: {', '.join(sorted(THEMES))})")
    for section in sorted(scheme.naf_sections - NAF_SECTIONS.keys()):
        p.append(f"unknown NAF section {section!r} (sections are the letters A to U)")
    for prefix in sorted(scheme.naf_prefix_set):
        if not _NAF_PREFIX.match(prefix):
            p.append(f"a NAF prefix looks like 22, 22.1, 22.11 or 22.11Z, got {prefix!r}")
    for label, rate in (("minimum", scheme.rate_min_pct), ("maximum", scheme.rate_max_pct)):
        if rate is not None and not 0 <= rate <= 100:
            p.append(f"the {label} rate must be between 0 and 100 %, got {rate}")
    lo, hi = scheme.rate_min_pct, scheme.rate_max_pct
    if lo is not None and hi is not None and lo > hi:
        p.append(f"the minimum rate ({lo} %) is above the maximum rate ({hi} %)")
    _check_bounds(p, "aid amount", scheme.amount_min_eur, scheme.amount_max_eur)
    _check_bounds(p, "investment (capex)", scheme.capex_min_eur, scheme.capex_max_eur)
    if scheme.opens_on and scheme.closes_on and scheme.closes_on < scheme.opens_on:
        p.append(
            f"the scheme closes on {scheme.closes_on.isoformat()},"
            f" before it opens on {scheme.opens_on.isoformat()}"
        )
    if p:
        raise InvalidScheme(scheme.id, tuple(p))
    return scheme


def validate_call(call: Call, scheme: Scheme | None = None) -> Call:
    """Rounds in date order, non-negative sizes, within the scheme's dates when given."""
    problems: list[str] = []
    if not call.name.strip():
        problems.append("the call has no name")
    if not call.rounds:
        problems.append("a call has at least one selection round")
    if scheme is not None and scheme.id != call.scheme_id:
        problems.append(f"the call belongs to scheme {call.scheme_id}, not {scheme.id}")
    dated = [r.closes_on for r in call.rounds if r.closes_on is not None]
    if dated != sorted(dated):
        problems.append("the selection rounds are not in date order")
    for r in call.rounds:
        if r.envelope_eur is not None and r.envelope_eur < 0:
            problems.append(f"round {r.name!r} has a negative envelope")
        if r.quota is not None and r.quota < 0:
            problems.append(f"round {r.name!r} has a negative quota")
        if scheme is not None and r.closes_on is not None:
            if scheme.closes_on is not None and r.closes_on > scheme.closes_on:
                problems.append(
                    f"round {r.name!r} closes on {r.closes_on.isoformat()},"
                    f" after the scheme closes ({scheme.closes_on.isoformat()})"
                )
            if scheme.opens_on is not None and r.closes_on < scheme.opens_on:
                problems.append(
                    f"round {r.name!r} closes on {r.closes_on.isoformat()},"
                    f" before the scheme opens ({scheme.opens_on.isoformat()})"
                )
    if problems:
        raise InvalidCall(f"call {call.id}: " + "; ".join(problems))
    return call
