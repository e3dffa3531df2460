"""The registry's HTTP API. Every route states who may call it (`Allow`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status

from services.site_registry.adapters.orm import ClosureShockRow
from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.domain.model import SiteSource
from services.site_registry.entrypoints.schemas import (
    ClosureShockCreate,
    ClosureShockPublic,
    CommunePublic,
    GroupementPublic,
    Page,
    SiteCard,
    SiteClose,
    SiteCreate,
    SitePublic,
    TerritoryDetail,
    TerritoryRef,
    TerritorySummary,
)
from services.site_registry.service_layer import services, views
from shared.auth import Allow, Principal, Role, forbid_territory
from shared.errors import NotFound
from shared.runtime import SessionDep, service_app

CrisisOrConsultant = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT))]
CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
AnyRole = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT, Role.FUNDER))]
AdminOnly = Annotated[Principal, Depends(Allow())]


async def _registry(request: Request) -> SiteRegistry:
    registry: SiteRegistry = request.app.state.runtime
    return registry


Registry = Annotated[SiteRegistry, Depends(_registry)]


Session = SessionDep


def _scope(principal: Principal, territory: str | None) -> tuple[str, ...] | None:
    """Territories a query may cover: the asked one if allowed, else the token's."""
    if territory is not None:
        if not principal.can_see_territory(territory):
            raise forbid_territory(territory)
        return (territory,)
    return None if principal.is_admin else tuple(sorted(principal.territories))


router = APIRouter()


@router.get(
    "/territories",
    response_model=list[TerritorySummary],
    tags=["territories"],
    summary="The 183 Territoires d'industrie 2023–2027 (any authenticated role)",
)
async def get_territories(_: AnyRole, session: Session) -> list[TerritorySummary]:
    return [
        TerritorySummary(
            id=t["territory"].id,
            name=t["territory"].name,
            programme=t["territory"].programme,
            groupements=[GroupementPublic.model_validate(g) for g in t["groupements"]],
            commune_count=t["commune_count"],
        )
        for t in await views.list_territories(session)
    ]


@router.get(
    "/territories/{territory_id}",
    response_model=TerritoryDetail,
    tags=["territories"],
    summary="A territory with its EPCIs, communes and site counts (any authenticated role)",
)
async def get_territory(territory_id: str, _: AnyRole, session: Session) -> TerritoryDetail:
    found = await views.territory_detail(session, territory_id)
    if found is None:
        raise NotFound(f"no territory {territory_id!r} (ids look like 'ti-3205')")
    t = found["territory"]
    return TerritoryDetail(
        id=t.id,
        name=t.name,
        programme=t.programme,
        groupements=[GroupementPublic.model_validate(g) for g in found["groupements"]],
        commune_count=len(found["communes"]),
        communes=[CommunePublic.model_validate(c) for c in found["communes"]],
        site_counts=found["site_counts"],
    )


