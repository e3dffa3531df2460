"""The registry's HTTP API. Every route states who may call it (`Allow`); every POST goes
through the command bus, so it accepts an `Idempotency-Key`."""

from __future__ import annotations

import gzip
import hashlib
import uuid
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse

from services.site_registry.bootstrap import SiteRegistry
from services.site_registry.entrypoints import schemas as s
from services.site_registry.service_layer import access, commands, views
from services.site_registry.service_layer.unit_of_work import SiteRegistryUnitOfWork
from shared.auth import Allow, Principal, Role, forbid_territory
from shared.command_bus import CommandBus, command_bus
from shared.errors import NotFound
from shared.runtime import SessionDep, service_app

CrisisOrConsultant = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT))]
CrisisCell = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL))]
AnyRole = Annotated[Principal, Depends(Allow(Role.CRISIS_CELL, Role.CONSULTANT, Role.FUNDER))]

INSEE_PATTERN = r"^(?:[0-9]{5}|2[AB][0-9]{3})$"

T = TypeVar("T")
Out = TypeVar("Out")

Bus = Annotated[CommandBus[SiteRegistryUnitOfWork], Depends(command_bus)]
Session = SessionDep


async def _registry(request: Request) -> SiteRegistry:
    # The commands and the site card need the runtime's nomenclatures and clock.
    registry: SiteRegistry = request.app.state.runtime
    return registry


Registry = Annotated[SiteRegistry, Depends(_registry)]


def _scope(principal: Principal, territory: str | None) -> tuple[str, ...] | None:
    """Territories a query may cover: the asked one if allowed, else the token's."""
    if territory is not None:
        if not access.may_see(principal, [territory]):
            raise forbid_territory(territory)
        return (territory,)
    return access.territories_of(principal)


router = APIRouter()


@router.get(
    "/territories",
    response_model=list[s.TerritorySummaryOut],
    tags=["territories"],
    summary="The 183 Territoires d'industrie 2023–2027 (any authenticated role)",
)
async def get_territories(
    _: AnyRole,
    session: Session,
    commune: Annotated[
        str | None,
        Query(
            pattern=INSEE_PATTERN,
            description="an INSEE commune code (62119, 2A004): only the territories it"
            " belongs to (none for a commune outside every territory)",
        ),
    ] = None,
) -> list[s.TerritorySummaryOut]:
    return await views.list_territories(session, commune)


GEOJSON = "application/geo+json"


@router.get(
    "/territories/{territory_id}/communes.geojson",
    response_class=Response,
    responses={
        200: {
            "content": {GEOJSON: {"schema": {"type": "object"}}},
            "description": "a GeoJSON FeatureCollection (WGS84, 5 decimals): one Feature per"
            " commune with an outline, properties `code` (INSEE) and `nom`; foreign members"
            " `territory` and `communes_without_outline`. Outlines simplified to 1000 m;"
            " gzip-encoded when asked (`Accept-Encoding`); `ETag` for `If-None-Match`.",
        },
        304: {"description": "unchanged since the `ETag` sent in `If-None-Match`"},
    },
    tags=["territories"],
    summary="The territory's commune outlines, for a map (any authenticated role)",
)
async def get_territory_outlines(
    territory_id: str,
    _: AnyRole,
    session: Session,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
    accept_encoding: Annotated[str | None, Header(alias="Accept-Encoding")] = None,
) -> Response:
    body = await views.territory_outlines(session, territory_id)
    if body is None:
        raise NotFound(f"no territory {territory_id!r} (ids look like 'ti-3205')")
    digest = hashlib.sha256(body).hexdigest()[:32]
    zipped = "gzip" in (accept_encoding or "").lower()
    # One ETag per representation: the gzip bytes are not the identity bytes.
    etag = f'"{digest}-gz"' if zipped else f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Accept-Encoding"}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    if zipped:
        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(content=body, media_type=GEOJSON, headers=headers)


