"""Planning a rebond campaign: which sites get a visit, by whom, on which day.

Pure and deterministic: same inputs, same plan, whatever the order of the targets or of
the roster (no randomness, no dependence on set or dict iteration order).

Priority (``priority``): the score is the sum of two components, each stated in the
reasons so the crisis cell can see why a site comes first.

* **Size** — bigger firms first, since they carry more jobs and more investment capacity:
  ``7 × ln(1 + employees)`` from the midpoint of the INSEE headcount band (01→1.5,
  02→4, 03→7.5, 11→15, 12→35, 21→75, 22→150, 31→225, 32→375, 41→750, 42→1500,
  51→3500, 52→7500, 53→10000), rounded to 0.1. The log keeps a 10,000-employee plant from
  drowning every other criterion: band 12 → +25.1, band 21 → +30.3, band 41 → +46.3,
  band 53 → +64.5. NN (non-employer), 00 (no employee at year end), unknown or
  unrecognised bands → +0.
* **NAF closeness to the closing site** — suppliers, subcontractors and firms sharing its
  skills are the likeliest to take over workers, machines or markets. Only the closest
  level counts: same sub-class (``22.11Z``) +40, same class (``22.11``) +35, same group
  (``22.1``) +30, same division (``22``) +25, same section (``C``) +10, otherwise +0.
* **Not yet visited** — a filter, not a weight: a visited site is never scheduled again
  and appears neither in the visits nor in the uncovered list.

Ties are broken by ``site_id``, so the order is total.

Plan (``make_plan``), in this order:

1. **Budget.** Unvisited targets are taken in priority order (pinned ones too: pinning
   says who visits, not whether); a target is covered while ``budget_used_days +
   covered × cost_per_visit_days <= budget_days``. The rest are uncovered, with a reason
   naming the budget.
2. **Calendar.** Each consultant has ``working days × daily_cap`` slots between
   ``next_working_day(start)`` and ``end``. Covered targets beyond the roster's slots
   (lowest priorities first), or beyond their pinned consultant's slots, are uncovered
   with "no working day left before <end>".
3. **Assignment.** Targets pinned to a consultant of the roster stay with them (a pin to
   someone off the roster is ignored). The others are grouped by commune, communes are
   ordered along a Hilbert curve over their centroids (communes without coordinates
   last, by commune code), and that sequence is cut into contiguous chunks, one per
   consultant, sized so that every consultant's load (pinned + chunk) is as even as the
   calendars allow. Consultants take their chunk in id order, or, when every one of them
   has located pinned sites (a re-plan), in the order of those sites along the curve, so
   new sites extend existing areas. A cut moves to the nearest commune boundary when
   that costs at most ``h`` visits of imbalance, ``h = min((largest commune − 1) // 2,
   fair share // 10)``; otherwise the commune is split. Hence max − min visits per
   consultant ≤ the largest commune (≤ 1 when communes hold one or two sites), and no
   consultant gains or loses more than a tenth of a fair share to keep a town whole.
4. **Schedule.** Each consultant visits their sites (pinned and new alike) commune by
   commune, nearest-neighbour from the commune that comes first along the curve,
   highest priority first within a commune; ``daily_cap`` visits per working day from
   ``next_working_day(start)``, never after ``end``.

Every unvisited target ends up in exactly one of ``Plan.visits`` and ``Plan.uncovered``.
"""

from __future__ import annotations

import heapq
import math
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from types import MappingProxyType

from services.campaigns.domain.calendar import next_working_day, working_days

__all__ = [
    "NAF_WEIGHTS",
    "SIZE_WEIGHT",
    "Plan",
    "PlanningRules",
    "Priority",
    "ScheduledVisit",
    "Target",
    "Uncovered",
    "distance_km",
    "make_plan",
    "priority",
]

# Budget sums are floats (0.75-day visits…): without a tolerance, 200 × 0.75 may land a
# hair above 150.0 and lose the last affordable visit.
_EPSILON_DAYS = 1e-9

SIZE_WEIGHT = 7.0

