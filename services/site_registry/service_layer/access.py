"""Who sees a site and its closure shocks: the one rule the commands and the views share.

A site belongs to the territories of its commune (none, outside every Territoire
d'industrie). The territory scope (the token's `territories` claim) counts only with a
role it belongs to, a crisis cell's or a consultant's: a funder's token that carries
`territories` sees no site. Admins see every site, including those in no territory."""

from __future__ import annotations

from collections.abc import Sequence

from shared.auth import Principal, Role

TERRITORY_ROLES = frozenset({Role.CRISIS_CELL, Role.CONSULTANT})


def territories_of(principal: Principal) -> tuple[str, ...] | None:
    """The territories whose sites the caller sees, sorted; None: all (admin)."""
    if principal.is_admin:
        return None
    return tuple(sorted(principal.territories)) if principal.roles & TERRITORY_ROLES else ()


def may_see(principal: Principal, territory_ids: Sequence[str]) -> bool:
    """May the caller see (and act on) a site or shock in these territories? A site in no
    territory is the admin's alone."""
    territories = territories_of(principal)
    return territories is None or any(t in territories for t in territory_ids)
