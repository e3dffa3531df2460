"""The site registry's aggregates: establishments (sites) and closure shocks.

Pure Python: the aggregates enforce the rules and *record* the events that describe what
changed; the unit of work turns those into outbox rows when it commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Final

from shared.errors import Conflict, DomainError
from shared.events.envelope import EventPayload
from shared.events.site_registry import (
    ClosureAnnounced,
    SiteClosed,
    SiteRegistered,
    SiteState,
    SiteUpdated,
)
from shared.timestamps import require_aware


class SiteStatus(StrEnum):
    ACTIVE = "active"
    CLOSURE_ANNOUNCED = "closure_announced"
    CLOSED = "closed"


class SiteSource(StrEnum):
    SIRENE = "sirene"
    IREP = "irep"
    GENERATED = "generated"
    MANUAL = "manual"


#: Plausible windows for a closure shock, checked where it enters so that every consumer
#: can process what the registry accepted (a campaign needs a real calendar, the ledger
#: a count that fits its columns). The earliest date covers the Territoires d'industrie's
#: history (2018) with margin; an announcement is dated at most a year ahead (a closure
#: announced for a set date), a closure at most ten years after its announcement.
EARLIEST_ANNOUNCEMENT: Final = date(2000, 1, 1)
ANNOUNCEMENT_AHEAD: Final = timedelta(days=366)
CLOSURE_HORIZON: Final = timedelta(days=3653)
#: The largest French industrial sites employ about 10,000 people; a shock ten times
#: larger is a typing error, not a closure.
MAX_JOBS_LOST: Final = 100_000


class ShockStatus(StrEnum):
    OPEN = "open"


class SiteIsClosed(Conflict):
    code = "site_closed"


class OpenShockExists(Conflict):
    code = "open_shock_exists"


class InvalidShock(DomainError):
    code = "invalid_shock"


@dataclass(frozen=True)
class SiteFacts:
    """What the sources say about an establishment; compared field by field on import."""

    siren: str
    name: str | None
    naf_code: str
    naf_section: str
    headcount_band: str | None
    commune_insee: str
    lon: float | None
    lat: float | None
    source: SiteSource

    def differences(self, other: SiteFacts) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]


#: INSEE's company categories (categorieEntreprise): PME includes the micro-entreprises.
COMPANY_CATEGORIES: Final = frozenset({"PME", "ETI", "GE"})


@dataclass(frozen=True)
class FirmFacts:
    """What Sirene's legal unit (StockUniteLegale) says of the site's firm.

    Kept apart from `SiteFacts`, which are the establishment's: each import owns its
    facts, so an establishment import never blanks the firm's and a legal-unit import
    never overrides the establishment's own name."""

    name: str | None
    #: `name` is a natural person's (a sole trader's, published by INSEE): the registry
    #: keeps and shows it, no event ever carries it
    name_is_person: bool
    legal_category: str | None  # categorieJuridiqueUniteLegale; 1xxx = entrepreneur individuel
    company_category: str | None  # PME, ETI or GE
    company_category_year: int | None

    def __post_init__(self) -> None:
        if self.company_category is not None and self.company_category not in COMPANY_CATEGORIES:
            raise ValueError(f"unknown company category {self.company_category!r}")

    @property
    def is_natural_person(self) -> bool:
        """A sole trader: whatever name the site has may be the person's."""
        return self.name_is_person or (
            self.legal_category is not None and self.legal_category.startswith("1")
        )


