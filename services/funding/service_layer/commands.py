"""Commands of the funding service: the catalogue (admins and funders), and funders'
applications and decisions. They run inside the caller's unit of work and never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from services.funding.adapters.aides_territoires import parse_aides_territoires
from services.funding.domain.applications import (
    Application,
    Award,
    Decision,
    ImplausibleDate,
    InvalidDecision,
    Payment,
    Refusal,
)
from services.funding.domain.catalogue import (
    Call,
    RoundResult,
    Scheme,
    validate_call,
    validate_scheme,
)
from services.funding.domain.matching import evaluate
from services.funding.service_layer.access import NotYourScheme, may_manage, visible
from services.funding.service_layer.matching import Matcher, profile
from services.funding.service_layer.unit_of_work import UnitOfWork
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import Conflict, NotFound
from shared.events import funding as fd
from shared.scrub import scrub

__all__ = [
    "ImportReport",
    "InvalidDecision",
    "NotShared",
    "NotYourScheme",
    "SchemeSaved",
    "decide",
    "import_aides_territoires",
    "record_round",
    "save_call",
    "save_scheme",
    "submit_application",
    "upsert_schemes",
]


class NotShared(Conflict):
    code = "not_shared"


@dataclass(frozen=True)
class SchemeSaved:
    scheme: Scheme
    changed: bool


@dataclass(frozen=True)
class ImportReport:
    schemes: int
    changed: int
    problems: tuple[str, ...]


async def upsert_schemes(uow: UnitOfWork, schemes: Iterable[Scheme], matcher: Matcher) -> int:
    """Store the schemes; if any is new or changed, every project is matched again (the
    catalogue changed, so may every project's matches). How many changed."""
    changed = 0
    for scheme in schemes:
        changed += await uow.schemes.upsert(scheme)
    if changed:
        await matcher.rematch_all(uow)
    return changed


async def save_scheme(
    uow: UnitOfWork, scheme: Scheme, principal: Principal, matcher: Matcher
) -> SchemeSaved:
    scheme = validate_scheme(scheme)
    if not may_manage(principal, scheme):
        raise NotYourScheme(
            f"only an admin or one of the scheme's funders ({', '.join(scheme.funders)})"
            " may change it"
        )
    current = await uow.schemes.get(scheme.id)
    if current is not None and not may_manage(principal, current):
        raise NotYourScheme(f"scheme {scheme.id} belongs to other funders")
    return SchemeSaved(scheme, bool(await upsert_schemes(uow, [scheme], matcher)))


async def import_aides_territoires(
    uow: UnitOfWork, document: Mapping[str, Any], matcher: Matcher
) -> ImportReport:
    """Schemes from an Aides-territoires API document (a page of its `aids` results)."""
    schemes, problems = parse_aides_territoires(document)
    changed = await upsert_schemes(uow, schemes, matcher)
    return ImportReport(len(schemes), changed, tuple(str(p) for p in problems))


async def _managed_scheme(
    uow: UnitOfWork, scheme_id: str, principal: Principal, refusal: str
) -> Scheme:
    scheme = await uow.schemes.get(scheme_id)
    if scheme is None:
        raise NotFound(f"no scheme {scheme_id}")
    if not may_manage(principal, scheme):
        raise NotYourScheme(refusal.format(scheme=scheme, funders=", ".join(scheme.funders)))
    return scheme


async def save_call(uow: UnitOfWork, call: Call, principal: Principal) -> Call:
    scheme = await uow.schemes.get(call.scheme_id)
    if scheme is None:
        raise NotFound(f"no scheme {call.scheme_id}")
    call = validate_call(call, scheme)
    if not may_manage(principal, scheme):
        raise NotYourScheme(f"calls of scheme {scheme.id} are managed by its funders")
    await uow.calls.save(call)
    return call


async def record_round(uow: UnitOfWork, result: RoundResult, principal: Principal) -> RoundResult:
    call = await uow.calls.get(result.call_id)
    if call is None:
        raise NotFound(f"no call {result.call_id}")
    await _managed_scheme(
        uow, call.scheme_id, principal, "only the call's funders record its selection rounds"
    )
    if result.selected > result.applications:
        raise InvalidDecision(
            f"{result.selected} selected out of {result.applications} applications is impossible"
        )
    if sum(result.per_territory.values()) > result.selected:
        raise InvalidDecision("the per-territory counts add up to more than the selected")
    await uow.calls.save_result(result)
    return result


def _funder(principal: Principal, scheme: Scheme) -> str:
    return principal.org if principal.org in scheme.funders else scheme.funders[0]


_FUNDER_REFUSAL = "scheme {scheme.id} is financed by {funders}"


async def submit_application(
    uow: UnitOfWork,
    project_id: uuid.UUID,
    scheme_id: str,
    amount_requested_eur: int,
    principal: Principal,
    clock: Clock,
    *,
    filed_on: date | None = None,
) -> Application:
    """Record an application. ``filed_on``: one recorded after the fact (a past call's
    applications entered later), checked against the scheme as it was on that day — a
    call closed since must still take the applications it had; today's stored matches
    would refuse them."""
    project = visible(principal, project_id, await uow.projects.get(project_id))
    if not project.consent_to_share:
        raise NotShared(f"the firm did not consent to share project {project_id} with funders")
    scheme = await _managed_scheme(uow, scheme_id, principal, _FUNDER_REFUSAL)
    if filed_on is None:
        match = await uow.matches.get(project_id, scheme_id)
        eligible = match is not None and match.eligible
        when = "see its matches"
    else:
        if filed_on > clock.today():
            raise ImplausibleDate(f"filed_on {filed_on} is after today ({clock.today()})")
        site = await uow.sites.get(project.site_id) if project.site_id else None
        criteria = evaluate(scheme, profile(project, site), filed_on)
        eligible = project.matchable and all(c.status != "fail" for c in criteria)
        failed = [c.reason for c in criteria if c.status == "fail"]
        when = f"on {filed_on}: " + ("; ".join(failed) or "the project is not qualified")
    if not eligible:
        raise InvalidDecision(f"project {project_id} does not match scheme {scheme_id}: {when}")
    now = clock.now()
    application = Application(
        id=uuid.uuid4(),
        project_id=project_id,
        scheme_id=scheme_id,
        funder=_funder(principal, scheme),
        status="submitted",
        amount_requested_eur=amount_requested_eur,
        submitted_at=now,
        filed_on=filed_on,
    )
    uow.applications.add(application)
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
    uow: UnitOfWork, application_id: uuid.UUID, principal: Principal
) -> tuple[Application, Scheme]:
    application = await uow.applications.get(application_id)
    if application is None:
        raise NotFound(f"no application {application_id}")
    visible(principal, application.project_id, await uow.projects.get(application.project_id))
    scheme = await _managed_scheme(uow, application.scheme_id, principal, _FUNDER_REFUSAL)
    return application, scheme


