"""The campaign aggregate: launch, re-plans, the crisis cell's changes, consultants' reports.

Pure unit tests: synthetic targets (made-up SIRETs, commune codes "99xxx" that do not
exist, points near (2.6, 50.5)), a fixed clock, no I/O.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from services.campaigns.domain.model import (
    Campaign,
    CampaignClosedError,
    CampaignStatus,
    InvalidCampaignChange,
    Outcome,
    SurveyAnswers,
    TargetSite,
    Visit,
    VisitAlreadyCompleted,
    VisitReassigned,
    VisitStatus,
)
from services.campaigns.domain.planning import Target, priority
from shared.errors import Conflict, NotFound
from shared.events import campaigns as ev
from shared.events.envelope import EventPayload

pytestmark = pytest.mark.unit

CLOSING_SITE = "90000000000999"
CLOSING_NAF = "22.11Z"  # tyre manufacturing, as in the reference case
NAFS = ["22.11Z", "22.19Z", "22.29A", "25.62B", "10.71C", "33.12Z", "24.10Z", "28.99B"]
BANDS = ["11", "12", "21", "03", None]
ROSTER = ["cons-alpha", "cons-bravo", "cons-charlie"]
SHOCK_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
CAMPAIGN_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
TERRITORY = "TI-TEST-01"
STARTS_ON = date(2021, 3, 1)  # a Monday
ENDS_ON = date(2021, 6, 30)
NOW = datetime(2021, 3, 1, 8, 30, tzinfo=UTC)
TODAY = STARTS_ON
N_SITES = 40
N_COMMUNES = 8
PER_COMMUNE = N_SITES // N_COMMUNES


# --------------------------------------------------------------------------- builders


def site_id(n: int) -> str:
    return f"9{n:013d}"


def make_site(n: int) -> TargetSite:
    """The n-th synthetic site (1-based): commune (n-1)//5, a 4 × 2 grid of communes."""
    i = n - 1
    c = (i // PER_COMMUNE) % N_COMMUNES
    return TargetSite(
        site_id=site_id(n),
        siren=f"9{n:08d}",
        naf_code=NAFS[(i * 3) % len(NAFS)],
        headcount_band=BANDS[i % len(BANDS)],
        commune_insee=f"99{c + 1:03d}",
        lon=2.6 + 0.05 * (c % 4) + 0.003 * (i % PER_COMMUNE),
        lat=50.5 + 0.05 * (c // 4) + 0.002 * (i % PER_COMMUNE),
    )


def make_sites(n: int = N_SITES, *, with_closing: bool = True) -> list[TargetSite]:
    """Fresh objects every call: the aggregate keeps (and mutates) the ones it is given."""
    out = [make_site(k) for k in range(1, n + 1)]
    if with_closing:
        out.append(
            TargetSite(
                site_id=CLOSING_SITE,
                siren="900000000",
                naf_code=CLOSING_NAF,
                headcount_band="41",
                commune_insee="99001",
                lon=2.6,
                lat=50.5,
            )
        )
    return out


def launch(**overrides: Any) -> Campaign:
    kwargs: dict[str, Any] = {
        "shock_id": SHOCK_ID,
        "territory_id": TERRITORY,
        "closing_site_id": CLOSING_SITE,
        "closing_naf_code": CLOSING_NAF,
        "sites": make_sites(),
        "roster": list(ROSTER),
        "budget_days": 150.0,
        "cost_per_visit_days": 1.0,
        "daily_cap": 4,
        "starts_on": STARTS_ON,
        "ends_on": ENDS_ON,
        "now": NOW,
        "campaign_id": CAMPAIGN_ID,
    }
    kwargs.update(overrides)
    return Campaign.launch(**kwargs)


def lead(**overrides: Any) -> ev.ProjectLead:
    base: dict[str, Any] = {
        "lead_id": uuid.uuid4(),
        "kind": "capacity_extension",
        "description": "a second extrusion line",
        "capex_eur": 1_200_000,
        "jobs_to_create": 12,
        "horizon_months": 18,
        "maturity": "study",
        "known_to_public_actors": False,
        "obstacles": ["financing"],
        "funding_need_eur": 400_000,
        "consent_to_share": True,
    }
    base.update(overrides)
    return ev.ProjectLead(**base)


def answers(
    *,
    projects: list[ev.ProjectLead] | None = None,
    flags: tuple[str, ...] | list[str] = (),
    **overrides: Any,
) -> SurveyAnswers:
    return SurveyAnswers(
        questionnaire_version="2021-03",
        headcount=32,
        projects=projects if projects is not None else [lead()],
        red_flags=[ev.RedFlagItem(kind=k, horizon_months=12, jobs_at_risk=5) for k in flags],
        **overrides,
    )


def new_events(c: Campaign, since: int) -> list[EventPayload]:
    return c.events[since:]


E = TypeVar("E", bound=EventPayload)


def of_type(events: list[EventPayload], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def planned(c: Campaign) -> dict[str, Visit]:
    return {s: v for s, v in c.visits.items() if v.status is VisitStatus.PLANNED}


def assignment(c: Campaign) -> dict[str, str]:
    return {s: v.consultant_id for s, v in planned(c).items()}


def load(c: Campaign) -> Counter[str]:
    return Counter(v.consultant_id for v in planned(c).values())


def first_planned(c: Campaign, consultant: str | None = None) -> Visit:
    for s in sorted(planned(c)):
        v = c.visits[s]
        if consultant is None or v.consultant_id == consultant:
            return v
    raise AssertionError("no planned visit")


def other_consultant(v: Visit) -> str:
    return next(c for c in ROSTER if c != v.consultant_id)


def score(c: Campaign, site: str) -> float:
    return c.targets[site].priority_score


# --------------------------------------------------------------------------- launch


def test_launch_never_targets_the_closing_site() -> None:
    c = launch()
    assert CLOSING_SITE not in c.targets
    assert CLOSING_SITE not in c.visits
    assert len(c.targets) == N_SITES
    assert all(v.site_id != CLOSING_SITE for v in c.last_plan.visits)  # type: ignore[union-attr]


def test_launch_records_campaign_launched_then_one_visits_scheduled() -> None:
    c = launch(budget_days=120.0, cost_per_visit_days=0.5)
    assert [type(e) for e in c.events] == [ev.CampaignLaunched, ev.VisitsScheduled]
    launched = c.events[0]
    assert isinstance(launched, ev.CampaignLaunched)
    assert launched.campaign_id == CAMPAIGN_ID == c.id
    assert launched.shock_id == SHOCK_ID
    assert launched.territory_id == TERRITORY
    assert launched.closing_site_id == CLOSING_SITE
    assert launched.closing_naf_code == CLOSING_NAF
    assert launched.targets == N_SITES  # the closing site is not counted
    assert launched.budget_days == 120.0
    assert launched.cost_per_visit_days == 0.5
    assert (launched.starts_on, launched.ends_on) == (STARTS_ON, ENDS_ON)
    assert launched.launched_at == NOW
    assert not of_type(c.events, ev.CampaignReplanned)


def test_launch_visits_scheduled_matches_the_planned_visits() -> None:
    c = launch()
    (scheduled,) = of_type(c.events, ev.VisitsScheduled)
    assert scheduled.plan_version == 1
    assert scheduled.cancelled_visit_ids == []
    got = {(i.visit_id, i.site_id, i.scheduled_on) for i in scheduled.visits}
    want = {(v.id, v.site_id, v.scheduled_on) for v in c.visits.values()}
    assert got == want
    assert len(got) == N_SITES  # budget 150 > 40 visits: everything is planned
    plan = c.last_plan
    assert plan is not None
    assert {(p.site_id, p.consultant_id, p.day, p.order) for p in plan.visits} == {
        (v.site_id, v.consultant_id, v.scheduled_on, v.order) for v in c.visits.values()
    }
    assert all(STARTS_ON <= v.scheduled_on <= ENDS_ON for v in c.visits.values())  # type: ignore[operator]


def test_launch_plan_version_is_one_and_every_visit_is_planned() -> None:
    c = launch()
    assert c.plan_version == 1
    assert c.status is CampaignStatus.ACTIVE
    assert all(v.plan_version == 1 and v.version == 1 for v in c.visits.values())
    assert all(v.status is VisitStatus.PLANNED for v in c.visits.values())


@pytest.mark.parametrize("budget", [150.0, 25.0, 7.5])
def test_launch_every_active_target_is_planned_or_has_an_uncovered_reason(budget: float) -> None:
    c = launch(budget_days=budget)
    plan = c.last_plan
    assert plan is not None
    planned_sites = {v.site_id for v in plan.visits}
    uncovered_sites = {u.site_id for u in plan.uncovered}
    assert not planned_sites & uncovered_sites
    for t in c.targets.values():
        assert t.active
        has_visit = t.site_id in planned(c)
        assert has_visit != (t.uncovered_reason is not None), t
        assert has_visit == (t.site_id in planned_sites)
        assert t.priority_reasons  # every target's priority is explained
    assert len(planned_sites) == min(N_SITES, math.floor(budget))


def test_launch_plans_visits_only_for_roster_consultants_deduplicated() -> None:
    c = launch(roster=["cons-bravo", "cons-alpha", "cons-bravo", "cons-charlie"])
    assert c.roster == sorted(ROSTER)
    assert {v.consultant_id for v in c.visits.values()} == set(ROSTER)
    assert all(v.consultant_id in ROSTER for v in c.visits.values())


def test_launch_with_an_empty_roster_plans_nothing_and_says_why() -> None:
    c = launch(roster=[])
    assert c.visits == {}
    (scheduled,) = of_type(c.events, ev.VisitsScheduled)
    assert scheduled.visits == []
    assert all(t.uncovered_reason == "no consultant on the roster" for t in c.targets.values())


# --------------------------------------------------------------------------- budget


def test_budget_of_ten_days_plans_exactly_ten_visits_the_rest_uncovered() -> None:
    c = launch(budget_days=10.0, cost_per_visit_days=1.0)
    assert len(c.visits) == 10
    assert c.last_plan is not None and c.last_plan.days_planned == 10.0
    uncovered = [t for t in c.targets.values() if t.site_id not in c.visits]
    assert len(uncovered) == N_SITES - 10
    for t in uncovered:
        assert t.uncovered_reason is not None
        assert "budget" in t.uncovered_reason
        assert "10" in t.uncovered_reason
    # The budget goes to the highest priorities.
    assert min(score(c, s) for s in c.visits) >= max(score(c, t.site_id) for t in uncovered)


def test_budget_with_fractional_cost_rounds_down_to_whole_visits() -> None:
    c = launch(budget_days=10.0, cost_per_visit_days=0.75)
    assert len(c.visits) == 13  # 13 × 0.75 = 9.75 <= 10 < 14 × 0.75


def test_priority_scores_on_targets_match_the_planning_rules() -> None:
    c = launch(budget_days=5.0)
    for t in c.targets.values():
        p = priority(
            Target(
                site_id=t.site_id,
                naf_code=t.naf_code,
                headcount_band=t.headcount_band,
                commune_insee=t.commune_insee,
                lon=t.lon,
                lat=t.lat,
            ),
            CLOSING_NAF,
        )
        assert (t.priority_score, t.priority_reasons) == (p.score, p.reasons)


# --------------------------------------------------------------------------- re-plans


def test_adding_a_target_replans_and_schedules_its_visit_keeping_assignments() -> None:
    c = launch()
    before = {s: (v.id, v.consultant_id) for s, v in c.visits.items()}
    n = len(c.events)
    new = make_site(N_SITES + 1)
    assert c.add_targets([new], today=TODAY, manual=True) == 1
    events = new_events(c, n)
    assert [type(e) for e in events] == [ev.CampaignReplanned, ev.VisitsScheduled]
    replanned, scheduled = events
    assert isinstance(replanned, ev.CampaignReplanned)
    assert isinstance(scheduled, ev.VisitsScheduled)
    assert replanned.plan_version == scheduled.plan_version == 2 == c.plan_version
    assert replanned.reason == "targets added"
    assert replanned.targets == N_SITES + 1
    assert replanned.planned == N_SITES + 1
    assert replanned.uncovered == 0
    assert replanned.consultants == len(ROSTER)
    new_visit = c.visits[new.site_id]
    assert new_visit.plan_version == 2
    assert new_visit.id in {i.visit_id for i in scheduled.visits}
    # Pinning: every existing visit keeps its id and its consultant.
    for s, (visit_id, consultant) in before.items():
        assert c.visits[s].id == visit_id
        assert c.visits[s].consultant_id == consultant
        assert c.visits[s].status is VisitStatus.PLANNED
    # Only what changed is scheduled again, and an item carries the visit's current state.
    for item in scheduled.visits:
        v = c.visits[item.site_id]
        assert (item.visit_id, item.scheduled_on) == (v.id, v.scheduled_on)
        assert v.plan_version == 2
    assert scheduled.cancelled_visit_ids == []


def test_replan_without_keeping_assignments_may_move_visits() -> None:
    # Pinning keeps the two first consultants' areas when a third joins; a re-plan without
    # pins shares the territory among the three.
    c = launch(roster=ROSTER[:2])
    c.change_roster(add=[ROSTER[2]], remove=[], today=TODAY)
    pinned_assignment = assignment(c)
    c.replan("fresh start", today=TODAY, keep_assignments=True)
    assert assignment(c) == pinned_assignment  # pins hold
    c.replan("fresh start", today=TODAY, keep_assignments=False)
    assert assignment(c) != pinned_assignment
    assert load(c)[ROSTER[2]] > 0
    assert set(planned(c)) == set(pinned_assignment)  # still every target planned


def test_plan_version_increments_on_every_replan() -> None:
    c = launch()
    versions = [c.plan_version]
    c.replan("manual", today=TODAY)
    versions.append(c.plan_version)
    c.add_targets([make_site(N_SITES + 1)], today=TODAY, manual=True)
    versions.append(c.plan_version)
    c.replan("manual", today=TODAY, keep_assignments=False)
    versions.append(c.plan_version)
    c.remove_target(site_id(1), today=TODAY, manual=True, reason="target removed")
    versions.append(c.plan_version)
    assert versions == [1, 2, 3, 4, 5]
    replans = of_type(c.events, ev.CampaignReplanned)
    assert [r.plan_version for r in replans] == [2, 3, 4, 5]
    assert [r.reason for r in replans] == ["manual", "targets added", "manual", "target removed"]


def test_replan_with_nothing_changed_records_no_visits_scheduled() -> None:
    c = launch()
    n = len(c.events)
    c.replan("check", today=TODAY)
    assert [type(e) for e in new_events(c, n)] == [ev.CampaignReplanned]


def test_replan_later_never_schedules_before_today() -> None:
    c = launch()
    later = date(2021, 4, 12)  # a Monday
    c.replan("late start", today=later)
    assert all(v.scheduled_on >= later for v in planned(c).values())  # type: ignore[operator]


# --------------------------------------------------------------------------- targets


def test_remove_target_cancels_its_planned_visit() -> None:
    c = launch()
    target = site_id(7)
    visit = c.visits[target]
    n = len(c.events)
    assert c.remove_target(target, today=TODAY, manual=True, reason="target removed") is True
    assert c.targets[target].active is False
    assert c.targets[target].manual is True
    assert c.targets[target].uncovered_reason is None
    assert visit.status is VisitStatus.CANCELLED
    assert visit.version == 2
    replanned = of_type(new_events(c, n), ev.CampaignReplanned)
    scheduled = of_type(new_events(c, n), ev.VisitsScheduled)
    assert len(replanned) == 1 and len(scheduled) == 1
    assert replanned[0].targets == N_SITES - 1
    assert replanned[0].reason == "target removed"
    assert visit.id in scheduled[0].cancelled_visit_ids
    assert scheduled[0].cancelled_visit_ids == [visit.id]
    assert target not in {i.site_id for i in scheduled[0].visits}
    assert target not in {p.site_id for p in c.last_plan.visits}  # type: ignore[union-attr]


def test_remove_unknown_site_raises_not_found() -> None:
    c = launch()
    n = len(c.events)
    with pytest.raises(NotFound) as err:
        c.remove_target("91111111111111", today=TODAY, manual=True, reason="x")
    assert err.value.status_code == 404
    assert "91111111111111" in err.value.message
    assert len(c.events) == n and c.plan_version == 1


def test_remove_closing_site_raises_not_found() -> None:
    c = launch()
    with pytest.raises(NotFound):
        c.remove_target(CLOSING_SITE, today=TODAY, manual=True, reason="x")


def test_remove_target_twice_returns_false_the_second_time_and_records_nothing() -> None:
    c = launch()
    assert c.remove_target(site_id(3), today=TODAY, manual=True, reason="r") is True
    n, version = len(c.events), c.plan_version
    assert c.remove_target(site_id(3), today=TODAY, manual=True, reason="r") is False
    assert len(c.events) == n
    assert c.plan_version == version


def test_site_removed_manually_is_not_readded_by_a_site_event() -> None:
    c = launch()
    target = site_id(5)
    c.remove_target(target, today=TODAY, manual=True, reason="target removed")
    n, version = len(c.events), c.plan_version
    assert c.add_targets([make_site(5)], today=TODAY, manual=False) == 0
    assert c.targets[target].active is False
    assert len(c.events) == n and c.plan_version == version
    assert target not in planned(c)


def test_site_removed_manually_is_readded_by_the_crisis_cell() -> None:
    c = launch()
    target = site_id(5)
    old = c.visits[target]
    c.remove_target(target, today=TODAY, manual=True, reason="target removed")
    n = len(c.events)
    assert c.add_targets([make_site(5)], today=TODAY, manual=True) == 1
    assert c.targets[target].active is True
    assert c.targets[target].manual is True
    new = c.visits[target]
    assert new.status is VisitStatus.PLANNED
    assert new.id != old.id
    (scheduled,) = of_type(new_events(c, n), ev.VisitsScheduled)
    assert new.id in {i.visit_id for i in scheduled.visits}


def test_site_removed_by_a_site_event_is_readded_by_a_site_event() -> None:
    c = launch()
    target = site_id(9)
    c.remove_target(target, today=TODAY, manual=False, reason="site closed")
    assert c.add_targets([make_site(9)], today=TODAY, manual=False) == 1
    assert c.targets[target].active is True
    assert target in planned(c)


def test_adding_an_active_target_again_changes_nothing() -> None:
    c = launch()
    n = len(c.events)
    assert c.add_targets([make_site(2)], today=TODAY, manual=True) == 0
    assert len(c.events) == n and c.plan_version == 1


def test_adding_the_closing_site_is_refused() -> None:
    c = launch()
    closing = next(s for s in make_sites() if s.site_id == CLOSING_SITE)
    with pytest.raises(InvalidCampaignChange, match="closing site"):
        c.add_targets([closing], today=TODAY, manual=True)
    assert CLOSING_SITE not in c.targets


def test_refresh_target_updates_facts_without_replanning() -> None:
    c = launch()
    fresh = make_site(4)
    fresh.naf_code, fresh.headcount_band, fresh.commune_insee = "22.11Z", "53", "99099"
    n = len(c.events)
    c.refresh_target(fresh)
    t = c.targets[site_id(4)]
    assert (t.naf_code, t.headcount_band, t.commune_insee) == ("22.11Z", "53", "99099")
    assert len(c.events) == n and c.plan_version == 1
    c.refresh_target(make_site(999))  # unknown site: ignored
    assert site_id(999) not in c.targets


# --------------------------------------------------------------------------- roster


def test_removing_a_consultant_moves_all_their_planned_visits_to_others() -> None:
    c = launch()
    leaving = ROSTER[1]
    before = assignment(c)
    theirs = {s for s, who in before.items() if who == leaving}
    assert theirs
    n = len(c.events)
    c.change_roster(add=[], remove=[leaving], today=TODAY)
    after = assignment(c)
    assert leaving not in c.roster
    assert set(after) == set(before)  # nobody loses a visit
    assert leaving not in after.values()
    for s, who in before.items():
        if who != leaving:
            assert after[s] == who  # the others keep their sites
    # The moved visits keep their id, are re-versioned and scheduled again.
    (scheduled,) = of_type(new_events(c, n), ev.VisitsScheduled)
    assert theirs <= {i.site_id for i in scheduled.visits}
    assert all(c.visits[s].plan_version == 2 and c.visits[s].version >= 2 for s in theirs)
    (replanned,) = of_type(new_events(c, n), ev.CampaignReplanned)
    assert replanned.consultants == len(ROSTER) - 1
    assert replanned.reason == "roster changed"


def test_adding_a_consultant_spreads_the_load() -> None:
    c = launch(roster=ROSTER[:2])
    assert load(c) == Counter({ROSTER[0]: 20, ROSTER[1]: 20})
    c.change_roster(add=[ROSTER[2]], remove=[], today=TODAY)
    per = load(c)
    assert sum(per.values()) == N_SITES
    assert per[ROSTER[2]] > 0
    assert max(per.values()) - min(per[c_] for c_ in ROSTER) <= PER_COMMUNE


def test_unchanged_roster_records_nothing() -> None:
    c = launch()
    n, version = len(c.events), c.plan_version
    c.change_roster(add=[ROSTER[0]], remove=["not-on-the-roster"], today=TODAY)
    c.change_roster(add=[], remove=[], today=TODAY)
    assert len(c.events) == n
    assert c.plan_version == version
    assert c.roster == sorted(ROSTER)


def test_removing_every_consultant_leaves_every_target_uncovered() -> None:
    c = launch()
    visits = {v.id for v in c.visits.values()}
    n = len(c.events)
    c.change_roster(add=[], remove=list(ROSTER), today=TODAY)
    assert planned(c) == {}
    (scheduled,) = of_type(new_events(c, n), ev.VisitsScheduled)
    assert set(scheduled.cancelled_visit_ids) == visits
    assert all(t.uncovered_reason == "no consultant on the roster" for t in c.targets.values())


# --------------------------------------------------------------------------- terms


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"budget_days": 0.0}, "budget_days"),
        ({"budget_days": -5.0}, "budget_days"),
        ({"cost_per_visit_days": 0.0}, "cost_per_visit_days"),
        ({"cost_per_visit_days": -0.5}, "cost_per_visit_days"),
        ({"daily_cap": 0}, "daily_cap"),
        ({"daily_cap": -1}, "daily_cap"),
        ({"ends_on": STARTS_ON - timedelta(days=1)}, "before the start"),
        ({"ends_on": STARTS_ON + timedelta(weeks=156, days=1)}, "156 weeks after"),
    ],
)
def test_change_terms_refuses_invalid_terms(change: dict[str, Any], words: str) -> None:
    c = launch()
    n = len(c.events)
    terms = (c.budget_days, c.cost_per_visit_days, c.daily_cap, c.ends_on)
    with pytest.raises(InvalidCampaignChange) as err:
        c.change_terms(today=TODAY, **change)
    assert words in err.value.message
    assert err.value.status_code == 422
    assert err.value.code == "invalid_campaign_change"
    assert (c.budget_days, c.cost_per_visit_days, c.daily_cap, c.ends_on) == terms
    assert len(c.events) == n and c.plan_version == 1


