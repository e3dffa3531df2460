"""Matching a project to the catalogue: every criterion, with its reason, and a ranking.

Pure Python. Like Aides-territoires' ``AidSearchForm`` this is a *filter cascade*, and
like Place des Entreprises' ``MatchFilter`` each filter is an explicit rule (perimeter,
size, NAF, …). Unlike both, every criterion of every scheme can be explained, as
``pass``, ``fail`` or ``unknown`` (the eligible schemes' reasons are stored; the others'
are written on request) — because why a scheme does *not* fit matters to
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

Speed: ``match`` builds a project context once (region, NAF prefixes, themes, the
project's words in the reasons…). Given a plain list it examines every scheme with the
status rules — the same functions ``evaluate`` uses — until a first failure (the full
scan, the reference). Given an ``IndexedCatalogue`` it examines none one by one but for
their investment and amount bounds: bitsets by perimeter, dates (the schemes open on a
day), firm size, NAF and kind/theme give the eligible schemes and their unknown criteria,
already in the ranking's order (see the class); the tests check that both give the same
result. Either way a ``Match`` writes its reasons only when they are read
(``Match.criteria``), from parts of each scheme's text written once, and identical results
("perimeter: national scheme…") are built once (``_result``'s cache). The reasons why a
scheme does *not* fit are only written when asked for (``explain_rejections``). No regex
runs here.

``consent_to_share`` is not a criterion: matching is internal, and what funders may see
is decided where events are published.
"""

from __future__ import annotations

import heapq
import math
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
    Perimeter,
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
    "IndexedCatalogue",
    "Match",
    "ProjectProfile",
    "count_eligible",
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


