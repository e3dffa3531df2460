"""The crisis cell's commands, through the fake unit of work: what they change, what they
would publish, what they refuse. Commands never commit: each test commits as the bus
would, and reads `uow.published`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.detection.domain.model import Figures, Project
from services.detection.domain.sites import Site
from services.detection.domain.stages import IllegalTransition, Stage
from services.detection.service_layer import commands
from services.detection.service_layer.handlers import LedgerHandlers
from shared.clock import Clock
from shared.errors import NotFound, OutOfScope
from shared.events import detection as dt
from tests.unit.detection import builders as b
from tests.unit.detection.fakes import FakeDetectionUnitOfWork

pytestmark = pytest.mark.unit

BLACKSTAR = commands.ExogenousProject(
    territory_id=b.TERRITORY,
    firm_name="Blackstar",
    kind="new_site",
    figures=Figures(
        description="Industrial tyre retreading plant looking for a site",
        jobs_planned=100,
        land_needs_ha=4.0,
        consent_to_share=True,
    ),
    shock_id=b.SHOCK_ID,
)


async def announced(uow: FakeDetectionUnitOfWork) -> FakeDetectionUnitOfWork:
    """The shock, announced for the territory first, then its neighbour."""
    await LedgerHandlers().apply(uow, b.envelope(b.closure()))  # type: ignore[arg-type]
    return uow


async def declared(uow: FakeDetectionUnitOfWork, **change: object) -> Project:
    project = await commands.declare_exogenous(
        uow,
        replace(BLACKSTAR, **change),  # type: ignore[arg-type]
        b.CELL,
        b.CLOCK,
    )
    await uow.commit()
    return project


# --------------------------------------------------------------------- declare exogenous


async def test_declare_an_exogenous_project_for_the_shock() -> None:
    uow = await announced(FakeDetectionUnitOfWork())

    project = await commands.declare_exogenous(uow, BLACKSTAR, b.CELL, b.CLOCK)

    assert uow.commits == 0  # the caller commits, with its idempotency row
    await uow.commit()
    assert await uow.projects.get(project.id) is project
    assert (project.origin, project.stage, project.shock_id) == (
        "exogenous",
        Stage.DETECTED,
        b.SHOCK_ID,
    )
    assert project.figures == BLACKSTAR.figures
    assert project.hidden is False  # known to public actors unless the cell says otherwise
    assert project.possible_duplicate_of is None
    [event] = uow.published
    assert isinstance(event, dt.ProjectDetected)
    assert (event.source, event.project_id, event.jobs_planned) == ("crisis_cell", project.id, 100)
    assert [r.reference for r in project.reports] == ["declared by the crisis cell"]


async def test_the_detection_date_is_frances() -> None:
    # 22:30 UTC on 30 June is already 1 July in Paris.
    late = Clock.fixed(datetime(2026, 6, 30, 22, 30, tzinfo=UTC))
    uow = FakeDetectionUnitOfWork()
    project = await commands.declare_exogenous(uow, replace(BLACKSTAR, shock_id=None), b.CELL, late)
    assert project.detected_on == date(2026, 7, 1)


async def test_a_firm_with_a_site_in_the_territory_is_endogenous() -> None:
    uow = FakeDetectionUnitOfWork()
    await uow.sites.upsert(Site.of(b.site()))
    project = await declared(uow, siren=b.SIREN, shock_id=None, known_to_public_actors=False)
    assert (project.origin, project.hidden) == ("endogenous", True)


async def test_declaring_outside_the_callers_territories_is_refused() -> None:
    uow = await announced(FakeDetectionUnitOfWork())
    with pytest.raises(OutOfScope, match=f"territory {b.TERRITORY} is outside"):
        await commands.declare_exogenous(uow, BLACKSTAR, b.NEIGHBOUR_CELL, b.CLOCK)
    await uow.commit()
    assert uow.published == []


async def test_an_unknown_shock_is_refused() -> None:
    uow = FakeDetectionUnitOfWork()
    with pytest.raises(commands.UnknownShock, match="no closure shock") as refused:
        await commands.declare_exogenous(uow, BLACKSTAR, b.CELL, b.CLOCK)
    assert refused.value.status_code == 422


async def test_a_project_for_the_shocks_second_territory_is_refused_readably() -> None:
    """The shock is in both territories, but it belongs to its primary one: that is the
    only ledger that counts it, so a project declared in the other would count nowhere."""
    uow = await announced(FakeDetectionUnitOfWork())
    elsewhere = replace(BLACKSTAR, territory_id=b.NEIGHBOUR)

    with pytest.raises(commands.ShockOfAnotherTerritory) as refused:
        await commands.declare_exogenous(uow, elsewhere, b.NEIGHBOUR_CELL, b.CLOCK)

    assert refused.value.status_code == 422
    assert refused.value.code == "shock_of_another_territory"
    assert f"belongs to territory {b.TERRITORY}, not {b.NEIGHBOUR}" in refused.value.message
    await uow.commit()
    assert uow.published == []
    assert uow.projects.seen == []


async def test_a_project_declared_for_the_shock_counts_in_its_ledger() -> None:
    uow = await announced(FakeDetectionUnitOfWork())
    await declared(uow)
    for event in uow.published:
        await LedgerHandlers().apply(uow, b.envelope(event))  # type: ignore[arg-type]
    ledger = uow.ledger.ledger(b.SHOCK_ID)
    assert (ledger.exogenous.projects, ledger.exogenous.detected) == (1, 100)


async def test_a_redeclaration_is_a_new_project_flagged_as_a_lookalike() -> None:
    uow = await announced(FakeDetectionUnitOfWork())
    first = await declared(uow)

    again = await declared(uow)

    assert again.id != first.id
    assert again.possible_duplicate_of == first.id
    assert "declared by the crisis cell" in (again.duplicate_reason or "")
    assert [type(e) for e in uow.published] == [dt.ProjectDetected, dt.ProjectDetected]
    assert uow.published[-1].possible_duplicate_of == first.id  # type: ignore[attr-defined]


# ----------------------------------------------------------------- the project's stages


async def test_qualify_with_a_correction() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)

    await commands.qualify(uow, project.id, b.CELL, b.CLOCK, jobs_planned=80, capex_eur=None)
    await uow.commit()

    assert (project.stage, project.figures.jobs_planned) == (Stage.QUALIFIED, 80)
    assert project.reports[-1].reference == "qualified by cell-a"
    event = uow.published[-1]
    assert isinstance(event, dt.ProjectQualified) and event.jobs_planned == 80


async def test_a_project_outside_the_callers_territories_is_not_found() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)
    with pytest.raises(NotFound, match="in your territories"):
        await commands.qualify(
            uow, project.id, b.NEIGHBOUR_CELL, b.CLOCK, jobs_planned=None, capex_eur=None
        )
    with pytest.raises(NotFound):
        await commands.abandon(uow, uuid.uuid4(), b.CELL, b.CLOCK, "no such project")


async def test_move_through_funding_then_record_jobs() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)
    await commands.qualify(uow, project.id, b.CELL, b.CLOCK, jobs_planned=None, capex_eur=None)
    await commands.move(uow, project.id, Stage.IN_FUNDING, b.CELL, b.CLOCK, "filed")
    await commands.move(uow, project.id, Stage.FUNDED, b.CELL, b.CLOCK, None)

    await commands.record_jobs(
        uow,
        project.id,
        b.CELL,
        b.CLOCK,
        jobs_created_total=40,
        created_on=date(2026, 11, 1),
        complete=False,
    )
    await uow.commit()

    assert (project.stage, project.jobs_created) == (Stage.JOBS_CREATED, 40)
    assert [type(e) for e in uow.published] == [
        dt.ProjectDetected,
        dt.ProjectQualified,
        dt.ProjectStageChanged,
        dt.ProjectStageChanged,
        dt.JobsCreated,
    ]
    jobs = uow.published[-1]
    assert isinstance(jobs, dt.JobsCreated)
    assert (jobs.jobs_added, jobs.created_on, jobs.version) == (40, date(2026, 11, 1), 5)


async def test_an_illegal_move_is_refused_and_publishes_nothing() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)
    published = len(uow.published)
    with pytest.raises(IllegalTransition, match="qualify it first"):
        await commands.move(uow, project.id, Stage.FUNDED, b.CELL, b.CLOCK, None)
    await uow.commit()
    assert len(uow.published) == published


async def test_abandon_with_the_reason() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)

    await commands.abandon(uow, project.id, b.CELL, b.CLOCK, "the firm chose Belgium")
    await uow.commit()

    assert (project.stage, project.abandoned_reason) == (Stage.ABANDONED, "the firm chose Belgium")
    event = uow.published[-1]
    assert isinstance(event, dt.ProjectAbandoned)
    assert (event.previous_stage, event.reason) == ("detected", "the firm chose Belgium")


# ------------------------------------------------------------------------- look-alikes


async def test_merge_a_lookalike_into_the_project_it_duplicates() -> None:
    uow = FakeDetectionUnitOfWork()
    first = await declared(uow, shock_id=None)
    second = await declared(uow, shock_id=None)
    published = len(uow.published)

    survivor = await commands.merge(uow, second.id, b.CELL, b.CLOCK, None)
    await uow.commit()

    assert survivor is first
    assert second.merged_into == first.id
    events = {type(e): e for e in uow.published[published:]}
    assert set(events) == {dt.ProjectMerged, dt.ProjectUpdated}
    merged, updated = events[dt.ProjectMerged], events[dt.ProjectUpdated]
    assert isinstance(merged, dt.ProjectMerged) and merged.project_id == second.id
    assert merged.merged_into == first.id
    assert isinstance(updated, dt.ProjectUpdated) and updated.project_id == first.id
    assert "merged" in updated.changed_fields
    assert any(r.reference == f"project {second.id} merged in (cell-a)" for r in first.reports)


async def test_merge_without_a_flag_needs_a_target() -> None:
    uow = FakeDetectionUnitOfWork()
    project = await declared(uow, shock_id=None)
    with pytest.raises(NotFound, match="say which"):
        await commands.merge(uow, project.id, b.CELL, b.CLOCK, None)


async def test_not_a_duplicate_clears_the_flag_once() -> None:
    uow = FakeDetectionUnitOfWork()
    await declared(uow, shock_id=None)
    second = await declared(uow, shock_id=None)
    published = len(uow.published)

    await commands.dismiss_duplicate(uow, second.id, b.CELL, b.CLOCK, "two different sites")
    await commands.dismiss_duplicate(uow, second.id, b.CELL, b.CLOCK, None)  # a retry
    await uow.commit()

    assert (second.possible_duplicate_of, second.duplicate_reason) == (None, None)
    [event] = uow.published[published:]
    assert isinstance(event, dt.ProjectUpdated)
    assert event.changed_fields == ["possible_duplicate_of"]
    assert "two different sites" in str(second.reports[-1].figures)
