"""The crisis cell's commands on projects. They run inside the caller's unit of work and
never commit: the caller commits once, with the request's idempotency key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from services.detection.domain.matching import ProjectKey
from services.detection.domain.model import Figures, Project, Report
from services.detection.domain.stages import Stage
from services.detection.service_layer.access import may_see
from services.detection.service_layer.handlers import find_lookalike, origin_of
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import DomainError, NotFound, OutOfScope


class UnknownShock(DomainError):
    status_code = 422
    code = "unknown_shock"


class ShockOfAnotherTerritory(DomainError):
    """A project compensates a shock only in the shock's own (primary) territory: that is
    where its ledger counts it."""

    status_code = 422
    code = "shock_of_another_territory"


async def load_project(
    uow: DetectionUnitOfWork, project_id: uuid.UUID, principal: Principal
) -> Project:
    project = await uow.projects.get(project_id)
    if project is None or not may_see(principal, project.territory_id):
        raise NotFound(f"no project {project_id} in your territories")
    return project


@dataclass(frozen=True)
class ExogenousProject:
    territory_id: str
    firm_name: str
    kind: str
    figures: Figures
    shock_id: uuid.UUID | None = None
    siren: str | None = None
    naf_code: str | None = None
    known_to_public_actors: bool = True


async def declare_exogenous(
    uow: DetectionUnitOfWork, data: ExogenousProject, principal: Principal, clock: Clock
) -> Project:
    """A firm from outside looking for a location: always a new project — flagged when it
    looks like one already known."""
    if not may_see(principal, data.territory_id):
        raise OutOfScope(f"territory {data.territory_id} is outside your token's territories")
    if data.shock_id is not None:
        shock = await uow.shocks.get(data.shock_id)
        if shock is None:
            raise UnknownShock(f"no closure shock {data.shock_id} is known to detection")
        if shock.territory_id != data.territory_id:
            raise ShockOfAnotherTerritory(
                f"closure shock {data.shock_id} belongs to territory {shock.territory_id},"
                f" not {data.territory_id}: its ledger counts only the projects of"
                f" {shock.territory_id}"
            )
    now = clock.now()
    key = ProjectKey(
        siren=data.siren, kind=data.kind, territory_id=data.territory_id, firm_name=data.firm_name
    )
    project = Project.detect(
        key,
        data.figures,
        origin=await origin_of(uow, data.siren, data.territory_id),
        hidden=not data.known_to_public_actors,
        report=Report(
            source="crisis_cell", reference="declared by the crisis cell", reported_at=now
        ),
        now=now,
        naf_code=data.naf_code,
        shock_id=data.shock_id,
        detected_on=clock.today(),
        # Declared again (without the Idempotency-Key of the first declaration) or the
        # same firm's project already found by a survey: flagged, for the cell to decide.
        looks_like=await find_lookalike(uow, key),
    )
    uow.projects.add(project)
    return project


async def qualify(
    uow: DetectionUnitOfWork,
    project_id: uuid.UUID,
    principal: Principal,
    clock: Clock,
    *,
    jobs_planned: int | None,
    capex_eur: int | None,
) -> Project:
    project = await load_project(uow, project_id, principal)
    project.qualify(
        now=clock.now(),
        jobs_planned=jobs_planned,
        capex_eur=capex_eur,
        reference=f"qualified by {principal.subject}",
    )
    return project


async def move(
    uow: DetectionUnitOfWork,
    project_id: uuid.UUID,
    stage: Stage,
    principal: Principal,
    clock: Clock,
    reason: str | None,
) -> Project:
    project = await load_project(uow, project_id, principal)
    project.move_to(stage, now=clock.now(), reason=reason)
    return project


async def record_jobs(
    uow: DetectionUnitOfWork,
    project_id: uuid.UUID,
    principal: Principal,
    clock: Clock,
    *,
    jobs_created_total: int,
    created_on: date,
    complete: bool,
) -> Project:
    project = await load_project(uow, project_id, principal)
    project.record_jobs(
        jobs_created_total=jobs_created_total,
        created_on=created_on,
        complete=complete,
        now=clock.now(),
    )
    return project


async def abandon(
    uow: DetectionUnitOfWork, project_id: uuid.UUID, principal: Principal, clock: Clock, reason: str
) -> Project:
    project = await load_project(uow, project_id, principal)
    project.abandon(reason, now=clock.now())
    return project


async def dismiss_duplicate(
    uow: DetectionUnitOfWork,
    project_id: uuid.UUID,
    principal: Principal,
    clock: Clock,
    note: str | None,
) -> Project:
    project = await load_project(uow, project_id, principal)
    project.dismiss_duplicate(now=clock.now(), by=principal.subject, note=note)
    return project


async def merge(
    uow: DetectionUnitOfWork,
    project_id: uuid.UUID,
    principal: Principal,
    clock: Clock,
    into: uuid.UUID | None,
) -> Project:
    """Merge a project into the one it duplicates (its flag's, or `into`); returns the
    project that remains."""
    absorbed = await load_project(uow, project_id, principal)
    target = into or absorbed.possible_duplicate_of
    if target is None:
        raise NotFound(
            f"project {project_id} is flagged as the duplicate of no project: say which"
            " project to merge it into (`into`)"
        )
    survivor = await load_project(uow, target, principal)
    survivor.absorb(absorbed, now=clock.now(), by=principal.subject)
    return survivor
