"""Establishments as detection knows them: a projection of the registry's site events,
enough to tell a firm of the territory (endogenous) from one coming from outside."""

from __future__ import annotations

from dataclasses import dataclass, replace

from shared.events.site_registry import SiteState

__all__ = ["Site"]


@dataclass(frozen=True)
class Site:
    site_id: str  # SIRET
    siren: str
    name: str | None  # None when INSEE does not publish it
    naf_code: str
    commune_insee: str
    territory_ids: tuple[str, ...]
    status: str  # active, closure_announced, closed
    version: int  # the registry's: a projection applies only newer versions

    @classmethod
    def of(cls, state: SiteState) -> Site:
        return cls(
            site_id=state.site_id,
            siren=state.siren,
            name=state.name,
            naf_code=state.naf_code,
            commune_insee=state.commune_insee,
            territory_ids=tuple(state.territory_ids),
            status=state.status,
            version=state.version,
        )

    def closed(self, version: int) -> Site:
        return replace(self, status="closed", version=version)
