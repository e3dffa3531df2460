"""Who may see a project and manage a scheme: the scope rules commands and views share."""

from __future__ import annotations

import uuid

from services.funding.domain.catalogue import Scheme
from services.funding.domain.projects import FundingProject
from services.funding.service_layer.matching import region_of
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
    """A crisis cell sees its territories' projects; a funder the consented projects of
    its regions; admins all."""
    if principal.is_admin or principal.can_see_territory(project.territory_id):
        return True
    region = region_of(project.territory_id)
    funder = Role.FUNDER in principal.roles and project.consent_to_share
    return bool(funder and region and principal.can_see_region(region))


def visible(
    principal: Principal, project_id: uuid.UUID, project: FundingProject | None
) -> FundingProject:
    """The project if the principal may see it; NotFound otherwise, as if it did not
    exist (its existence is not the caller's to know)."""
    if project is None or not may_see(principal, project):
        raise NotFound(f"no project {project_id} you may see")
    return project
