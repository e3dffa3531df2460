"""The crisis cell's commands on projects. They run inside the caller's unit of work and
never commit: the caller commits once, with the request's idempotency key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.detection.domain.matching import ProjectKey
from services.detection.domain.model import Project, Report
from services.detection.domain.stages import Stage
from services.detection.service_layer.handlers import Clock, find_lookalike, origin_of
from services.detection.service_layer.unit_of_work import DetectionUnitOfWork
from shared.auth import Principal
from shared.errors import DomainError, NotFound


class OutOfScope(DomainError):
    status_code = 403
    code = "out_of_scope"


class UnknownShock(DomainError):
    status_code = 422
    code = "unknown_shock"


async def load_project(
    uow: DetectionUnitOfWork, project_id: uuid.UUID, principal: Principal
) -> Project:
    project = await uow.projects.get(project_id)
    if project is None or not principal.can_see_territory(project.territory_id):
        raise NotFound(f"no project {project_id} in your territories")
    return project


@dataclass(frozen=True)
class ExogenousProject:
    territory_id: str
    firm_name: str
    kind: str
    description: str
    jobs_planned: int
    consent_to_share: bool
    shock_id: uuid.UUID | None = None
    siren: str | None = None
    naf_code: str | None = None
    capex_eur: int | None = None
    funding_need_eur: int | None = None
    land_needs_ha: float | None = None
    maturity: str | None = None
    known_to_public_actors: bool = True


async def declare_exogenous(
    uow: DetectionUnitOfWork, data: ExogenousProject, principal: Principal, clock: Clock
) -> tuple[Project, bool]:
    """A firm from outside looking for a location. Returns (project, created): always a
    new project — flagged when it looks like one already known."""
    if not principal.can_see_territory(data.territory_id):
        raise OutOfScope(f"territory {data.territory_id} is outside your token's territories")
    if data.shock_id is not None:
        shock = await uow.shocks.get(data.shock_id)
        if shock is None:
            raise UnknownShock(f"no closure shock {data.shock_id} is known to detection")
        if data.territory_id not in shock.territory_ids:
            raise UnknownShock(
                f"closure shock {data.shock_id} is not in territory {data.territory_id}"
            )
    now = clock.now()
    report = Report(source="crisis_cell", reference="declared by the crisis cell", reported_at=now)
    figures: dict[str, Any] = {
        "description": data.description,
        "jobs_planned": data.jobs_planned,
        "capex_eur": data.capex_eur,
        "funding_need_eur": data.funding_need_eur,
        "land_needs_ha": data.land_needs_ha,
        "maturity": data.maturity,
        "consent_to_share": data.consent_to_share,
    }
    key = ProjectKey(
        siren=data.siren, kind=data.kind, territory_id=data.territory_id, firm_name=data.firm_name
    )
    project = Project.detect(
        territory_id=data.territory_id,
        origin=await origin_of(uow, data.siren, data.territory_id),
        kind=data.kind,
        hidden=not data.known_to_public_actors,
        report=report,
        now=now,
        shock_id=data.shock_id,
        siren=data.siren,
        firm_name=data.firm_name,
        naf_code=data.naf_code,
        detected_on=clock.today(),
        # Declared again (without the Idempotency-Key of the first declaration) or the
        # same firm's project already found by a survey: flagged, for the cell to decide.
        looks_like=await find_lookalike(uow, key),
        **figures,
    )
    uow.projects.add(project)
    return project, True


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
