"""The campaigns service layer on the fake unit of work: every command of the crisis cell
and the consultants, every reaction to site events. Each test asserts the state the
repositories hold and the events the outbox would receive; none touches a database."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import pytest

from services.campaigns.domain.model import (
    Campaign,
    CampaignClosedError,
    CampaignStatus,
    InvalidCampaignChange,
    Outcome,
    Site,
    SurveyAnswers,
    VisitAlreadyCompleted,
    VisitReassigned,
    VisitStatus,
)
from services.campaigns.entrypoints import http
from services.campaigns.entrypoints import schemas as s
from services.campaigns.service_layer import commands
from services.campaigns.service_layer.handlers import LaunchDefaults, SiteEventHandlers
from shared.auth import Principal, Role
from shared.clock import Clock
from shared.command_bus import CommandBus
from shared.errors import NotFound
from shared.events import campaigns as ev
from shared.events import site_registry as sr
from shared.events.envelope import Envelope, EventPayload
from tests.unit.campaigns.fakes import FakeCampaignsUnitOfWork

pytestmark = pytest.mark.unit

T = TypeVar("T")

TERRITORY = "ti-1"
OTHER_TERRITORY = "ti-2"
CLOCK = Clock.fixed(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # a Monday
TODAY = date(2026, 11, 23)
DEFAULTS = LaunchDefaults(
    budget_days=6.0, cost_per_visit_days=1.0, daily_cap=2, period_weeks=4, roster=("c-1", "c-2")
)
SITES_IN_TERRITORY = 10  # more than the budget's 6 visits: the plan leaves some uncovered
CLOSING = 999
ELSEWHERE = 500  # a site of another territory
SHOCK_ID = uuid.UUID("00000000-0000-4000-8000-00000000000a")

CELL = Principal(
    subject="cell-1", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({TERRITORY})
)
STRANGER = Principal(
    subject="cell-9", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({OTHER_TERRITORY})
)


def consultant(subject: str) -> Principal:
    return Principal(
        subject=subject, roles=frozenset({Role.CONSULTANT}), territories=frozenset({TERRITORY})
    )


# --------------------------------------------------------------------------- builders


def siret(n: int) -> str:
    return f"9{n:013d}"


def site_state(
    n: int,
    *,
    kind: type[sr.SiteState] = sr.SiteRegistered,
    territories: tuple[str, ...] = (TERRITORY,),
    status: sr.SiteStatus = "active",
    version: int = 1,
    band: str | None = "12",
    naf: str = "22.29A",
) -> sr.SiteState:
    extra: dict[str, Any] = {"changed_fields": ["status"]} if kind is sr.SiteUpdated else {}
    return kind(
        site_id=siret(n),
        siren=siret(n)[:9],
        name=f"Firm {n}",
        naf_code=naf,
        naf_section="C",
        headcount_band=band,
        commune_insee=f"6200{n % 4 + 1}",
        territory_ids=list(territories),
        lon=2.63 + 0.01 * (n % 7),
        lat=50.52 + 0.01 * (n % 5),
        status=status,
        source="generated",
        version=version,
        **extra,
    )


def shock(
    *,
    shock_id: uuid.UUID = SHOCK_ID,
    site: int = CLOSING,
    territories: tuple[str, ...] = (TERRITORY,),
    version: int = 2,
) -> sr.ClosureAnnounced:
    return sr.ClosureAnnounced(
        shock_id=shock_id,
        site_id=siret(site),
        siren=siret(site)[:9],
        site_name="The closing plant",
        naf_code="22.11Z",
        commune_insee="62001",
        territory_ids=list(territories),
        announced_on=date(2026, 11, 20),
        planned_closure_on=None,
        jobs_lost=900,
        declared_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        version=version,
    )


def envelope(payload: EventPayload) -> Envelope[Any]:
    return Envelope.new(payload, source="site_registry", correlation_id=None, causation_id=None)


async def run(
    uow: FakeCampaignsUnitOfWork, step: Callable[[Any], Awaitable[T]]
) -> tuple[T, list[EventPayload]]:
    """One unit of work as the bus or the consumer runs it: the step, then the caller's
    commit. The step itself never commits."""
    before_commits, before_events = uow.commits, len(uow.published)
    async with uow:
        result = await step(uow)
        assert uow.commits == before_commits, "the service layer committed on its own"
        await uow.commit()
    return result, uow.published[before_events:]


async def handle(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, payload: EventPayload
) -> list[EventPayload]:
    handler = handlers.table()[payload.event_type]
    _, events = await run(uow, lambda u: handler(u, envelope(payload)))
    return events


def types(events: list[EventPayload]) -> list[str]:
    return [e.event_type.split(".")[2] for e in events]


@pytest.fixture
def handlers() -> SiteEventHandlers:
    return SiteEventHandlers(DEFAULTS, CLOCK)


@pytest.fixture
async def uow(handlers: SiteEventHandlers) -> FakeCampaignsUnitOfWork:
    """A projection of the territory's sites (the closing one too) and one elsewhere."""
    uow = FakeCampaignsUnitOfWork()
    for n in [*range(1, SITES_IN_TERRITORY + 1), CLOSING]:
        await handle(uow, handlers, site_state(n))
    await handle(uow, handlers, site_state(ELSEWHERE, territories=(OTHER_TERRITORY,)))
    return uow