@pytest.mark.parametrize("budget", [math.nan, math.inf])
def test_change_terms_refuses_non_finite_budget(budget: float) -> None:
    c = launch()
    with pytest.raises(InvalidCampaignChange):
        c.change_terms(today=TODAY, budget_days=budget)
    assert c.budget_days == 150.0


def test_change_terms_bigger_budget_covers_previously_uncovered_targets() -> None:
    c = launch(budget_days=10.0)
    before = assignment(c)
    uncovered = {s for s, t in c.targets.items() if t.uncovered_reason is not None}
    assert len(uncovered) == N_SITES - 10
    n = len(c.events)
    c.change_terms(today=TODAY, budget_days=40.0)
    assert c.budget_days == 40.0
    assert set(planned(c)) == set(c.targets)
    assert all(t.uncovered_reason is None for t in c.targets.values())
    for s, who in before.items():
        assert c.visits[s].consultant_id == who
    replanned, scheduled = new_events(c, n)
    assert isinstance(replanned, ev.CampaignReplanned)
    assert isinstance(scheduled, ev.VisitsScheduled)
    assert replanned.reason == "terms changed"
    assert (replanned.budget_days, replanned.planned, replanned.uncovered) == (40.0, 40, 0)
    assert uncovered <= {i.site_id for i in scheduled.visits}


