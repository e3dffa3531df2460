"""The registry's commands on the fake unit of work: what each one stores, what it records
for the outbox, what it refuses — and that none of them commits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.domain.model import (
    OpenShockExists,
    ShockStatus,
    SiteIsClosed,
    SiteSource,
    SiteStatus,
)
from services.site_registry.domain.siret import make_siret
from services.site_registry.service_layer import commands
from services.site_registry.service_layer.commands import (
    DeclareClosureShock,
    InvalidSite,
    Nomenclatures,
    Outcome,
    SiteInput,
)
from shared.auth import Principal, Role
from shared.clock import Clock
from shared.errors import NotFound, OutOfScope
from shared.events.site_registry import (
    ClosureAnnounced,
    SiteClosed,
    SiteRegistered,
    SiteUpdated,
)
from tests.unit.site_registry.fakes import FakeSiteRegistryUnitOfWork, RegistryDb

pytestmark = pytest.mark.unit

BRIDGESTONE = "36120038900019"  # Béthune (62119), in ti-3205 only
BETHUNE = "62119"
IN_TI_3209 = "62427"  # a commune of ti-3209, not of ti-3205
NOW = datetime(2020, 9, 16, 10, 0, tzinfo=UTC)
CLOCK = Clock.fixed(NOW)

CELL = Principal(
    subject="cell-3205", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({"ti-3205"})
)
OTHER_CELL = Principal(
    subject="cell-3209", roles=frozenset({Role.CRISIS_CELL}), territories=frozenset({"ti-3209"})
)
ADMIN = Principal(subject="admin", roles=frozenset({Role.ADMIN}))


def bridgestone(**changes: object) -> SiteInput:
    base = SiteInput(
        siret=BRIDGESTONE,
        naf_code="22.11Z",
        commune_insee=BETHUNE,
        source=SiteSource.MANUAL,
        name="BRIDGESTONE FRANCE",
        headcount_band="41",
        lon=2.6353,
        lat=50.5201,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


async def registered(
    uow: FakeSiteRegistryUnitOfWork, refs: Nomenclatures, data: SiteInput | None = None
) -> None:
    """A site already in the registry (committed), its events set aside."""
    await commands.register_site(uow, data or bridgestone(), refs, ADMIN)
    await uow.commit()
    uow.published.clear()


# --- register or update a site ---------------------------------------------------------


async def test_registering_a_site_stores_it_in_its_territories_and_records_it(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    site = await commands.register_site(uow, bridgestone(), refs, CELL)

    assert uow.commits == 0  # the caller (the command bus) commits
    assert (site.siret, site.territory_ids, site.version) == (BRIDGESTONE, ("ti-3205",), 1)
    assert site.facts.siren == BRIDGESTONE[:9] and site.facts.naf_section == "C"
    await uow.commit()
    assert db.sites[BRIDGESTONE].status is SiteStatus.ACTIVE
    (event,) = uow.published
    assert isinstance(event, SiteRegistered)
    assert (event.site_id, event.territory_ids, event.source) == (
        BRIDGESTONE,
        ["ti-3205"],
        "manual",
    )


async def test_registering_again_updates_the_site_and_a_blank_erases_nothing(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)

    site = await commands.register_site(
        uow, bridgestone(headcount_band=None, lon=None, lat=None, name="BRIDGESTONE"), refs, CELL
    )
    await uow.commit()

    assert site.version == 2
    stored = db.sites[BRIDGESTONE].facts
    assert (stored.name, stored.headcount_band, stored.lon) == ("BRIDGESTONE", "41", 2.6353)
    (event,) = uow.published
    assert isinstance(event, SiteUpdated) and event.changed_fields == ["name"]


async def test_registering_the_same_facts_again_changes_and_records_nothing(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)

    site = await commands.register_site(uow, bridgestone(), refs, CELL)
    await uow.commit()

    assert site.version == 1 and db.sites[BRIDGESTONE].version == 1
    assert uow.published == []


async def test_a_site_outside_the_callers_territories_is_refused(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    with pytest.raises(OutOfScope, match="ti-3205"):
        await commands.register_site(uow, bridgestone(), refs, OTHER_CELL)
    # Strasbourg: in no Territoire d'industrie
    with pytest.raises(OutOfScope, match="commune 67482"):
        await commands.register_site(uow, bridgestone(commune_insee="67482"), refs, CELL)

    await uow.commit()
    assert db.sites == {} and uow.published == []


async def test_another_territorys_site_cannot_be_taken_over_through_a_commune_of_ones_own(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    # Issue 10: the SIRET of ti-3205's site with a commune of ti-3209 moved the site.
    await registered(uow, refs)

    with pytest.raises(OutOfScope, match=f"site {BRIDGESTONE} is in ti-3205"):
        await commands.register_site(uow, bridgestone(commune_insee=IN_TI_3209), refs, OTHER_CELL)
    await uow.commit()

    assert db.sites[BRIDGESTONE].territory_ids == ("ti-3205",) and uow.published == []
    # The operator still may (repairing data).
    moved = await commands.register_site(uow, bridgestone(commune_insee=IN_TI_3209), refs, ADMIN)
    assert moved.territory_ids == ("ti-3209",)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"siret": "36120038900018"}, "Luhn"),
        ({"naf_code": "99.99Z"}, "99.99Z"),
        ({"headcount_band": "77"}, "77"),
        ({"commune_insee": "6211"}, "5-character"),
        ({"lat": None}, "both lon and lat"),
    ],
)
async def test_an_invalid_site_is_refused_with_its_reason(
    uow: FakeSiteRegistryUnitOfWork,
    db: RegistryDb,
    refs: Nomenclatures,
    changes: dict[str, object],
    reason: str,
) -> None:
    with pytest.raises(InvalidSite, match=reason):
        await commands.register_site(uow, bridgestone(**changes), refs, CELL)
    assert db.sites == {}


# --- close a site ----------------------------------------------------------------------


async def test_closing_a_site_records_it_once(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)

    site = await commands.close_site(uow, BRIDGESTONE, date(2021, 4, 30), CELL)
    await uow.commit()
    again = await commands.close_site(uow, BRIDGESTONE, date(2021, 5, 1), CELL)
    await uow.commit()

    assert (site.status, site.version) == (SiteStatus.CLOSED, 2)
    assert again.closed_on == date(2021, 4, 30)  # the first closing date stands
    assert db.sites[BRIDGESTONE].status is SiteStatus.CLOSED
    (event,) = uow.published
    assert isinstance(event, SiteClosed)
    assert (event.site_id, event.closed_on, event.version) == (BRIDGESTONE, date(2021, 4, 30), 2)


async def test_closing_an_unknown_or_foreign_site_is_refused(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)

    with pytest.raises(NotFound, match="36120038900027"):
        await commands.close_site(uow, "36120038900027", None, CELL)
    with pytest.raises(OutOfScope, match="ti-3205"):
        await commands.close_site(uow, BRIDGESTONE, None, OTHER_CELL)
    await uow.commit()

    assert db.sites[BRIDGESTONE].status is SiteStatus.ACTIVE and uow.published == []


# --- declare a closure shock -----------------------------------------------------------

SHOCK = DeclareClosureShock(
    site_id=BRIDGESTONE,
    announced_on=date(2020, 9, 16),
    jobs_lost=863,
    planned_closure_on=date(2021, 4, 30),
    note="annonce faite au CSE",
)


async def test_declaring_a_shock_stores_it_and_announces_the_closure(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)

    commits = uow.commits
    shock = await commands.declare_closure_shock(uow, SHOCK, CELL, CLOCK)
    assert uow.commits == commits  # the caller (the command bus) commits
    await uow.commit()

    assert db.shocks[shock.id] == shock
    assert (shock.declared_at, shock.declared_by, shock.status) == (
        NOW,
        "cell-3205",
        ShockStatus.OPEN,
    )
    assert (shock.territory_ids, shock.jobs_lost, shock.note) == (
        ("ti-3205",),
        863,
        "annonce faite au CSE",
    )
    assert db.sites[BRIDGESTONE].status is SiteStatus.CLOSURE_ANNOUNCED
    (event,) = uow.published
    assert isinstance(event, ClosureAnnounced)
    assert (event.shock_id, event.primary_territory_id, event.jobs_lost, event.version) == (
        shock.id,
        "ti-3205",
        863,
        2,
    )
    assert "note" not in event.model_dump()  # the internal note never leaves the registry


async def test_a_second_open_shock_on_a_site_is_refused(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)
    first = await commands.declare_closure_shock(uow, SHOCK, CELL, CLOCK)
    await uow.commit()
    uow.published.clear()

    with pytest.raises(OpenShockExists, match=str(first.id)):
        await commands.declare_closure_shock(uow, SHOCK, ADMIN, CLOCK)
    await uow.commit()

    assert list(db.shocks) == [first.id] and uow.published == []


async def test_a_shock_outside_the_callers_territories_is_refused(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    await registered(uow, refs)
    await registered(
        uow, refs, bridgestone(siret=make_siret("90000001", "0001"), commune_insee=IN_TI_3209)
    )

    with pytest.raises(OutOfScope, match="ti-3205, outside the territories of your token"):
        await commands.declare_closure_shock(uow, SHOCK, OTHER_CELL, CLOCK)
    foreign = dataclasses.replace(SHOCK, site_id=make_siret("90000001", "0001"))
    with pytest.raises(OutOfScope, match="ti-3209"):
        await commands.declare_closure_shock(uow, foreign, CELL, CLOCK)
    await uow.commit()

    assert db.shocks == {} and uow.published == []


async def test_a_shock_on_an_unknown_or_closed_site_is_refused(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    with pytest.raises(NotFound, match="register it before declaring"):
        await commands.declare_closure_shock(uow, SHOCK, CELL, CLOCK)

    await registered(uow, refs)
    await commands.close_site(uow, BRIDGESTONE, date(2020, 1, 31), CELL)
    await uow.commit()
    uow.published.clear()
    with pytest.raises(SiteIsClosed):
        await commands.declare_closure_shock(uow, SHOCK, CELL, CLOCK)

    assert db.shocks == {} and uow.published == []


# --- upsert a known-good list ----------------------------------------------------------


async def test_upsert_many_counts_what_it_did_and_a_repeat_does_nothing(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    other = make_siret("90000002", "0001")
    sites = [bridgestone(), bridgestone(siret=other, name="ACME", headcount_band=None)]

    first = await commands.upsert_many(uow, sites, refs)
    await uow.commit()
    renamed = [sites[0], dataclasses.replace(sites[1], name="ACME SAS")]
    second = await commands.upsert_many(uow, renamed, refs)
    await uow.commit()

    assert (first[Outcome.CREATED], second[Outcome.UNCHANGED], second[Outcome.UPDATED]) == (
        2,
        1,
        1,
    )
    assert set(db.sites) == {BRIDGESTONE, other}
    assert uow.published_types() == [
        SiteRegistered.event_type,
        SiteRegistered.event_type,
        SiteUpdated.event_type,
    ]


async def test_upsert_many_refuses_a_list_with_an_invalid_site(
    uow: FakeSiteRegistryUnitOfWork, db: RegistryDb, refs: Nomenclatures
) -> None:
    with pytest.raises(InvalidSite):
        await commands.upsert_many(uow, [bridgestone(), bridgestone(naf_code="99.99Z")], refs)
    assert db.sites == {}


# --- reference data --------------------------------------------------------------------


async def test_reference_data_replaces_the_tables_and_records_no_event(
    reference_db: RegistryDb,
) -> None:
    uow = FakeSiteRegistryUnitOfWork(RegistryDb())
    territories = reference_data.load_territories()
    counts = await commands.load_reference_data(
        uow,
        territories,
        reference_data.load_communes(),
        {**reference_data.load_territory_communes(), "ti-9999": [BETHUNE]},
    )
    assert uow.db.links == set()  # nothing before the commit
    await uow.commit()

    assert counts == {"territories": 183, "communes": 34969, "links": 18639, "sites_moved": 0}
    assert uow.db.links == reference_db.links  # an unknown territory's links are dropped
    assert await uow.territories.territories_of(BETHUNE) == ("ti-3205",)
    bethune = [g.siren for t, g in uow.db.groupements if t == "ti-3205"]
    assert sorted(bethune) == ["200072460", "245900758"]
    assert uow.published == []


async def test_reference_data_drops_a_territorys_repeated_groupement() -> None:
    uow = FakeSiteRegistryUnitOfWork(RegistryDb())
    (bethune,) = [t for t in reference_data.load_territories() if t.id == "ti-3205"]
    twice = dataclasses.replace(bethune, epcis=(*bethune.epcis, bethune.epcis[0]))

    await commands.load_reference_data(uow, [twice], [], {"ti-3205": [BETHUNE]})
    await uow.commit()

    assert [g for _, g in uow.db.groupements] == list(bethune.epcis)
    assert uow.db.links == {("ti-3205", BETHUNE)}
