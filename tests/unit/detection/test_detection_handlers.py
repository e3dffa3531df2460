"""The consumers' handlers, through the fake unit of work: surveys become projects,
funders' decisions move stages, the site projection follows the registry by version, and
the ledger projection follows the projects and the closure announcements."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.detection.adapters.ledger_projection import ProjectLine, batch
from services.detection.domain.ledger import Shock
from services.detection.domain.model import Project
from services.detection.domain.sites import Site
from services.detection.domain.stages import Stage
from services.detection.service_layer.handlers import LedgerHandlers, MainHandlers
from shared.events import detection as dt
from shared.events import funding as fd
from shared.events import site_registry as sr
from shared.events.catalogue import PROJECTS
from shared.events.envelope import EventPayload
from shared.messaging.consumer import PermanentError
from tests.unit.detection import builders as b
from tests.unit.detection.fakes import FakeDetectionUnitOfWork

pytestmark = pytest.mark.unit

main = MainHandlers(b.CLOCK)
ledger_handlers = LedgerHandlers()


async def handle(uow: FakeDetectionUnitOfWork, *events: EventPayload) -> None:
    """Each event as its consumer runs it: the handler, then the runner's commit."""
    table = {**main.table(), **ledger_handlers.table()}
    for event in events:
        await table[event.event_type](uow, b.envelope(event))  # type: ignore[arg-type]
        await uow.commit()


async def surveyed(uow: FakeDetectionUnitOfWork, *leads: object) -> list[Project]:
    await handle(uow, b.survey(list(leads)))  # type: ignore[arg-type]
    return uow.projects.seen


def test_the_tables_follow_the_catalogue() -> None:
    ledger_types = set(ledger_handlers.table())
    assert ledger_types == {e.event_type for e in (*PROJECTS.event_types, sr.ClosureAnnounced)}
    # One writer of the shocks: the ledger's consumer (the main one ignores them).
    assert sr.ClosureAnnounced.event_type not in main.table()


# -------------------------------------------------------------------------------- sites


async def test_sites_follow_the_registry_by_version() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.site(version=2, name="Rechapage du Nord SAS", updated=True))
    await handle(uow, b.site(version=1, name="an older name"))  # a replay: ignored
    assert uow.sites.sites[b.PLANT_A].name == "Rechapage du Nord SAS"
    assert await uow.sites.firm_has_site_in(b.SIREN, b.TERRITORY)
    assert uow.published == []


async def test_a_closed_site_no_longer_makes_its_firm_local() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.site(version=1))
    closed = sr.SiteClosed(
        site_id=b.PLANT_A,
        siren=b.SIREN,
        territory_ids=[b.TERRITORY],
        closed_on=None,
        version=2,
    )
    await handle(uow, closed)
    assert uow.sites.sites[b.PLANT_A] == replace(Site.of(b.site()), status="closed", version=2)
    assert not await uow.sites.firm_has_site_in(b.SIREN, b.TERRITORY)
    await handle(uow, closed.model_copy(update={"version": 1}))  # an older closing: nothing changes
    assert uow.sites.sites[b.PLANT_A].version == 2


# ------------------------------------------------------------------------------ surveys


async def test_a_survey_becomes_one_project_per_lead() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.site())
    extension, energy = b.lead("capacity_extension", 12), b.lead("decarbonation_energy", 3)

    projects = await surveyed(
        uow, extension, energy.model_copy(update={"known_to_public_actors": True})
    )

    assert [(p.kind, p.figures.jobs_planned, p.hidden) for p in projects] == [
        ("capacity_extension", 12, True),
        ("decarbonation_energy", 3, False),
    ]
    first = projects[0]
    assert (first.origin, first.firm_name, first.site_id) == (
        "endogenous",
        "Rechapage du Nord",
        b.PLANT_A,
    )
    assert (first.campaign_id, first.shock_id) == (b.CAMPAIGN_ID, b.SHOCK_ID)
    assert first.lead_ids == {extension.lead_id}
    assert first.figures.obstacles == ("land", "financing")
    assert first.detected_on == b.NOW.date()
    assert [type(e) for e in uow.published] == [dt.ProjectDetected, dt.ProjectDetected]
    assert {e.source for e in uow.published} == {"survey"}  # type: ignore[attr-defined]


async def test_a_survey_before_its_sites_event_is_still_endogenous() -> None:
    uow = FakeDetectionUnitOfWork()
    [project] = await surveyed(uow, b.lead())
    assert (project.origin, project.firm_name) == ("endogenous", None)


