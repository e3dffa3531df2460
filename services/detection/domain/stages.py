"""The stages of an investment project and the moves between them.

The stage strings are those of ``shared.events.detection.Stage``: they travel in every
project event, so a consumer can follow a project without this module.

Why each edge exists:

=============  ==============  ========================================================
from           to              why
=============  ==============  ========================================================
detected       qualified       an analyst checked the figures and the firm's intent
detected       abandoned       the firm drops the idea, or it was never a real project
qualified      in_funding      an application was filed with a funder
qualified      funded          money came without an application tracked here (a bank
                               loan, a funder's decision recorded directly)
qualified      launched        a self-financed project starts without public aid
qualified      abandoned       the firm gives up after qualification
in_funding     funded          a funder granted the aid
in_funding     qualified       the application was refused: the project is still real
                               and another funder may be tried
in_funding     abandoned       the firm gives up while waiting for a decision
funded         launched        the investment starts (works, machines ordered)
funded         jobs_created    hires are often reported before a formal launch
funded         abandoned       funded but dropped (the aid is returned)
launched       jobs_created    the first hires
launched       abandoned       a started project can still fail before hiring
jobs_created   jobs_created    more jobs reported as the project ramps up
=============  ==============  ========================================================

Final stages:

* ``jobs_created`` is final except for more jobs: the ledger counts jobs that exist, and
  a firm that later shrinks is a new shock, not an un-creation of these jobs; so a project
  with jobs is never abandoned.
* ``abandoned`` is final: a revived project is detected again as a new project, so the
  ledger's history of what was abandoned stays true.

No edge leads back to ``detected``, and none skips qualification: every project that
reaches funding was looked at by an analyst first.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from shared.errors import Conflict

__all__ = [
    "STAGE_RANK",
    "TRANSITIONS",
    "IllegalTransition",
    "Stage",
    "allowed_moves",
    "check_transition",
    "reached",
]


class Stage(StrEnum):
    DETECTED = "detected"
    QUALIFIED = "qualified"
    IN_FUNDING = "in_funding"
    FUNDED = "funded"
    LAUNCHED = "launched"
    JOBS_CREATED = "jobs_created"
    ABANDONED = "abandoned"


TRANSITIONS: Final[Mapping[Stage, frozenset[Stage]]] = MappingProxyType(
    {
        Stage.DETECTED: frozenset({Stage.QUALIFIED, Stage.ABANDONED}),
        Stage.QUALIFIED: frozenset(
            {Stage.IN_FUNDING, Stage.FUNDED, Stage.LAUNCHED, Stage.ABANDONED}
        ),
        Stage.IN_FUNDING: frozenset({Stage.FUNDED, Stage.QUALIFIED, Stage.ABANDONED}),
        Stage.FUNDED: frozenset({Stage.LAUNCHED, Stage.JOBS_CREATED, Stage.ABANDONED}),
        Stage.LAUNCHED: frozenset({Stage.JOBS_CREATED, Stage.ABANDONED}),
        Stage.JOBS_CREATED: frozenset({Stage.JOBS_CREATED}),
        Stage.ABANDONED: frozenset(),
    }
)

#: Progress order for the ledger's buckets. ``abandoned`` is ranked below everything so
#: that it never counts as having reached any stage (see ``reached``).
STAGE_RANK: Final[Mapping[Stage, int]] = MappingProxyType(
    {
        Stage.ABANDONED: -1,
        Stage.DETECTED: 0,
        Stage.QUALIFIED: 1,
        Stage.IN_FUNDING: 2,
        Stage.FUNDED: 3,
        Stage.LAUNCHED: 4,
        Stage.JOBS_CREATED: 5,
    }
)


def reached(stage: Stage, bucket: Stage) -> bool:
    """Whether a project in ``stage`` counts in the ledger's ``bucket``.

    ``reached(s, QUALIFIED)`` holds for qualified, in_funding, funded, launched and
    jobs_created; ``reached(s, FUNDED)`` for funded, launched and jobs_created (a launched
    project is financed, whoever paid). An abandoned project reaches nothing.
    """
    if stage is Stage.ABANDONED:
        return False
    return STAGE_RANK[stage] >= STAGE_RANK[bucket]


def allowed_moves(current: Stage) -> tuple[Stage, ...]:
    """The stages ``current`` may move to, in the order of ``Stage``."""
    return tuple(s for s in Stage if s in TRANSITIONS[current])


class IllegalTransition(Conflict):
    code = "illegal_transition"

    def __init__(self, current: Stage, target: Stage) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed_moves(current)
        allowed = ", ".join(self.allowed) or "none"
        super().__init__(
            f"a project in stage {current} cannot move to {target}:"
            f" {_hint(current, target)} (allowed: {allowed})"
        )


def check_transition(current: Stage, target: Stage) -> None:
    """Raise ``IllegalTransition`` unless the table has the edge ``current → target``."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def _hint(current: Stage, target: Stage) -> str:
    # Ordered from the most specific explanation to the most general one.
    if current is Stage.ABANDONED:
        return "an abandoned project is final; detect it again as a new project"
    if current is Stage.JOBS_CREATED:
        return "it has created jobs, so it can only report more jobs"
    if current is target:
        return f"it is already {current}"
    if target is Stage.DETECTED:
        return "no project goes back to detected"
    if current is Stage.DETECTED:
        return "qualify it first"
    if target is Stage.JOBS_CREATED:
        return "it must be funded or launched before it creates jobs"
    if current is Stage.IN_FUNDING and target is Stage.LAUNCHED:
        return "record the funding decision first (funded, or back to qualified if refused)"
    if STAGE_RANK[target] < STAGE_RANK[current]:
        return "a project does not go back, except a refused application to qualified"
    return "this move is not in the stage table"
