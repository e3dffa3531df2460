"""The project aggregate: one investment project, from detection to jobs or abandonment.

Pure Python. The clock is passed in (``now``); the stage rules live in ``stages.py``.
Every change bumps ``version`` by one and records exactly one
``shared.events.detection`` event carrying the project's whole public state, so a
projection is rebuilt from the topic alone. The description (free text) and the reasons
given to ``move_to`` stay in this service's database, in ``reports``; events carry no
description and no person's name (``firm_name`` is a company's name).

Choices the rules below rely on:

* **Reports are history.** Every report merged and every decision (qualification,
  stage change, jobs, abandonment) appends a ``Report``: who said what, when. They are
  kept forever, so a merged project can always be explained.
* **Newer figures win.** A report's figures are applied only when it is not older than
  the latest report that gave figures: surveys are synced late from flaky phones and
  events may arrive out of order, and a stale revision must not undo a newer one. An
  optional figure the report leaves out (``None``, see ``Figures``) keeps the current
  value; an explicit empty obstacle list clears the obstacles.
* **``hidden`` is fixed at first detection.** It measures what public actors knew when
  the rebond found the project; a later report saying "known" only says the rebond made
  it known. Later reports keep their ``hidden`` answer in their figures, for history.
* **Abandoned projects take no figures.** A report on an abandoned project (a resubmitted
  survey matched by lead id) is kept in history but changes nothing and records no
  event: reviving a project means detecting it again.
* **Only a lead id updates a project by itself.** A report that merely looks like an
  existing project (same firm and kind in the territory, from another site, visit or
  source) becomes a project of its own, flagged ``possible_duplicate_of`` with the
  reason: two plants of one firm often do have two projects of one kind, and the crisis
  cell, not the code, decides. It then merges them (``absorb``) or dismisses the flag.
* **Jobs are recorded from funded, launched or jobs_created** (the stage table's edges
  into ``jobs_created``). The total never decreases; it may exceed ``jobs_planned``
  (reality beats plans) and ``jobs_planned`` stays the plan.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Final, Literal, get_args

from services.detection.domain.matching import ProjectKey
from services.detection.domain.priority import SupportPriority, support_priority
from services.detection.domain.stages import Stage, check_transition
from shared.errors import Conflict, DomainError
from shared.events import detection as ev
from shared.events.campaigns import Maturity, Obstacle, ProjectKind
from shared.events.envelope import EventPayload
from shared.events.site_registry import NAF_PATTERN
from shared.scrub import scrub
from shared.timestamps import require_aware

__all__ = [
    "FIGURE_FIELDS",
    "AlreadyQualified",
    "Figures",
    "InvalidProjectChange",
    "Project",
    "Report",
]

ABANDON_REASON_MAX: Final = 500  # the ProjectAbandoned event's limit

_KINDS: Final = frozenset(get_args(ProjectKind))
_OBSTACLES: Final[tuple[str, ...]] = get_args(Obstacle)
_MATURITIES: Final = frozenset(get_args(Maturity))
_ORIGINS: Final = frozenset(get_args(ev.Origin))
_SOURCES: Final = frozenset(get_args(ev.Source))
_SIREN: Final = re.compile(r"^[0-9]{9}$")
_NAF: Final = re.compile(NAF_PATTERN)


class InvalidProjectChange(DomainError):
    code = "invalid_project_change"


class AlreadyQualified(Conflict):
    code = "already_qualified"


@dataclass(frozen=True, kw_only=True)
class Figures:
    """A project's figures, or what one report gives of them: a value object, checked and
    in canonical form when made (obstacles in one order, so a reordered list is no change).

    An optional figure left None is one the report does not give: merged into a project
    (``merged``), it keeps the project's value; an empty obstacle list is given, and
    clears them. Field order is the order ``changed_fields`` lists them in.
    """

    description: str
    jobs_planned: int
    capex_eur: int | None = None
    funding_need_eur: int | None = None
    maturity: str | None = None
    obstacles: tuple[str, ...] = ()
    land_needs_ha: float | None = None
    consent_to_share: bool

    def __post_init__(self) -> None:
        for name, amount in (
            ("jobs_planned", self.jobs_planned),
            ("capex_eur", self.capex_eur),
            ("funding_need_eur", self.funding_need_eur),
            ("land_needs_ha", self.land_needs_ha),
        ):
            if amount is not None and amount < 0:
                raise InvalidProjectChange(f"{name} cannot be negative, got {amount}")
        if self.maturity is not None and self.maturity not in _MATURITIES:
            raise InvalidProjectChange(
                f"unknown maturity {self.maturity!r} (known: idea, study, ready, started)"
            )
        unknown = sorted(set(self.obstacles) - set(_OBSTACLES))
        if unknown:
            raise InvalidProjectChange(
                f"unknown obstacles {', '.join(unknown)} (known: {', '.join(_OBSTACLES)})"
            )
        # One order whatever the report's (frozen: set once, here).
        object.__setattr__(self, "obstacles", tuple(o for o in _OBSTACLES if o in self.obstacles))

    def given(self) -> dict[str, object]:
        """The figures given (not None), JSON-shaped: what a report keeps in its history."""
        out: dict[str, object] = {}
        for name in FIGURE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def merged(self, newer: Figures) -> tuple[Figures, list[str]]:
        """These figures under ``newer``'s given ones, and the names of those that changed."""
        changed = [
            name
            for name in FIGURE_FIELDS
            if getattr(newer, name) is not None and getattr(newer, name) != getattr(self, name)
        ]
        if not changed:
            return self, []
        return replace(self, **{name: getattr(newer, name) for name in changed}), changed


