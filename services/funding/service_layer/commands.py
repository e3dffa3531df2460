"""Commands of the funding service: the catalogue (admins and funders), and funders'
applications and decisions. They run inside the caller's unit of work."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.funding.adapters.orm import (
    ApplicationRow,
    CallRow,
    FundingProjectRow,
    MatchRow,
    SchemeRow,
    SelectionRoundRow,
)
from services.funding.adapters.repository import scheme_from_dict, upsert_scheme
from services.funding.domain.catalogue import Call, Scheme, validate_call, validate_scheme
from services.funding.service_layer.matching import Matcher, region_of
from services.funding.service_layer.unit_of_work import FundingUnitOfWork
from shared.auth import Principal, Role
from shared.errors import Conflict, DomainError, NotFound
from shared.events import funding as fd


class NotYourScheme(DomainError):
    status_code = 403
    code = "not_your_scheme"


class NotShared(Conflict):
    code = "not_shared"


class InvalidDecision(Conflict):
    code = "invalid_decision"


def may_manage(principal: Principal, scheme: Scheme) -> bool:
    """Admins manage every scheme; a funder those it finances (its `org` claim)."""
    if principal.is_admin:
        return True
    return (
        Role.FUNDER in principal.roles
        and principal.org is not None
        and (principal.org in scheme.funders)
    )


async def save_scheme(
    uow: FundingUnitOfWork, scheme: Scheme, principal: Principal, matcher: Matcher
) -> tuple[Scheme, bool]:
    scheme = validate_scheme(scheme)
    if not may_manage(principal, scheme):
        raise NotYourScheme(
            f"only an admin or one of the scheme's funders ({', '.join(scheme.funders)})"
            " may change it"
        )
    current = await uow.session.get(SchemeRow, scheme.id)
    if current is not None and not may_manage(principal, scheme_from_dict(dict(current.data))):
        raise NotYourScheme(f"scheme {scheme.id} belongs to other funders")
    changed = await upsert_scheme(uow.session, scheme)
    if changed:
        await uow.session.flush()
        await matcher.rematch_all(uow)  # the catalogue changed: every project's matches too
    return scheme, changed


async def save_call(uow: FundingUnitOfWork, call: Call, principal: Principal) -> Call:
    row = await uow.session.get(SchemeRow, call.scheme_id)
    if row is None:
        raise NotFound(f"no scheme {call.scheme_id}")
    scheme = scheme_from_dict(dict(row.data))
    call = validate_call(call, scheme)
    if not may_manage(principal, scheme):
        raise NotYourScheme(f"calls of scheme {scheme.id} are managed by its funders")
    data: dict[str, object] = {
        "rounds": [
            {
                "name": r.name,
                "closes_on": r.closes_on.isoformat() if r.closes_on else None,
                "envelope_eur": r.envelope_eur,
                "quota": r.quota,
            }
            for r in call.rounds
        ],
        "source_url": call.source_url,
        "source": call.source,
    }
    existing = await uow.session.get(CallRow, call.id)
    if existing is None:
        uow.session.add(CallRow(id=call.id, scheme_id=call.scheme_id, name=call.name, data=data))
    else:
        existing.name, existing.data = call.name, data
    return call


@dataclass(frozen=True)
class RoundResult:
    call_id: str
    round: str
    decided_on: date
    applications: int
    selected: int
    per_territory: dict[str, int]


async def record_round(uow: FundingUnitOfWork, result: RoundResult, principal: Principal) -> None:
    call = await uow.session.get(CallRow, result.call_id)
    if call is None:
        raise NotFound(f"no call {result.call_id}")
    scheme_row = await uow.session.get(SchemeRow, call.scheme_id)
    assert scheme_row is not None
    if not may_manage(principal, scheme_from_dict(dict(scheme_row.data))):
        raise NotYourScheme("only the call's funders record its selection rounds")
    if result.selected > result.applications:
        raise InvalidDecision(
            f"{result.selected} selected out of {result.applications} applications is impossible"
        )
    if sum(result.per_territory.values()) > result.selected:
        raise InvalidDecision("the per-territory counts add up to more than the selected")
    row = await uow.session.get(SelectionRoundRow, (result.call_id, result.round))
    values = {
        "decided_on": result.decided_on,
        "applications": result.applications,
        "selected": result.selected,
        "per_territory": dict(result.per_territory),
    }
    if row is None:
        uow.session.add(SelectionRoundRow(call_id=result.call_id, round=result.round, **values))  # type: ignore[arg-type]
    else:
        for key, value in values.items():
            setattr(row, key, value)


async def visible_project(
    session: AsyncSession, project_id: uuid.UUID, principal: Principal
) -> FundingProjectRow:
    """A crisis cell sees its territories' projects; a funder the consented projects of
    its regions; admins all."""
    row = await session.get(FundingProjectRow, project_id)
    if row is not None:
        if principal.is_admin or principal.can_see_territory(row.territory_id):
            return row
        region = region_of(row.territory_id)
        funder = Role.FUNDER in principal.roles and row.consent_to_share
        if funder and region and principal.can_see_region(region):
            return row
    raise NotFound(f"no project {project_id} you may see")


async def _scheme_for_funder(
    uow: FundingUnitOfWork, scheme_id: str, principal: Principal
) -> Scheme:
    row = await uow.session.get(SchemeRow, scheme_id)
    if row is None:
        raise NotFound(f"no scheme {scheme_id}")
    scheme = scheme_from_dict(dict(row.data))
    if not may_manage(principal, scheme):
        raise NotYourScheme(f"scheme {scheme_id} is financed by {', '.join(scheme.funders)}")
    return scheme


def _funder(principal: Principal, scheme: Scheme) -> str:
    return principal.org if principal.org in scheme.funders else scheme.funders[0]


async def submit_application(
    uow: FundingUnitOfWork,
    project_id: uuid.UUID,
    scheme_id: str,
    amount_requested_eur: int,
    principal: Principal,
    matcher: Matcher,
) -> ApplicationRow:
    project = await visible_project(uow.session, project_id, principal)
    if not project.consent_to_share:
        raise NotShared(f"the firm did not consent to share project {project_id} with funders")
    scheme = await _scheme_for_funder(uow, scheme_id, principal)
    match = await uow.session.get(MatchRow, (project_id, scheme_id))
    if match is None or not match.eligible:
        raise InvalidDecision(
            f"project {project_id} does not match scheme {scheme_id}: see its matches"
        )
    now = matcher.now()
    application = ApplicationRow(
        id=uuid.uuid4(),
        project_id=project_id,
        scheme_id=scheme_id,
        funder=_funder(principal, scheme),
        status="submitted",
        amount_requested_eur=amount_requested_eur,
        submitted_at=now,
    )
    uow.session.add(application)
    uow.publish(
        fd.ApplicationSubmitted(
            project_id=project_id,
            scheme_id=scheme_id,
            funder=application.funder,
            occurred_at=now,
            application_id=application.id,
            amount_requested_eur=amount_requested_eur,
        )
    )
    return application


async def _application(
    uow: FundingUnitOfWork, application_id: uuid.UUID, principal: Principal
) -> tuple[ApplicationRow, Scheme]:
    row = await uow.session.get(ApplicationRow, application_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no application {application_id}")
    await visible_project(uow.session, row.project_id, principal)
    return row, await _scheme_for_funder(uow, row.scheme_id, principal)


def _decision(row: ApplicationRow, matcher: Matcher) -> dict[str, Any]:
    """What every decision on an application says: whose, which scheme, when."""
    return {
        "project_id": row.project_id,
        "scheme_id": row.scheme_id,
        "funder": row.funder,
        "occurred_at": matcher.now(),
        "application_id": row.id,
    }


async def grant(
    uow: FundingUnitOfWork,
    application_id: uuid.UUID,
    amount_eur: int,
    decided_on: date,
    principal: Principal,
    matcher: Matcher,
) -> ApplicationRow:
    row, scheme = await _application(uow, application_id, principal)
    if row.status != "submitted":
        raise InvalidDecision(f"application {application_id} is already {row.status}")
    if scheme.amount_max_eur is not None and amount_eur > scheme.amount_max_eur:
        raise InvalidDecision(
            f"{amount_eur} € is above the scheme's maximum of {scheme.amount_max_eur} €"
        )
    row.status, row.amount_granted_eur, row.decided_on = "granted", amount_eur, decided_on
    uow.publish(
        fd.AwardGranted(
            **_decision(row, matcher),
            amount_eur=amount_eur,
            decided_on=decided_on,
        )
    )
    return row


async def refuse(
    uow: FundingUnitOfWork,
    application_id: uuid.UUID,
    reason: str,
    decided_on: date,
    principal: Principal,
    matcher: Matcher,
) -> ApplicationRow:
    row, _ = await _application(uow, application_id, principal)
    if row.status != "submitted":
        raise InvalidDecision(f"application {application_id} is already {row.status}")
    row.status, row.refusal_reason, row.decided_on = "refused", reason, decided_on
    uow.publish(
        fd.AwardRefused(
            **_decision(row, matcher),
            decided_on=decided_on,
            reason=reason,
        )
    )
    return row


async def pay(
    uow: FundingUnitOfWork,
    application_id: uuid.UUID,
    amount_eur: int,
    paid_on: date,
    principal: Principal,
    matcher: Matcher,
) -> ApplicationRow:
    row, _ = await _application(uow, application_id, principal)
    if row.status != "granted" or row.amount_granted_eur is None:
        raise InvalidDecision(f"application {application_id} has no award to pay")
    if row.amount_paid_eur + amount_eur > row.amount_granted_eur:
        raise InvalidDecision(
            f"paying {amount_eur} € would exceed the award of {row.amount_granted_eur} €"
            f" ({row.amount_paid_eur} € already paid)"
        )
    row.amount_paid_eur += amount_eur
    uow.publish(
        fd.PaymentMade(
            **_decision(row, matcher),
            amount_eur=amount_eur,
            paid_on=paid_on,
        )
    )
    return row


def application_body(row: ApplicationRow) -> dict[str, Any]:
    return row.model_dump()


async def funder_projects(
    session: AsyncSession, principal: Principal
) -> list[tuple[FundingProjectRow, list[MatchRow]]]:
    """The consented projects of the funder's regions with an eligible match, with those
    matches (only the funder's own schemes unless admin)."""
    rows = (
        await session.exec(
            select(FundingProjectRow).where(FundingProjectRow.consent_to_share == True)  # noqa: E712
        )
    ).all()
    out = []
    for project in rows:
        region = region_of(project.territory_id)
        if not (principal.is_admin or (region and principal.can_see_region(region))):
            continue
        matches = (
            await session.exec(
                select(MatchRow)
                .where(MatchRow.project_id == project.project_id)
                .where(MatchRow.eligible == True)  # noqa: E712
                .order_by(col(MatchRow.rank))
            )
        ).all()
        if not principal.is_admin:
            mine = []
            for m in matches:
                scheme_row = await session.get(SchemeRow, m.scheme_id)
                if scheme_row is not None and principal.org in (scheme_row.funders or []):
                    mine.append(m)
            matches = mine
        if matches:
            out.append((project, list(matches)))
    return out
