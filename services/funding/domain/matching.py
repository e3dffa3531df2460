"""Matching a project to the catalogue: every criterion, with its reason, and a ranking.

Pure Python. Like Aides-territoires' ``AidSearchForm`` this is a *filter cascade*, and
like Place des Entreprises' ``MatchFilter`` each filter is an explicit rule (perimeter,
size, NAF, …). Unlike both, every criterion of every scheme is evaluated and explained,
as ``pass``, ``fail`` or ``unknown`` — because why a scheme does *not* fit matters to
the crisis cell too, and because a missing figure (the firm's size, its investment) is
not a refusal: it is a question to ask the firm.

The criteria, always in this order (``CRITERIA``):

``perimeter``   the project's territory lies in the scheme's perimeter (a project with only
                a department gets its region from the department table);
``dates``       the scheme is open on ``today`` (closed → fail "closed on …"; not open yet →
                fail "opens on …"); a call's next selection round is named when known;
``beneficiary`` the firm's size is one the scheme accepts;
``naf``         the firm's NAF code is in one of the scheme's sections or prefixes;
``kind``        the project's kind is one the scheme funds, or its themes (``KIND_THEMES``)
                meet the scheme's themes; a project of kind ``other`` is ``unknown``;
``capex``       the investment is within the scheme's investment bounds;
``amount``      the funding need is not below the scheme's smallest aid (a need above its
                largest aid passes: the scheme covers part of it).

A scheme is *eligible* when no criterion fails. Eligible schemes are ranked by (1) more
criteria passed (fewer unknowns), (2) narrower perimeter first — territory, EPCI,
department, region, national, as Aides-territoires orders by ``perimeter__scale`` —,
(3) higher maximum rate (unknown rate last), then (4) scheme id: the ranking is
deterministic whatever the catalogue's order. ``score`` is the share of criteria passed.

Speed: ``match`` builds a project context once (region, NAF prefixes, themes…) and runs
the status rules — the same functions ``evaluate`` uses, so both always agree — until a
first failure. Given an ``IndexedCatalogue`` (indexed by perimeter, kind and theme, and
NAF) it runs them only on the schemes none of those three rules fails for: a scheme left
out is one the full scan would reject, so the result is the same. Reasons are only
written for the schemes it returns, and identical results ("perimeter: national
scheme…") are built once (``_result``'s cache). No regex runs here.
``consent_to_share`` is not a criterion: matching is internal, and what funders may see
is decided where events are published.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal

from services.funding.domain.catalogue import (
    DEPARTMENTS,
    NAF_SECTIONS,
    Call,
    Scheme,
    department_label,
    region_label,
)
from shared.events.campaigns import ProjectKind
from shared.events.funding import CriterionResult, FirmSize, FirmSizeSource

__all__ = [
    "CRITERIA",
    "KIND_LABELS",
    "KIND_THEMES",
    "Match",
    "ProjectProfile",
    "eur",
    "evaluate",
    "explain_rejections",
    "match",
]

Status = Literal["pass", "fail", "unknown"]

CRITERIA: Final = ("perimeter", "dates", "beneficiary", "naf", "kind", "capex", "amount")

#: The themes each kind of project falls under, to meet schemes that list themes rather
#: than kinds (most real schemes do: "décarbonation", "modernisation"…):
#:
#: * capacity extension and a new line are industrial development and modernisation;
#: * modernisation / automation is modernisation and digital;
#: * decarbonation / energy is decarbonation and energy;
#: * R&D / innovation is innovation;
#: * a site takeover or a new site is industrial development and land / brownfields
#:   (buildings, land, redevelopment);
#: * skills / training is skills;
#: * ``other`` has no theme: against a scheme that restricts kinds or themes it is
#:   ``unknown`` (to be checked by hand), never a silent pass or fail.
KIND_THEMES: Final[Mapping[ProjectKind, frozenset[str]]] = MappingProxyType(
    {
        "capacity_extension": frozenset({"industrial_development", "modernisation"}),
        "new_line": frozenset({"industrial_development", "modernisation"}),
        "modernisation_automation": frozenset({"modernisation", "digital"}),
        "decarbonation_energy": frozenset({"decarbonation", "energy"}),
        "rnd_innovation": frozenset({"innovation"}),
        "site_takeover": frozenset({"land_brownfields", "industrial_development"}),
        "new_site": frozenset({"land_brownfields", "industrial_development"}),
        "skills_training": frozenset({"skills"}),
        "other": frozenset(),
    }
)

KIND_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "capacity_extension": "capacity extension",
        "new_line": "new production line",
        "modernisation_automation": "modernisation / automation",
        "decarbonation_energy": "decarbonation / energy",
        "rnd_innovation": "R&D / innovation",
        "site_takeover": "site takeover",
        "new_site": "new site",
        "skills_training": "skills / training",
        "other": "other",
    }
)

_SIZE_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {"micro": "a micro-firm", "sme": "an SME", "midcap": "a mid-cap (ETI)", "large": "a large firm"}
)
_SIZE_ORDER: Final = ("micro", "sme", "midcap", "large")
_SIZE_SOURCES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "company_category": " (by its INSEE company category)",
        "headcount_band": " (estimated from its site's headcount band)",
    }
)
_SIZE_PLURALS: Final[Mapping[str, str]] = MappingProxyType(
    {"micro": "micro-firms", "sme": "SMEs", "midcap": "mid-caps (ETI)", "large": "large firms"}
)


def _division_sections() -> dict[str, str]:
    ranges = (
        ("A", 1, 3), ("B", 5, 9), ("C", 10, 33), ("D", 35, 35), ("E", 36, 39),
        ("F", 41, 43), ("G", 45, 47), ("H", 49, 53), ("I", 55, 56), ("J", 58, 63),
        ("K", 64, 66), ("L", 68, 68), ("M", 69, 75), ("N", 77, 82), ("O", 84, 84),
        ("P", 85, 85), ("Q", 86, 88), ("R", 90, 93), ("S", 94, 96), ("T", 97, 98),
        ("U", 99, 99),
    )  # fmt: skip
    return {f"{d:02d}": s for s, lo, hi in ranges for d in range(lo, hi + 1)}


#: NAF rév. 2 division (2 digits) → section letter.
_SECTION_OF_DIVISION: Final[Mapping[str, str]] = MappingProxyType(_division_sections())


@dataclass(frozen=True)
class ProjectProfile:
    """What the funding service knows of a project (from detection, the registry and the
    survey): where it is, who carries it, what it is and how much it needs."""

    project_id: uuid.UUID
    territory_id: str
    region_code: str | None
    department_code: str | None
    epci_sirens: tuple[str, ...]
    firm_size: FirmSize | None
    naf_code: str | None
    kind: ProjectKind
    jobs_planned: int
    capex_eur: int | None
    funding_need_eur: int | None
    consent_to_share: bool
    #: how `firm_size` was found: the firm's INSEE company category, or its site's band
    firm_size_source: FirmSizeSource | None = None


@dataclass(frozen=True)
class Match:
    """One scheme for one project: every criterion, and where it ranks."""

    scheme: Scheme
    criteria: tuple[CriterionResult, ...]
    eligible: bool  # no criterion fails
    score: float  # share of the criteria passed, 0..1
    unknowns: int

    @property
    def fails(self) -> int:
        return sum(1 for c in self.criteria if c.status == "fail")

    @property
    def passed(self) -> int:
        return sum(1 for c in self.criteria if c.status == "pass")

    def criterion(self, name: str) -> CriterionResult:
        return next(c for c in self.criteria if c.criterion == name)


@dataclass(frozen=True)
class _Ctx:
    """The project, precomputed once for a whole catalogue."""

    today: date
    territory: str
    region: str | None
    department: str | None
    epcis: frozenset[str]
    size: FirmSize | None
    size_source: FirmSizeSource | None
    naf: str | None
    naf_prefixes: frozenset[str]  # "22", "22.1", "22.11", "22.11Z"
    section: str | None
    kind: ProjectKind
    themes: frozenset[str]
    capex: int | None
    need: int | None


def _context(project: ProjectProfile, today: date) -> _Ctx:
    department = project.department_code
    region = project.region_code
    if region is None and department is not None and department in DEPARTMENTS:
        region = DEPARTMENTS[department][1]
    naf = project.naf_code.strip().upper() if project.naf_code else None
    prefixes: frozenset[str] = frozenset()
    section = None
    if naf:
        compact = naf.replace(".", "")
        division = compact[:2]
        section = _SECTION_OF_DIVISION.get(division)
        dotted = f"{division}.{compact[2:]}" if len(compact) > 2 else division
        prefixes = frozenset(dotted[:n] for n in range(2, len(dotted) + 1) if n != 3)
    return _Ctx(
        today=today,
        territory=project.territory_id,
        region=region,
        department=department,
        epcis=frozenset(project.epci_sirens),
        size=project.firm_size,
        size_source=project.firm_size_source,
        naf=naf,
        naf_prefixes=prefixes,
        section=section,
        kind=project.kind,
        themes=KIND_THEMES.get(project.kind, frozenset()),
        capex=project.capex_eur,
        need=project.funding_need_eur,
    )


class IndexedCatalogue(list[Scheme]):
    """The catalogue (a list, in its order) with the indexes ``match`` uses to examine
    only the schemes whose perimeter, kind/themes and NAF rules do not fail for the
    project. Built once per catalogue (the repository's cache keeps it while the
    catalogue is unchanged); never mutate it after building."""

    def __init__(self, schemes: Iterable[Scheme] = ()) -> None:
        super().__init__(schemes)
        self._by_place: dict[tuple[str, str], list[int]] = {}
        self._by_scale: dict[str, list[int]] = {}
        self._by_kind: dict[str, list[int]] = {}
        self._by_theme: dict[str, list[int]] = {}
        self._by_section: dict[str, list[int]] = {}
        self._by_prefix: dict[str, list[int]] = {}
        self._any_kind: list[int] = []
        self._any_naf: list[int] = []
        for i, scheme in enumerate(self):
            scale = scheme.perimeter.scale
            self._by_scale.setdefault(scale, []).append(i)
            for code in scheme.perimeter_codes:
                self._by_place.setdefault((scale, code), []).append(i)
            if not (scheme.kinds or scheme.themes):
                self._any_kind.append(i)
            for kind in scheme.kinds:
                self._by_kind.setdefault(kind, []).append(i)
            for theme in scheme.themes:
                self._by_theme.setdefault(theme, []).append(i)
            if not scheme.restricts_naf:
                self._any_naf.append(i)
            for section in scheme.naf_sections:
                self._by_section.setdefault(section, []).append(i)
            for prefix in scheme.naf_prefix_set:
                self._by_prefix.setdefault(prefix, []).append(i)

    def candidates(self, c: _Ctx) -> list[Scheme]:
        """The schemes none of the three indexed rules fails for, in catalogue order."""
        found = self._by_perimeter(c)
        if c.kind != "other":  # for "other" the kind rule is never a fail
            found &= self._union(
                self._any_kind,
                self._by_kind.get(c.kind, ()),
                *(self._by_theme.get(t, ()) for t in c.themes),
            )
        if c.naf is not None:  # without a NAF code the rule is unknown, never a fail
            found &= self._union(
                self._any_naf,
                self._by_section.get(c.section or "", ()),
                *(self._by_prefix.get(p, ()) for p in c.naf_prefixes),
            )
        return [self[i] for i in sorted(found)]

    def candidates_for(self, project: ProjectProfile, today: date) -> list[Scheme]:
        return self.candidates(_context(project, today))

    def _by_perimeter(self, c: _Ctx) -> set[int]:
        found = set(self._by_scale.get("national", ()))
        places: dict[str, Iterable[str] | None] = {
            "region": None if c.region is None else (c.region,),
            "department": None if c.department is None else (c.department,),
            "territory": (c.territory,),
            "epci": c.epcis or None,
        }
        for scale in self._by_scale:
            if scale == "national":
                continue
            codes = places.get(scale)
            if codes is None:  # the project's place at that scale is unknown: not a fail
                found.update(self._by_scale[scale])
            else:
                for code in codes:
                    found.update(self._by_place.get((scale, code), ()))
        return found

    @staticmethod
    def _union(*lists: Iterable[int]) -> set[int]:
        out: set[int] = set()
        for items in lists:
            out.update(items)
        return out


# --- status rules (shared by match's fast path and evaluate) -----------------------------


def _perimeter(s: Scheme, c: _Ctx) -> Status:
    scale = s.perimeter.scale
    if scale == "national":
        return "pass"
    if scale == "region":
        where: str | None = c.region
    elif scale == "department":
        where = c.department
    elif scale == "territory":
        where = c.territory
    else:  # epci
        if not c.epcis:
            return "unknown"
        return "pass" if c.epcis & s.perimeter_codes else "fail"
    if where is None:
        return "unknown"
    return "pass" if where in s.perimeter_codes else "fail"


def _dates(s: Scheme, c: _Ctx) -> Status:
    if s.closes_on is not None and c.today > s.closes_on:
        return "fail"
    if s.opens_on is not None and c.today < s.opens_on:
        return "fail"
    return "pass"


def _beneficiary(s: Scheme, c: _Ctx) -> Status:
    if not s.beneficiaries:
        return "pass"
    if c.size is None:
        return "unknown"
    return "pass" if c.size in s.beneficiaries else "fail"


def _naf(s: Scheme, c: _Ctx) -> Status:
    if not (s.naf_sections or s.naf_prefix_set):
        return "pass"
    if c.naf is None:
        return "unknown"
    if c.section in s.naf_sections or not c.naf_prefixes.isdisjoint(s.naf_prefix_set):
        return "pass"
    return "fail"


def _kind(s: Scheme, c: _Ctx) -> Status:
    if not (s.kinds or s.themes):
        return "pass"
    if c.kind in s.kinds or not c.themes.isdisjoint(s.themes):
        return "pass"
    return "unknown" if c.kind == "other" else "fail"


def _capex(s: Scheme, c: _Ctx) -> Status:
    lo, hi = s.capex_min_eur, s.capex_max_eur
    if lo is None and hi is None:
        return "pass"
    if c.capex is None:
        return "unknown"
    if (lo is not None and c.capex < lo) or (hi is not None and c.capex > hi):
        return "fail"
    return "pass"


def _amount(s: Scheme, c: _Ctx) -> Status:
    if s.amount_min_eur is None and s.amount_max_eur is None:
        return "pass"
    if c.need is None:
        return "unknown"
    if s.amount_min_eur is not None and c.need < s.amount_min_eur:
        return "fail"
    return "pass"


_RULES: Final[tuple[Callable[[Scheme, _Ctx], Status], ...]] = (
    _perimeter,
    _dates,
    _beneficiary,
    _naf,
    _kind,
    _capex,
    _amount,
)


# --- reasons ------------------------------------------------------------------------------


def eur(amount: int | float) -> str:
    """``3 000 000 €``."""
    return f"{round(amount):,} €".replace(",", " ")


def _range(lo: int | None, hi: int | None) -> str:
    if lo is not None and hi is not None:
        return f"{eur(lo)} – {eur(hi)}"
    return f"at least {eur(lo)}" if lo is not None else f"up to {eur(hi or 0)}"


def _sizes(sizes: Iterable[str]) -> str:
    chosen = [_SIZE_PLURALS[z] for z in _SIZE_ORDER if z in set(sizes)]
    return " and ".join(chosen) if len(chosen) <= 2 else ", ".join(chosen)


def _sectors(s: Scheme) -> str:
    parts = [f"section {x} ({NAF_SECTIONS.get(x, '?')})" for x in sorted(s.naf_sections)]
    parts += [f"codes {p}…" for p in sorted(s.naf_prefix_set)]
    return ", ".join(parts)


def _themes(themes: Iterable[str]) -> str:
    return ", ".join(sorted(themes)) or "none"


def _project_place(s: Scheme, c: _Ctx) -> str:
    scale = s.perimeter.scale
    if scale == "region":
        return f"the project is in {region_label(c.region)}" if c.region else ""
    if scale == "department":
        return f"the project is in {department_label(c.department)}" if c.department else ""
    if scale == "epci":
        return f"the project's EPCI is {', '.join(sorted(c.epcis))}"
    return f"the project is in Territoire d'industrie {c.territory}"


def _reason_perimeter(s: Scheme, c: _Ctx, status: Status) -> str:
    scale, where = s.perimeter.scale, s.perimeter.describe()
    if scale == "national":
        return "perimeter: national scheme, open everywhere in France"
    if status == "pass":
        return f"perimeter: the scheme covers {where}, where the project is"
    if status == "unknown":
        missing = {"epci": "EPCI"}.get(scale, scale)
        return (
            f"perimeter: unknown — the project's {missing} is not known;"
            f" the scheme is limited to {where}"
        )
    return f"perimeter: the scheme is limited to {where}; {_project_place(s, c)}"


def _reason_dates(s: Scheme, c: _Ctx, status: Status, call: Call | None) -> str:
    if status == "fail":
        if s.closes_on is not None and c.today > s.closes_on:
            return f"dates: closed on {s.closes_on.isoformat()}"
        assert s.opens_on is not None
        return f"dates: not open yet — opens on {s.opens_on.isoformat()}"
    text = "dates: open"
    if s.closes_on is not None:
        text += f" until {s.closes_on.isoformat()}"
    else:
        text += ", no closing date"
    if call is not None:
        nxt = call.next_round(c.today)
        if nxt is not None and nxt.closes_on is not None:
            text += f"; next selection round '{nxt.name}' closes on {nxt.closes_on.isoformat()}"
    return text


def _reason_beneficiary(s: Scheme, c: _Ctx, status: Status) -> str:
    if not s.beneficiaries:
        return "beneficiary: open to firms of every size"
    wanted = _sizes(s.beneficiaries)
    if status == "unknown":
        return f"beneficiary: unknown — the firm's size is not known; the scheme is for {wanted}"
    verdict = "" if status == "pass" else "not "
    firm = _SIZE_LABELS[c.size or "large"]
    source = _SIZE_SOURCES[c.size_source] if c.size_source else ""
    return f"beneficiary: the scheme is for {wanted}; the firm is {verdict}{firm}{source}"


def _reason_naf(s: Scheme, c: _Ctx, status: Status) -> str:
    if not s.restricts_naf:
        return "naf: open to every sector"
    wanted = _sectors(s)
    if status == "unknown":
        return f"naf: unknown — the firm's NAF code is not known; the scheme is for {wanted}"
    where = f"{c.naf} (section {c.section or '?'})"
    if status == "pass":
        return f"naf: {where} is among the scheme's sectors ({wanted})"
    return f"naf: {where} is outside the scheme's sectors ({wanted})"


def _reason_kind(s: Scheme, c: _Ctx, status: Status) -> str:
    if not (s.kinds or s.themes):
        return "kind: any kind of project"
    label = KIND_LABELS.get(c.kind, c.kind)
    wanted_parts: list[str] = []
    if s.kinds:
        wanted_parts.append(", ".join(KIND_LABELS.get(k, k) for k in sorted(s.kinds)) + " projects")
    if s.themes:
        wanted_parts.append(f"themes {_themes(s.themes)}")
    wanted = " or ".join(wanted_parts)
    if status == "unknown":
        return f"kind: unknown — the project's kind is 'other'; check it by hand against {wanted}"
    if status == "pass":
        if c.kind in s.kinds:
            return f"kind: the scheme funds {label} projects"
        shared = _themes(c.themes & s.themes)
        return f"kind: a {label} project meets the scheme's themes ({shared})"
    return (
        f"kind: the scheme funds {wanted};"
        f" a {label} project (themes: {_themes(c.themes)}) does not fit"
    )


def _reason_capex(s: Scheme, c: _Ctx, status: Status) -> str:
    lo, hi = s.capex_min_eur, s.capex_max_eur
    if lo is None and hi is None:
        return "capex: no investment threshold"
    if status == "unknown":
        return (
            "capex: unknown — the project's investment is not known;"
            f" the scheme needs {_range(lo, hi)}"
        )
    assert c.capex is not None
    if status == "pass":
        return f"capex: {eur(c.capex)} is within the scheme's range ({_range(lo, hi)})"
    if lo is not None and c.capex < lo:
        return (
            f"capex: the scheme needs at least {eur(lo)} of investment;"
            f" the project plans {eur(c.capex)}"
        )
    return (
        f"capex: the scheme is for investments up to {eur(hi or 0)};"
        f" the project plans {eur(c.capex)}"
    )


def _reason_amount(s: Scheme, c: _Ctx, status: Status) -> str:
    lo, hi = s.amount_min_eur, s.amount_max_eur
    if lo is None and hi is None:
        return "amount: no bounds on the aid"
    if status == "unknown":
        return f"amount: unknown — the funding need is not known; the scheme gives {_range(lo, hi)}"
    assert c.need is not None
    if status == "fail":
        return (
            f"amount: the scheme's smallest aid is {eur(lo or 0)}; the project needs {eur(c.need)}"
        )
    if hi is not None and c.need > hi:
        return f"amount: the scheme gives at most {eur(hi)} of the {eur(c.need)} needed"
    return f"amount: the {eur(c.need)} needed is within the scheme's range ({_range(lo, hi)})"


# --- evaluation and ranking ----------------------------------------------------------------


def _evaluate(s: Scheme, c: _Ctx, call: Call | None) -> tuple[CriterionResult, ...]:
    st = [rule(s, c) for rule in _RULES]
    reasons = (
        _reason_perimeter(s, c, st[0]),
        _reason_dates(s, c, st[1], call),
        _reason_beneficiary(s, c, st[2]),
        _reason_naf(s, c, st[3]),
        _reason_kind(s, c, st[4]),
        _reason_capex(s, c, st[5]),
        _reason_amount(s, c, st[6]),
    )
    return tuple(
        _result(name, status, reason)
        for name, status, reason in zip(CRITERIA, st, reasons, strict=True)
    )


@lru_cache(maxsize=16_384)
def _result(criterion: str, status: Status, reason: str) -> CriterionResult:
    """Results are immutable and many repeat ("national scheme…"): build each once."""
    return CriterionResult(criterion=criterion, status=status, reason=reason)


def _match(s: Scheme, c: _Ctx, call: Call | None) -> Match:
    criteria = _evaluate(s, c, call)
    passed = sum(1 for r in criteria if r.status == "pass")
    unknowns = sum(1 for r in criteria if r.status == "unknown")
    fails = len(criteria) - passed - unknowns
    return Match(
        scheme=s,
        criteria=criteria,
        eligible=fails == 0,
        score=round(passed / len(criteria), 3),
        unknowns=unknowns,
    )


def _rank_key(m: Match) -> tuple[int, int, int, float, int, str, str]:
    rate = m.scheme.rate_max_pct
    return (
        m.fails,
        -round(m.score * len(CRITERIA)),
        m.scheme.scale_rank,
        -(rate if rate is not None else -1.0),
        m.unknowns,
        m.scheme.id,
        m.scheme.name,
    )


def _calls_by_scheme(calls: Iterable[Call]) -> dict[str, Call]:
    by_scheme: dict[str, Call] = {}
    for call in sorted(calls, key=lambda k: k.id):
        by_scheme.setdefault(call.scheme_id, call)
    return by_scheme


def evaluate(
    scheme: Scheme, project: ProjectProfile, today: date, *, call: Call | None = None
) -> tuple[CriterionResult, ...]:
    """Every criterion of ``scheme`` for ``project`` on ``today``, in ``CRITERIA`` order."""
    return _evaluate(scheme, _context(project, today), call)


def match(
    project: ProjectProfile,
    schemes: Sequence[Scheme],
    today: date,
    *,
    calls: Iterable[Call] = (),
) -> list[Match]:
    """The eligible schemes (no criterion fails), best first; deterministic."""
    c = _context(project, today)
    by_scheme = _calls_by_scheme(calls)
    out: list[Match] = []
    if isinstance(schemes, IndexedCatalogue):
        schemes = schemes.candidates(c)
    for s in schemes:
        for rule in _RULES:
            if rule(s, c) == "fail":
                break
        else:
            out.append(_match(s, c, by_scheme.get(s.id)))
    out.sort(key=_rank_key)
    return out


def explain_rejections(
    project: ProjectProfile,
    schemes: Sequence[Scheme],
    today: date,
    *,
    calls: Iterable[Call] = (),
) -> list[Match]:
    """The schemes that do not fit, with every criterion: near misses (fewest fails) first."""
    c = _context(project, today)
    by_scheme = _calls_by_scheme(calls)
    out = [
        m
        for s in schemes
        if any(rule(s, c) == "fail" for rule in _RULES)
        for m in (_match(s, c, by_scheme.get(s.id)),)
    ]
    out.sort(key=_rank_key)
    return out