@pytest.fixture
async def campaign(uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers) -> Campaign:
    await handle(uow, handlers, shock())
    found = await uow.campaigns.by_shock(SHOCK_ID)
    assert found is not None
    return found


def planned_visit(campaign: Campaign, consultant_id: str | None = None) -> uuid.UUID:
    return next(
        v.id
        for v in sorted(campaign.visits.values(), key=lambda v: v.site_id)
        if v.status is VisitStatus.PLANNED and consultant_id in (None, v.consultant_id)
    )


# --------------------------------------------------------------------------- site events


async def test_a_registered_site_joins_the_projection_and_a_replay_changes_nothing(
    handlers: SiteEventHandlers,
) -> None:
    uow = FakeCampaignsUnitOfWork()
    assert await handle(uow, handlers, site_state(1, version=3)) == []
    site = await uow.sites.get(siret(1))
    assert site is not None and site.version == 3 and site.territory_ids == (TERRITORY,)
    assert [s.site_id for s in await uow.sites.active_in_territory(TERRITORY)] == [siret(1)]

    # The same version again, then an older one: the projection keeps what it holds.
    await handle(uow, handlers, site_state(1, version=3, band="53"))
    await handle(uow, handlers, site_state(1, kind=sr.SiteUpdated, version=2, band="53"))
    assert await uow.sites.get(siret(1)) == site