async def test_a_resubmission_updates_the_project_of_each_lead() -> None:
    uow = FakeDetectionUnitOfWork()
    survey_id, extension = uuid.uuid4(), b.lead(jobs=12)
    await handle(uow, b.survey([extension], survey_id=survey_id))
    [project] = uow.projects.seen
    later = b.NOW + timedelta(days=2)

    await handle(
        uow,
        b.survey(
            [extension.model_copy(update={"jobs_to_create": 15})],
            survey_id=survey_id,
            revision=2,
            submitted_at=later,
        ),
    )

    assert uow.projects.seen == [project]  # no new project
    assert project.figures.jobs_planned == 15
    assert [r.reference.split()[-1] for r in project.reports] == ["1", "2"]
    updated = uow.published[-1]
    assert isinstance(updated, dt.ProjectUpdated)
    assert (updated.changed_fields, updated.version) == (["jobs_planned"], 2)


async def test_a_lookalike_from_another_plant_is_flagged_not_merged() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.site(b.PLANT_A), b.site(b.PLANT_B))
    await handle(uow, b.survey([b.lead("new_line", 20)], site_id=b.PLANT_A))

    await handle(uow, b.survey([b.lead("new_line", 14)], site_id=b.PLANT_B))

    a, other = uow.projects.seen
    assert a.possible_duplicate_of is None
    assert other.possible_duplicate_of == a.id
    assert "another site" in (other.duplicate_reason or "")
    assert (a.figures.jobs_planned, other.figures.jobs_planned) == (20, 14)
    flagged = uow.published[-1]
    assert isinstance(flagged, dt.ProjectDetected) and flagged.possible_duplicate_of == a.id


# ------------------------------------------------------------------ funders' decisions


async def qualified(uow: FakeDetectionUnitOfWork) -> Project:
    [project] = await surveyed(uow, b.lead())
    project.qualify(now=b.NOW)
    await uow.commit()
    return project


async def test_an_application_puts_the_project_in_funding_and_an_award_funds_it() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await qualified(uow)

    await handle(uow, b.decision(fd.ApplicationSubmitted, project.id))
    assert project.stage is Stage.IN_FUNDING
    await handle(uow, b.decision(fd.AwardGranted, project.id))
    assert project.stage is Stage.FUNDED

    moves = [e for e in uow.published if isinstance(e, dt.ProjectStageChanged)]
    assert [(e.previous_stage, e.stage) for e in moves] == [
        ("qualified", "in_funding"),
        ("in_funding", "funded"),
    ]
    assert project.reports[-1].source == "funding"
    assert "by Région Test (fonds-test)" in str(project.reports[-1].figures["reason"])


async def test_a_refusal_sends_the_application_back_to_qualified() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await qualified(uow)
    await handle(uow, b.decision(fd.ApplicationSubmitted, project.id))

    await handle(uow, b.decision(fd.AwardRefused, project.id))

    assert project.stage is Stage.QUALIFIED
    assert uow.published[-1].previous_stage == "in_funding"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [fd.ApplicationSubmitted, fd.AwardRefused, fd.PaymentMade])
async def test_a_funded_project_ignores_other_schemes_decisions(
    kind: type[fd.FundingDecision],
) -> None:
    uow = FakeDetectionUnitOfWork()
    project = await qualified(uow)
    await handle(uow, b.decision(fd.AwardGranted, project.id))
    published = len(uow.published)

    await handle(uow, b.decision(kind, project.id))

    assert project.stage is Stage.FUNDED
    assert len(uow.published) == published


async def test_a_refusal_of_no_pending_application_changes_nothing() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await qualified(uow)
    published = len(uow.published)
    await handle(uow, b.decision(fd.AwardRefused, project.id))
    assert (project.stage, len(uow.published)) == (Stage.QUALIFIED, published)


async def test_decisions_the_project_cannot_take_are_dead_lettered() -> None:
    uow = FakeDetectionUnitOfWork()
    with pytest.raises(PermanentError, match="unknown project"):
        await handle(uow, b.decision(fd.AwardGranted, uuid.uuid4()))

    detected = (await surveyed(uow, b.lead()))[0]
    with pytest.raises(PermanentError, match="cannot move to funded"):
        await handle(uow, b.decision(fd.AwardGranted, detected.id))

    other = Project.detect(
        replace(detected.key(), site_id=b.PLANT_B), detected.figures, origin="endogenous",
        hidden=False, report=detected.reports[0], now=b.NOW,
    )  # fmt: skip
    uow.projects.add(other)
    detected.absorb(other, now=b.NOW, by="cell-a")
    with pytest.raises(PermanentError, match="the funder must decide on that project"):
        await handle(uow, b.decision(fd.AwardGranted, other.id))


# ------------------------------------------------------------------- the ledger projection


async def test_a_closure_announced_is_counted_in_its_primary_territory() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.closure())
    await handle(uow, b.closure(territories=(b.NEIGHBOUR,), jobs_lost=5))  # re-sent: kept once
    shock = await uow.shocks.get(b.SHOCK_ID)
    assert shock == Shock(
        shock_id=b.SHOCK_ID,
        territory_id=b.TERRITORY,
        announced_on=date(2026, 9, 16),
        jobs_lost=900,
        site_id=b.CLOSING_SITE,
    )
    assert uow.published == []