#: The figures a report may change, in the order ``changed_fields`` lists them.
FIGURE_FIELDS: Final = tuple(f.name for f in fields(Figures))


@dataclass
class Report:
    """Who said what, when (kept forever: the merge history)."""

    source: str  # "survey" | "crisis_cell" | "funding"
    reference: str  # e.g. "survey <uuid> rev 2", "declared by the crisis cell"
    reported_at: datetime
    figures: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reported_at = require_aware(self.reported_at, "reported_at")


@dataclass
class Project:
    id: uuid.UUID
    territory_id: str
    shock_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    site_id: str | None
    siren: str | None
    firm_name: str | None
    naf_code: str | None
    origin: Literal["endogenous", "exogenous"]
    kind: str
    figures: Figures
    stage: Stage
    hidden: bool
    jobs_created: int
    detected_on: date
    version: int = 0
    lead_ids: set[uuid.UUID] = field(default_factory=set)
    abandoned_reason: str | None = None
    jobs_complete: bool = False
    possible_duplicate_of: uuid.UUID | None = None  # under the crisis cell's review
    duplicate_reason: str | None = None
    merged_into: uuid.UUID | None = None  # final: this project lives on in another
    reports: list[Report] = field(default_factory=list)
    events: list[EventPayload] = field(default_factory=list, repr=False, compare=False)

    # --- detection and reports ---------------------------------------------------------

    @classmethod
    def detect(
        cls,
        key: ProjectKey,
        figures: Figures,
        *,
        origin: str,
        hidden: bool,
        report: Report,
        now: datetime,
        naf_code: str | None = None,
        shock_id: uuid.UUID | None = None,
        campaign_id: uuid.UUID | None = None,
        detected_on: date | None = None,
        lead_id: uuid.UUID | None = None,
        project_id: uuid.UUID | None = None,
        looks_like: tuple[uuid.UUID, str] | None = None,
    ) -> Project:
        """A new project, from its first report (the event's ``source`` is the report's).

        ``key`` says whose project of which kind, in which territory, reported at which
        site. ``looks_like`` — (project id, reason) — flags it as a possible duplicate
        of an existing project: it is detected all the same, and the crisis cell decides.
        """
        _check_source(report.source)
        if origin not in _ORIGINS:
            raise InvalidProjectChange(f"origin must be endogenous or exogenous, got {origin!r}")
        if key.kind not in _KINDS:
            raise InvalidProjectChange(
                f"unknown project kind {key.kind!r} (known: {', '.join(sorted(_KINDS))})"
            )
        if key.siren is not None and not _SIREN.match(key.siren):
            raise InvalidProjectChange(f"a SIREN has 9 digits, got {key.siren!r}")
        if naf_code is not None and not _NAF.match(naf_code):
            raise InvalidProjectChange(f"a NAF code looks like 22.11Z, got {naf_code!r}")
        project = cls(
            id=project_id or uuid.uuid4(),
            territory_id=key.territory_id,
            shock_id=shock_id,
            campaign_id=campaign_id,
            site_id=key.site_id,
            siren=key.siren,
            firm_name=key.firm_name,
            naf_code=naf_code,
            origin="endogenous" if origin == "endogenous" else "exogenous",
            kind=key.kind,
            figures=figures,
            stage=Stage.DETECTED,
            hidden=hidden,
            jobs_created=0,
            detected_on=detected_on or report.reported_at.date(),
            possible_duplicate_of=looks_like[0] if looks_like else None,
            duplicate_reason=looks_like[1] if looks_like else None,
        )
        if lead_id is not None:
            project.lead_ids.add(lead_id)
        project.reports.append(
            replace(report, figures={**report.figures, **figures.given(), "hidden": hidden})
        )
        project.version = 1
        project.events.append(ev.ProjectDetected(**project._state(now), source=report.source))
        return project

    def merge_report(
        self,
        report: Report,
        figures: Figures,
        *,
        now: datetime,
        lead_id: uuid.UUID | None = None,
        hidden: bool | None = None,
    ) -> list[str]:
        """Keep the report; apply its figures if it is the newest. Returns changed fields.

        ``hidden`` is only kept in the report's figures (see the module docstring), as are
        any extra figures the caller put in ``report.figures``.
        """
        _check_source(report.source)
        self._require_not_merged()
        if lead_id is not None:
            self.lead_ids.add(lead_id)
        as_of = self._figures_as_of()
        extra: dict[str, object] = {} if hidden is None else {"hidden": hidden}
        self.reports.append(replace(report, figures={**report.figures, **figures.given(), **extra}))
        if self.stage is Stage.ABANDONED or (as_of is not None and report.reported_at < as_of):
            return []
        self.figures, changed = self.figures.merged(figures)
        if changed:
            self._record(ev.ProjectUpdated, now, source=report.source, changed_fields=changed)
        return changed

    # --- the analysts' and funders' decisions -------------------------------------------

    def qualify(
        self,
        *,
        now: datetime,
        jobs_planned: int | None = None,
        capex_eur: int | None = None,
        reference: str = "corrected while qualifying",
    ) -> list[str]:
        """Qualify a detected project, with the analyst's corrections; returns them."""
        self._require_not_merged()
        if self.stage not in (Stage.DETECTED, Stage.ABANDONED):
            raise AlreadyQualified(
                f"project {self.id} is already past qualification (stage {self.stage});"
                " a refused application moves it back with move_to(qualified)"
            )
        check_transition(self.stage, Stage.QUALIFIED)
        given: dict[str, object] = {
            name: value
            for name, value in (("jobs_planned", jobs_planned), ("capex_eur", capex_eur))
            if value is not None
        }
        current = self.figures
        # Checked (a Figures refuses a negative amount) before anything changes.
        figures, corrected = current.merged(
            replace(
                current,
                jobs_planned=current.jobs_planned if jobs_planned is None else jobs_planned,
                capex_eur=current.capex_eur if capex_eur is None else capex_eur,
            )
        )
        if given:
            # The analyst vouches for these figures, changed or not: that is history too.
            self.reports.append(
                Report(source="crisis_cell", reference=reference, reported_at=now, figures=given)
            )
        self.figures = figures
        self.stage = Stage.QUALIFIED
        self._record(ev.ProjectQualified, now)
        return corrected

    def move_to(
        self,
        stage: Stage,
        *,
        now: datetime,
        reason: str | None = None,
        source: str = "crisis_cell",
    ) -> bool:
        """Move to in_funding, funded, launched, or back to qualified after a refusal.

        False when the project is already in ``stage`` (a retried command). Qualifying,
        recording jobs and abandoning have their own commands, which carry what those
        events need. ``reason`` stays in the project's reports, not in the event.
        """
        _check_source(source)
        self._require_not_merged()
        if stage is self.stage:
            return False
        check_transition(self.stage, stage)
        if stage is Stage.QUALIFIED and self.stage is Stage.DETECTED:
            raise InvalidProjectChange(f"project {self.id} is detected: use qualify()")
        if stage is Stage.JOBS_CREATED:
            raise InvalidProjectChange("jobs are recorded with record_jobs(), which counts them")
        if stage is Stage.ABANDONED:
            raise InvalidProjectChange("a project is abandoned with abandon(), with its reason")
        previous = self.stage
        figures: dict[str, object] = {"stage": stage.value}
        if reason:
            figures["reason"] = reason
        self.reports.append(
            Report(
                source=source,
                reference=f"stage {previous} → {stage}",
                reported_at=now,
                figures=figures,
            )
        )
        self.stage = stage
        self._record(ev.ProjectStageChanged, now, previous_stage=previous.value)
        return True

    def record_jobs(
        self,
        *,
        jobs_created_total: int,
        created_on: date,
        complete: bool,
        now: datetime,
        source: str = "crisis_cell",
    ) -> bool:
        """Record the total of jobs created so far; False when it repeats the last report."""
        _check_source(source)
        self._require_not_merged()
        check_transition(self.stage, Stage.JOBS_CREATED)
        if jobs_created_total < self.jobs_created:
            raise InvalidProjectChange(
                f"jobs created cannot decrease: project {self.id} already has"
                f" {self.jobs_created}, the report says {jobs_created_total}"
            )
        if created_on > now.date():
            raise InvalidProjectChange(f"jobs cannot be created in the future ({created_on})")
        if self.stage is Stage.JOBS_CREATED:
            if jobs_created_total == self.jobs_created and complete == self.jobs_complete:
                return False
        elif jobs_created_total == 0:
            raise InvalidProjectChange(
                "a project reaches jobs_created with at least one job created"
            )
        added = jobs_created_total - self.jobs_created
        self.reports.append(
            Report(
                source=source,
                reference=f"jobs created: {jobs_created_total} in total",
                reported_at=now,
                figures={
                    "jobs_created_total": jobs_created_total,
                    "created_on": created_on.isoformat(),
                    "complete": complete,
                },
            )
        )
        self.jobs_created = jobs_created_total
        self.jobs_complete = complete
        self.stage = Stage.JOBS_CREATED
        self._record(
            ev.JobsCreated, now, jobs_added=added, created_on=created_on, complete=complete
        )
        return True

    def abandon(self, reason: str, *, now: datetime, source: str = "crisis_cell") -> None:
        """Abandon the project; the reason, in business terms, travels in the event."""
        _check_source(source)
        self._require_not_merged()
        reason = reason.strip()
        if not reason:
            raise InvalidProjectChange("say why the project is abandoned: the reason is empty")
        if len(reason) > ABANDON_REASON_MAX:
            raise InvalidProjectChange(
                f"the reason is {len(reason)} characters long; keep it under {ABANDON_REASON_MAX}"
            )
        check_transition(self.stage, Stage.ABANDONED)
        previous = self.stage
        self.reports.append(
            Report(
                source=source,
                reference=f"stage {previous} → abandoned",
                reported_at=now,
                figures={"stage": Stage.ABANDONED.value, "reason": reason},
            )
        )
        self.stage = Stage.ABANDONED
        self.abandoned_reason = reason
        self._record(ev.ProjectAbandoned, now, previous_stage=previous.value, reason=scrub(reason))

    # --- look-alikes: the crisis cell merges them or dismisses the flag -----------------

    def dismiss_duplicate(self, *, now: datetime, by: str, note: str | None = None) -> bool:
        """Not the same project after all; False when no flag was raised (a retry)."""
        self._require_not_merged()
        if self.possible_duplicate_of is None:
            return False
        figures: dict[str, object] = {"dismissed_duplicate_of": str(self.possible_duplicate_of)}
        if note:
            figures["note"] = note
        self.reports.append(
            Report(
                source="crisis_cell",
                reference=f"not a duplicate of project {self.possible_duplicate_of} ({by})",
                reported_at=now,
                figures=figures,
            )
        )
        self.possible_duplicate_of = None
        self.duplicate_reason = None
        self._record(
            ev.ProjectUpdated, now, source="crisis_cell", changed_fields=["possible_duplicate_of"]
        )
        return True

    def absorb(self, other: Project, *, now: datetime, by: str) -> list[str]:
        """Merge ``other`` (the same project, reported twice) into this one.

        This project keeps its id, stage and ``hidden``; it takes ``other``'s leads (its
        future revisions come here) and reports (the timelines are joined), and
        ``other``'s figures where they are newer (the usual rule). ``other`` records
        ``ProjectMerged`` and counts nowhere from then on. Returns the figures changed.
        """
        if other.id == self.id:
            raise InvalidProjectChange("a project cannot be merged into itself")
        self._require_not_merged()
        other._require_not_merged()
        if other.territory_id != self.territory_id:
            raise InvalidProjectChange(
                f"projects {other.id} and {self.id} are in different territories"
            )
        if not self.live:
            raise InvalidProjectChange(
                f"project {self.id} is over (stage {self.stage}): nothing can be merged into it"
            )
        if other.stage not in (Stage.DETECTED, Stage.QUALIFIED) or other.jobs_created:
            raise Conflict(
                f"project {other.id} is already {other.stage}: merge {self.id} into it instead,"
                " so that its funding and jobs stay where they are"
            )
        mine, theirs = self._figures_as_of(), other._figures_as_of()
        changed: list[str] = []
        if theirs is not None and (mine is None or theirs > mine):
            self.figures, changed = self.figures.merged(other.figures)
        self.lead_ids |= other.lead_ids
        other.lead_ids = set()
        for report in other.reports:
            self.reports.append(
                replace(report, reference=f"from project {other.id}: {report.reference}")
            )
        self.reports.append(
            Report(
                source="crisis_cell",
                reference=f"project {other.id} merged in ({by})",
                reported_at=now,
                figures={"merged_from": str(other.id)},
            )
        )
        if self.possible_duplicate_of == other.id:
            self.possible_duplicate_of = None
            self.duplicate_reason = None
        other.reports.append(
            Report(
                source="crisis_cell",
                reference=f"merged into project {self.id} ({by})",
                reported_at=now,
                figures={"merged_into": str(self.id)},
            )
        )
        other.merged_into = self.id
        other._record(ev.ProjectMerged, now, merged_into=self.id)
        self._record(
            ev.ProjectUpdated, now, source="crisis_cell", changed_fields=[*changed, "merged"]
        )
        return changed

    # --- reading ------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """Whether new reports about this firm and kind may be the same project.

        An abandoned project, one that created all its jobs, or one merged into another,
        is over: the same firm's next project of that kind is a new one, with no flag.
        """
        return (
            self.stage is not Stage.ABANDONED
            and not self.jobs_complete
            and self.merged_into is None
        )

    def key(self) -> ProjectKey:
        return ProjectKey(
            siren=self.siren,
            kind=self.kind,
            territory_id=self.territory_id,
            firm_name=self.firm_name,
            site_id=self.site_id,
        )

    def priority(self) -> SupportPriority:
        figures = self.figures
        return support_priority(
            jobs_planned=figures.jobs_planned,
            capex_eur=figures.capex_eur,
            maturity=figures.maturity,
            obstacles=figures.obstacles,
            hidden=self.hidden,
        )

    # --- internals ----------------------------------------------------------------------

    def _require_not_merged(self) -> None:
        if self.merged_into is not None:
            raise Conflict(f"project {self.id} was merged into project {self.merged_into}")

    def _figures_as_of(self) -> datetime | None:
        dates = [r.reported_at for r in self.reports if any(k in r.figures for k in FIGURE_FIELDS)]
        return max(dates, default=None)

    def _record(self, event: type[ev.ProjectState], now: datetime, **extra: object) -> None:
        self.version += 1
        self.events.append(event(**self._state(now), **extra))

    def _state(self, now: datetime) -> dict[str, object]:
        now = require_aware(now, "now")
        # Deliberately no description and no reports: events carry no free text but the
        # abandonment reason and the firm's name, both scrubbed (shared.scrub), and no person.
        return {
            "project_id": self.id,
            "version": self.version,
            "territory_id": self.territory_id,
            "shock_id": self.shock_id,
            "campaign_id": self.campaign_id,
            "site_id": self.site_id,
            "siren": self.siren,
            "firm_name": scrub(self.firm_name),  # typed by a crisis cell for an exogenous one
            "naf_code": self.naf_code,
            "origin": self.origin,
            "kind": self.kind,
            "stage": self.stage.value,
            "hidden": self.hidden,
            "jobs_planned": self.figures.jobs_planned,
            "jobs_created": self.jobs_created,
            "capex_eur": self.figures.capex_eur,
            "funding_need_eur": self.figures.funding_need_eur,
            "maturity": self.figures.maturity,
            "obstacles": list(self.figures.obstacles),
            "consent_to_share": self.figures.consent_to_share,
            "detected_on": self.detected_on,
            "occurred_at": now,
            "possible_duplicate_of": self.possible_duplicate_of,
        }


def _check_source(source: str) -> None:
    if source not in _SOURCES:
        raise InvalidProjectChange(
            f"unknown report source {source!r} (known: {', '.join(sorted(_SOURCES))})"
        )
