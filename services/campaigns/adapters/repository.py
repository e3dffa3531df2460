"""Repositories of the campaigns service: the site projection and the campaign aggregate
(loaded whole — targets, visits, latest surveys — and written back at commit)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.campaigns.adapters.orm import (
    CampaignRow,
    CampaignSiteRow,
    CampaignSiteTerritoryRow,
    SurveyRow,
    TargetRow,
    VisitRow,
)
from services.campaigns.domain.model import (
    Campaign,
    CampaignStatus,
    Outcome,
    Site,
    Survey,
    SurveyAnswers,
    TargetSite,
    Visit,
    VisitStatus,
)
from shared.db import lock_for_transaction
from shared.events import campaigns as ev
from shared.messaging.tables import utcnow
from shared.projection import upsert_newer


class SiteRepository:
    """The projection of the registry's sites, kept by version (`shared.projection`)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # Sites this transaction looked up and did not find. The session's identity map
        # remembers rows found, not rows missing: a new site's event would otherwise read
        # it three times (the handler, `upsert`, `upsert_newer`), one round trip each.
        self._missing: set[str] = set()
        # Territory → its lock, held until this transaction ends: exclusive (True) or shared.
        self._locked: dict[str, bool] = {}

    async def _row(self, site_id: str) -> CampaignSiteRow | None:
        if site_id in self._missing:
            return None
        row = await self._session.get(CampaignSiteRow, site_id)
        if row is None:
            self._missing.add(site_id)
        return row

    async def get(self, site_id: str) -> Site | None:
        row = await self._row(site_id)
        return None if row is None else _site(row)

    async def lock_territories(self, territory_ids: Iterable[str], *, launching: bool) -> None:
        """Serialize, until commit, a campaign's launch with the site events of its
        territory handled by another replica at the same moment (the sites topic's
        partitions are split between them). Without it, the launch reads the territory's
        sites before a new site commits while that site's handler looks for campaigns
        before the launch commits, and the site is in neither. Site events take the lock
        shared (they never wait on each other), a launch exclusive; in sorted order, so
        that one message's locks cannot cross another's. On SQLite (make run: the launch
        and the site events handled at once by one process) every holder takes the
        database's write lock instead (`lock_for_transaction`)."""
        for territory_id in sorted(set(territory_ids)):
            held = self._locked.get(territory_id)
            if held is not None and (held or not launching):
                continue  # held until commit already (a batch's earlier message)
            await lock_for_transaction(
                self._session, f"campaigns.territory:{territory_id}", shared=not launching
            )
            self._locked[territory_id] = launching

    async def upsert(self, site: Site) -> bool:
        """Apply a newer version of a site; False if this version (or a later one) is known:
        replays and out-of-order duplicates change nothing."""
        current = await self._row(site.site_id)
        if current is None:  # new here: no version to compare, no territory rows to drop
            self._missing.discard(site.site_id)
            stored = _site_row(site)
            self._session.add(stored)
        else:
            territories_before = list(current.territory_ids or [])
            newer = await upsert_newer(self._session, _site_row(site))  # identity-mapped
            if newer is None:
                return False
            stored = newer
            if territories_before == stored.territory_ids:
                return True
            await self._session.exec(
                delete(CampaignSiteTerritoryRow).where(
                    col(CampaignSiteTerritoryRow.site_id) == site.site_id
                )
            )
        for territory_id in stored.territory_ids:
            self._session.add(
                CampaignSiteTerritoryRow(territory_id=territory_id, site_id=site.site_id)
            )
        return True

    async def active_in_territory(self, territory_id: str) -> list[Site]:
        rows = await self._session.exec(
            select(CampaignSiteRow)
            .join(
                CampaignSiteTerritoryRow,
                col(CampaignSiteTerritoryRow.site_id) == CampaignSiteRow.site_id,
            )
            .where(CampaignSiteTerritoryRow.territory_id == territory_id)
            .where(CampaignSiteRow.status == "active")
            .order_by(col(CampaignSiteRow.site_id))
        )
        return [_site(r) for r in rows.all()]


def _site(row: CampaignSiteRow) -> Site:
    return Site(
        site_id=row.site_id,
        siren=row.siren,
        name=row.name,
        naf_code=row.naf_code,
        naf_section=row.naf_section,
        headcount_band=row.headcount_band,
        commune_insee=row.commune_insee,
        territory_ids=tuple(row.territory_ids or ()),
        lon=row.lon,
        lat=row.lat,
        status=row.status,
        version=row.version,
    )


