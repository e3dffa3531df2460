"""Funding's consumer handlers through the fake unit of work: the site and project
projections, matching on every project change, and what funders are told of it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from services.funding.domain.plan import FinancingPlan
from services.funding.domain.projects import MERGED
from services.funding.service_layer.handlers import PROJECT_EVENTS, Handlers
from shared.events import detection as dt
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.catalogue import PROJECTS
from shared.events.envelope import Envelope, EventPayload
from tests.unit.funding.builders import (
    CATALOGUE,
    SITE,
    envelope,
    matcher,
    project_event,
    site_event,
)
from tests.unit.funding.fakes import FakeFundingUnitOfWork

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000042")
ELIGIBLE = {"hdf-a", "hdf-b", "hdf-c"}  # the region-32 schemes; "ara-only" is elsewhere


async def catalogued() -> FakeFundingUnitOfWork:
    uow = FakeFundingUnitOfWork()
    for s in CATALOGUE:
        await uow.schemes.upsert(s)
    return uow


async def handle(
    uow: FakeFundingUnitOfWork, payload: EventPayload, *, propose_top: int = 10
) -> list[EventPayload]:
    """Run the handler the consumer would for `payload`, commit, and return what the
    commit published."""
    before = len(uow.published)
    table = Handlers(matcher(propose_top=propose_top)).table()
    # The table is typed for the consumer's SQL unit of work; the fake offers the same.
    handler = cast(Callable[[Any, Envelope[Any]], Awaitable[None]], table[payload.event_type])
    await handler(uow, envelope(payload))
    await uow.commit()
    return uow.published[before:]


def by_scheme(events: list[EventPayload]) -> dict[str, fd.MatchState]:
    return {e.scheme_id: e for e in events if isinstance(e, fd.MatchState)}


def withdrawals(events: list[EventPayload]) -> dict[str, bool]:
    """Scheme → still eligible, of every MatchUpdated."""
    return {e.scheme_id: e.still_eligible for e in events if isinstance(e, fd.MatchUpdated)}


def test_every_event_of_the_projects_topic_and_site_states_are_handled() -> None:
    table = Handlers(matcher()).table()
    assert set(PROJECT_EVENTS) == set(PROJECTS.event_types)
    assert {t.event_type for t in PROJECTS.event_types} <= table.keys()
    assert {sr.SiteRegistered.event_type, sr.SiteUpdated.event_type} <= table.keys()


async def test_a_qualified_consented_project_is_matched_planned_and_proposed() -> None:
    uow = await catalogued()
    await handle(uow, site_event())
    published = await handle(uow, project_event(project_id=PROJECT))

    assert uow.projects.by_id[PROJECT].stage == "qualified"
    assert isinstance(uow.projects.plans[PROJECT], FinancingPlan)
    eligible = uow.matches.eligible(PROJECT)
    assert {m.scheme_id for m in eligible} == ELIGIBLE
    assert [m.rank for m in eligible] == [1, 2, 3]
    assert all(m.published for m in eligible)
    assert [type(e) for e in published] == [fd.MatchProposed] * 3
    proposals = by_scheme(published)
    assert proposals.keys() == ELIGIBLE
    first = proposals[eligible[0].scheme_id]
    assert isinstance(first, fd.MatchProposed)
    assert (first.project_id, first.rank, first.firm_size) == (PROJECT, 1, "sme")
    assert {c.criterion for c in first.criteria} >= {"perimeter", "beneficiary", "capex"}


async def test_only_the_best_ranked_matches_are_proposed() -> None:
    uow = await catalogued()
    published = await handle(uow, project_event(project_id=PROJECT), propose_top=1)

    eligible = uow.matches.eligible(PROJECT)
    assert len(eligible) == 3
    assert [m.published for m in eligible] == [True, False, False]
    assert [type(e) for e in published] == [fd.MatchProposed]
    assert by_scheme(published).keys() == {eligible[0].scheme_id}


async def test_funders_are_not_told_of_a_project_without_consent() -> None:
    uow = await catalogued()
    published = await handle(uow, project_event(project_id=PROJECT, consent_to_share=False))

    assert {m.scheme_id for m in uow.matches.eligible(PROJECT)} == ELIGIBLE
    assert not any(m.published for m in uow.matches.eligible(PROJECT))
    assert published == []


@pytest.mark.parametrize(
    ("kind", "stage"),
    [(dt.ProjectDetected, "detected"), (dt.JobsCreated, "jobs_created")],
)
async def test_a_project_not_at_a_matchable_stage_is_projected_but_not_matched(
    kind: type[dt.ProjectState], stage: str
) -> None:
    uow = await catalogued()
    published = await handle(uow, project_event(kind, project_id=PROJECT, stage=stage))

    assert uow.projects.by_id[PROJECT].stage == stage
    assert uow.projects.plans[PROJECT] is None
    assert uow.matches.by_key == {}
    assert published == []


async def test_changed_figures_update_the_matches_and_withdraw_those_that_no_longer_fit() -> None:
    uow = await catalogued()
    await handle(uow, site_event())
    await handle(uow, project_event(project_id=PROJECT, version=2))
    # Above hdf-b's investment ceiling (2 M€): that scheme no longer fits.
    updated = project_event(dt.ProjectUpdated, project_id=PROJECT, version=3, capex_eur=3_000_000)
    published = await handle(uow, updated)

    assert uow.projects.by_id[PROJECT].capex_eur == 3_000_000
    assert {m.scheme_id for m in uow.matches.eligible(PROJECT)} == {"hdf-a", "hdf-c"}
    withdrawn = uow.matches.by_key[(PROJECT, "hdf-b")]
    assert (withdrawn.eligible, withdrawn.rank, withdrawn.planned_amount_eur) == (False, None, 0)
    assert next(c for c in withdrawn.criteria if c.criterion == "capex").status == "fail"
    assert all(isinstance(e, fd.MatchUpdated) for e in published)
    # The others move up a rank or get a new line in the plan: funders hear of it.
    assert withdrawals(published) == {"hdf-a": True, "hdf-b": False, "hdf-c": True}
    assert [m.rank for m in uow.matches.eligible(PROJECT)] == [1, 2]
    for scheme_id, event in by_scheme(published).items():
        stored = uow.matches.by_key[(PROJECT, scheme_id)]
        assert (event.planned_amount_eur, stored.published) == (stored.planned_amount_eur, True)
    plan = uow.projects.plans[PROJECT]
    assert plan is not None and plan.base_eur == 3_000_000


@pytest.mark.parametrize(
    ("kind", "stage", "stored_stage"),
    [
        (dt.ProjectMerged, "qualified", MERGED),
        (dt.ProjectAbandoned, "abandoned", "abandoned"),
    ],
)
async def test_a_merged_or_abandoned_project_withdraws_its_proposals(
    kind: type[dt.ProjectState], stage: str, stored_stage: str
) -> None:
    uow = await catalogued()
    await handle(uow, project_event(project_id=PROJECT, version=2))
    published = await handle(uow, project_event(kind, project_id=PROJECT, version=3, stage=stage))

    assert uow.projects.by_id[PROJECT].stage == stored_stage
    assert uow.projects.plans[PROJECT] is None
    assert uow.matches.eligible(PROJECT) == []
    assert [type(e) for e in published] == [fd.MatchUpdated] * 3
    assert withdrawals(published) == dict.fromkeys(ELIGIBLE, False)
    # Nothing is left to withdraw: the next change tells funders nothing more.
    again = project_event(kind, project_id=PROJECT, version=4, stage=stage)
    assert await handle(uow, again) == []


async def test_replays_and_older_versions_change_nothing() -> None:
    uow = await catalogued()
    event = project_event(project_id=PROJECT, version=2)
    await handle(uow, event)
    projects, plans = dict(uow.projects.by_id), dict(uow.projects.plans)
    matches = dict(uow.matches.by_key)

    assert await handle(uow, event) == []  # the same version again, under a new event id
    older = project_event(dt.ProjectDetected, project_id=PROJECT, version=1, stage="detected")
    assert await handle(uow, older) == []

    assert uow.projects.by_id == projects
    assert uow.projects.plans == plans
    assert uow.matches.by_key == matches


async def test_site_events_keep_the_newest_version_of_the_site() -> None:
    uow = FakeFundingUnitOfWork()
    assert await handle(uow, site_event(version=1)) == []
    await handle(uow, site_event(sr.SiteUpdated, version=3, headcount_band="00"))
    await handle(uow, site_event(sr.SiteUpdated, version=2, headcount_band="53"))  # late
    await handle(uow, site_event(version=1, commune_insee="59350"))  # a replay

    site = uow.sites.by_id[SITE]
    assert (site.version, site.headcount_band, site.commune_insee) == (3, "00", "62193")
    assert uow.published == []


async def test_the_site_gives_the_firm_its_size() -> None:
    uow = await catalogued()
    await handle(uow, site_event(headcount_band="53"))  # 10,000 employees or more
    published = await handle(uow, project_event(project_id=PROJECT))

    # Every region-32 scheme is for micro firms and SMEs only.
    assert uow.matches.eligible(PROJECT) == []
    assert published == []