async def test_an_updated_site_refreshes_its_target_without_a_replan(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    plan_version = campaign.plan_version
    events = await handle(uow, handlers, site_state(3, kind=sr.SiteUpdated, version=2, band="41"))
    assert events == []
    assert campaign.targets[siret(3)].headcount_band == "41"
    assert campaign.plan_version == plan_version
    site = await uow.sites.get(siret(3))
    assert site is not None and site.headcount_band == "41" and site.version == 2


async def test_a_site_that_becomes_active_joins_the_running_campaign(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    await handle(uow, handlers, site_state(20, status="closure_announced"))
    assert siret(20) not in campaign.targets
    events = await handle(uow, handlers, site_state(20, kind=sr.SiteUpdated, version=2))
    assert campaign.targets[siret(20)].active and not campaign.targets[siret(20)].manual
    assert types(events)[0] == "campaign_replanned"
    replanned = events[0]
    assert isinstance(replanned, ev.CampaignReplanned) and replanned.reason == "targets added"

    # Redelivered: the projection holds version 2 already, the campaign is left alone.
    assert await handle(uow, handlers, site_state(20, kind=sr.SiteUpdated, version=2)) == []


async def test_a_site_updated_as_closed_leaves_the_plan(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    events = await handle(
        uow, handlers, site_state(2, kind=sr.SiteUpdated, version=2, status="closed")
    )
    assert not campaign.targets[siret(2)].active
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "site closed"


async def test_a_closed_site_leaves_the_plan_once(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    closed = sr.SiteClosed(
        site_id=siret(4),
        siren=siret(4)[:9],
        territory_ids=[TERRITORY],
        closed_on=date(2026, 11, 22),
        version=2,
    )
    events = await handle(uow, handlers, closed)
    site = await uow.sites.get(siret(4))
    assert site is not None and (site.status, site.version) == ("closed", 2)
    assert not campaign.targets[siret(4)].active
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "site closed"
    plan_version = campaign.plan_version

    assert await handle(uow, handlers, closed) == []
    assert campaign.plan_version == plan_version
    # A site the projection never saw: nothing to close.
    unknown = closed.model_copy(update={"site_id": siret(77)})
    assert await handle(uow, handlers, unknown) == []
    assert await uow.sites.get(siret(77)) is None


async def test_a_closure_shock_launches_a_campaign_without_the_closing_site(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers
) -> None:
    events = await handle(uow, handlers, shock())
    assert types(events) == ["campaign_launched", "visits_scheduled"]
    launched = events[0]
    assert isinstance(launched, ev.CampaignLaunched)
    (campaign,) = uow.campaigns.seen
    assert launched.campaign_id == campaign.id and launched.targets == SITES_IN_TERRITORY
    assert campaign.territory_id == TERRITORY and campaign.closing_site_id == siret(CLOSING)
    assert sorted(campaign.targets) == [siret(n) for n in range(1, SITES_IN_TERRITORY + 1)]
    assert campaign.roster == ["c-1", "c-2"] and campaign.starts_on == TODAY
    assert campaign.ends_on == date(2026, 12, 21)
    plan = campaign.last_plan
    assert plan is not None and (len(plan.visits), len(plan.uncovered)) == (6, 4)
    closing = await uow.sites.get(siret(CLOSING))
    assert closing is not None and (closing.status, closing.version) == ("closure_announced", 2)


async def test_a_territorys_campaign_is_staffed_with_its_own_roster(
    uow: FakeCampaignsUnitOfWork,
) -> None:
    # Issue 10: every campaign's default roster was the same `consultant-1..3`.
    rosters = {TERRITORY: ("marie.dupont", "jean.martin"), OTHER_TERRITORY: ("x.y",)}
    own = SiteEventHandlers(replace(DEFAULTS, territory_rosters=rosters), CLOCK)
    await handle(uow, own, shock())
    (campaign,) = uow.campaigns.seen
    assert campaign.roster == ["jean.martin", "marie.dupont"]
    assert DEFAULTS.roster_of(OTHER_TERRITORY) == ["c-1", "c-2"]  # no roster of its own


async def test_a_replayed_closure_shock_launches_nothing_more(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    plan_version = campaign.plan_version
    assert await handle(uow, handlers, shock()) == []
    assert uow.campaigns.seen == [campaign] and campaign.plan_version == plan_version


async def test_a_closure_shock_outside_every_territory_launches_nothing(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers
) -> None:
    assert await handle(uow, handlers, shock(territories=())) == []
    assert uow.campaigns.seen == []


async def test_the_shock_campaign_runs_in_its_primary_territory(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers
) -> None:
    both = shock(territories=(TERRITORY, OTHER_TERRITORY))
    assert both.primary_territory_id == TERRITORY
    await handle(uow, handlers, both)
    (campaign,) = uow.campaigns.seen
    assert campaign.territory_id == TERRITORY and siret(ELSEWHERE) not in campaign.targets


async def test_a_second_shock_takes_its_site_out_of_the_running_campaign(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    second = uuid.UUID("00000000-0000-4000-8000-00000000000b")
    events = await handle(uow, handlers, shock(shock_id=second, site=5))
    assert not campaign.targets[siret(5)].active
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "closure announced"
    assert "campaign_launched" in types(events)
    newer = await uow.campaigns.by_shock(second)
    assert newer is not None and siret(5) not in newer.targets


# --------------------------------------------------------------------------- the crisis cell


async def test_replan_from_scratch(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    version = campaign.plan_version
    result, events = await run(uow, lambda u: commands.replan(u, campaign.id, CELL, CLOCK))
    assert result is campaign and campaign.plan_version == version + 1
    assert types(events)[0] == "campaign_replanned"
    assert isinstance(events[0], ev.CampaignReplanned)
    assert events[0].reason == "re-planned by the crisis cell"


async def test_a_campaign_outside_the_callers_territories_is_not_found(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    with pytest.raises(NotFound):
        await run(uow, lambda u: commands.replan(u, campaign.id, STRANGER, CLOCK))
    with pytest.raises(NotFound):
        await run(uow, lambda u: commands.close(u, uuid.uuid4(), CELL, CLOCK))
    assert uow.campaigns.campaigns[campaign.id].status is CampaignStatus.ACTIVE


async def test_add_a_target_of_the_territory(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    # Known to the projection, but not active when the campaign was launched.
    extra = Site(
        site_id=siret(30),
        siren=siret(30)[:9],
        name=None,
        naf_code="22.11Z",
        naf_section="C",
        headcount_band="41",
        commune_insee="62002",
        territory_ids=(TERRITORY,),
        lon=2.64,
        lat=50.53,
        status="closure_announced",
        version=1,
    )
    await uow.sites.upsert(extra)
    _, events = await run(
        uow, lambda u: commands.add_targets(u, campaign.id, [siret(30)], CELL, CLOCK)
    )
    target = campaign.targets[siret(30)]
    assert target.active and target.manual
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "targets added"


@pytest.mark.parametrize(
    ("site", "error"),
    [(77, NotFound), (ELSEWHERE, InvalidCampaignChange), (CLOSING, InvalidCampaignChange)],
)
async def test_targets_the_campaign_refuses(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign, site: int, error: type[Exception]
) -> None:
    version = campaign.plan_version
    with pytest.raises(error):
        await run(uow, lambda u: commands.add_targets(u, campaign.id, [siret(site)], CELL, CLOCK))
    assert campaign.plan_version == version and uow.published_types()[-1].endswith("scheduled.v1")


async def test_a_closed_site_cannot_be_added(
    uow: FakeCampaignsUnitOfWork, handlers: SiteEventHandlers, campaign: Campaign
) -> None:
    await handle(uow, handlers, site_state(31, status="closed"))
    with pytest.raises(InvalidCampaignChange, match="closed"):
        await run(uow, lambda u: commands.add_targets(u, campaign.id, [siret(31)], CELL, CLOCK))


async def test_remove_a_target(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    _, events = await run(
        uow, lambda u: commands.remove_target(u, campaign.id, siret(1), CELL, CLOCK)
    )
    target = campaign.targets[siret(1)]
    assert not target.active and target.manual
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "target removed"
    with pytest.raises(NotFound):
        await run(uow, lambda u: commands.remove_target(u, campaign.id, siret(77), CELL, CLOCK))


async def test_change_the_roster(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    _, events = await run(
        uow, lambda u: commands.change_roster(u, campaign.id, ["c-3"], ["c-1"], CELL, CLOCK)
    )
    assert campaign.roster == ["c-2", "c-3"]
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].consultants == 2
    assert {
        v.consultant_id for v in campaign.visits.values() if v.status is VisitStatus.PLANNED
    } == {
        "c-2",
        "c-3",
    }
    # The same roster again: nothing to re-plan.
    _, again = await run(
        uow, lambda u: commands.change_roster(u, campaign.id, ["c-3"], ["c-1"], CELL, CLOCK)
    )
    assert again == []


async def test_change_the_terms(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    terms = s.TermsIn(budget_days=8.0, daily_cap=3).terms()
    _, events = await run(uow, lambda u: commands.change_terms(u, campaign.id, terms, CELL, CLOCK))
    assert (campaign.budget_days, campaign.daily_cap) == (8.0, 3)
    assert isinstance(events[0], ev.CampaignReplanned) and events[0].reason == "terms changed"
    assert events[0].planned == 8

    too_early = commands.Terms(ends_on=date(2026, 1, 1))
    with pytest.raises(InvalidCampaignChange, match="before the start"):
        await run(uow, lambda u: commands.change_terms(u, campaign.id, too_early, CELL, CLOCK))


async def test_close_the_campaign(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    _, events = await run(uow, lambda u: commands.close(u, campaign.id, CELL, CLOCK))
    assert campaign.status is CampaignStatus.CLOSED and campaign.closed_at == CLOCK.now()
    assert types(events) == ["campaign_closed"]
    assert isinstance(events[0], ev.CampaignClosed) and events[0].visits_cancelled == 6
    assert all(v.status is VisitStatus.CANCELLED for v in campaign.visits.values())
    with pytest.raises(CampaignClosedError):
        await run(uow, lambda u: commands.close(u, campaign.id, CELL, CLOCK))


# --------------------------------------------------------------------------- the consultants


def report(
    visit_id: uuid.UUID, outcome: Outcome = Outcome.REACHED, reason: str | None = None
) -> commands.OutcomeReport:
    return commands.OutcomeReport(
        visit_id=visit_id, outcome=outcome, reason=reason, visited_on=TODAY, today=TODAY
    )


async def test_record_an_outcome_once(uow: FakeCampaignsUnitOfWork, campaign: Campaign) -> None:
    visit_id = planned_visit(campaign, "c-1")
    me = consultant("c-1")
    recorded, events = await run(
        uow, lambda u: commands.record_outcome(u, report(visit_id, Outcome.DECLINED, "no time"), me)
    )
    assert recorded is True
    visit = campaign.visit_by_id(visit_id)
    assert (visit.status, visit.outcome, visit.outcome_reason) == (
        VisitStatus.COMPLETED,
        Outcome.DECLINED,
        "no time",
    )
    assert types(events) == ["visit_completed"]

    again, events = await run(
        uow, lambda u: commands.record_outcome(u, report(visit_id, Outcome.DECLINED, "no time"), me)
    )
    assert again is False and events == []
    with pytest.raises(VisitAlreadyCompleted):
        await run(uow, lambda u: commands.record_outcome(u, report(visit_id), me))


async def test_outcomes_the_campaign_refuses(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    visit_id = planned_visit(campaign, "c-1")
    with pytest.raises(VisitReassigned):
        await run(uow, lambda u: commands.record_outcome(u, report(visit_id), consultant("c-2")))
    with pytest.raises(InvalidCampaignChange, match="reason"):
        await run(
            uow,
            lambda u: commands.record_outcome(
                u, report(visit_id, Outcome.UNREACHABLE), consultant("c-1")
            ),
        )
    with pytest.raises(NotFound):
        await run(
            uow, lambda u: commands.record_outcome(u, report(uuid.uuid4()), consultant("c-1"))
        )
    assert campaign.visit_by_id(visit_id).status is VisitStatus.PLANNED


async def test_a_consultant_acts_only_on_visits_of_its_own_territories(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    # Issue 10: subjects are not unique across territories (default rosters coincide), so
    # every consultant operation checks the subject AND the token's territories.
    visit_id = planned_visit(campaign, "c-1")
    namesake = Principal(
        subject="c-1", roles=frozenset({Role.CONSULTANT}), territories=frozenset({OTHER_TERRITORY})
    )
    # A territories claim counts only with a role it belongs to (not a funder's).
    funder = Principal(
        subject="c-1",
        roles=frozenset({Role.FUNDER}),
        territories=frozenset({TERRITORY}),
        regions=frozenset({"32"}),
    )
    for caller in (namesake, funder):
        with pytest.raises(NotFound, match="in your territories"):
            await run(uow, lambda u, c=caller: commands.record_outcome(u, report(visit_id), c))
        with pytest.raises(NotFound, match="in your territories"):
            await run(
                uow,
                lambda u, c=caller: commands.submit_survey(
                    u, visit_id, answers(visit_id=visit_id), c, CLOCK
                ),
            )
    assert campaign.visit_by_id(visit_id).status is VisitStatus.PLANNED


async def test_the_crisis_cell_reports_for_a_consultant(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    visit_id = planned_visit(campaign, "c-2")
    recorded, events = await run(uow, lambda u: commands.record_outcome(u, report(visit_id), CELL))
    assert recorded and types(events) == ["visit_completed"]
    assert campaign.visit_by_id(visit_id).consultant_id == "c-2"


def answers(*flags: ev.RedFlagKind, visit_id: uuid.UUID) -> SurveyAnswers:
    return s.SurveyIn(
        questionnaire_version="2026-1",
        headcount=31,
        contact_name="Jeanne Martin",
        projects=[
            s.ProjectIn(
                kind="capacity_extension",
                description="Second press line",
                jobs_to_create=12,
                maturity="ready",
                known_to_public_actors=False,
            )
        ],
        red_flags=[s.RedFlagIn(kind=k) for k in flags],
    ).answers(visit_id)


async def test_submit_then_resubmit_a_survey(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    visit_id = planned_visit(campaign, "c-1")
    me = consultant("c-1")
    first, events = await run(
        uow,
        lambda u: commands.submit_survey(
            u, visit_id, answers("relocation", visit_id=visit_id), me, CLOCK
        ),
    )
    assert first.revision == 1 and first.submitted_at == CLOCK.now()
    assert types(events) == ["visit_completed", "survey_submitted", "red_flag_raised"]
    assert campaign.visit_by_id(visit_id).outcome is Outcome.REACHED
    submitted = events[1]
    assert isinstance(submitted, ev.SurveySubmitted)
    assert submitted.territory_id == TERRITORY and submitted.shock_id == SHOCK_ID
    assert "Jeanne" not in submitted.model_dump_json()  # contacts stay in the service

    second, events = await run(
        uow,
        lambda u: commands.submit_survey(
            u, visit_id, answers("relocation", "layoffs", visit_id=visit_id), me, CLOCK
        ),
    )
    assert second.revision == 2
    # The same lead id across resubmissions: the same project, revised.
    assert [p.lead_id for p in second.answers.projects] == [
        p.lead_id for p in first.answers.projects
    ]
    assert types(events) == ["survey_submitted", "red_flag_raised"]  # only the new flag
    raised = events[1]
    assert isinstance(raised, ev.RedFlagRaised) and raised.flag.kind == "layoffs"
    assert campaign.surveys[campaign.visit_by_id(visit_id).site_id] is second


async def test_no_survey_for_a_firm_not_reached(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    visit_id = planned_visit(campaign, "c-1")
    me = consultant("c-1")
    await run(
        uow, lambda u: commands.record_outcome(u, report(visit_id, Outcome.DECLINED, "no"), me)
    )
    with pytest.raises(VisitAlreadyCompleted):
        await run(
            uow,
            lambda u: commands.submit_survey(u, visit_id, answers(visit_id=visit_id), me, CLOCK),
        )
    assert campaign.surveys == {}


# --------------------------------------------------------------------------- the routes' actions


def bus(uow: FakeCampaignsUnitOfWork) -> CommandBus[Any]:
    # Without an Idempotency-Key the bus never reads the idempotency table: the fake fits.
    return CommandBus(lambda: uow, None, None)


async def test_a_change_answers_with_the_campaign_as_it_left_it(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    answer = await bus(uow).execute(
        CELL,
        None,
        "",
        http._changed(lambda u: commands.change_roster(u, campaign.id, ["c-3"], [], CELL, CLOCK)),
    )
    assert answer.status_code == 200 and uow.commits >= 1
    assert answer.body == {
        "campaign_id": str(campaign.id),
        "status": "active",
        "plan_version": campaign.plan_version,
        "planned": 6,
        "uncovered": 4,
        "roster": ["c-1", "c-2", "c-3"],
        "budget_days": 6.0,
    }


async def test_an_outcome_answers_200_and_a_survey_201(
    uow: FakeCampaignsUnitOfWork, campaign: Campaign
) -> None:
    me = consultant("c-1")
    declined, reached = [v.id for v in campaign.visits.values() if v.consultant_id == "c-1"][:2]
    body = s.OutcomeIn(outcome="declined", reason="no time")
    outcome = await bus(uow).execute(me, None, "", http._outcome(declined, body, me, CLOCK))
    assert (outcome.status_code, outcome.body) == (
        200,
        {"visit_id": str(declined), "status": "completed", "outcome": "declined", "recorded": True},
    )
    assert campaign.visit_by_id(declined).visited_on == TODAY  # the clock's date by default

    survey_in = s.SurveyIn(questionnaire_version="2026-1", red_flags=[s.RedFlagIn(kind="closure")])
    survey = await bus(uow).execute(me, None, "", http._survey(reached, survey_in, me, CLOCK))
    assert survey.status_code == 201
    assert survey.body["visit_id"] == str(reached) and survey.body["revision"] == 1
    assert (survey.body["projects"], survey.body["red_flags"]) == (0, 1)
    assert uow.published_types()[-3:] == [
        ev.VisitCompleted.event_type,
        ev.SurveySubmitted.event_type,
        ev.RedFlagRaised.event_type,
    ]