def test_change_terms_smaller_budget_cancels_the_lowest_priorities() -> None:
    c = launch()
    n = len(c.events)
    c.change_terms(today=TODAY, budget_days=12.0)
    assert len(planned(c)) == 12
    (scheduled,) = of_type(new_events(c, n), ev.VisitsScheduled)
    assert len(scheduled.cancelled_visit_ids) == N_SITES - 12
    kept = set(planned(c))
    dropped = set(c.targets) - kept
    assert min(score(c, s) for s in kept) >= max(score(c, s) for s in dropped)
    assert all("budget" in (c.targets[s].uncovered_reason or "") for s in dropped)


def test_change_terms_earlier_end_leaves_late_targets_uncovered() -> None:
    c = launch(daily_cap=1)
    c.change_terms(today=TODAY, ends_on=date(2021, 3, 5))  # Mon–Fri: 5 days × 3 consultants
    assert len(planned(c)) == 15
    assert all(v.scheduled_on <= date(2021, 3, 5) for v in planned(c).values())  # type: ignore[operator]
    late = [t for t in c.targets.values() if t.site_id not in planned(c)]
    assert all(t.uncovered_reason == "no working day left before 2021-03-05" for t in late)


# --------------------------------------------------------------------------- close


def test_close_cancels_every_planned_visit_and_records_counts() -> None:
    c = launch()
    done = [first_planned(c, who) for who in ROSTER[:2]]
    for v in done:
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )
    n = len(c.events)
    later = NOW + timedelta(days=30)
    c.close(now=later)
    assert c.status is CampaignStatus.CLOSED
    assert c.closed_at == later
    assert planned(c) == {}
    assert sum(v.status is VisitStatus.COMPLETED for v in c.visits.values()) == 2
    (closed,) = new_events(c, n)
    assert isinstance(closed, ev.CampaignClosed)
    assert closed.campaign_id == c.id
    assert closed.closed_at == later
    assert (closed.visits_completed, closed.visits_cancelled) == (2, N_SITES - 2)


