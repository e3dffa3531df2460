"""Events owned by the site registry.

Sites carry their whole state (event-carried state transfer): a consumer builds its own
projection of sites from these events alone and never calls the registry.

No personal data: an establishment's name is withheld (None) when INSEE publishes it only
partially (`statutDiffusionEtablissement = P`, a natural person who objected), a sole
trader's site never carries a name (the registry may know the person's, from Sirene; it
keeps it), and the free-text note of a closure shock never leaves the registry.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import EventPayload

SiteStatus = Literal["active", "closure_announced", "closed"]
SiteSource = Literal["sirene", "irep", "generated", "manual"]

SIRET_PATTERN = r"^[0-9]{14}$"
NAF_PATTERN = r"^[0-9]{2}\.[0-9]{2}[A-Z]$"
COMMUNE_PATTERN = r"^[0-9][0-9AB][0-9]{3}$"


class SiteState(EventPayload):
    """The full public state of an establishment, as the registry knows it now."""

    key_field: ClassVar[str] = "site_id"
    identity: ClassVar[tuple[str, ...]] = ("site_id", "version")

    site_id: str = Field(pattern=SIRET_PATTERN, description="SIRET of the establishment")
    siren: str = Field(pattern=r"^[0-9]{9}$")
    name: str | None = Field(
        description="the establishment's sign or usual name, else its firm's name; None when"
        " INSEE does not publish it, and always None for a sole trader (entrepreneur"
        " individuel), whose name is a person's"
    )
    naf_code: str = Field(pattern=NAF_PATTERN, description="NAF rev. 2 sub-class")
    naf_section: str = Field(pattern=r"^[A-U]$")
    headcount_band: str | None = Field(
        default=None, description="INSEE trancheEffectifsEtablissement code; None if unknown"
    )
    commune_insee: str = Field(pattern=COMMUNE_PATTERN)
    territory_ids: list[str] = Field(description="Territoires d'industrie the commune is in")
    lon: float | None = Field(default=None, ge=-180, le=180, description="WGS84")
    lat: float | None = Field(default=None, ge=-90, le=90, description="WGS84")
    status: SiteStatus
    source: SiteSource
    legal_category: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}$",
        description="the firm's INSEE legal category (categorieJuridiqueUniteLegale; 1000:"
        " entrepreneur individuel); None until the legal units are imported",
    )
    company_category: str | None = Field(
        default=None,
        pattern=r"^(PME|ETI|GE)$",
        description="the firm's INSEE company category (categorieEntreprise: PME, which"
        " includes micro-entreprises, ETI or GE); None when INSEE gives none",
    )
    version: int = Field(ge=1, description="increases by one with each change of the site")


class SiteRegistered(SiteState):
    event_type: ClassVar[str] = "rebond.site_registry.site_registered.v1"


class SiteUpdated(SiteState):
    event_type: ClassVar[str] = "rebond.site_registry.site_updated.v1"

    changed_fields: list[str] = Field(description="fields that differ from the previous version")


class SiteClosed(EventPayload):
    event_type: ClassVar[str] = "rebond.site_registry.site_closed.v1"
    key_field: ClassVar[str] = "site_id"
    identity: ClassVar[tuple[str, ...]] = ("site_id", "version")

    site_id: str = Field(pattern=SIRET_PATTERN)
    siren: str = Field(pattern=r"^[0-9]{9}$")
    territory_ids: list[str]
    closed_on: date | None = Field(description="date of closure when known")
    version: int = Field(ge=1)


class ClosureAnnounced(EventPayload):
    """A closure shock: the announced closure of a site that matters to its territory."""

    event_type: ClassVar[str] = "rebond.site_registry.closure_announced.v1"
    key_field: ClassVar[str] = "site_id"
    identity: ClassVar[tuple[str, ...]] = ("shock_id",)

    shock_id: uuid.UUID = Field(description="id of the closure shock")
    site_id: str = Field(pattern=SIRET_PATTERN)
    siren: str = Field(pattern=r"^[0-9]{9}$")
    site_name: str | None = Field(
        description="the site's name as its site events carry it (None for a sole trader)"
    )
    naf_code: str = Field(pattern=NAF_PATTERN)
    commune_insee: str = Field(pattern=COMMUNE_PATTERN)
    territory_ids: list[str]
    announced_on: date
    planned_closure_on: date | None
    jobs_lost: int = Field(gt=0)
    declared_at: AwareDatetime
    version: int = Field(ge=1, description="the site's version after the announcement")

    @property
    def primary_territory_id(self) -> str | None:
        """The one territory that owns the shock: its crisis cell runs the campaign, its
        ledger counts the shock, and projects declared for the shock must be in it. The
        first of `territory_ids` (which the registry lists sorted); None outside every
        territory. Decided here once, for every consumer."""
        return self.territory_ids[0] if self.territory_ids else None
