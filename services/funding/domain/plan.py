"""Financing plans: stacking eligible schemes on one project without over-aiding it.

Pure Python, integer euros. The rules:

* **One expense base.** The eligible expense is the project's investment (``capex``).
  Every line is a share of that same base, so an expense is never financed twice: the
  lines together never exceed the base, nor the funding need (``total ≤ min(need,
  base)``), and their **grant equivalent** together never exceeds the aid-intensity cap
  (``grant_equivalent ≤ cap_pct × base``).
* **Rank order.** Lines are taken from the matches in the order given (``match``'s
  ranking); each line is ``min(remaining need, the scheme's maximum amount, its maximum
  rate × base, the room left under the cap)`` — the cap room being converted from grant
  equivalent to nominal euros by the instrument's fraction.
* **Grant equivalent, simplified.** EU state-aid law measures aid as its gross grant
  equivalent (GGE), computed for each loan or guarantee from its terms. Without those
  terms, this plan counts a fixed fraction of the nominal amount (``IntensityCaps``,
  configurable): grant 100 %, recoverable advance 50 %, loan 15 %, guarantee 10 %, and
  — prudently, since their aid element is unknown — equity and "other" 100 %.
  Engineering support brings no money and is skipped. Grant equivalents are rounded
  *up*, amounts *down*, so rounding never breaks the cap.
* **Minimum amounts.** A line below the scheme's smallest aid is dropped, with a note.
* **No capex, no plan**: without a base there is no aid intensity to respect.

Caps (``IntensityCaps``): maximum public aid as a % of the eligible expense, by firm size
and zone. Defaults, from EU law — to verify against the texts in force, and configurable:

* outside assisted areas (``none``): GBER (Reg. (EU) 651/2014) Art. 17, SME investment
  aid — small 20 %, medium 10 %; Art. 17 gives nothing to large firms (0 %: their aid
  comes under other articles — environment, energy, R&D — with their own ceilings, or
  under de minimis);
* AFR 'c' zones (``afr_c``): regional aid, GBER Art. 14, with the French AFR map
  2022–2027 (décret n° 2022-968 du 30 juin 2022, annex 3, investments under 50 M€) —
  large 15 %, medium 25 %, small 35 %, i.e. the standard 'c' ceiling plus the SME
  bonuses of the 2022–2027 Regional Aid Guidelines (some communes of departments 35,
  73 and 78 have 10/20/30 %);
* AFR 'a' zones (``afr_a``, the overseas regions): the same decree's lowest 'a'
  ceilings — Guadeloupe, Martinique, La Réunion: large 50 %, medium 60 %, small 70 %
  (Guyane and Mayotte have 70/80/90 %, Saint-Martin 60/70/80 %).

Firm sizes map to EU categories: a micro-firm is *small*; an ``sme`` may be small or
medium and takes the *medium* cap (prudent); a mid-cap (ETI) is a *large* enterprise in
EU terms; an unknown size takes the *large* cap, the most prudent. De minimis aid
(Reg. (EU) 2023/2831: 300 000 € per firm over three years) is outside these caps: the
plan notes it for each de minimis line, since the firm's past aid is not known here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from math import ceil, floor
from typing import Final, Literal

from services.funding.domain.matching import Match, ProjectProfile, eur
from shared.errors import DomainError
from shared.events.funding import AidType, FirmSize, FirmSizeSource

__all__ = [
    "ZONES",
    "FinancingPlan",
    "IntensityCaps",
    "InvalidCaps",
    "PlanLine",
    "SizeClass",
    "Zone",
    "financing_plan",
    "size_class",
]

Zone = Literal["afr_a", "afr_c", "none"]
SizeClass = Literal["small", "medium", "large"]
ZONES: Final = ("afr_a", "afr_c", "none")


class InvalidCaps(DomainError):
    code = "invalid_caps"


_SOURCE_LABELS: Final[dict[FirmSizeSource, str]] = {
    "company_category": "from the firm's INSEE company category",
    "headcount_band": "estimated from the site's headcount band",
}


def size_class(firm_size: FirmSize | None) -> SizeClass:
    """The EU category whose cap applies (prudent when the size is vague or unknown)."""
    if firm_size == "micro":
        return "small"
    if firm_size == "sme":
        return "medium"
    return "large"


@dataclass(frozen=True, kw_only=True)
class IntensityCaps:
    """Maximum public aid (% of the eligible expense) and grant-equivalent fractions.

    See the module docstring for where the defaults come from.
    """

    none_small: float = 20.0
    none_medium: float = 10.0
    none_large: float = 0.0
    afr_c_small: float = 35.0
    afr_c_medium: float = 25.0
    afr_c_large: float = 15.0
    afr_a_small: float = 70.0
    afr_a_medium: float = 60.0
    afr_a_large: float = 50.0
    ge_grant: float = 1.0
    ge_recoverable_advance: float = 0.5
    ge_loan: float = 0.15
    ge_guarantee: float = 0.10
    ge_equity: float = 1.0
    ge_other: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            top = 1.0 if f.name.startswith("ge_") else 100.0
            if not 0 <= value <= top:
                raise InvalidCaps(f"{f.name} must be between 0 and {top:g}, got {value}")

    def cap_pct(self, firm_size: FirmSize | None, zone: Zone) -> float:
        if zone not in ZONES:
            raise InvalidCaps(f"unknown zone {zone!r} (known: {', '.join(ZONES)})")
        value: float = getattr(self, f"{zone}_{size_class(firm_size)}")
        return value

    def grant_equivalent(self, aid_type: AidType) -> float:
        """The share of a nominal amount counted against the cap (0 for engineering)."""
        if aid_type == "engineering_support":
            return 0.0
        value: float = getattr(self, f"ge_{aid_type}")
        return value


@dataclass(frozen=True)
class PlanLine:
    scheme_id: str
    aid_type: AidType
    amount_eur: int
    rate_pct_of_base: float
    grant_equivalent_eur: int


@dataclass(frozen=True)
class FinancingPlan:
    base_eur: int | None  # the eligible expense: the project's capex
    need_eur: int | None
    cap_pct: float
    cap_eur: int
    lines: tuple[PlanLine, ...]
    total_eur: int
    grant_equivalent_eur: int
    covered_pct_of_need: float
    remaining_need_eur: int | None
    notes: tuple[str, ...]


def _exact(x: float) -> Fraction:
    return Fraction(str(x))


def financing_plan(
    project: ProjectProfile,
    matches: Sequence[Match],
    caps: IntensityCaps,
    zone: Zone,
) -> FinancingPlan:
    """Stack ``matches`` (in their order) into a plan for ``project``; deterministic."""
    cap_pct = caps.cap_pct(project.firm_size, zone)
    notes: list[str] = []
    base = project.capex_eur
    if base is None or base <= 0:
        return FinancingPlan(
            base_eur=base,
            need_eur=project.funding_need_eur,
            cap_pct=cap_pct,
            cap_eur=0,
            lines=(),
            total_eur=0,
            grant_equivalent_eur=0,
            covered_pct_of_need=0.0,
            remaining_need_eur=project.funding_need_eur,
            notes=("unknown capex: no base for the aid intensity",),
        )
    need = project.funding_need_eur
    if need is None:
        need = base
        notes.append(f"funding need unknown: taken as the whole investment ({eur(base)})")
    cap_eur = floor(Fraction(base) * _exact(cap_pct) / 100)
    if project.firm_size is None:
        size_note = "firm size unknown, so the large-firm cap applies (prudent); "
    elif project.firm_size_source is not None:
        size_note = (
            f"firm size {project.firm_size} ({_SOURCE_LABELS[project.firm_size_source]}),"
            f" so the {size_class(project.firm_size)}-firm cap applies; "
        )
    else:
        size_note = ""
    notes.append(
        f"{size_note}"
        f"aid-intensity cap {cap_pct:g} % in zone {zone}: {eur(cap_eur)} of grant equivalent"
    )
    fundable = min(need, base)
    if need > base:
        notes.append(
            f"the need ({eur(need)}) exceeds the eligible expense ({eur(base)}):"
            " aid covers at most the expense"
        )
    total = 0
    ge_total = 0
    lines: list[PlanLine] = []
    capped: list[str] = []
    seen: set[str] = set()
    # per plan, not per line: a few aid types and rates recur across hundreds of matches
    fractions: dict[str, tuple[Fraction, bool]] = {}
    by_rate: dict[float, int] = {}
    for m in matches:
        s = m.scheme
        if s.id in seen:
            continue
        seen.add(s.id)
        if not m.eligible:
            notes.append(f"{s.id} skipped: not eligible")
            continue
        if s.aid_type == "engineering_support":
            notes.append(f"{s.id} skipped: engineering support, no money in the plan")
            continue
        remaining = fundable - total
        if remaining <= 0:
            notes.append(f"{s.id} and the schemes after it not needed: the need is covered")
            break
        known = fractions.get(s.aid_type)
        if known is None:
            exact = _exact(caps.grant_equivalent(s.aid_type))
            known = fractions[s.aid_type] = (exact, exact > 0)
        fraction, counted = known
        room = cap_eur - ge_total
        if room <= 0 and counted:  # the cap is reached: nothing to plan (as below)
            capped.append(s.id)
            continue
        bounds = [remaining]
        if s.amount_max_eur is not None:
            bounds.append(s.amount_max_eur)
        if s.rate_max_pct is not None:
            rated = by_rate.get(s.rate_max_pct)
            if rated is None:
                rated = by_rate[s.rate_max_pct] = floor(
                    Fraction(base) * _exact(s.rate_max_pct) / 100
                )
            bounds.append(rated)
        if counted:
            bounds.append(floor(Fraction(room) / fraction))
        amount = max(0, min(bounds))
        if amount == 0:
            if room <= 0 and counted:
                capped.append(s.id)
            else:
                notes.append(f"{s.id} not used: its rate or amount leaves nothing to plan")
            continue
        if s.amount_min_eur is not None and amount < s.amount_min_eur:
            notes.append(
                f"{s.id} dropped: only {eur(amount)} could be planned,"
                f" below its minimum aid of {eur(s.amount_min_eur)}"
            )
            continue
        ge = ceil(Fraction(amount) * fraction)
        total += amount
        ge_total += ge
        lines.append(
            PlanLine(
                scheme_id=s.id,
                aid_type=s.aid_type,
                amount_eur=amount,
                rate_pct_of_base=round(amount * 100 / base, 2),
                grant_equivalent_eur=ge,
            )
        )
        if s.de_minimis:
            notes.append(
                f"{s.id} is de minimis aid: check the firm's ceiling"
                " (300 000 € over three years, Reg. (EU) 2023/2831)"
            )
    if capped:
        notes.append(f"not used, the aid-intensity cap being reached: {', '.join(capped)}")
    covered = 100.0 if need == 0 else round(total * 100 / need, 1)
    return FinancingPlan(
        base_eur=base,
        need_eur=need,
        cap_pct=cap_pct,
        cap_eur=cap_eur,
        lines=tuple(lines),
        total_eur=total,
        grant_equivalent_eur=ge_total,
        covered_pct_of_need=covered,
        remaining_need_eur=need - total,
        notes=tuple(notes),
    )