def _commands(c: Campaign) -> dict[str, Callable[[], object]]:
    v = next(iter(c.visits.values()))
    return {
        "replan": lambda: c.replan("x", today=TODAY),
        "add_targets": lambda: c.add_targets([make_site(99)], today=TODAY, manual=True),
        "remove_target": lambda: c.remove_target(site_id(1), today=TODAY, manual=True, reason="x"),
        "change_roster": lambda: c.change_roster(add=["cons-delta"], remove=[], today=TODAY),
        "change_terms": lambda: c.change_terms(today=TODAY, budget_days=5.0),
        "close": lambda: c.close(now=NOW),
        "record_outcome": lambda: c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        ),
        "submit_survey": lambda: c.submit_survey(
            v.id, consultant_id=v.consultant_id, answers=answers(), now=NOW
        ),
    }


COMMANDS = [
    "add_targets",
    "change_roster",
    "change_terms",
    "close",
    "record_outcome",
    "remove_target",
    "replan",
    "submit_survey",
]


def test_commands_list_is_complete() -> None:
    assert sorted(_commands(launch())) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_after_close_raises_campaign_closed(command: str) -> None:
    c = launch()
    c.close(now=NOW)
    n = len(c.events)
    with pytest.raises(CampaignClosedError) as err:
        _commands(c)[command]()
    assert err.value.status_code == 409
    assert err.value.code == "campaign_closed"
    assert len(c.events) == n
    assert c.status is CampaignStatus.CLOSED


