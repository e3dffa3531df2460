"""How much a project needs the crisis cell's support, with the reasons why.

The score is the sum of five components, each stated in one reason so the crisis cell
sees why a project comes first. Every component is rounded to 0.1 before summing, so the
reasons add up exactly to the score.

* **Jobs** — the ledger is about jobs: ``10 × ln(1 + jobs_planned)``. The log keeps a
  500-job plant from drowning every other criterion: 2 jobs → +11.0, 12 → +25.6,
  50 → +39.3, 500 → +62.2.
* **Capex** — investment size, per million euros: ``8 × ln(1 + capex_eur / 1,000,000)``:
  0.5 M€ → +3.2, 1 M€ → +5.5, 10 M€ → +19.2, 100 M€ → +36.9. Unknown → +0.
* **Maturity** — a project close to starting turns support into jobs soonest:
  idea +0, study +5, ready +10, started +15. Unknown → +0.
* **Obstacles public support can lift** — financing, land, hiring_skills, energy_grid,
  permits: +6 each (counted once each). The project needs help that public actors can
  give; ``other`` obstacles add nothing, as nobody knows whether support can lift them.
* **Hidden** — +5 when the project was unknown to public actors when detected: the
  rebond found it, nobody else is helping it yet.

Deterministic: the same inputs always give the same score and reasons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "CAPEX_WEIGHT",
    "HIDDEN_POINTS",
    "JOBS_WEIGHT",
    "LIFTABLE_OBSTACLES",
    "MATURITY_POINTS",
    "OBSTACLE_POINTS",
    "SupportPriority",
    "support_priority",
]

JOBS_WEIGHT: Final = 10.0
CAPEX_WEIGHT: Final = 8.0
MATURITY_POINTS: Final[Mapping[str, float]] = MappingProxyType(
    {"idea": 0.0, "study": 5.0, "ready": 10.0, "started": 15.0}
)
#: In the order of ``shared.events.campaigns.Obstacle``, so reasons list them stably.
LIFTABLE_OBSTACLES: Final = ("land", "hiring_skills", "financing", "energy_grid", "permits")
OBSTACLE_POINTS: Final = 6.0
HIDDEN_POINTS: Final = 5.0


@dataclass(frozen=True)
class SupportPriority:
    score: float
    reasons: tuple[str, ...]


def support_priority(
    *,
    jobs_planned: int,
    capex_eur: int | None,
    maturity: str | None,
    obstacles: Sequence[str],
    hidden: bool,
) -> SupportPriority:
    """Score a project (see the module docstring for the weights)."""
    components = [
        _jobs(jobs_planned),
        _capex(capex_eur),
        _maturity(maturity),
        _obstacles(obstacles),
        _hidden(hidden),
    ]
    score = round(sum(points for points, _ in components), 1)
    return SupportPriority(score=score, reasons=tuple(reason for _, reason in components))


def _points(value: float) -> str:
    return f"+{value:.1f}"


def _jobs(jobs_planned: int) -> tuple[float, str]:
    points = round(JOBS_WEIGHT * math.log1p(max(0, jobs_planned)), 1)
    noun = "job" if jobs_planned == 1 else "jobs"
    return points, f"{jobs_planned} {noun} planned: {_points(points)}"


def _capex(capex_eur: int | None) -> tuple[float, str]:
    if capex_eur is None:
        return 0.0, f"investment unknown: {_points(0.0)}"
    millions = max(0, capex_eur) / 1_000_000
    points = round(CAPEX_WEIGHT * math.log1p(millions), 1)
    return points, f"investment of {millions:,.2f} M€: {_points(points)}"


def _maturity(maturity: str | None) -> tuple[float, str]:
    if maturity is None or maturity not in MATURITY_POINTS:
        return 0.0, f"maturity unknown: {_points(0.0)}"
    points = MATURITY_POINTS[maturity]
    return points, f"maturity {maturity}: {_points(points)}"


def _obstacles(obstacles: Sequence[str]) -> tuple[float, str]:
    liftable = [o for o in LIFTABLE_OBSTACLES if o in set(obstacles)]
    if not liftable:
        return 0.0, f"no obstacle public support can lift: {_points(0.0)}"
    points = round(OBSTACLE_POINTS * len(liftable), 1)
    return points, f"obstacles public support can lift ({', '.join(liftable)}): {_points(points)}"


def _hidden(hidden: bool) -> tuple[float, str]:
    if hidden:
        return HIDDEN_POINTS, f"unknown to public actors when detected: {_points(HIDDEN_POINTS)}"
    return 0.0, f"already known to public actors: {_points(0.0)}"