@router.get(
    "/sites",
    response_model=Page[SitePublic],
    tags=["sites"],
    summary="Search sites (crisis cell, consultant: their territories; admin: all)",
)
async def get_sites(
    principal: CrisisOrConsultant,
    session: Session,
    territory: str | None = None,
    naf: Annotated[str | None, Query(description="NAF sub-class (22.11Z)")] = None,
    naf_division: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    section: Annotated[str | None, Query(pattern=r"^[A-U]$")] = None,
    band: Annotated[str | None, Query(description="INSEE headcount band code")] = None,
    status_: Annotated[
        str | None,
        Query(alias="status", pattern="^(active|closure_announced|closed)$"),
    ] = None,
    commune: str | None = None,
    source: Annotated[str | None, Query(pattern="^(sirene|irep|generated|manual)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Page[SitePublic]:
    flt = views.SiteFilter(
        territory_ids=_scope(principal, territory),
        naf_code=naf,
        naf_division=naf_division,
        naf_section=section,
        headcount_band=band,
        status=status_,
        commune_insee=commune,
        source=source,
    )
    rows, next_cursor = await views.list_sites(session, flt, limit=limit, cursor=cursor)
    return Page(items=[SitePublic.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/sites/{siret}",
    response_model=SiteCard,
    tags=["sites"],
    summary="A site card (crisis cell, consultant of its territory; admin)",
)
async def get_site(
    siret: str, principal: CrisisOrConsultant, session: Session, registry: Registry
) -> SiteCard:
    card = await views.site_card(session, siret)
    if card is None:
        raise NotFound(f"no site with SIRET {siret}")
    site = card["site"]
    if not principal.can_see_any_territory(site.territory_ids or []):
        raise forbid_territory(", ".join(site.territory_ids or []) or "(none)")
    naf = registry.refs.naf.get(site.naf_code)
    band = registry.refs.bands.get(site.headcount_band) if site.headcount_band else None
    return SiteCard(
        site=SitePublic.model_validate(site),
        naf_label=naf.label if naf else None,
        headcount_label=band.label if band else None,
        commune=CommunePublic.model_validate(card["commune"]) if card["commune"] else None,
        territories=[TerritoryRef(id=t.id, name=t.name) for t in card["territories"]],
        closure_shocks=[ClosureShockPublic.model_validate(s) for s in card["shocks"]],
    )


@router.post(
    "/sites",
    response_model=SitePublic,
    status_code=status.HTTP_201_CREATED,
    tags=["sites"],
    summary="Register or update a site by hand (crisis cell of its territory; admin)",
)
async def post_site(
    body: SiteCreate, principal: CrisisCell, registry: Registry, session: Session
) -> SitePublic:
    data = services.SiteInput(
        siret=body.siret,
        naf_code=body.naf_code,
        commune_insee=body.commune_insee,
        source=SiteSource.MANUAL,
        name=body.name,
        headcount_band=body.headcount_band,
        lon=body.lon,
        lat=body.lat,
    )
    siret, facts = services.check_site(data, registry.refs)
    async with registry.uow() as uow:
        territories = await uow.territories.territories_of(facts.commune_insee)
    if not principal.can_see_any_territory(territories):
        raise forbid_territory(", ".join(territories) or f"(commune {facts.commune_insee})")
    await services.upsert_site(registry.uow, data, registry.refs)
    row = await views.site_card(session, siret)
    assert row is not None
    return SitePublic.model_validate(row["site"])


@router.post(
    "/sites/{siret}/closure",
    response_model=SitePublic,
    tags=["sites"],
    summary="Record that a site has closed (crisis cell of its territory; admin)",
)
async def post_site_closed(
    siret: str, body: SiteClose, principal: CrisisCell, registry: Registry, session: Session
) -> SitePublic:
    card = await views.site_card(session, siret)
    if card is None:
        raise NotFound(f"no site with SIRET {siret}")
    if not principal.can_see_any_territory(card["site"].territory_ids or []):
        raise forbid_territory(", ".join(card["site"].territory_ids or []) or "(none)")
    await services.close_site(registry.uow, siret, body.closed_on)
    await session.refresh(card["site"])
    return SitePublic.model_validate(card["site"])


@router.post(
    "/closure-shocks",
    response_model=ClosureShockPublic,
    status_code=status.HTTP_201_CREATED,
    tags=["closure shocks"],
    summary="Declare a closure shock (crisis cell of the site's territory; admin)",
)
async def post_closure_shock(
    body: ClosureShockCreate, principal: CrisisCell, registry: Registry, session: Session
) -> ClosureShockPublic:
    shock = await services.declare_closure_shock(
        registry.uow,
        services.DeclareClosureShock(
            site_id=body.site_id.replace(" ", ""),
            announced_on=body.announced_on,
            jobs_lost=body.jobs_lost,
            planned_closure_on=body.planned_closure_on,
            note=body.note,
        ),
        declared_by=principal.subject,
        may_act_on=principal.can_see_any_territory,
    )
    return ClosureShockPublic(
        id=shock.id,
        site_id=shock.site_id,
        territory_ids=list(shock.territory_ids),
        announced_on=shock.announced_on,
        jobs_lost=shock.jobs_lost,
        planned_closure_on=shock.planned_closure_on,
        note=shock.note,
        status=shock.status.value,
        declared_at=shock.declared_at,
    )


@router.get(
    "/closure-shocks",
    response_model=list[ClosureShockPublic],
    tags=["closure shocks"],
    summary="Closure shocks of the caller's territories (crisis cell, consultant; admin)",
)
async def get_closure_shocks(
    principal: CrisisOrConsultant, session: Session, territory: str | None = None
) -> list[ClosureShockPublic]:
    rows = await views.list_shocks(session, _scope(principal, territory))
    return [ClosureShockPublic.model_validate(r) for r in rows]


@router.get(
    "/closure-shocks/{shock_id}",
    response_model=ClosureShockPublic,
    tags=["closure shocks"],
    summary="One closure shock (crisis cell, consultant of its territory; admin)",
)
async def get_closure_shock(
    shock_id: uuid.UUID, principal: CrisisOrConsultant, session: Session
) -> ClosureShockPublic:
    row = await session.get(ClosureShockRow, shock_id)
    if row is None or not principal.can_see_any_territory(row.territory_ids or []):
        raise NotFound(f"no closure shock {shock_id} in your territories")
    return ClosureShockPublic.model_validate(row)


def create_app(registry: SiteRegistry, *, run_workers: bool = True) -> FastAPI:
    app = service_app(
        registry,
        title="Rebond — site registry",
        description=(
            "Territoires d'industrie, industrial establishments (Sirene), closure shocks."
            " Bearer JWT; each operation names the roles allowed to call it (`x-roles`)."
        ),
        router=router,
        run_workers=run_workers,
    )
    return app