# Midpoints of the INSEE headcount bands; 53 is open-ended, 10,000 is its floor.
_BAND_EMPLOYEES: dict[str, float] = {
    "01": 1.5,
    "02": 4.0,
    "03": 7.5,
    "11": 15.0,
    "12": 35.0,
    "21": 75.0,
    "22": 150.0,
    "31": 225.0,
    "32": 375.0,
    "41": 750.0,
    "42": 1500.0,
    "51": 3500.0,
    "52": 7500.0,
    "53": 10000.0,
}

_BAND_LABEL: dict[str, str] = {
    "NN": "non-employer unit",
    "00": "no employee at year end",
    "01": "1–2 employees",
    "02": "3–5 employees",
    "03": "6–9 employees",
    "11": "10–19 employees",
    "12": "20–49 employees",
    "21": "50–99 employees",
    "22": "100–199 employees",
    "31": "200–249 employees",
    "32": "250–499 employees",
    "41": "500–999 employees",
    "42": "1,000–1,999 employees",
    "51": "2,000–4,999 employees",
    "52": "5,000–9,999 employees",
    "53": "10,000 employees or more",
}

NAF_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"sub-class": 40.0, "class": 35.0, "group": 30.0, "division": 25.0, "section": 10.0}
)

# NAF rév. 2 sections by division range; divisions outside these ranges do not exist.
_SECTIONS: tuple[tuple[int, int, str], ...] = (
    (1, 3, "A"),
    (5, 9, "B"),
    (10, 33, "C"),
    (35, 35, "D"),
    (36, 39, "E"),
    (41, 43, "F"),
    (45, 47, "G"),
    (49, 53, "H"),
    (55, 56, "I"),
    (58, 63, "J"),
    (64, 66, "K"),
    (68, 68, "L"),
    (69, 75, "M"),
    (77, 82, "N"),
    (84, 84, "O"),
    (85, 85, "P"),
    (86, 88, "Q"),
    (90, 93, "R"),
    (94, 96, "S"),
    (97, 98, "T"),
    (99, 99, "U"),
)

# Sirene v3 writes "22.11Z"; older sources drop the dot.
_NAF_RE = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$", re.ASCII)

_EARTH_RADIUS_KM = 6371.0088

# 2^16 cells a side: finer than any two distinct sites of a territory.
_HILBERT_SIDE = 1 << 16

_MAX_CHAINED_COMMUNES = 400

_NO_ROSTER = "no consultant on the roster"


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Target:
    """A site to visit."""

    site_id: str  # SIRET
    naf_code: str  # "22.11Z"
    headcount_band: str | None  # INSEE band code ("12", "41"…) or None if unknown
    commune_insee: str
    lon: float | None
    lat: float | None
    visited: bool = False  # already visited in this campaign (completed)
    pinned_consultant: str | None = None  # keep with this consultant on re-plan


