"""The campaign aggregate: targets, roster, budget, the plan and its visits, surveys.

Pure Python. The clock is passed in (`today`, `now`), the planning rules live in
`planning.py`; every change records the events that describe it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from services.campaigns.domain.planning import Plan, PlanningRules, Target, make_plan
from shared.clock import PARIS
from shared.errors import Conflict, DomainError, NotFound
from shared.events import campaigns as ev
from shared.events.envelope import EventPayload
from shared.scrub import scrub
from shared.timestamps import require_aware

#: The longest a campaign may run: Béthune's ran six months; three years is a generous cap
#: that still refuses a typo like 2062 (and keeps every plan's day count bounded).
MAX_CAMPAIGN_SPAN = timedelta(weeks=156)
#: How far a visit's date may be from Paris's calendar, either way: overseas territories
#: are ahead of it (Nouméa, Wallis) or behind it (the Antilles, Guyane, Polynesia).
VISIT_DATE_GRACE = timedelta(days=1)


class CampaignStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class VisitStatus(StrEnum):
    PLANNED = "planned"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    REACHED = "reached"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"
    SITE_CLOSED = "site_closed"


class CampaignClosedError(Conflict):
    code = "campaign_closed"


class VisitReassigned(Conflict):
    code = "visit_reassigned"


class VisitAlreadyCompleted(Conflict):
    code = "visit_already_completed"


class InvalidCampaignChange(DomainError):
    code = "invalid_campaign_change"


@dataclass
class TargetSite:
    """What a campaign needs to know of a target site (kept fresh from site events)."""

    site_id: str
    siren: str
    naf_code: str
    headcount_band: str | None
    commune_insee: str
    lon: float | None
    lat: float | None
    active: bool = True  # False: removed from the plan (by the crisis cell, or site closed)
    manual: bool = False  # added or removed by the crisis cell: site events do not undo it
    priority_score: float = 0.0
    priority_reasons: tuple[str, ...] = ()
    uncovered_reason: str | None = None


@dataclass(frozen=True)
class Site:
    """A site as the registry last described it: the service's own projection, built
    from site events alone (never a call to the registry)."""

    site_id: str
    siren: str
    name: str | None
    naf_code: str
    naf_section: str
    headcount_band: str | None
    commune_insee: str
    territory_ids: tuple[str, ...]
    lon: float | None
    lat: float | None
    status: str  # active, closure_announced or closed
    version: int

    def target(self) -> TargetSite:
        return TargetSite(
            site_id=self.site_id,
            siren=self.siren,
            naf_code=self.naf_code,
            headcount_band=self.headcount_band,
            commune_insee=self.commune_insee,
            lon=self.lon,
            lat=self.lat,
        )


@dataclass
class Visit:
    id: uuid.UUID
    site_id: str
    consultant_id: str
    scheduled_on: date | None
    order: int
    plan_version: int
    status: VisitStatus = VisitStatus.PLANNED
    outcome: Outcome | None = None
    outcome_reason: str | None = None
    visited_on: date | None = None
    version: int = 1


@dataclass
class SurveyAnswers:
    questionnaire_version: str
    headcount: int | None
    projects: list[ev.ProjectLead]
    red_flags: list[ev.RedFlagItem]
    contact_name: str | None = None  # personal data: stays in this service's database
    contact_phone: str | None = None
    comments: str | None = None


@dataclass
class Survey:
    id: uuid.UUID
    visit_id: uuid.UUID
    site_id: str
    consultant_id: str
    revision: int
    answers: SurveyAnswers
    submitted_at: datetime


@dataclass
class Campaign:
    id: uuid.UUID
    shock_id: uuid.UUID
    territory_id: str
    closing_site_id: str
    closing_naf_code: str
    budget_days: float
    cost_per_visit_days: float
    daily_cap: int
    starts_on: date
    ends_on: date
    roster: list[str]
    launched_at: datetime
    status: CampaignStatus = CampaignStatus.ACTIVE
    plan_version: int = 0
    closed_at: datetime | None = None
    targets: dict[str, TargetSite] = field(default_factory=dict)
    visits: dict[str, Visit] = field(default_factory=dict)  # the current visit of each site
    surveys: dict[str, Survey] = field(default_factory=dict)  # the latest survey of each site
    past_visits: dict[uuid.UUID, Visit] = field(default_factory=dict)  # cancelled, replaced
    events: list[EventPayload] = field(default_factory=list, repr=False, compare=False)
    last_plan: Plan | None = field(default=None, repr=False, compare=False)

    # --- launch and plan --------------------------------------------------------------

    @classmethod
    def launch(
        cls,
        *,
        shock_id: uuid.UUID,
        territory_id: str,
        closing_site_id: str,
        closing_naf_code: str,
        sites: list[TargetSite],
        roster: list[str],
        budget_days: float,
        cost_per_visit_days: float,
        daily_cap: int,
        starts_on: date,
        ends_on: date,
        now: datetime,
        campaign_id: uuid.UUID | None = None,
    ) -> Campaign:
        now = require_aware(now, "now")
        if not starts_on <= ends_on <= starts_on + MAX_CAMPAIGN_SPAN:
            raise InvalidCampaignChange(
                f"a campaign runs from {starts_on} for at most {MAX_CAMPAIGN_SPAN.days // 7}"
                f" weeks, not until {ends_on}"
            )
        campaign = cls(
            id=campaign_id or uuid.uuid4(),
            shock_id=shock_id,
            territory_id=territory_id,
            closing_site_id=closing_site_id,
            closing_naf_code=closing_naf_code,
            budget_days=budget_days,
            cost_per_visit_days=cost_per_visit_days,
            daily_cap=daily_cap,
            starts_on=starts_on,
            ends_on=ends_on,
            roster=sorted(set(roster)),
            launched_at=now,
        )
        for site in sites:
            if site.site_id != closing_site_id:
                # A copy: the aggregate changes its targets, never the caller's objects.
                campaign.targets[site.site_id] = replace(site, active=True)
        campaign.events.append(
            ev.CampaignLaunched(
                campaign_id=campaign.id,
                shock_id=shock_id,
                territory_id=territory_id,
                closing_site_id=closing_site_id,
                closing_naf_code=closing_naf_code,
                targets=len(campaign.targets),
                budget_days=budget_days,
                cost_per_visit_days=cost_per_visit_days,
                starts_on=starts_on,
                ends_on=ends_on,
                launched_at=now,
            )
        )
        campaign._replan("launch", today=starts_on, keep_assignments=False)
        return campaign

    def replan(self, reason: str, *, today: date, keep_assignments: bool = True) -> None:
        self._require_active()
        self._replan(reason, today=today, keep_assignments=keep_assignments)

    def _replan(
        self, reason: str, *, today: date, keep_assignments: bool, fair_share: bool = False
    ) -> None:
        completed = {s for s, v in self.visits.items() if v.status is VisitStatus.COMPLETED}
        pins = self._pins(fair_share) if keep_assignments else {}
        targets = [
            Target(
                site_id=t.site_id,
                naf_code=t.naf_code,
                headcount_band=t.headcount_band,
                commune_insee=t.commune_insee,
                lon=t.lon,
                lat=t.lat,
                visited=t.site_id in completed,
                pinned_consultant=pins.get(t.site_id),
            )
            for t in sorted(self.targets.values(), key=lambda t: t.site_id)
            if t.active
        ]
        rules = PlanningRules(
            budget_days=self.budget_days,
            cost_per_visit_days=self.cost_per_visit_days,
            daily_cap=self.daily_cap,
            start=max(self.starts_on, today),
            end=self.ends_on,
            closing_naf_code=self.closing_naf_code,
            budget_used_days=len(completed) * self.cost_per_visit_days,
        )
        plan = make_plan(targets, self.roster, rules)
        self.last_plan = plan
        self.plan_version += 1

        changed: list[Visit] = []
        planned_sites: set[str] = set()
        for item in plan.visits:
            planned_sites.add(item.site_id)
            visit = self.visits.get(item.site_id)
            target = self.targets[item.site_id]
            target.priority_score = item.priority.score
            target.priority_reasons = item.priority.reasons
            target.uncovered_reason = None
            if visit is None or visit.status is VisitStatus.CANCELLED:
                if visit is not None:
                    self.past_visits[visit.id] = visit
                visit = Visit(
                    id=uuid.uuid4(),
                    site_id=item.site_id,
                    consultant_id=item.consultant_id,
                    scheduled_on=item.day,
                    order=item.order,
                    plan_version=self.plan_version,
                )
                self.visits[item.site_id] = visit
                changed.append(visit)
            elif (visit.consultant_id, visit.scheduled_on, visit.order) != (
                item.consultant_id,
                item.day,
                item.order,
            ):
                visit.consultant_id = item.consultant_id
                visit.scheduled_on = item.day
                visit.order = item.order
                visit.plan_version = self.plan_version
                visit.version += 1
                changed.append(visit)
        for gap in plan.uncovered:
            target = self.targets[gap.site_id]
            target.priority_score = gap.priority.score
            target.priority_reasons = gap.priority.reasons
            target.uncovered_reason = gap.reason
        cancelled: list[uuid.UUID] = []
        for site_id, visit in self.visits.items():
            if visit.status is VisitStatus.PLANNED and site_id not in planned_sites:
                visit.status = VisitStatus.CANCELLED
                visit.version += 1
                cancelled.append(visit.id)
        for target in self.targets.values():
            if not target.active:
                target.uncovered_reason = None

        active_targets = sum(1 for t in self.targets.values() if t.active)
        if reason != "launch":
            self.events.append(
                ev.CampaignReplanned(
                    campaign_id=self.id,
                    plan_version=self.plan_version,
                    reason=reason,
                    targets=active_targets,
                    planned=len(plan.visits),
                    uncovered=len(plan.uncovered),
                    budget_days=self.budget_days,
                    days_planned=plan.days_planned,
                    consultants=len(self.roster),
                )
            )
        if changed or cancelled or reason == "launch":
            self.events.append(
                ev.VisitsScheduled(
                    campaign_id=self.id,
                    plan_version=self.plan_version,
                    visits=[
                        ev.ScheduledVisitItem(
                            visit_id=v.id,
                            site_id=v.site_id,
                            scheduled_on=v.scheduled_on or self.starts_on,
                        )
                        for v in changed
                    ],
                    cancelled_visit_ids=cancelled,
                )
            )

    def _pins(self, fair_share: bool) -> dict[str, str]:
        """Planned visits that stay with their consultant on a re-plan: offline work stays
        valid. With `fair_share` (consultants joined), each keeps at most a fair share —
        their earliest visits — so the newcomers get an area too."""
        planned = [
            v
            for v in self.visits.values()
            if v.status is VisitStatus.PLANNED and v.consultant_id in self.roster
        ]
        if not self.roster:
            return {}
        fair = math.ceil(len(planned) / len(self.roster)) if fair_share else len(planned)
        kept: dict[str, str] = {}
        per_consultant: dict[str, int] = {}
        for v in sorted(planned, key=lambda v: (v.scheduled_on or date.max, v.order, v.site_id)):
            if per_consultant.get(v.consultant_id, 0) < fair:
                per_consultant[v.consultant_id] = per_consultant.get(v.consultant_id, 0) + 1
                kept[v.site_id] = v.consultant_id
        return kept

    # --- the crisis cell's changes ------------------------------------------------------

    def add_targets(self, sites: list[TargetSite], *, today: date, manual: bool) -> int:
        self._require_active()
        added = 0
        for site in sites:
            if site.site_id == self.closing_site_id:
                if not manual:
                    continue  # the closing site reopened in the registry: still not a target
                raise InvalidCampaignChange(f"{site.site_id} is the closing site itself")
            current = self.targets.get(site.site_id)
            if current is not None and current.active:
                continue
            if current is not None and current.manual and not manual:
                continue  # the crisis cell removed it on purpose: a site event does not undo it
            self.targets[site.site_id] = replace(site, active=True, manual=manual)
            added += 1
        if added:
            self._replan("targets added", today=today, keep_assignments=True)
        return added

    def remove_target(self, site_id: str, *, today: date, manual: bool, reason: str) -> bool:
        self._require_active()
        target = self.targets.get(site_id)
        if target is None:
            raise NotFound(f"{site_id} is not a target of campaign {self.id}")
        if not target.active:
            return False
        target.active = False
        target.manual = manual
        self._replan(reason, today=today, keep_assignments=True)
        return True

    def refresh_target(self, site: TargetSite) -> None:
        """A site's facts changed (event): keep planning inputs fresh, without re-planning."""
        current = self.targets.get(site.site_id)
        if current is None:
            return
        current.naf_code = site.naf_code
        current.headcount_band = site.headcount_band
        current.commune_insee = site.commune_insee
        current.lon, current.lat = site.lon, site.lat

    def change_roster(self, *, add: list[str], remove: list[str], today: date) -> None:
        self._require_active()
        roster = (set(self.roster) | set(add)) - set(remove)
        if sorted(roster) == self.roster:
            return
        joined = bool(roster - set(self.roster))
        self.roster = sorted(roster)
        self._replan("roster changed", today=today, keep_assignments=True, fair_share=joined)

    def change_terms(
        self,
        *,
        today: date,
        budget_days: float | None = None,
        cost_per_visit_days: float | None = None,
        daily_cap: int | None = None,
        ends_on: date | None = None,
    ) -> None:
        self._require_active()
        for name, value in (
            ("budget_days", budget_days),
            ("cost_per_visit_days", cost_per_visit_days),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidCampaignChange(f"{name} must be a positive number, got {value}")
        if daily_cap is not None and daily_cap < 1:
            raise InvalidCampaignChange(f"daily_cap must be at least 1, got {daily_cap}")
        if ends_on is not None and ends_on < self.starts_on:
            raise InvalidCampaignChange(f"ends_on {ends_on} is before the start {self.starts_on}")
        if ends_on is not None and ends_on > self.starts_on + MAX_CAMPAIGN_SPAN:
            raise InvalidCampaignChange(
                f"ends_on {ends_on} is more than {MAX_CAMPAIGN_SPAN.days // 7} weeks after the"
                f" start {self.starts_on}: a campaign is a crisis response, not a standing survey"
            )
        new = (
            budget_days or self.budget_days,
            cost_per_visit_days or self.cost_per_visit_days,
            daily_cap or self.daily_cap,
            ends_on or self.ends_on,
        )
        if new == (self.budget_days, self.cost_per_visit_days, self.daily_cap, self.ends_on):
            return
        self.budget_days, self.cost_per_visit_days, self.daily_cap, self.ends_on = new
        self._replan("terms changed", today=today, keep_assignments=True)

    def close(self, *, now: datetime) -> None:
        now = require_aware(now, "now")
        self._require_active()
        cancelled = 0
        for visit in self.visits.values():
            if visit.status is VisitStatus.PLANNED:
                visit.status = VisitStatus.CANCELLED
                visit.version += 1
                cancelled += 1
        self.status = CampaignStatus.CLOSED
        self.closed_at = now
        self.events.append(
            ev.CampaignClosed(
                campaign_id=self.id,
                closed_at=now,
                visits_completed=sum(
                    1 for v in self.visits.values() if v.status is VisitStatus.COMPLETED
                ),
                visits_cancelled=cancelled,
            )
        )

    # --- the consultants' reports -------------------------------------------------------

    def visit_by_id(self, visit_id: uuid.UUID) -> Visit:
        for visit in self.visits.values():
            if visit.id == visit_id:
                return visit
        if visit_id in self.past_visits:
            return self.past_visits[visit_id]
        raise NotFound(f"no visit {visit_id} in campaign {self.id}")

    def record_outcome(
        self,
        visit_id: uuid.UUID,
        *,
        consultant_id: str,
        outcome: Outcome,
        reason: str | None,
        visited_on: date,
        today: date,
        acting_for_others: bool = False,
    ) -> bool:
        """True when recorded; False when the same outcome was already recorded (a retry).

        `visited_on` is the day on the consultant's own calendar (their phone's). It lies
        between the campaign's first day — its launch, when a crisis cell calls a firm
        before the planned start — and `today`, both on Paris's calendar, with one day of
        grace each side: a consultant in Nouméa may already be on Paris's tomorrow, one in
        Guadeloupe (or a phone on UTC) still on the day before a launch made after
        Paris's midnight."""
        self._require_active()
        first = min(self.starts_on, self.launched_at.astimezone(PARIS).date())
        if not first - VISIT_DATE_GRACE <= visited_on <= today + VISIT_DATE_GRACE:
            raise InvalidCampaignChange(
                f"visited_on {visited_on} is outside the campaign's days so far"
                f" ({first} to {today})"
            )
        visit = self.visit_by_id(visit_id)
        if visit.status is VisitStatus.CANCELLED:
            raise VisitReassigned(f"visit {visit_id} was cancelled by a re-plan")
        if not acting_for_others and visit.consultant_id != consultant_id:
            raise VisitReassigned(
                f"visit {visit_id} is now assigned to another consultant"
                f" (plan version {visit.plan_version})"
            )
        if visit.status is VisitStatus.COMPLETED:
            if visit.outcome is outcome:
                return False
            raise VisitAlreadyCompleted(
                f"visit {visit_id} is already completed with outcome {visit.outcome}"
            )
        if outcome in (Outcome.DECLINED, Outcome.UNREACHABLE) and not (reason or "").strip():
            raise InvalidCampaignChange(f"a {outcome.value} outcome needs a reason")
        visit.status = VisitStatus.COMPLETED
        visit.outcome = outcome
        visit.outcome_reason = reason
        visit.visited_on = visited_on
        visit.version += 1
        self.events.append(
            ev.VisitCompleted(
                campaign_id=self.id,
                visit_id=visit.id,
                site_id=visit.site_id,
                outcome=outcome.value,
                visited_on=visited_on,
            )
        )
        return True

    def submit_survey(
        self,
        visit_id: uuid.UUID,
        *,
        consultant_id: str,
        answers: SurveyAnswers,
        now: datetime,
        acting_for_others: bool = False,
        survey_id: uuid.UUID | None = None,
    ) -> Survey:
        now = require_aware(now, "now")
        self._require_active()
        visit = self.visit_by_id(visit_id)
        if visit.status is VisitStatus.CANCELLED:
            raise VisitReassigned(f"visit {visit_id} was cancelled by a re-plan")
        lead_ids = [p.lead_id for p in answers.projects]
        if len(set(lead_ids)) != len(lead_ids):
            raise InvalidCampaignChange("two projects of the survey share one lead_id")
        if visit.status is VisitStatus.PLANNED:
            self.record_outcome(
                visit_id,
                consultant_id=consultant_id,
                outcome=Outcome.REACHED,
                reason=None,
                visited_on=now.astimezone(PARIS).date(),
                today=now.astimezone(PARIS).date(),
                acting_for_others=acting_for_others,
            )
        elif visit.outcome is not Outcome.REACHED:
            raise VisitAlreadyCompleted(
                f"visit {visit_id} ended with outcome {visit.outcome}: no survey to submit"
            )
        elif not acting_for_others and visit.consultant_id != consultant_id:
            raise VisitReassigned(f"visit {visit_id} is assigned to another consultant")
        target = self.targets[visit.site_id]
        previous = self.surveys.get(visit.site_id)
        raised_before = {f.kind for f in previous.answers.red_flags} if previous else set()
        survey = Survey(
            id=survey_id or uuid.uuid4(),
            visit_id=visit.id,
            site_id=visit.site_id,
            consultant_id=consultant_id,
            revision=(previous.revision + 1) if previous else 1,
            answers=answers,
            submitted_at=now,
        )
        self.surveys[visit.site_id] = survey
        self.events.append(
            ev.SurveySubmitted(
                site_id=visit.site_id,
                survey_id=survey.id,
                campaign_id=self.id,
                shock_id=self.shock_id,
                territory_id=self.territory_id,
                visit_id=visit.id,
                siren=target.siren,
                naf_code=target.naf_code,
                commune_insee=target.commune_insee,
                questionnaire_version=answers.questionnaire_version,
                headcount=answers.headcount,
                # Free text leaves scrubbed (the contact's name too); the survey keeps
                # what the consultant typed.
                projects=[
                    p.model_copy(
                        update={"description": scrub(p.description, names=[answers.contact_name])}
                    )
                    for p in answers.projects
                ],
                red_flags=answers.red_flags,
                submitted_at=now,
                revision=survey.revision,
            )
        )
        for flag in answers.red_flags:
            if flag.kind not in raised_before:
                raised_before.add(flag.kind)
                self.events.append(
                    ev.RedFlagRaised(
                        site_id=visit.site_id,
                        campaign_id=self.id,
                        survey_id=survey.id,
                        territory_id=self.territory_id,
                        flag=flag,
                        raised_at=now,
                    )
                )
        return survey

    def _require_active(self) -> None:
        if self.status is not CampaignStatus.ACTIVE:
            raise CampaignClosedError(f"campaign {self.id} is closed")