@router.get(
    "/territories/{territory_id}",
    response_model=s.TerritoryDetailOut,
    tags=["territories"],
    summary="A territory with its EPCIs, communes and site counts (any authenticated role)",
)
async def get_territory(territory_id: str, _: AnyRole, session: Session) -> s.TerritoryDetailOut:
    detail = await views.territory_detail(session, territory_id)
    if detail is None:
        raise NotFound(f"no territory {territory_id!r} (ids look like 'ti-3205')")
    return detail


@router.get(
    "/sites",
    response_model=s.Page[s.SiteOut],
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
) -> s.Page[s.SiteOut]:
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
    return await views.list_sites(session, flt, limit=limit, cursor=cursor)


@router.get(
    "/sites/{siret}",
    response_model=s.SiteCardOut,
    tags=["sites"],
    summary="A site card (crisis cell, consultant of its territory; admin)",
)
async def get_site(
    siret: str, principal: CrisisOrConsultant, session: Session, registry: Registry
) -> s.SiteCardOut:
    card = await views.site_card(session, siret, registry.refs)
    if card is None:
        raise NotFound(f"no site with SIRET {siret}")
    if not access.may_see(principal, card.site.territory_ids):
        raise forbid_territory(", ".join(card.site.territory_ids) or "(none)")
    return card


@router.post(
    "/sites",
    response_model=s.SiteOut,
    status_code=status.HTTP_201_CREATED,
    tags=["sites"],
    summary="Register or update a site by hand (crisis cell of its territory; admin)",
)
async def post_site(
    body: s.SiteIn, principal: CrisisCell, bus: Bus, registry: Registry
) -> JSONResponse:
    # 201 for an update too, as the route answered before the command bus.
    return await bus(
        principal,
        lambda uow: commands.register_site(uow, body.command(), registry.refs, principal),
        answer=s.SiteOut.of,
        body=body,
        status_code=status.HTTP_201_CREATED,
    )


@router.post(
    "/sites/{siret}/closure",
    response_model=s.SiteOut,
    tags=["sites"],
    summary="Record that a site has closed (crisis cell of its territory; admin)",
)
async def post_site_closed(
    siret: str, body: s.SiteClosureIn, principal: CrisisCell, bus: Bus
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.close_site(uow, siret, body.closed_on, principal),
        answer=s.SiteOut.of,
        body=body,
    )


@router.post(
    "/closure-shocks",
    response_model=s.ClosureShockOut,
    status_code=status.HTTP_201_CREATED,
    tags=["closure shocks"],
    summary="Declare a closure shock (crisis cell of the site's territory; admin)",
)
async def post_closure_shock(
    body: s.ClosureShockIn, principal: CrisisCell, bus: Bus, registry: Registry
) -> JSONResponse:
    return await bus(
        principal,
        lambda uow: commands.declare_closure_shock(uow, body.command(), principal, registry.clock),
        answer=s.ClosureShockOut.model_validate,
        body=body,
        status_code=status.HTTP_201_CREATED,
    )


@router.get(
    "/closure-shocks",
    response_model=list[s.ClosureShockOut],
    tags=["closure shocks"],
    summary="Closure shocks of the caller's territories (crisis cell, consultant; admin)",
)
async def get_closure_shocks(
    principal: CrisisOrConsultant, session: Session, territory: str | None = None
) -> list[s.ClosureShockOut]:
    return await views.list_shocks(session, _scope(principal, territory))


@router.get(
    "/closure-shocks/{shock_id}",
    response_model=s.ClosureShockOut,
    tags=["closure shocks"],
    summary="One closure shock (crisis cell, consultant of its territory; admin)",
)
async def get_closure_shock(
    shock_id: uuid.UUID, principal: CrisisOrConsultant, session: Session
) -> s.ClosureShockOut:
    shock = await views.closure_shock(session, shock_id)
    if shock is None or not access.may_see(principal, shock.territory_ids):
        raise NotFound(f"no closure shock {shock_id} in your territories")
    return shock


def create_app(registry: SiteRegistry, *, run_workers: bool = True) -> FastAPI:
    return service_app(
        registry,
        title="Rebond — site registry",
        description=(
            "Territoires d'industrie, industrial establishments (Sirene), closure shocks."
            " Bearer JWT; each operation names the roles allowed to call it (`x-roles`)."
        ),
        router=router,
        run_workers=run_workers,
    )