@dataclass(frozen=True)
class PlanningRules:
    budget_days: float  # consultant-days available
    cost_per_visit_days: float  # consultant-days one visit costs (budget accounting)
    daily_cap: int  # max visits per consultant per working day
    start: date
    end: date  # inclusive; no visit after it
    closing_naf_code: str  # NAF of the closing site
    budget_used_days: float = 0.0  # already spent (completed visits)

    def __post_init__(self) -> None:
        for name in ("budget_days", "cost_per_visit_days", "budget_used_days"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.cost_per_visit_days <= 0:
            raise ValueError("cost_per_visit_days must be > 0")
        if self.daily_cap < 1:
            raise ValueError(f"daily_cap must be >= 1, got {self.daily_cap!r}")


@dataclass(frozen=True)
class Priority:
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ScheduledVisit:
    site_id: str
    consultant_id: str
    day: date
    order: int  # 1-based rank within the consultant's day
    priority: Priority


@dataclass(frozen=True)
class Uncovered:
    site_id: str
    reason: str
    priority: Priority


@dataclass(frozen=True)
class Plan:
    visits: tuple[ScheduledVisit, ...]  # by day, consultant, order
    uncovered: tuple[Uncovered, ...]  # by priority, highest first
    days_planned: float  # consultant-days the planned visits cost
    per_consultant: Mapping[str, int]  # every roster consultant, sorted, read-only


# --------------------------------------------------------------------------- geometry


def distance_km(a_lon: float, a_lat: float, b_lon: float, b_lat: float) -> float:
    """Great-circle (haversine) distance in kilometres between two WGS84 points."""
    phi1 = math.radians(a_lat)
    phi2 = math.radians(b_lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b_lon - a_lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _coords(t: Target) -> tuple[float, float] | None:
    # Half a coordinate pair is as good as none.
    if t.lon is None or t.lat is None:
        return None
    return (t.lon, t.lat)


def _centroid(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    if not points:
        return None
    return (
        math.fsum(p[0] for p in points) / len(points),
        math.fsum(p[1] for p in points) / len(points),
    )


def _hilbert_index(x: int, y: int) -> int:
    """Position of cell (x, y) along the Hilbert curve filling the grid.

    Consecutive stretches of the curve cover compact blobs of the plane, so cutting the
    sequence into segments gives each consultant a compact area, with no long thin
    slices (as angular sectors give) and no late jumps (as a nearest-neighbour chain has).
    """
    d = 0
    s = _HILBERT_SIDE >> 1
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        if ry == 0:
            if rx == 1:
                x = _HILBERT_SIDE - 1 - x
                y = _HILBERT_SIDE - 1 - y
            x, y = y, x
        s >>= 1
    return d


class _Grid:
    """Maps (lon, lat) to Hilbert positions over the bounding box of a set of points."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        lat0 = math.fsum(p[1] for p in points) / len(points) if points else 0.0
        # Shrinking longitudes by cos(lat) keeps the grid cells roughly square on the
        # ground, so "compact on the curve" means "compact in kilometres".
        self._kx = math.cos(math.radians(lat0))
        xs = [p[0] * self._kx for p in points] or [0.0]
        ys = [p[1] for p in points] or [0.0]
        self._x0 = min(xs)
        self._y0 = min(ys)
        side = max(max(xs) - self._x0, max(ys) - self._y0)
        self._scale = (_HILBERT_SIDE - 1) / side if side > 0 else 0.0
        # Every site is looked up several times (sequence, chunk order, route).
        self._cache: dict[tuple[float, float], int] = {}

    def index(self, p: tuple[float, float]) -> int:
        found = self._cache.get(p)
        if found is None:
            top = _HILBERT_SIDE - 1
            x = min(top, max(0, round((p[0] * self._kx - self._x0) * self._scale)))
            y = min(top, max(0, round((p[1] - self._y0) * self._scale)))
            found = self._cache[p] = _hilbert_index(x, y)
        return found

    def plane(self, p: tuple[float, float]) -> tuple[float, float]:
        """Equirectangular projection: over a territory a few tens of kilometres wide it
        ranks neighbours like the haversine distance does, at a fraction of the cost."""
        return (p[0] * self._kx, p[1])


# --------------------------------------------------------------------------- priority


def _fmt(value: float) -> str:
    return f"{value:g}"


def _size_component(band: str | None) -> tuple[float, str]:
    if band is None or not band.strip():
        return 0.0, "size band unknown: +0"
    band = band.strip().upper()
    employees = _BAND_EMPLOYEES.get(band)
    if employees is None:
        if band in _BAND_LABEL:
            return 0.0, f"size band {band} ({_BAND_LABEL[band]}): +0"
        return 0.0, f"size band {band!r} not recognised: +0"
    points = round(SIZE_WEIGHT * math.log1p(employees), 1)
    return points, f"size band {band} ({_BAND_LABEL[band]}): +{_fmt(points)}"


def _section(division: str) -> str | None:
    n = int(division)
    for low, high, letter in _SECTIONS:
        if low <= n <= high:
            return letter
    return None


@dataclass(frozen=True)
class _Naf:
    sub_class: str  # "22.11Z"
    class_code: str  # "22.11"
    group: str  # "22.1"
    division: str  # "22"
    section: str  # "C"


def _parse_naf(code: str) -> _Naf | None:
    m = _NAF_RE.match(code.strip().upper())
    if m is None:
        return None
    division, rest, letter = m.groups()
    section = _section(division)
    if section is None:
        return None
    return _Naf(
        sub_class=f"{division}.{rest}{letter}",
        class_code=f"{division}.{rest}",
        group=f"{division}.{rest[0]}",
        division=division,
        section=section,
    )


def _naf_component(naf_code: str, closing_naf_code: str) -> tuple[float, str]:
    site = _parse_naf(naf_code)
    if site is None:
        return 0.0, f"NAF code {naf_code!r} not recognised: +0"
    closing = _parse_naf(closing_naf_code)
    if closing is None:
        return 0.0, f"closing site NAF code {closing_naf_code!r} not recognised: +0"
    for level, mine, theirs in (
        ("sub-class", site.sub_class, closing.sub_class),
        ("class", site.class_code, closing.class_code),
        ("group", site.group, closing.group),
        ("division", site.division, closing.division),
        ("section", site.section, closing.section),
    ):
        if mine == theirs:
            points = NAF_WEIGHTS[level]
            return points, f"same NAF {level} {mine} as the closing site: +{_fmt(points)}"
    return 0.0, (
        f"NAF section {site.section} ({site.sub_class}) differs from the closing site's "
        f"section {closing.section}: +0"
    )


def priority(target: Target, closing_naf_code: str) -> Priority:
    """How much visiting ``target`` matters for this closure shock (see module doc)."""
    size_points, size_reason = _size_component(target.headcount_band)
    naf_points, naf_reason = _naf_component(target.naf_code, closing_naf_code)
    reasons = [size_reason, naf_reason]
    if target.visited:
        reasons.append("already visited in this campaign: not scheduled again")
    return Priority(score=round(size_points + naf_points, 1), reasons=tuple(reasons))


# --------------------------------------------------------------------------- plan


def _days(value: float) -> str:
    return str(round(value, 2))


def _affordable_visits(rules: PlanningRules) -> int:
    left = rules.budget_days - rules.budget_used_days
    if left < -_EPSILON_DAYS:
        return 0
    return max(0, math.floor((left + _EPSILON_DAYS) / rules.cost_per_visit_days))


def _budget_reason(rules: PlanningRules, affordable: int) -> str:
    committed = rules.budget_used_days + affordable * rules.cost_per_visit_days
    reason = (
        f"budget exhausted: {_days(committed)} of {_days(rules.budget_days)} "
        "consultant-days planned"
    )
    if rules.budget_used_days > 0:
        reason += f" ({_days(rules.budget_used_days)} already spent)"
    return reason


def _fair_shares(
    free: int, order: Sequence[str], pinned: Mapping[str, int], room: Mapping[str, int]
) -> dict[str, int]:
    """Chunk size per consultant, evening out pinned + chunk loads within each calendar."""
    shares = dict.fromkeys(order, 0)
    # Ties go to the consultant earlier along the curve, for determinism.
    heap = [(pinned[c], i, c) for i, c in enumerate(order) if room[c] > 0]
    heapq.heapify(heap)
    for _ in range(free):
        load, i, c = heapq.heappop(heap)
        shares[c] += 1
        if shares[c] < room[c]:
            heapq.heappush(heap, (load + 1, i, c))
    return shares


def _sequence(
    free: Sequence[Target], rank: Mapping[str, int], grid: _Grid
) -> tuple[list[Target], list[int]]:
    """Free targets in geographic order, and the positions where a commune ends."""
    by_commune: dict[str, list[Target]] = {}
    for t in free:
        by_commune.setdefault(t.commune_insee, []).append(t)
    placed: list[tuple[int, str]] = []
    unplaced: list[str] = []
    for code, members in by_commune.items():
        centre = _centroid([p for t in members if (p := _coords(t)) is not None])
        if centre is None:
            unplaced.append(code)
        else:
            placed.append((grid.index(centre), code))
    order = [code for _, code in sorted(placed)] + sorted(unplaced)

    sequence: list[Target] = []
    ends: list[int] = []
    for code in order:
        # Sites follow the curve too, so a commune split between two consultants is
        # split along the same line as the areas.
        sequence.extend(sorted(by_commune[code], key=lambda t: _along(t, grid, rank)))
        ends.append(len(sequence))
    return sequence, ends


def _along(t: Target, grid: _Grid, rank: Mapping[str, int]) -> tuple[int, int, int]:
    """Sort key: position on the curve, sites without coordinates last, then priority."""
    p = _coords(t)
    return (0, grid.index(p), rank[t.site_id]) if p else (1, 0, rank[t.site_id])


def _chunk_order(
    roster: Sequence[str], pinned: Mapping[str, Sequence[Target]], grid: _Grid
) -> list[str]:
    """The order in which consultants take their chunk along the curve.

    On a re-plan most targets are pinned: new chunks should extend each consultant's
    current area, so consultants are taken in the order of their pinned sites along the
    curve (median position). If one of them has no located pinned site there is no
    sensible place for them on the curve, so all are taken in id order.
    """
    medians: dict[str, int] = {}
    for c in roster:
        spots = sorted(grid.index(p) for t in pinned[c] if (p := _coords(t)) is not None)
        if not spots:
            return list(roster)
        medians[c] = spots[(len(spots) - 1) // 2]
    return sorted(roster, key=lambda c: (medians[c], c))


def _cut(
    sequence: Sequence[Target],
    ends: Sequence[int],
    order: Sequence[str],
    shares: Mapping[str, int],
    room: Mapping[str, int],
) -> dict[str, list[Target]]:
    """Contiguous chunks of ``sequence``, one per consultant of ``order``, near ``shares``."""
    total = len(sequence)
    bounds = [0, *ends]
    largest = max((b - a for a, b in pairwise(bounds)), default=0)
    fair = total // len(order)
    slack = max(0, min((largest - 1) // 2, fair // 10))

    chunks: dict[str, list[Target]] = {}
    prev = 0
    ideal = 0
    for consultant in order[:-1]:
        share = shares[consultant]
        ideal += share
        # Keep this chunk within ±slack of its share and the running total within ±slack
        # of the ideal one, so drift never accumulates onto the last consultant.
        low = max(prev, prev + share - slack, ideal - slack)
        high = min(total, prev + min(room[consultant], share + slack), ideal + slack)
        if low <= high:
            goal = min(max(ideal, low), high)
            i = bisect_left(bounds, goal)
            near = [b for b in bounds[max(0, i - 1) : i + 1] if low <= b <= high]
            cut = min(near, key=lambda b: (abs(b - goal), b)) if near else goal
        else:
            cut = min(max(ideal, prev), prev + room[consultant], total)
        chunks[consultant] = list(sequence[prev:cut])
        prev = cut
    chunks[order[-1]] = list(sequence[prev:])
    return chunks


def _nearest(origin: tuple[float, float], points: Sequence[tuple[float, float]]) -> int:
    """Index of the point nearest ``origin`` on the plane; the first one on ties."""
    ox, oy = origin
    best, best_d2 = 0, math.inf
    for k, (x, y) in enumerate(points):
        d2 = (x - ox) * (x - ox) + (y - oy) * (y - oy)
        if d2 < best_d2:
            best, best_d2 = k, d2
    return best


def _route(mine: Sequence[Target], rank: Mapping[str, int], grid: _Grid) -> list[Target]:
    """Visiting order of one consultant's sites: commune by commune, nearest first."""
    by_commune: dict[str, list[Target]] = {}
    # Grouping in curve order makes the first commune one end of the area, not its middle.
    for t in sorted(mine, key=lambda t: _along(t, grid, rank)):
        by_commune.setdefault(t.commune_insee, []).append(t)
    centres: list[tuple[str, tuple[float, float]]] = []
    blind: list[str] = []
    for code, members in by_commune.items():
        centre = _centroid([p for t in members if (p := _coords(t)) is not None])
        if centre is None:
            blind.append(code)
        else:
            centres.append((code, grid.plane(centre)))

    # Nearest-neighbour chaining is quadratic; past a few hundred communes (no real
    # consultant area is that big) the curve order is kept: it is a fair route too.
    if len(centres) <= _MAX_CHAINED_COMMUNES and centres:
        ordered = [centres[0][0]]
        here, left = centres[0][1], centres[1:]
        while left:
            code, here = left.pop(_nearest(here, [centre for _, centre in left]))
            ordered.append(code)
    else:
        ordered = [code for code, _ in centres]
    ordered.extend(sorted(blind))

    route: list[Target] = []
    for code in ordered:
        route.extend(sorted(by_commune[code], key=lambda t: rank[t.site_id]))
    return route


def make_plan(targets: Sequence[Target], consultants: Sequence[str], rules: PlanningRules) -> Plan:
    """Plan the visits of a campaign (or re-plan what is left of it); see module doc."""
    seen: set[str] = set()
    for t in targets:
        if t.site_id in seen:
            raise ValueError(f"site {t.site_id} appears twice among the targets")
        seen.add(t.site_id)

    roster = sorted(set(consultants))
    priorities = {t.site_id: priority(t, rules.closing_naf_code) for t in targets if not t.visited}
    pending = sorted(
        (t for t in targets if not t.visited),
        key=lambda t: (-priorities[t.site_id].score, t.site_id),
    )
    rank = {t.site_id: i for i, t in enumerate(pending)}
    lost: list[tuple[Target, str]] = []

    if not roster:
        lost = [(t, _NO_ROSTER) for t in pending]
        return _assemble([], lost, priorities, rank, rules, roster)

    affordable = _affordable_visits(rules)
    committed = pending[:affordable]
    if affordable < len(pending):
        reason = _budget_reason(rules, affordable)
        lost.extend((t, reason) for t in pending[affordable:])

    days = list(working_days(next_working_day(rules.start), rules.end))
    capacity = len(days) * rules.daily_cap
    late = f"no working day left before {rules.end.isoformat()}"

    pinned: dict[str, list[Target]] = {c: [] for c in roster}
    free: list[Target] = []
    for t in committed:
        owner = t.pinned_consultant
        if owner is not None and owner in pinned:
            mine = pinned[owner]
            if len(mine) < capacity:
                mine.append(t)
            else:
                lost.append((t, late))
        else:
            free.append(t)
    room = {c: capacity - len(pinned[c]) for c in roster}
    spare = sum(room.values())
    lost.extend((t, late) for t in free[spare:])
    free = free[:spare]

    grid = _Grid([p for t in committed if (p := _coords(t)) is not None])
    order = _chunk_order(roster, pinned, grid)
    shares = _fair_shares(len(free), order, {c: len(pinned[c]) for c in roster}, room)
    sequence, ends = _sequence(free, rank, grid)
    chunks = _cut(sequence, ends, order, shares, room)

    visits: list[ScheduledVisit] = []
    for consultant in roster:
        chunk = chunks[consultant]
        if len(chunk) > room[consultant]:
            # Only reachable when the last chunk absorbs rounding beyond its calendar:
            # drop its lowest priorities rather than the tail of the route.
            chunk = sorted(chunk, key=lambda t: rank[t.site_id])
            lost.extend((t, late) for t in chunk[room[consultant] :])
            chunk = chunk[: room[consultant]]
        route = _route(pinned[consultant] + chunk, rank, grid)
        for i, t in enumerate(route):
            day_index, slot = divmod(i, rules.daily_cap)
            visits.append(
                ScheduledVisit(
                    site_id=t.site_id,
                    consultant_id=consultant,
                    day=days[day_index],
                    order=slot + 1,
                    priority=priorities[t.site_id],
                )
            )
    return _assemble(visits, lost, priorities, rank, rules, roster)


def _assemble(
    visits: list[ScheduledVisit],
    lost: list[tuple[Target, str]],
    priorities: Mapping[str, Priority],
    rank: Mapping[str, int],
    rules: PlanningRules,
    roster: Sequence[str],
) -> Plan:
    visits.sort(key=lambda v: (v.day, v.consultant_id, v.order))
    lost.sort(key=lambda item: rank[item[0].site_id])
    counts = dict.fromkeys(roster, 0)
    for v in visits:
        counts[v.consultant_id] += 1
    return Plan(
        visits=tuple(visits),
        uncovered=tuple(
            Uncovered(site_id=t.site_id, reason=reason, priority=priorities[t.site_id])
            for t, reason in lost
        ),
        # Rounded so 164 × 0.75 reads 123.0, not 122.99999999999999 from float noise.
        days_planned=round(len(visits) * rules.cost_per_visit_days, 9),
        per_consultant=MappingProxyType(counts),
    )