async def test_a_shock_outside_every_territory_is_not_kept() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.closure(territories=()))
    assert await uow.shocks.get(b.SHOCK_ID) is None


async def project_life(uow: FakeDetectionUnitOfWork) -> list[EventPayload]:
    """A surveyed project qualified, funded, with jobs; its events, in order."""
    project = (await surveyed(uow, b.lead(jobs=12)))[0]
    day = timedelta(days=1)
    project.qualify(now=b.NOW + day)
    project.move_to(Stage.FUNDED, now=b.NOW + 2 * day)
    project.record_jobs(
        jobs_created_total=5, created_on=b.NOW.date(), complete=False, now=b.NOW + 3 * day
    )
    await uow.commit()
    return list(uow.published)


async def test_the_ledger_follows_the_projects_of_the_shocks_territory() -> None:
    uow = FakeDetectionUnitOfWork()
    events = await project_life(uow)
    await handle(uow, b.closure(), *events)

    ledger = uow.ledger.ledger(b.SHOCK_ID)
    assert (ledger.endogenous.detected, ledger.endogenous.funded, ledger.endogenous.created) == (
        12,
        12,
        5,
    )
    line = next(iter(uow.ledger.projects.values()))
    assert (line.version, line.stage) == (4, "jobs_created")
    assert (line.qualified_on, line.funded_on) == (
        (b.NOW + timedelta(days=1)).date(),
        (b.NOW + timedelta(days=2)).date(),
    )


async def test_a_replayed_or_older_event_changes_no_ledger_row() -> None:
    uow = FakeDetectionUnitOfWork()
    events = await project_life(uow)
    await handle(uow, b.closure(), *events)
    rows = (dict(uow.ledger.projects), dict(uow.ledger.job_entries))

    await handle(uow, *reversed(events))  # redelivered, out of order

    assert (uow.ledger.projects, uow.ledger.job_entries) == rows


async def test_a_merged_project_leaves_the_ledger() -> None:
    uow = FakeDetectionUnitOfWork()
    await handle(uow, b.closure(), b.site(b.PLANT_A), b.site(b.PLANT_B))
    await handle(uow, b.survey([b.lead("new_line", 20)], site_id=b.PLANT_A))
    await handle(uow, b.survey([b.lead("new_line", 14)], site_id=b.PLANT_B))
    a, other = uow.projects.seen
    a.absorb(other, now=b.NOW, by="cell-a")
    await uow.commit()
    await handle(uow, *uow.published)

    ledger = uow.ledger.ledger(b.SHOCK_ID)
    assert (ledger.total.projects, ledger.total.detected, ledger.total.jobs_under_review) == (
        1,
        20,
        0,
    )


async def test_a_rebuild_forgets_the_projects_but_keeps_the_shocks() -> None:
    uow = FakeDetectionUnitOfWork()
    events = await project_life(uow)
    await handle(uow, b.closure(), *events)
    await uow.ledger.reset("detection.ledger")
    assert (uow.ledger.projects, uow.ledger.job_entries) == ({}, {})
    assert await uow.shocks.get(b.SHOCK_ID) is not None
    await uow.ledger.apply(events)  # what the rebuild replays, in one batch
    assert uow.ledger.ledger(b.SHOCK_ID).total.created == 5


# --------------------------------------------------- the projection's pure part (`batch`)


def test_a_batch_keeps_the_latest_figures_and_the_earliest_stage_dates() -> None:
    project_id = uuid.uuid4()

    def state(version: int, stage: str, day: int, jobs: int) -> dt.ProjectStageChanged:
        return dt.ProjectStageChanged(
            project_id=project_id, version=version, territory_id=b.TERRITORY,
            shock_id=None, origin="exogenous", kind="new_site", stage=stage, hidden=False,
            jobs_planned=jobs, jobs_created=0, consent_to_share=True,
            detected_on=date(2026, 10, 1), occurred_at=b.NOW + timedelta(days=day),
            previous_stage="qualified",
        )  # fmt: skip

    rows = batch([state(3, "funded", 5, 30), state(2, "in_funding", 2, 25), b.site()])

    assert rows.projects == {
        project_id: ProjectLine(
            project_id=project_id, version=3, territory_id=b.TERRITORY, origin="exogenous",
            stage="funded", jobs_planned=30, jobs_created=0, detected_on=date(2026, 10, 1),
            qualified_on=(b.NOW + timedelta(days=2)).date(),
            funded_on=(b.NOW + timedelta(days=5)).date(), under_review=False, merged_into=None,
        )
    }  # fmt: skip
    assert (rows.job_entries, rows.shocks) == ([], [])


def test_a_batch_names_each_shock_by_its_primary_territory() -> None:
    rows = batch([b.closure(territories=(b.TERRITORY, b.NEIGHBOUR)), b.closure(territories=())])
    assert [s.territory_id for s in rows.shocks] == [b.TERRITORY]
