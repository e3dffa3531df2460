"""Who sees which projects in detection: one rule, for the reads and the commands."""

from __future__ import annotations

from shared.auth import Principal, Role


def territories_of(principal: Principal) -> list[str] | None:
    """The one rule for what detection shows a caller: the territories of a crisis cell's
    token, sorted (None: every territory, for an admin). The `territories` claim counts
    only with the crisis cell's role: another role's token carrying it sees nothing."""
    if principal.is_admin:
        return None
    return sorted(principal.territories) if Role.CRISIS_CELL in principal.roles else []


def may_see(principal: Principal, territory_id: str) -> bool:
    territories = territories_of(principal)
    return territories is None or territory_id in territories