class _Decision(TypedDict):
    """What every decision on an application says: whose, which scheme, when."""

    project_id: uuid.UUID
    scheme_id: str
    funder: str
    occurred_at: datetime
    application_id: uuid.UUID


def _decision(application: Application, clock: Clock) -> _Decision:
    return {
        "project_id": application.project_id,
        "scheme_id": application.scheme_id,
        "funder": application.funder,
        "occurred_at": clock.now(),
        "application_id": application.id,
    }


async def decide(
    uow: UnitOfWork,
    application_id: uuid.UUID,
    decision: Decision,
    principal: Principal,
    clock: Clock,
) -> Application:
    """Record an award, a refusal or a payment on an application of the funder's scheme,
    and announce it (detection moves the project: funded, or back to qualified)."""
    application, scheme = await _application(uow, application_id, principal)
    application.decide(decision, amount_max_eur=scheme.amount_max_eur, today=clock.today())
    await uow.applications.save(application)
    uow.publish(_announced(decision, _decision(application, clock)))
    return application


def _announced(decision: Decision, about: _Decision) -> fd.FundingDecision:
    match decision:
        case Award(amount_eur, decided_on):
            return fd.AwardGranted(**about, amount_eur=amount_eur, decided_on=decided_on)
        case Refusal(reason, decided_on):
            return fd.AwardRefused(**about, decided_on=decided_on, reason=scrub(reason))
        case Payment(amount_eur, paid_on):
            return fd.PaymentMade(**about, amount_eur=amount_eur, paid_on=paid_on)