# --------------------------------------------------------------------------- outcomes


def test_outcome_by_the_assigned_consultant_completes_the_visit() -> None:
    c = launch()
    v = first_planned(c)
    n = len(c.events)
    recorded = c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.SITE_CLOSED,
        reason=None,
        visited_on=date(2021, 3, 2),
        today=TODAY,
    )
    assert recorded is True
    assert v.status is VisitStatus.COMPLETED
    assert (v.outcome, v.visited_on, v.version) == (Outcome.SITE_CLOSED, date(2021, 3, 2), 2)
    (done,) = new_events(c, n)
    assert isinstance(done, ev.VisitCompleted)
    assert (done.campaign_id, done.visit_id, done.site_id) == (c.id, v.id, v.site_id)
    assert (done.outcome, done.visited_on) == ("site_closed", date(2021, 3, 2))


@pytest.mark.parametrize(
    "visited_on",
    [STARTS_ON - timedelta(days=2), TODAY + timedelta(days=2), date(9999, 12, 31)],
)
def test_outcome_dated_outside_the_campaign_so_far_is_refused(visited_on: date) -> None:
    c = launch()
    v = first_planned(c)
    n = len(c.events)
    with pytest.raises(InvalidCampaignChange, match="visited_on") as err:
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=visited_on,
            today=TODAY,
        )
    assert err.value.status_code == 422
    assert v.status is VisitStatus.PLANNED and len(c.events) == n


