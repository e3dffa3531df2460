"""The one visibility rule of each service, on hand-built principals: a scope claim
counts only with the role it belongs to, whatever built the principal (issue 10)."""

from __future__ import annotations

import pytest

from services.campaigns.service_layer import access as campaigns
from services.detection.service_layer import access as detection
from services.site_registry.service_layer import access as registry
from shared.auth import Principal, Role

pytestmark = pytest.mark.unit

BETHUNE, ELSEWHERE = "ti-3205", "ti-3209"


def who(*roles: Role, territories: tuple[str, ...] = (BETHUNE,)) -> Principal:
    return Principal(subject="s", roles=frozenset(roles), territories=frozenset(territories))


@pytest.mark.parametrize("role", [Role.CRISIS_CELL, Role.CONSULTANT])
def test_territorial_roles_see_their_territories_only(role: Role) -> None:
    p = who(role)
    assert registry.may_see(p, [BETHUNE]) and not registry.may_see(p, [ELSEWHERE])
    assert registry.may_see(p, [ELSEWHERE, BETHUNE])  # a commune in two territories
    assert not registry.may_see(p, [])  # a site in no territory: the admin's alone
    assert campaigns.may_see(p, BETHUNE) and not campaigns.may_see(p, ELSEWHERE)
    assert registry.territories_of(p) == (BETHUNE,)


def test_a_funder_carrying_territories_sees_no_site_campaign_or_ledger() -> None:
    p = who(Role.FUNDER)
    assert not registry.may_see(p, [BETHUNE]) and registry.territories_of(p) == ()
    assert not campaigns.may_see(p, BETHUNE) and campaigns.territories_of(p) == []
    assert not detection.may_see(p, BETHUNE) and detection.territories_of(p) == []


def test_detection_is_the_crisis_cells_not_the_consultants() -> None:
    assert detection.may_see(who(Role.CRISIS_CELL), BETHUNE)
    assert not detection.may_see(who(Role.CONSULTANT), BETHUNE)


def test_admin_sees_everything_even_without_claims() -> None:
    p = who(Role.ADMIN, territories=())
    assert registry.territories_of(p) is None and registry.may_see(p, [])
    assert campaigns.territories_of(p) is None and detection.territories_of(p) is None