@dataclass
class Site:
    siret: str
    facts: SiteFacts
    territory_ids: tuple[str, ...]
    status: SiteStatus = SiteStatus.ACTIVE
    version: int = 1
    closed_on: date | None = None
    firm: FirmFacts | None = None
    events: list[EventPayload] = field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str | None:
        """The site's name as the registry shows it: the establishment's own (its sign
        or usual name, the more specific), else its firm's."""
        if self.facts.name is not None:
            return self.facts.name
        return self.firm.name if self.firm is not None else None

    @property
    def name_is_person(self) -> bool:
        return self.facts.name is None and self.firm is not None and self.firm.name_is_person

    @property
    def public_name(self) -> str | None:
        """The name events carry. None for a sole trader's site, whichever source named
        it: a sign often is the person's name ("Boulangerie Thierry Janoyer"), and a
        person's name never enters an event."""
        if self.firm is not None and self.firm.is_natural_person:
            return None
        return self.name

    @classmethod
    def register(
        cls,
        siret: str,
        facts: SiteFacts,
        territory_ids: tuple[str, ...],
        status: SiteStatus = SiteStatus.ACTIVE,
    ) -> Site:
        site = cls(siret=siret, facts=facts, territory_ids=territory_ids, status=status)
        site.events.append(SiteRegistered(**site._state()))
        return site

    def update(self, facts: SiteFacts, territory_ids: tuple[str, ...]) -> list[str]:
        """Apply newer facts; record one update event when anything changed."""
        changed = self.facts.differences(facts)
        if tuple(territory_ids) != self.territory_ids:
            changed.append("territory_ids")
        # A source that says the establishment is active again (Sirene reactivations
        # happen) reopens a closed site; an announced closure is not the source's to undo.
        if self.status is SiteStatus.CLOSED:
            self.status = SiteStatus.ACTIVE
            self.closed_on = None
            changed.append("status")
        if not changed:
            return []
        self.facts = facts
        self.territory_ids = tuple(territory_ids)
        self.version += 1
        self.events.append(SiteUpdated(**self._state(), changed_fields=changed))
        return changed

    def reassign(self, territory_ids: tuple[str, ...]) -> bool:
        """The territories of the site's commune changed (a reference-data reload): record
        one update event naming only them; the facts and the status stay as they are."""
        if tuple(territory_ids) == self.territory_ids:
            return False
        self.territory_ids = tuple(territory_ids)
        self.version += 1
        self.events.append(SiteUpdated(**self._state(), changed_fields=["territory_ids"]))
        return True

    def apply_firm(self, firm: FirmFacts) -> list[str]:
        """Take the legal unit's newer facts. Returns the event's fields that changed, and
        records one update event naming them; a change events do not show (the firm's
        name behind the site's own, a sole trader's name, the category's year) is kept
        without an event nor a new version."""
        if firm == self.firm:
            return []
        before = self._state()
        self.firm = firm
        after = self._state()
        changed = [k for k in after if k != "version" and after[k] != before[k]]
        if changed:
            self.version += 1
            self.events.append(SiteUpdated(**self._state(), changed_fields=changed))
        return changed

    def close(self, closed_on: date | None) -> bool:
        if self.status is SiteStatus.CLOSED:
            return False
        self.status = SiteStatus.CLOSED
        self.closed_on = closed_on
        self.version += 1
        self.events.append(
            SiteClosed(
                site_id=self.siret,
                siren=self.facts.siren,
                territory_ids=list(self.territory_ids),
                closed_on=closed_on,
                version=self.version,
            )
        )
        return True

    def announce_closure(
        self,
        *,
        open_shock: ClosureShock | None,
        announced_on: date,
        jobs_lost: int,
        planned_closure_on: date | None,
        note: str | None,
        declared_at: datetime,
        declared_by: str,
        shock_id: uuid.UUID | None = None,
    ) -> ClosureShock:
        if self.status is SiteStatus.CLOSED:
            raise SiteIsClosed(f"site {self.siret} is already closed: no closure to announce")
        if open_shock is not None:
            raise OpenShockExists(
                f"site {self.siret} already has an open closure shock ({open_shock.id},"
                f" announced on {open_shock.announced_on.isoformat()})"
            )
        declared_at = require_aware(declared_at, "declared_at")
        if jobs_lost <= 0:
            raise InvalidShock(f"jobs_lost must be a positive number of jobs, got {jobs_lost}")
        if jobs_lost > MAX_JOBS_LOST:
            raise InvalidShock(
                f"jobs_lost {jobs_lost} is more than any French site employs"
                f" (at most {MAX_JOBS_LOST:,})"
            )
        latest = declared_at.date() + ANNOUNCEMENT_AHEAD
        if not EARLIEST_ANNOUNCEMENT <= announced_on <= latest:
            raise InvalidShock(
                f"announced_on {announced_on} is outside {EARLIEST_ANNOUNCEMENT} …"
                f" {latest} (a year from today at most)"
            )
        if planned_closure_on is not None and planned_closure_on < announced_on:
            raise InvalidShock(
                f"planned_closure_on ({planned_closure_on}) is before announced_on ({announced_on})"
            )
        if planned_closure_on is not None and planned_closure_on > announced_on + CLOSURE_HORIZON:
            raise InvalidShock(
                f"planned_closure_on {planned_closure_on} is more than ten years after the"
                f" announcement ({announced_on})"
            )
        shock = ClosureShock(
            id=shock_id or uuid.uuid4(),
            site_id=self.siret,
            territory_ids=self.territory_ids,
            announced_on=announced_on,
            jobs_lost=jobs_lost,
            planned_closure_on=planned_closure_on,
            note=note,
            declared_at=declared_at,
            declared_by=declared_by,
        )
        self.status = SiteStatus.CLOSURE_ANNOUNCED
        self.version += 1
        self.events.append(
            ClosureAnnounced(
                shock_id=shock.id,
                site_id=self.siret,
                siren=self.facts.siren,
                site_name=self.public_name,
                naf_code=self.facts.naf_code,
                commune_insee=self.facts.commune_insee,
                territory_ids=list(self.territory_ids),
                announced_on=announced_on,
                planned_closure_on=planned_closure_on,
                jobs_lost=jobs_lost,
                declared_at=declared_at,
                version=self.version,
            )
        )
        return shock

    def _state(self) -> dict[str, object]:
        f = self.facts
        return {
            "site_id": self.siret,
            "siren": f.siren,
            "name": self.public_name,
            "naf_code": f.naf_code,
            "naf_section": f.naf_section,
            "headcount_band": f.headcount_band,
            "commune_insee": f.commune_insee,
            "territory_ids": list(self.territory_ids),
            "lon": f.lon,
            "lat": f.lat,
            "status": self.status.value,
            "source": f.source.value,
            "legal_category": self.firm.legal_category if self.firm else None,
            "company_category": self.firm.company_category if self.firm else None,
            "version": self.version,
        }

    def snapshot(self) -> SiteState:
        return SiteState(**self._state())


@dataclass(frozen=True)
class ClosureShock:
    id: uuid.UUID
    site_id: str
    territory_ids: tuple[str, ...]
    announced_on: date
    jobs_lost: int
    planned_closure_on: date | None
    note: str | None
    declared_at: datetime
    declared_by: str
    status: ShockStatus = ShockStatus.OPEN