def test_outcome_dated_tomorrow_is_accepted_for_overseas_consultants() -> None:
    c = launch()
    v = first_planned(c)
    tomorrow = TODAY + timedelta(days=1)
    assert c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.REACHED,
        reason=None,
        visited_on=tomorrow,
        today=TODAY,
    )
    assert v.visited_on == tomorrow


@pytest.mark.parametrize("phone", ["UTC", "America/Guadeloupe", "Pacific/Tahiti"])
def test_outcome_dated_on_a_phone_still_on_the_day_before_a_launch_after_paris_midnight(
    phone: str,
) -> None:
    # Launched at 00:30 in Paris, on the day the campaign starts; the consultant records a
    # visit at once, on a phone whose calendar still shows the day before (found by the
    # offline-sync browser test run after 23:00 UTC: the report was refused).
    launched_at = datetime.combine(STARTS_ON, time(0, 30), tzinfo=ZoneInfo("Europe/Paris"))
    c = launch(now=launched_at)
    v = first_planned(c)
    on_the_phone = launched_at.astimezone(ZoneInfo(phone)).date()
    assert on_the_phone == STARTS_ON - timedelta(days=1)
    assert c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.REACHED,
        reason=None,
        visited_on=on_the_phone,
        today=STARTS_ON,
    )
    assert v.visited_on == on_the_phone


@pytest.mark.parametrize(
    "ends_on", [STARTS_ON - timedelta(days=1), STARTS_ON + timedelta(weeks=156, days=1)]
)
def test_a_campaign_cannot_launch_for_longer_than_three_years(ends_on: date) -> None:
    with pytest.raises(InvalidCampaignChange, match="at most 156 weeks"):
        launch(ends_on=ends_on)


def test_outcome_by_another_consultant_is_refused_as_reassigned() -> None:
    c = launch()
    v = first_planned(c)
    n = len(c.events)
    with pytest.raises(VisitReassigned) as err:
        c.record_outcome(
            v.id,
            consultant_id=other_consultant(v),
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )
    assert err.value.status_code == 409
    assert isinstance(err.value, Conflict)
    assert v.status is VisitStatus.PLANNED
    assert len(c.events) == n


def test_outcome_acting_for_others_is_allowed() -> None:
    c = launch()
    v = first_planned(c)
    assigned = v.consultant_id
    assert c.record_outcome(
        v.id,
        consultant_id="crisis-cell-member",
        outcome=Outcome.UNREACHABLE,
        reason="nobody answers the phone",
        visited_on=TODAY,
        today=TODAY,
        acting_for_others=True,
    )
    assert v.status is VisitStatus.COMPLETED
    assert v.consultant_id == assigned
    assert v.outcome_reason == "nobody answers the phone"


def test_same_outcome_twice_is_a_retry_and_records_nothing() -> None:
    c = launch()
    v = first_planned(c)

    def report() -> bool:
        return c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.DECLINED,
            reason="no time",
            visited_on=TODAY,
            today=TODAY,
        )

    assert report() is True
    n, version = len(c.events), v.version
    assert report() is False
    assert len(c.events) == n
    assert v.version == version


def test_different_outcome_after_completion_is_refused() -> None:
    c = launch()
    v = first_planned(c)
    c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.REACHED,
        reason=None,
        visited_on=TODAY,
        today=TODAY,
    )
    n = len(c.events)
    with pytest.raises(VisitAlreadyCompleted) as err:
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.DECLINED,
            reason="changed their mind",
            visited_on=TODAY,
            today=TODAY,
        )
    assert err.value.status_code == 409
    assert v.outcome is Outcome.REACHED
    assert len(c.events) == n


@pytest.mark.parametrize("outcome", [Outcome.DECLINED, Outcome.UNREACHABLE])
@pytest.mark.parametrize("reason", [None, "", "   "])
def test_declined_or_unreachable_needs_a_reason(outcome: Outcome, reason: str | None) -> None:
    c = launch()
    v = first_planned(c)
    n = len(c.events)
    with pytest.raises(InvalidCampaignChange, match=outcome.value):
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=outcome,
            reason=reason,
            visited_on=TODAY,
            today=TODAY,
        )
    assert v.status is VisitStatus.PLANNED
    assert len(c.events) == n


def test_outcome_on_a_cancelled_visit_is_refused_as_reassigned() -> None:
    c = launch()
    v = first_planned(c)
    c.remove_target(v.site_id, today=TODAY, manual=True, reason="target removed")
    assert v.status is VisitStatus.CANCELLED
    n = len(c.events)
    with pytest.raises(VisitReassigned, match="cancelled"):
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )
    assert len(c.events) == n


def test_outcome_on_a_visit_cancelled_then_replanned_is_refused_as_reassigned() -> None:
    c = launch()
    v = first_planned(c)
    c.remove_target(v.site_id, today=TODAY, manual=True, reason="target removed")
    c.add_targets([make_site(int(v.site_id[1:]))], today=TODAY, manual=True)
    assert c.visits[v.site_id].id != v.id
    with pytest.raises(VisitReassigned):
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )


def test_outcome_on_an_unknown_visit_raises_not_found() -> None:
    c = launch()
    with pytest.raises(NotFound):
        c.record_outcome(
            uuid.uuid4(),
            consultant_id=ROSTER[0],
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )


def test_outcome_on_a_visit_moved_to_another_consultant_is_refused() -> None:
    c = launch()
    leaving = ROSTER[0]
    v = first_planned(c, leaving)
    c.change_roster(add=[], remove=[leaving], today=TODAY)
    assert v.status is VisitStatus.PLANNED and v.consultant_id != leaving
    with pytest.raises(VisitReassigned, match="plan version 2"):
        c.record_outcome(
            v.id,
            consultant_id=leaving,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )


