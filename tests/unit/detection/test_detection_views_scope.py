"""Detection's reads are a crisis cell's: every listing and every read by id is bounded by
the territories of a crisis cell's token; the claim on another role's token counts for
nothing (issue 10: a scope claim that does not belong to the role is ignored)."""

from __future__ import annotations

import pytest

from services.detection.service_layer import views
from shared.auth import Principal, Role
from shared.errors import NotFound

pytestmark = pytest.mark.unit


def principal(role: Role, *territories: str) -> Principal:
    return Principal(subject="x", roles=frozenset({role}), territories=frozenset(territories))


def test_a_crisis_cell_lists_its_own_territories_only() -> None:
    cell = principal(Role.CRISIS_CELL, "ti-8401", "ti-3205")
    assert views.scope(cell) == ["ti-3205", "ti-8401"]
    assert views.scope(cell, "ti-3205") == ["ti-3205"]
    with pytest.raises(NotFound, match="ti-1101"):
        views.scope(cell, "ti-1101")
    assert views.may_see(cell, "ti-3205") and not views.may_see(cell, "ti-1101")


def test_the_admin_sees_every_territory() -> None:
    admin = Principal(subject="admin", roles=frozenset({Role.ADMIN}))
    assert views.scope(admin) is None and views.scope(admin, "ti-1101") == ["ti-1101"]


@pytest.mark.parametrize("role", [Role.FUNDER, Role.CONSULTANT])
def test_a_territories_claim_on_another_roles_token_sees_nothing(role: Role) -> None:
    other = principal(role, "ti-3205")
    assert views.scope(other) == []
    assert not views.may_see(other, "ti-3205")
    with pytest.raises(NotFound):
        views.scope(other, "ti-3205")
