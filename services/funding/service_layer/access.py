"""Who may see a project and manage a scheme: the scope rules commands and views share."""

from __future__ import annotations

import uuid

from services.funding.domain.catalogue import Scheme
from services.funding.domain.projects import FundingProject, region_of
from shared.auth import Principal, Role
from shared.errors import NotFound, OutOfScope


class NotYourScheme(OutOfScope):
    code = "not_your_scheme"


def may_manage(principal: Principal, scheme: Scheme) -> bool:
    """Admins manage every scheme; a funder those it finances (its `org` claim)."""
    if principal.is_admin:
        return True
    return (
        Role.FUNDER in principal.roles
        and principal.org is not None
        and (principal.org in scheme.funders)
    )


def may_see(principal: Principal, project: FundingProject) -> bool:
    """The one rule for who sees a project, from the caller's role AND scope: a crisis cell
    the projects of its territories; a funder the consented projects of its regions;
    admins all. A scope claim counts only with the role it belongs to: a funder's token
    that also carries `territories` sees no more than a funder's."""
    return principal.is_admin or (
        crisis_cell_sees(principal, project.territory_id)
        or funder_sees(principal, project.territory_id, consented=project.consent_to_share)
    )


def crisis_cell_sees(principal: Principal, territory_id: str) -> bool:
    """A crisis cell sees its territories' projects (its `territories` claim)."""
    return Role.CRISIS_CELL in principal.roles and territory_id in principal.territories


def funder_sees(principal: Principal, territory_id: str, *, consented: bool) -> bool:
    """A funder sees the projects of its regions (its `regions` claim) whose firm consented
    to share them; never a project without consent."""
    if Role.FUNDER not in principal.roles or not consented:
        return False
    region = region_of(territory_id)
    return region is not None and region in principal.regions


def visible(
    principal: Principal, project_id: uuid.UUID, project: FundingProject | None
) -> FundingProject:
    """The project if the principal may see it; NotFound otherwise, as if it did not
    exist (its existence is not the caller's to know)."""
    if project is None or not may_see(principal, project):
        raise NotFound(f"no project {project_id} you may see")
    return project