class Match:
    """One scheme for one project: where it ranks and, computed on first use, every
    criterion with its reason (``criteria``).

    The ranking needs only how many criteria fail and how many are unknown: a match of
    ``match`` carries those and writes the reasons when someone reads them (the service
    stores them for the eligible schemes; the benchmark and the plan never read them).
    Read-only by convention."""

    __slots__ = ("_call", "_criteria", "_ctx", "_statuses", "fails", "scheme", "unknowns")

    def __init__(
        self,
        scheme: Scheme,
        ctx: _Ctx,
        call: Call | None,
        unknowns: int,
        fails: int = 0,
        statuses: tuple[Status, ...] | None = None,
    ) -> None:
        self.scheme = scheme
        self.unknowns = unknowns
        self.fails = fails
        self._ctx = ctx
        self._call = call
        self._statuses = statuses
        self._criteria: tuple[CriterionResult, ...] | None = None

    @property
    def eligible(self) -> bool:
        """No criterion fails."""
        return self.fails == 0

    @property
    def passed(self) -> int:
        return len(CRITERIA) - self.fails - self.unknowns

    @property
    def score(self) -> float:
        """The share of the criteria passed, 0..1."""
        return round(self.passed / len(CRITERIA), 3)

    @property
    def criteria(self) -> tuple[CriterionResult, ...]:
        """Every criterion in ``CRITERIA`` order, with its reason (written once)."""
        if self._criteria is None:
            s, c = self.scheme, self._ctx
            statuses = self._statuses or tuple(rule(s, c) for rule in _RULES)
            self._criteria = _criteria_of(s, c, statuses, self._call)
        return self._criteria

    def criterion(self, name: str) -> CriterionResult:
        return next(c for c in self.criteria if c.criterion == name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.scheme, self.fails, self.unknowns, self.criteria) == (
            other.scheme,
            other.fails,
            other.unknowns,
            other.criteria,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Match({self.scheme.id!r}, fails={self.fails}, unknowns={self.unknowns})"


@dataclass(frozen=True)
class _Ctx:
    """The project, precomputed once for a whole catalogue (its parts of the reasons too)."""

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
    # the project's words in the reasons, written once
    firm_text: str
    naf_where: str
    kind_label: str
    themes_text: str
    capex_text: str
    need_text: str


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
    size, source = project.firm_size, project.firm_size_source
    themes = KIND_THEMES.get(project.kind, frozenset())
    capex, need = project.capex_eur, project.funding_need_eur
    return _Ctx(
        today=today,
        territory=project.territory_id,
        region=region,
        department=department,
        epcis=frozenset(project.epci_sirens),
        size=size,
        size_source=source,
        naf=naf,
        naf_prefixes=prefixes,
        section=section,
        kind=project.kind,
        themes=themes,
        capex=capex,
        need=need,
        firm_text=_SIZE_LABELS.get(size or "large", str(size))
        + (_SIZE_SOURCES.get(source, "") if source else ""),
        naf_where=f"{naf} (section {section or '?'})",
        kind_label=KIND_LABELS.get(project.kind, project.kind),
        themes_text=_themes(themes),
        capex_text="" if capex is None else eur(capex),
        need_text="" if need is None else eur(need),
    )


# --- the catalogue's index -----------------------------------------------------------------
#
# Sets of schemes are Python ints used as bitsets: bit r is the scheme at rank r of the
# catalogue's static order (see ``IndexedCatalogue``). A union or an intersection of
# 100,000 schemes is then one C loop over 1,600 machine words.


def _bits(positions: Iterable[int], size: int) -> int:
    buf = bytearray((size + 7) >> 3)
    for p in positions:
        buf[p >> 3] |= 1 << (p & 7)
    return int.from_bytes(buf, "little")


def _positions(bits: int) -> list[int]:
    """The set bits of ``bits``, lowest first."""
    if not bits:
        return []
    text = format(bits, "b")  # highest bit first
    top = len(text) - 1
    out: list[int] = []
    j = text.rfind("1")
    while j >= 0:
        out.append(top - j)
        j = text.rfind("1", 0, j)
    return out


class _Postings:
    """Key → the schemes that have it: a bitset for a frequent key, the list of ranks
    for a rare one (smaller than a bitset when under one scheme in 64)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lists: dict[object, list[int]] = {}
        self._bits: dict[object, int] = {}

    def add(self, key: object, rank: int) -> None:
        self._lists.setdefault(key, []).append(rank)

    def freeze(self) -> None:
        for key, ranks in list(self._lists.items()):
            if len(ranks) * 64 >= self._size:
                self._bits[key] = _bits(ranks, self._size)
                del self._lists[key]

    def union(self, keys: Iterable[object]) -> int:
        out = 0
        rare: list[int] = []
        for key in keys:
            bits = self._bits.get(key)
            if bits is not None:
                out |= bits
            else:
                rare.extend(self._lists.get(key, ()))
        if rare:
            out |= _bits(rare, self._size)
        return out

    def get(self, key: object) -> int:
        return self.union((key,))


_PERIMETER_SCALES: Final = ("region", "department", "territory", "epci")
_NO_LOW: Final = -math.inf  # one object for every missing bound
_NO_HIGH: Final = math.inf


def _static_key(s: Scheme) -> tuple[int, float, str, str]:
    """The ranking's tail, which depends on the scheme alone."""
    rate = s.rate_max_pct
    return (s.scale_rank, -(rate if rate is not None else -1.0), s.id, s.name)


class IndexedCatalogue(list[Scheme]):
    """The catalogue (a list, in its order) with the indexes ``match`` uses to find a
    project's eligible schemes without examining the others.

    Built once per catalogue (the repository's cache keeps it while the catalogue is
    unchanged; never mutate it after building). Every scheme gets a rank in the static
    part of the ranking (scale, rate, id, name: what does not depend on the project), and
    sets of schemes are bitsets over those ranks, by perimeter (scale and code), firm
    size, NAF section and prefix, kind and theme; the schemes open on a day (their date
    windows) are computed on the first match of that day and kept. A project's eligible
    schemes are the intersection of the sets its criteria pass or leave unknown, less
    the few the investment and amount bounds refuse (checked one by one); the unknown
    criteria are bitsets too, so the ranking is the static order within each count of
    unknowns. Reasons are written only when read (``Match.criteria``), from parts of
    each scheme's text written here once (``_texts``)."""

    def __init__(self, schemes: Iterable[Scheme] = ()) -> None:
        super().__init__(schemes)
        n = len(self)
        order = sorted(range(n), key=lambda i: _static_key(self[i]))
        self._ranked: list[Scheme] = [self[i] for i in order]
        self._by_id = {s.id: s for s in reversed(self)}  # the first of an id, as a scan
        self._size = n
        self._all = (1 << n) - 1
        self._place = _Postings(n)  # (scale, code)
        self._scale = _Postings(n)  # scale
        self._size_ok = _Postings(n)  # firm size, "*" for every size
        self._naf = _Postings(n)  # ("s", section) | ("p", prefix) | "*" unrestricted
        self._kind = _Postings(n)  # ("k", kind) | ("t", theme) | "*" unrestricted
        self._funder = _Postings(n)
        always_open: list[int] = []
        self._windows: list[tuple[int, date | None, date | None]] = []
        capex_bounded: list[int] = []
        amount_bounded: list[int] = []
        self._capex_lo: list[float] = []
        self._capex_hi: list[float] = []
        self._amount_lo: list[float] = []
        for r, s in enumerate(self._ranked):
            scale = s.perimeter.scale
            if scale != "national" and scale not in _PERIMETER_SCALES:
                scale = "epci"  # as the perimeter rule reads an unknown scale
            self._scale.add(scale, r)
            for code in s.perimeter_codes:
                self._place.add((scale, code), r)
            if not s.beneficiaries:
                self._size_ok.add("*", r)
            for size in s.beneficiaries:
                self._size_ok.add(size, r)
            if not s.restricts_naf:
                self._naf.add("*", r)
            for section in s.naf_sections:
                self._naf.add(("s", section), r)
            for prefix in s.naf_prefix_set:
                self._naf.add(("p", prefix), r)
            if not (s.kinds or s.themes):
                self._kind.add("*", r)
            for kind in s.kinds:
                self._kind.add(("k", kind), r)
            for theme in s.themes:
                self._kind.add(("t", theme), r)
            for funder in s.funders:
                self._funder.add(funder, r)
            if s.opens_on is None and s.closes_on is None:
                always_open.append(r)
            else:
                self._windows.append((r, s.opens_on, s.closes_on))
            lo, hi = s.capex_min_eur, s.capex_max_eur
            if lo is not None or hi is not None:
                capex_bounded.append(r)
            self._capex_lo.append(_NO_LOW if lo is None else lo)
            self._capex_hi.append(_NO_HIGH if hi is None else hi)
            if s.amount_min_eur is not None or s.amount_max_eur is not None:
                amount_bounded.append(r)
            self._amount_lo.append(_NO_LOW if s.amount_min_eur is None else s.amount_min_eur)
            _texts(s)
        for postings in (self._place, self._scale, self._size_ok, self._naf, self._kind):
            postings.freeze()
        self._funder.freeze()
        self._always_open = _bits(always_open, n)
        self._capex_bounded = _bits(capex_bounded, n)
        self._amount_bounded = _bits(amount_bounded, n)
        self._restricted_size = self._all & ~self._size_ok.get("*")
        self._restricted_naf = self._all & ~self._naf.get("*")
        self._open: dict[date, int] = {}

    # --- sets of schemes, by criterion: (passing or unknown, unknown) -------------------

    def open_on(self, today: date) -> int:
        """The schemes open on ``today`` (no date criterion fails), kept per day."""
        found = self._open.get(today)
        if found is None:
            found = self._always_open | _bits(
                (
                    r
                    for r, opens, closes in self._windows
                    if (closes is None or today <= closes) and (opens is None or today >= opens)
                ),
                self._size,
            )
            if len(self._open) >= 4:  # days go by: keep the last few
                self._open.pop(next(iter(self._open)))
            self._open[today] = found
        return found

    def _perimeter(self, c: _Ctx) -> tuple[int, int]:
        ok = self._scale.get("national")
        unknown = 0
        places: dict[str, Iterable[str] | None] = {
            "region": None if c.region is None else (c.region,),
            "department": None if c.department is None else (c.department,),
            "territory": (c.territory,),
            "epci": c.epcis or None,
        }
        for scale in _PERIMETER_SCALES:
            codes = places[scale]
            if codes is None:  # the project's place at that scale is unknown: not a fail
                every = self._scale.get(scale)
                ok |= every
                unknown |= every
            else:
                ok |= self._place.union((scale, code) for code in codes)
        return ok, unknown

    def _beneficiary(self, c: _Ctx) -> tuple[int, int]:
        if c.size is None:
            return self._all, self._restricted_size
        return self._size_ok.union(("*", c.size)), 0

    def _naf_sets(self, c: _Ctx) -> tuple[int, int]:
        if c.naf is None:
            return self._all, self._restricted_naf
        keys: list[object] = ["*", ("s", c.section)]
        keys.extend(("p", p) for p in c.naf_prefixes)
        return self._naf.union(keys), 0

    def _kind_sets(self, c: _Ctx) -> tuple[int, int]:
        keys: list[object] = ["*", ("k", c.kind)]
        keys.extend(("t", t) for t in c.themes)
        passing = self._kind.union(keys)
        if c.kind == "other":  # never a fail: unknown where it does not pass
            return self._all, self._all & ~passing
        return passing, 0

    def _select(self, c: _Ctx) -> tuple[int, list[int]]:
        """The schemes no indexed criterion fails for, and the sets of each criterion's
        unknowns (the investment's and the amount's included)."""
        ok, unknown_perimeter = self._perimeter(c)
        unknowns = [unknown_perimeter]
        ok &= self.open_on(c.today)
        for sets in (self._beneficiary, self._naf_sets, self._kind_sets):
            if not ok:
                break
            passing, unknown = sets(c)
            ok &= passing
            unknowns.append(unknown)
        if c.capex is None:
            unknowns.append(self._capex_bounded)
        if c.need is None:
            unknowns.append(self._amount_bounded)
        return ok, [u & ok for u in unknowns if u & ok]

    def candidates(self, c: _Ctx) -> list[Scheme]:
        """The schemes examined one by one (for their investment and amount bounds): the
        ones no other criterion fails for, in rank order."""
        ok, _ = self._select(c)
        return [self._ranked[r] for r in _positions(ok)]

    def candidates_for(self, project: ProjectProfile, today: date) -> list[Scheme]:
        return self.candidates(_context(project, today))

    def of_funder(self, funder: str) -> list[Scheme]:
        """The schemes ``funder`` finances, in rank order."""
        return [self._ranked[r] for r in _positions(self._funder.get(funder))]

    def _within_bounds(self, ranks: list[int], c: _Ctx) -> list[int]:
        """``ranks`` less the schemes the project's investment or need is outside of."""
        capex, need = c.capex, c.need
        if capex is not None and ranks:
            lo, hi = self._capex_lo, self._capex_hi
            ranks = [r for r in ranks if lo[r] <= capex <= hi[r]]
        if need is not None and ranks:
            amount_lo = self._amount_lo
            ranks = [r for r in ranks if need >= amount_lo[r]]
        return ranks

    def count_eligible(self, c: _Ctx) -> int:
        ok, _ = self._select(c)
        if c.capex is None and c.need is None:
            return ok.bit_count()
        return len(self._within_bounds(_positions(ok), c))

    def by_id(self, scheme_id: str) -> Scheme | None:
        return self._by_id.get(scheme_id)

    def eligible(self, c: _Ctx, calls: Mapping[str, Call]) -> list[Match]:
        """The project's eligible schemes, best first."""
        ok, unknown_sets = self._select(c)
        # How many criteria are unknown, per scheme, as bitsets: the binary digits of the
        # count (at most 6 < 8), added set by set.
        digits = [0, 0, 0]
        for unknown in unknown_sets:
            carry = unknown
            for i in range(3):
                digits[i], carry = digits[i] ^ carry, digits[i] & carry
                if not carry:
                    break
        ranked = self._ranked
        out: list[Match] = []
        for k in range(len(CRITERIA)):
            exactly = ok
            for i in range(3):
                exactly &= digits[i] if k >> i & 1 else ~digits[i]
            ranks = self._within_bounds(_positions(exactly), c)
            if calls:
                out.extend(Match(s, c, calls.get(s.id), k) for s in map(ranked.__getitem__, ranks))
            else:
                out.extend(Match(ranked[r], c, None, k) for r in ranks)
        return out


# --- status rules (shared by match's full scan, explain_rejections and evaluate) -----------


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


def _themes(themes: Iterable[str]) -> str:
    return ", ".join(sorted(themes)) or "none"


@dataclass(frozen=True, slots=True)
class _Texts:
    """The parts of a scheme's reasons that depend on the scheme alone."""

    where: str  # its perimeter, described
    sizes: str  # the firm sizes it is for
    sectors: str  # its NAF sections and prefixes
    kinds: str  # the kinds and themes it funds
    capex_range: str
    amount_range: str


# Each part written once per distinct value, and shared by the schemes that have it: at
# 100,000 schemes the parts would otherwise be most of the index's memory.


@lru_cache(maxsize=4096)
def _where_text(perimeter: Perimeter) -> str:
    return perimeter.describe()


@lru_cache(maxsize=1024)
def _sizes_text(sizes: frozenset[str]) -> str:
    return _sizes(sizes) if sizes else ""


@lru_cache(maxsize=4096)
def _sectors_text(sections: frozenset[str], prefixes: frozenset[str]) -> str:
    parts = [f"section {x} ({NAF_SECTIONS.get(x, '?')})" for x in sorted(sections)]
    parts += [f"codes {p}…" for p in sorted(prefixes)]
    return ", ".join(parts)


@lru_cache(maxsize=4096)
def _kinds_text(kinds: frozenset[str], themes: frozenset[str]) -> str:
    wanted: list[str] = []
    if kinds:
        wanted.append(", ".join(KIND_LABELS.get(k, k) for k in sorted(kinds)) + " projects")
    if themes:
        wanted.append(f"themes {_themes(themes)}")
    return " or ".join(wanted)


@lru_cache(maxsize=1024)
def _range_text(lo: int | None, hi: int | None) -> str:
    return "" if lo is None and hi is None else _range(lo, hi)


def _texts(s: Scheme) -> _Texts:
    """Written once per scheme and kept with it (``IndexedCatalogue`` writes them all)."""
    found: _Texts | None = s.__dict__.get("_match_texts")
    if found is None:
        found = _Texts(
            where=_where_text(s.perimeter),
            sizes=_sizes_text(s.beneficiaries),
            sectors=_sectors_text(s.naf_sections, s.naf_prefix_set),
            kinds=_kinds_text(s.kinds, s.themes),
            capex_range=_range_text(s.capex_min_eur, s.capex_max_eur),
            amount_range=_range_text(s.amount_min_eur, s.amount_max_eur),
        )
        object.__setattr__(s, "_match_texts", found)  # not a field: never compared
    return found


def _project_place(s: Scheme, c: _Ctx) -> str:
    scale = s.perimeter.scale
    if scale == "region":
        return f"the project is in {region_label(c.region)}" if c.region else ""
    if scale == "department":
        return f"the project is in {department_label(c.department)}" if c.department else ""
    if scale == "epci":
        return f"the project's EPCI is {', '.join(sorted(c.epcis))}"
    return f"the project is in Territoire d'industrie {c.territory}"


def _reason_perimeter(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    scale, where = s.perimeter.scale, t.where
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
    if s.closes_on is not None:
        text = f"dates: open until {s.closes_on.isoformat()}"
    else:
        text = "dates: open, no closing date"
    if call is not None:
        nxt = call.next_round(c.today)
        if nxt is not None and nxt.closes_on is not None:
            text += f"; next selection round '{nxt.name}' closes on {nxt.closes_on.isoformat()}"
    return text


def _reason_beneficiary(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    if not s.beneficiaries:
        return "beneficiary: open to firms of every size"
    if status == "unknown":
        return f"beneficiary: unknown — the firm's size is not known; the scheme is for {t.sizes}"
    verdict = "" if status == "pass" else "not "
    return f"beneficiary: the scheme is for {t.sizes}; the firm is {verdict}{c.firm_text}"


def _reason_naf(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    if not s.restricts_naf:
        return "naf: open to every sector"
    if status == "unknown":
        return f"naf: unknown — the firm's NAF code is not known; the scheme is for {t.sectors}"
    if status == "pass":
        return f"naf: {c.naf_where} is among the scheme's sectors ({t.sectors})"
    return f"naf: {c.naf_where} is outside the scheme's sectors ({t.sectors})"


def _reason_kind(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    if not (s.kinds or s.themes):
        return "kind: any kind of project"
    if status == "unknown":
        return f"kind: unknown — the project's kind is 'other'; check it by hand against {t.kinds}"
    label = c.kind_label
    if status == "pass":
        if c.kind in s.kinds:
            return f"kind: the scheme funds {label} projects"
        shared = _themes(c.themes & s.themes)
        return f"kind: a {label} project meets the scheme's themes ({shared})"
    return (
        f"kind: the scheme funds {t.kinds};"
        f" a {label} project (themes: {c.themes_text}) does not fit"
    )


def _reason_capex(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    lo, hi = s.capex_min_eur, s.capex_max_eur
    if lo is None and hi is None:
        return "capex: no investment threshold"
    if status == "unknown":
        return (
            "capex: unknown — the project's investment is not known;"
            f" the scheme needs {t.capex_range}"
        )
    assert c.capex is not None
    if status == "pass":
        return f"capex: {c.capex_text} is within the scheme's range ({t.capex_range})"
    if lo is not None and c.capex < lo:
        return (
            f"capex: the scheme needs at least {eur(lo)} of investment;"
            f" the project plans {c.capex_text}"
        )
    return (
        f"capex: the scheme is for investments up to {eur(hi or 0)};"
        f" the project plans {c.capex_text}"
    )


def _reason_amount(s: Scheme, c: _Ctx, status: Status, t: _Texts) -> str:
    lo, hi = s.amount_min_eur, s.amount_max_eur
    if lo is None and hi is None:
        return "amount: no bounds on the aid"
    if status == "unknown":
        return f"amount: unknown — the funding need is not known; the scheme gives {t.amount_range}"
    assert c.need is not None
    if status == "fail":
        return (
            f"amount: the scheme's smallest aid is {eur(lo or 0)}; the project needs {c.need_text}"
        )
    if hi is not None and c.need > hi:
        return f"amount: the scheme gives at most {eur(hi)} of the {c.need_text} needed"
    return f"amount: the {c.need_text} needed is within the scheme's range ({t.amount_range})"


# --- evaluation and ranking ----------------------------------------------------------------


def _criteria_of(
    s: Scheme, c: _Ctx, st: Sequence[Status], call: Call | None
) -> tuple[CriterionResult, ...]:
    t = _texts(s)
    return (
        _result("perimeter", st[0], _reason_perimeter(s, c, st[0], t)),
        _result("dates", st[1], _reason_dates(s, c, st[1], call)),
        _result("beneficiary", st[2], _reason_beneficiary(s, c, st[2], t)),
        _result("naf", st[3], _reason_naf(s, c, st[3], t)),
        _result("kind", st[4], _reason_kind(s, c, st[4], t)),
        _result("capex", st[5], _reason_capex(s, c, st[5], t)),
        _result("amount", st[6], _reason_amount(s, c, st[6], t)),
    )


@lru_cache(maxsize=16_384)
def _result(criterion: str, status: Status, reason: str) -> CriterionResult:
    """Results are immutable and many repeat ("national scheme…"): build each once."""
    return CriterionResult(criterion=criterion, status=status, reason=reason)


def _examined(s: Scheme, c: _Ctx, call: Call | None) -> Match:
    statuses = tuple(rule(s, c) for rule in _RULES)
    fails = statuses.count("fail")
    return Match(s, c, call, statuses.count("unknown"), fails, statuses)


def _rank_key(m: Match) -> tuple[int, int, int, float, int, str, str]:
    rate = m.scheme.rate_max_pct
    return (
        m.fails,
        -m.passed,
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
    return _examined(scheme, _context(project, today), call).criteria


def match(
    project: ProjectProfile,
    schemes: Sequence[Scheme],
    today: date,
    *,
    calls: Iterable[Call] = (),
) -> list[Match]:
    """The eligible schemes (no criterion fails), best first; deterministic. Their
    reasons are written when read (``Match.criteria``)."""
    c = _context(project, today)
    by_scheme = _calls_by_scheme(calls)
    if isinstance(schemes, IndexedCatalogue):
        return schemes.eligible(c, by_scheme)
    out: list[Match] = []
    for s in schemes:  # the full scan: every scheme examined
        for rule in _RULES:
            if rule(s, c) == "fail":
                break
        else:
            out.append(_examined(s, c, by_scheme.get(s.id)))
    out.sort(key=_rank_key)
    return out


def count_eligible(project: ProjectProfile, schemes: Sequence[Scheme], today: date) -> int:
    """How many schemes ``match`` would return, without writing them."""
    if isinstance(schemes, IndexedCatalogue):
        return schemes.count_eligible(_context(project, today))
    return len(match(project, schemes, today))


def explain_rejections(
    project: ProjectProfile,
    schemes: Sequence[Scheme],
    today: date,
    *,
    calls: Iterable[Call] = (),
    limit: int | None = None,
) -> list[Match]:
    """The schemes that do not fit, with every criterion: near misses (fewest fails)
    first; the first ``limit`` only when given. Every scheme is examined (this is the
    "why not", asked for, not part of matching); reasons are written when read."""
    c = _context(project, today)
    by_scheme = _calls_by_scheme(calls)
    examined = (_examined(s, c, by_scheme.get(s.id)) for s in schemes)
    rejected = (m for m in examined if m.fails)
    if limit is not None:
        return heapq.nsmallest(limit, rejected, key=_rank_key)
    return sorted(rejected, key=_rank_key)