def _site_row(site: Site) -> CampaignSiteRow:
    return CampaignSiteRow(
        site_id=site.site_id,
        siren=site.siren,
        name=site.name,
        naf_code=site.naf_code,
        naf_section=site.naf_section,
        headcount_band=site.headcount_band,
        commune_insee=site.commune_insee,
        territory_ids=list(site.territory_ids),
        lon=site.lon,
        lat=site.lat,
        status=site.status,
        version=site.version,
    )


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._seen: dict[uuid.UUID, Campaign] = {}
        self._rows: dict[uuid.UUID, CampaignRow] = {}
        self._targets: dict[tuple[uuid.UUID, str], TargetRow] = {}
        self._visits: dict[uuid.UUID, VisitRow] = {}
        self._surveys: set[uuid.UUID] = set()

    @property
    def seen(self) -> list[Campaign]:
        return list(self._seen.values())

    async def get(self, campaign_id: uuid.UUID, *, for_update: bool = True) -> Campaign | None:
        if campaign_id in self._seen:
            return self._seen[campaign_id]
        row = await self._session.get(CampaignRow, campaign_id, with_for_update=for_update)
        return None if row is None else await self._load(row)

    async def by_shock(self, shock_id: uuid.UUID) -> Campaign | None:
        row = (
            await self._session.exec(select(CampaignRow).where(CampaignRow.shock_id == shock_id))
        ).first()
        return None if row is None else await self._load(row)

    async def active_in_territories(self, territory_ids: Sequence[str]) -> list[Campaign]:
        rows = (
            await self._session.exec(
                select(CampaignRow)
                .where(col(CampaignRow.territory_id).in_(list(territory_ids)))
                .where(CampaignRow.status == CampaignStatus.ACTIVE.value)
                .order_by(col(CampaignRow.launched_at))
                .with_for_update()
            )
        ).all()
        return [self._seen.get(r.id) or await self._load(r) for r in rows]

    async def campaign_of_visit(self, visit_id: uuid.UUID) -> uuid.UUID | None:
        """The campaign a visit belongs to (a cancelled one too), or None."""
        found = await self._session.exec(
            select(VisitRow.campaign_id).where(VisitRow.id == visit_id)
        )
        return found.first()

    def add(self, campaign: Campaign) -> None:
        self._seen[campaign.id] = campaign

    async def _load(self, row: CampaignRow) -> Campaign:
        campaign = Campaign(
            id=row.id,
            shock_id=row.shock_id,
            territory_id=row.territory_id,
            closing_site_id=row.closing_site_id,
            closing_naf_code=row.closing_naf_code,
            budget_days=row.budget_days,
            cost_per_visit_days=row.cost_per_visit_days,
            daily_cap=row.daily_cap,
            starts_on=row.starts_on,
            ends_on=row.ends_on,
            roster=list(row.roster or []),
            launched_at=row.launched_at,
            status=CampaignStatus(row.status),
            plan_version=row.plan_version,
            closed_at=row.closed_at,
        )
        self._rows[row.id] = row
        for t in (
            await self._session.exec(select(TargetRow).where(TargetRow.campaign_id == row.id))
        ).all():
            self._targets[(row.id, t.site_id)] = t
            campaign.targets[t.site_id] = TargetSite(
                site_id=t.site_id,
                siren=t.siren,
                naf_code=t.naf_code,
                headcount_band=t.headcount_band,
                commune_insee=t.commune_insee,
                lon=t.lon,
                lat=t.lat,
                active=t.active,
                manual=t.manual,
                priority_score=t.priority_score,
                priority_reasons=tuple(t.priority_reasons or ()),
                uncovered_reason=t.uncovered_reason,
            )
        visits = (
            await self._session.exec(
                select(VisitRow)
                .where(VisitRow.campaign_id == row.id)
                .order_by(col(VisitRow.updated_at))
            )
        ).all()
        for v in visits:
            self._visits[v.id] = v
            current = campaign.visits.get(v.site_id)
            # A site has one current visit; older, cancelled ones stay findable by id (a
            # phone reporting on one gets "reassigned", not "unknown").
            if current is None or current.status is VisitStatus.CANCELLED:
                if current is not None:
                    campaign.past_visits[current.id] = current
                campaign.visits[v.site_id] = _visit(v)
            else:
                campaign.past_visits[v.id] = _visit(v)
        surveys = (
            await self._session.exec(
                select(SurveyRow)
                .where(SurveyRow.campaign_id == row.id)
                .order_by(col(SurveyRow.revision))
            )
        ).all()
        for s in surveys:
            self._surveys.add(s.id)
            campaign.surveys[s.site_id] = Survey(
                id=s.id,
                visit_id=s.visit_id,
                site_id=s.site_id,
                consultant_id=s.consultant_id,
                revision=s.revision,
                answers=SurveyAnswers(
                    questionnaire_version=s.questionnaire_version,
                    headcount=s.headcount,
                    projects=[ev.ProjectLead.model_validate(p) for p in s.projects],
                    red_flags=[ev.RedFlagItem.model_validate(f) for f in s.red_flags],
                    contact_name=s.contact_name,
                    contact_phone=s.contact_phone,
                    comments=s.comments,
                ),
                submitted_at=s.submitted_at,
            )
        self._seen[row.id] = campaign
        return campaign

    def sync(self) -> None:
        for campaign in self._seen.values():
            self._sync_campaign(campaign)

    def _sync_campaign(self, c: Campaign) -> None:
        values = {
            "shock_id": c.shock_id,
            "territory_id": c.territory_id,
            "closing_site_id": c.closing_site_id,
            "closing_naf_code": c.closing_naf_code,
            "status": c.status.value,
            "budget_days": c.budget_days,
            "cost_per_visit_days": c.cost_per_visit_days,
            "daily_cap": c.daily_cap,
            "starts_on": c.starts_on,
            "ends_on": c.ends_on,
            "roster": list(c.roster),
            "plan_version": c.plan_version,
            "launched_at": c.launched_at,
            "closed_at": c.closed_at,
        }
        row = self._rows.get(c.id)
        if row is None:
            row = CampaignRow(id=c.id, **values)  # type: ignore[arg-type]
            self._session.add(row)
            self._rows[c.id] = row
        else:
            _assign(row, values)
        for t in c.targets.values():
            tvalues = {
                "siren": t.siren,
                "naf_code": t.naf_code,
                "headcount_band": t.headcount_band,
                "commune_insee": t.commune_insee,
                "lon": t.lon,
                "lat": t.lat,
                "active": t.active,
                "manual": t.manual,
                "priority_score": t.priority_score,
                "priority_reasons": list(t.priority_reasons),
                "uncovered_reason": t.uncovered_reason,
            }
            trow = self._targets.get((c.id, t.site_id))
            if trow is None:
                trow = TargetRow(campaign_id=c.id, site_id=t.site_id, **tvalues)  # type: ignore[arg-type]
                self._session.add(trow)
                self._targets[(c.id, t.site_id)] = trow
            else:
                _assign(trow, tvalues)
        for v in [*c.visits.values(), *c.past_visits.values()]:
            vvalues = {
                "site_id": v.site_id,
                "consultant_id": v.consultant_id,
                "scheduled_on": v.scheduled_on,
                "order": v.order,
                "plan_version": v.plan_version,
                "status": v.status.value,
                "outcome": v.outcome.value if v.outcome else None,
                "outcome_reason": v.outcome_reason,
                "visited_on": v.visited_on,
                "version": v.version,
            }
            vrow = self._visits.get(v.id)
            if vrow is None:
                vrow = VisitRow(id=v.id, campaign_id=c.id, **vvalues)  # type: ignore[arg-type]
                self._session.add(vrow)
                self._visits[v.id] = vrow
            elif _assign(vrow, vvalues):
                vrow.updated_at = utcnow()
        for s in c.surveys.values():
            if s.id in self._surveys:
                continue
            a = s.answers
            self._session.add(
                SurveyRow(
                    id=s.id,
                    campaign_id=c.id,
                    visit_id=s.visit_id,
                    site_id=s.site_id,
                    consultant_id=s.consultant_id,
                    revision=s.revision,
                    questionnaire_version=a.questionnaire_version,
                    headcount=a.headcount,
                    projects=[p.model_dump(mode="json") for p in a.projects],
                    red_flags=[f.model_dump(mode="json") for f in a.red_flags],
                    contact_name=a.contact_name,
                    contact_phone=a.contact_phone,
                    comments=a.comments,
                    submitted_at=s.submitted_at,
                )
            )
            self._surveys.add(s.id)


def _assign(row: object, values: Mapping[str, object]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _visit(v: VisitRow) -> Visit:
    return Visit(
        id=v.id,
        site_id=v.site_id,
        consultant_id=v.consultant_id,
        scheduled_on=v.scheduled_on,
        order=v.order,
        plan_version=v.plan_version,
        status=VisitStatus(v.status),
        outcome=Outcome(v.outcome) if v.outcome else None,
        outcome_reason=v.outcome_reason,
        visited_on=v.visited_on,
        version=v.version,
    )
