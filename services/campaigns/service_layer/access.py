"""Who sees a campaign: the one rule the commands and the views share.

A campaign belongs to a territory. The territory scope (the token's `territories` claim)
counts only with a role it belongs to, a crisis cell's or a consultant's: a funder's token
that carries `territories` sees no campaign. Admins see every campaign."""

from __future__ import annotations

from shared.auth import Principal, Role

TERRITORY_ROLES = frozenset({Role.CRISIS_CELL, Role.CONSULTANT})


def territories_of(principal: Principal) -> list[str] | None:
    """The territories whose campaigns the caller sees, sorted; None: all (admin)."""
    if principal.is_admin:
        return None
    return sorted(principal.territories) if principal.roles & TERRITORY_ROLES else []


def may_see(principal: Principal, territory_id: str) -> bool:
    """May the caller see (and act on) a campaign of this territory?"""
    territories = territories_of(principal)
    return territories is None or territory_id in territories