def _complete(c: Campaign, k: int) -> list[Visit]:
    done = [c.visits[s] for s in sorted(planned(c))[:k]]
    for v in done:
        c.record_outcome(
            v.id,
            consultant_id=v.consultant_id,
            outcome=Outcome.REACHED,
            reason=None,
            visited_on=TODAY,
            today=TODAY,
        )
    return done


def test_completed_visits_are_not_replanned() -> None:
    c = launch()
    done = _complete(c, 5)
    snapshot = {v.id: (v.consultant_id, v.scheduled_on, v.version) for v in done}
    c.replan("after visits", today=date(2021, 3, 8), keep_assignments=False)
    c.change_roster(add=[], remove=[ROSTER[0], ROSTER[1]], today=date(2021, 3, 8))
    plan = c.last_plan
    assert plan is not None
    sites_in_plan = {p.site_id for p in plan.visits} | {u.site_id for u in plan.uncovered}
    for v in done:
        assert v.site_id not in sites_in_plan
        assert c.visits[v.site_id] is v
        assert v.status is VisitStatus.COMPLETED
        assert (v.consultant_id, v.scheduled_on, v.version) == snapshot[v.id]
    assert len(plan.visits) == N_SITES - 5


def test_completed_visits_count_toward_the_budget() -> None:
    c = launch(budget_days=10.0)
    done = _complete(c, 4)
    n = len(c.events)
    c.add_targets([make_site(N_SITES + 1)], today=date(2021, 3, 3), manual=True)
    plan = c.last_plan
    assert plan is not None
    assert len(plan.visits) == 10 - 4
    assert plan.days_planned == 10.0 - 4 * 1.0
    assert len(planned(c)) == 6
    (replanned,) = of_type(new_events(c, n), ev.CampaignReplanned)
    assert replanned.days_planned == 6.0
    assert replanned.planned == 6
    assert replanned.uncovered == N_SITES + 1 - 4 - 6
    assert all(
        "4.0 already spent" in (t.uncovered_reason or "")
        for s, t in c.targets.items()
        if s not in c.visits or c.visits[s].status is VisitStatus.CANCELLED
    )
    assert {v.site_id for v in done}.isdisjoint(planned(c))


# --------------------------------------------------------------------------- surveys


def test_survey_on_a_planned_visit_marks_it_reached() -> None:
    c = launch()
    v = first_planned(c)
    n = len(c.events)
    survey = c.submit_survey(
        v.id, consultant_id=v.consultant_id, answers=answers(), now=NOW + timedelta(days=2)
    )
    assert v.status is VisitStatus.COMPLETED
    assert v.outcome is Outcome.REACHED
    assert v.visited_on == date(2021, 3, 3)
    events = new_events(c, n)
    assert [type(e) for e in events] == [ev.VisitCompleted, ev.SurveySubmitted]
    done, submitted = events
    assert isinstance(done, ev.VisitCompleted) and done.outcome == "reached"
    assert isinstance(submitted, ev.SurveySubmitted)
    assert submitted.revision == survey.revision == 1
    assert submitted.survey_id == survey.id
    assert (submitted.site_id, submitted.visit_id) == (v.site_id, v.id)
    t = c.targets[v.site_id]
    assert (submitted.siren, submitted.naf_code, submitted.commune_insee) == (
        t.siren,
        t.naf_code,
        t.commune_insee,
    )
    assert (submitted.shock_id, submitted.territory_id, submitted.campaign_id) == (
        SHOCK_ID,
        TERRITORY,
        c.id,
    )
    assert c.surveys[v.site_id] is survey


def test_survey_resubmission_is_revision_two_with_the_same_leads() -> None:
    c = launch()
    v = first_planned(c)
    leads = [lead(), lead(kind="new_line", jobs_to_create=3)]
    first = c.submit_survey(
        v.id, consultant_id=v.consultant_id, answers=answers(projects=leads), now=NOW
    )
    n = len(c.events)
    revised = [lead.model_copy(update={"maturity": "ready"}) for lead in leads]
    second = c.submit_survey(
        v.id,
        consultant_id=v.consultant_id,
        answers=answers(projects=revised),
        now=NOW + timedelta(hours=1),
    )
    assert second.revision == 2 and second.id != first.id
    assert c.surveys[v.site_id] is second
    (submitted,) = new_events(c, n)  # no second VisitCompleted
    assert isinstance(submitted, ev.SurveySubmitted)
    assert submitted.revision == 2
    assert [p.lead_id for p in submitted.projects] == [p.lead_id for p in leads]
    assert all(p.maturity == "ready" for p in submitted.projects)


def test_red_flags_are_raised_once_per_new_kind() -> None:
    c = launch()
    v = first_planned(c)

    def submit(*flags: str) -> list[ev.RedFlagRaised]:
        n = len(c.events)
        c.submit_survey(
            v.id, consultant_id=v.consultant_id, answers=answers(flags=list(flags)), now=NOW
        )
        return of_type(new_events(c, n), ev.RedFlagRaised)

    first = submit("layoffs")
    assert [r.flag.kind for r in first] == ["layoffs"]
    assert first[0].site_id == v.site_id
    assert first[0].survey_id == c.surveys[v.site_id].id
    assert first[0].territory_id == TERRITORY
    assert submit("layoffs") == []  # same flag again: nothing new
    again = submit("layoffs", "closure")
    assert [r.flag.kind for r in again] == ["closure"]


def test_duplicate_flag_kind_within_one_survey_is_raised_once() -> None:
    c = launch()
    v = first_planned(c)
    c.submit_survey(
        v.id,
        consultant_id=v.consultant_id,
        answers=answers(flags=["relocation", "relocation"]),
        now=NOW,
    )
    assert len(of_type(c.events, ev.RedFlagRaised)) == 1


def test_survey_on_a_declined_visit_is_refused() -> None:
    c = launch()
    v = first_planned(c)
    c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.DECLINED,
        reason="not interested",
        visited_on=TODAY,
        today=TODAY,
    )
    n = len(c.events)
    with pytest.raises(VisitAlreadyCompleted, match="declined"):
        c.submit_survey(v.id, consultant_id=v.consultant_id, answers=answers(), now=NOW)
    assert len(c.events) == n
    assert v.site_id not in c.surveys


def test_survey_with_two_projects_sharing_a_lead_id_is_refused() -> None:
    c = launch()
    v = first_planned(c)
    c.record_outcome(
        v.id,
        consultant_id=v.consultant_id,
        outcome=Outcome.REACHED,
        reason=None,
        visited_on=TODAY,
        today=TODAY,
    )
    shared = uuid.uuid4()
    n = len(c.events)
    with pytest.raises(InvalidCampaignChange, match="lead_id"):
        c.submit_survey(
            v.id,
            consultant_id=v.consultant_id,
            answers=answers(projects=[lead(lead_id=shared), lead(lead_id=shared)]),
            now=NOW,
        )
    assert len(c.events) == n
    assert v.site_id not in c.surveys


def test_refused_survey_leaves_a_planned_visit_planned() -> None:
    c = launch()
    v = first_planned(c)
    shared = uuid.uuid4()
    n = len(c.events)
    with pytest.raises(InvalidCampaignChange):
        c.submit_survey(
            v.id,
            consultant_id=v.consultant_id,
            answers=answers(projects=[lead(lead_id=shared), lead(lead_id=shared)]),
            now=NOW,
        )
    assert v.status is VisitStatus.PLANNED
    assert len(c.events) == n


def test_survey_by_another_consultant_is_refused() -> None:
    c = launch()
    v = first_planned(c)
    with pytest.raises(VisitReassigned):  # planned visit
        c.submit_survey(v.id, consultant_id=other_consultant(v), answers=answers(), now=NOW)
    assert v.status is VisitStatus.PLANNED
    c.submit_survey(v.id, consultant_id=v.consultant_id, answers=answers(), now=NOW)
    with pytest.raises(VisitReassigned):  # completed visit
        c.submit_survey(v.id, consultant_id=other_consultant(v), answers=answers(), now=NOW)
    assert c.surveys[v.site_id].revision == 1
    other = c.submit_survey(
        v.id,
        consultant_id="crisis-cell-member",
        answers=answers(),
        now=NOW,
        acting_for_others=True,
    )
    assert other.revision == 2


def test_survey_on_a_cancelled_visit_is_refused_as_reassigned() -> None:
    c = launch()
    v = first_planned(c)
    c.change_terms(today=TODAY, budget_days=1.0)  # cancels all visits but the top priority
    v = next(x for x in c.visits.values() if x.status is VisitStatus.CANCELLED)
    with pytest.raises(VisitReassigned):
        c.submit_survey(v.id, consultant_id=v.consultant_id, answers=answers(), now=NOW)


def test_survey_submitted_json_carries_no_personal_data_nor_consultant() -> None:
    c = launch()
    v = first_planned(c)
    secret = answers(
        contact_name="Jeanne Dupont-Lefebvre",
        contact_phone="+33 6 12 34 56 78",
        comments="le directeur envisage de vendre, ne pas ébruiter",
        flags=["layoffs"],
    )
    n = len(c.events)
    c.submit_survey(v.id, consultant_id=v.consultant_id, answers=secret, now=NOW)
    (submitted,) = of_type(new_events(c, n), ev.SurveySubmitted)
    text = submitted.model_dump_json()
    for needle in (
        "Jeanne",
        "Dupont-Lefebvre",
        "12 34 56 78",
        "+33",
        "ébruiter",
        "ne pas",
        v.consultant_id,
    ):
        assert needle not in text, needle
    document = json.loads(text)
    assert not {"contact_name", "contact_phone", "comments", "consultant_id"} & set(document)
    assert len(document["projects"]) == 1  # the payload is not simply empty
    for event in new_events(c, n):
        assert v.consultant_id not in event.model_dump_json()


def test_no_event_carries_a_consultant_id() -> None:
    # Consultant ids are login subjects (maybe e-mail addresses): they never leave the service.
    roster = ["jeanne.martin@example.org", "paul.durand@example.org"]
    c = launch(roster=roster)
    v = first_planned(c)
    c.submit_survey(
        v.id, consultant_id=v.consultant_id, answers=answers(flags=["closure"]), now=NOW
    )
    c.change_roster(add=["zoe.petit@example.org"], remove=[roster[1]], today=TODAY)
    c.replan("rebalance", today=TODAY, keep_assignments=False)
    c.close(now=NOW)
    kinds = {type(e) for e in c.events}
    assert {ev.VisitsScheduled, ev.SurveySubmitted, ev.RedFlagRaised, ev.CampaignClosed} <= kinds
    for event in c.events:
        text = event.model_dump_json()
        assert "@example.org" not in text, type(event).__name__
        assert "consultant_id" not in text


# --------------------------------------------------------------------------- determinism


def _schedule(c: Campaign) -> dict[str, tuple[str, date | None, int]]:
    return {s: (v.consultant_id, v.scheduled_on, v.order) for s, v in c.visits.items()}


def test_two_launches_with_the_same_inputs_give_the_same_visits() -> None:
    a = launch()
    b = launch()
    assert _schedule(a) == _schedule(b)
    assert len(_schedule(a)) == N_SITES
    assert {s: t.uncovered_reason for s, t in a.targets.items()} == {
        s: t.uncovered_reason for s, t in b.targets.items()
    }


def test_launch_does_not_depend_on_the_order_of_sites_or_roster() -> None:
    a = launch(budget_days=25.0)
    sites = make_sites()
    random.Random(3).shuffle(sites)
    b = launch(budget_days=25.0, sites=sites, roster=list(reversed(ROSTER)))
    assert _schedule(a) == _schedule(b)
    assert len(_schedule(a)) == 25
