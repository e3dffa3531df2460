"""Sirene's legal units on the registry's sites, on the fake unit of work: the real
establishment sample imported first (its 7 active manufacturing sites), then the real
legal-unit sample that goes with it."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime

import pytest

from services.site_registry.adapters import reference_data
from services.site_registry.domain.model import FirmFacts, Site, SiteFacts, SiteSource
from services.site_registry.service_layer import batch_jobs
from services.site_registry.service_layer.commands import (
    ImportScope,
    LegalUnitReport,
    Nomenclatures,
)
from shared.events.site_registry import ClosureAnnounced, SiteUpdated
from tests.unit.site_registry.fakes import FakeUowFactory, RegistryDb

pytestmark = pytest.mark.unit

ESTABLISHMENTS = "sirene_stock_etablissement_sample_299.csv"
LEGAL_UNITS = "sirene_stock_unite_legale_sample_for_etab_sample.csv"
SOLE_TRADER_SITE = "00032517500065"  # THIERRY JANOYER, entrepreneur individuel, Marseille
SUGAR = ("00542012000015", "SOCIETE DES SUCRERIES DU MARQUENTERRE")
HERNAS = ("00552017600016", "00552017600032")  # two sites of one firm
NO_CATEGORY_SITE = "00548054600018"  # SOCIETE DE DISTRIBUTION DE PAPIER: no categorieEntreprise


def text(name: str) -> str:
    return reference_data.data_file(name).read_text(encoding="utf-8")


def edited(source: str, siren: str, **values: str) -> str:
    rows = list(csv.reader(io.StringIO(source, newline="")))
    for row in rows[1:]:
        if row[0] == siren:
            for column, value in values.items():
                row[rows[0].index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


async def import_legal_units(
    factory: FakeUowFactory, source: str, *, batch_size: int = 2
) -> LegalUnitReport:
    return await batch_jobs.import_legal_units(
        factory, io.StringIO(source, newline=""), batch_size=batch_size
    )


@pytest.fixture
async def sites(db: RegistryDb, refs: Nomenclatures) -> RegistryDb:
    sample = text(ESTABLISHMENTS)
    communes = {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(sample))}
    await batch_jobs.import_sirene(
        FakeUowFactory(db),
        io.StringIO(sample, newline=""),
        ImportScope(communes=frozenset(communes - {""})),
        refs,
        batch_size=50,
    )
    assert len(db.sites) == 7
    return db


async def test_every_site_gets_its_firms_facts_and_a_repeat_records_nothing(
    sites: RegistryDb,
) -> None:
    factory = FakeUowFactory(sites)
    progress: list[int] = []
    report = await batch_jobs.import_legal_units(
        factory,
        io.StringIO(text(LEGAL_UNITS), newline=""),
        batch_size=2,
        on_progress=progress.append,
    )

    assert (report.rows_read, report.error_count) == (262, 0) and sum(progress) == 262
    # 7 sites of 6 firms: the two Hernas Cartonnage sites share their legal unit.
    assert (report.matched, report.sites_updated, report.events) == (6, 7, 7)
    assert factory.commits == math.ceil(6 / 2)
    named = {siret: site.name for siret, site in sites.sites.items()}
    assert all(named.values()), named
    assert named[SUGAR[0]] == SUGAR[1]
    assert {named[s] for s in HERNAS} == {"HERNAS CARTONNAGE"}
    categories = [s.firm.company_category for s in sites.sites.values() if s.firm]
    assert (categories.count("PME"), categories.count(None), len(categories)) == (6, 1, 7)
    assert sites.sites[NO_CATEGORY_SITE].firm == FirmFacts(
        name="SOCIETE DE DISTRIBUTION DE PAPIER",
        name_is_person=False,
        legal_category="5710",
        company_category=None,
        company_category_year=None,
    )
    updates = [e for e in factory.published if isinstance(e, SiteUpdated)]
    assert len(updates) == len(factory.published) == 7
    sugar = next(e for e in updates if e.site_id == SUGAR[0])
    assert (sugar.name, sugar.legal_category, sugar.company_category) == (SUGAR[1], "5599", "PME")
    assert sugar.changed_fields == ["name", "legal_category", "company_category"]

    again = FakeUowFactory(sites)
    repeat = await import_legal_units(again, text(LEGAL_UNITS))
    assert (repeat.matched, repeat.sites_updated, repeat.unchanged) == (6, 0, 7)
    assert again.published == []


async def test_a_sole_traders_name_is_kept_in_the_registry_and_never_in_an_event(
    sites: RegistryDb,
) -> None:
    factory = FakeUowFactory(sites)
    await import_legal_units(factory, text(LEGAL_UNITS))

    site = sites.sites[SOLE_TRADER_SITE]
    assert (site.name, site.name_is_person, site.public_name) == ("THIERRY JANOYER", True, None)
    [update] = [
        e for e in factory.published if isinstance(e, SiteUpdated) and e.site_id == SOLE_TRADER_SITE
    ]
    assert update.name is None and update.changed_fields == ["legal_category", "company_category"]
    assert (update.legal_category, update.company_category) == ("1000", "PME")
    for event in factory.published:
        assert "JANOYER" not in event.model_dump_json() and "THIERRY" not in event.model_dump_json()


async def test_a_sole_traders_sign_leaves_the_events_once_the_firm_is_known(
    sites: RegistryDb, refs: Nomenclatures
) -> None:
    # A sign often is the person's name: once Sirene says the firm is a natural person,
    # events withhold whatever name the site has.
    own = sites.sites[SOLE_TRADER_SITE]
    sites.sites[SOLE_TRADER_SITE] = Site(
        siret=own.siret,
        facts=SiteFacts(**{**vars(own.facts), "name": "PERLES JANOYER"}),
        territory_ids=own.territory_ids,
        version=own.version,
    )
    factory = FakeUowFactory(sites)
    await import_legal_units(factory, text(LEGAL_UNITS))

    site = sites.sites[SOLE_TRADER_SITE]
    assert (site.name, site.name_is_person, site.public_name) == ("PERLES JANOYER", False, None)
    [update] = [
        e for e in factory.published if isinstance(e, SiteUpdated) and e.site_id == own.siret
    ]
    assert update.name is None and update.changed_fields[0] == "name"


async def test_the_establishments_own_name_wins_over_the_firms(sites: RegistryDb) -> None:
    siret = SUGAR[0]
    own = sites.sites[siret]
    sites.sites[siret] = Site(
        siret=siret,
        facts=SiteFacts(**{**vars(own.facts), "name": "SUCRERIE DE RUE"}),
        territory_ids=own.territory_ids,
        version=own.version,
    )
    factory = FakeUowFactory(sites)
    await import_legal_units(factory, text(LEGAL_UNITS))

    site = sites.sites[siret]
    assert site.name == "SUCRERIE DE RUE" and site.firm is not None
    assert site.firm.name == SUGAR[1]  # kept, shown beside it by the API
    [update] = [e for e in factory.published if isinstance(e, SiteUpdated) and e.site_id == siret]
    assert update.name == "SUCRERIE DE RUE"
    assert update.changed_fields == ["legal_category", "company_category"]


async def test_a_new_category_updates_every_site_of_the_firm_and_names_the_field(
    sites: RegistryDb,
) -> None:
    await import_legal_units(FakeUowFactory(sites), text(LEGAL_UNITS))
    grown = edited(text(LEGAL_UNITS), HERNAS[0][:9], categorieEntreprise="ETI")

    factory = FakeUowFactory(sites)
    report = await import_legal_units(factory, grown)

    assert (report.sites_updated, report.events, report.unchanged) == (2, 2, 5)
    updates = [e for e in factory.published if isinstance(e, SiteUpdated)]
    assert len(updates) == len(factory.published)
    assert {e.site_id: e.changed_fields for e in updates} == {
        HERNAS[0]: ["company_category"],
        HERNAS[1]: ["company_category"],
    }
    assert all(sites.sites[s].version == 3 for s in HERNAS)  # registered, named, grown


async def test_a_change_no_event_shows_is_stored_without_an_event(sites: RegistryDb) -> None:
    await import_legal_units(FakeUowFactory(sites), text(LEGAL_UNITS))
    version = sites.sites[SUGAR[0]].version
    later = edited(text(LEGAL_UNITS), SUGAR[0][:9], anneeCategorieEntreprise="2021")

    factory = FakeUowFactory(sites)
    report = await import_legal_units(factory, later)

    assert (report.sites_updated, report.events) == (1, 0) and factory.published == []
    firm = sites.sites[SUGAR[0]].firm
    assert firm is not None and firm.company_category_year == 2021
    assert sites.sites[SUGAR[0]].version == version


async def test_an_establishment_import_keeps_the_firms_facts(
    sites: RegistryDb, refs: Nomenclatures
) -> None:
    await import_legal_units(FakeUowFactory(sites), text(LEGAL_UNITS))
    sample = edited(text(ESTABLISHMENTS), SUGAR[0][:9], trancheEffectifsEtablissement="21")
    communes = {r["codeCommuneEtablissement"] for r in csv.DictReader(io.StringIO(sample))}

    factory = FakeUowFactory(sites)
    await batch_jobs.import_sirene(
        factory,
        io.StringIO(sample, newline=""),
        ImportScope(communes=frozenset(communes - {""})),
        refs,
        batch_size=50,
    )

    # Of the firm's three establishments, only the manufacturing one is a site.
    [sugar] = factory.published
    assert isinstance(sugar, SiteUpdated) and sugar.site_id == SUGAR[0]
    assert (sugar.name, sugar.company_category, sugar.changed_fields) == (
        SUGAR[1],
        "PME",
        ["headcount_band"],
    )


async def test_a_non_diffusible_firm_names_no_site(sites: RegistryDb) -> None:
    hidden = edited(text(LEGAL_UNITS), SUGAR[0][:9], statutDiffusionUniteLegale="N")
    factory = FakeUowFactory(sites)
    await import_legal_units(factory, hidden)

    site = sites.sites[SUGAR[0]]
    assert site.name is None and site.firm is not None and site.firm.company_category == "PME"
    [update] = [
        e for e in factory.published if isinstance(e, SiteUpdated) and e.site_id == SUGAR[0]
    ]
    assert update.name is None and update.changed_fields == ["legal_category", "company_category"]


def test_a_closure_announced_on_a_sole_traders_site_names_nobody() -> None:
    site = Site(
        siret=SOLE_TRADER_SITE,
        facts=SiteFacts(
            siren=SOLE_TRADER_SITE[:9],
            name=None,
            naf_code="32.12Z",
            naf_section="C",
            headcount_band=None,
            commune_insee="13204",
            lon=None,
            lat=None,
            source=SiteSource.SIRENE,
        ),
        territory_ids=(),
        firm=FirmFacts(
            name="THIERRY JANOYER",
            name_is_person=True,
            legal_category="1000",
            company_category="PME",
            company_category_year=2019,
        ),
    )
    site.announce_closure(
        open_shock=None,
        announced_on=date(2026, 11, 2),
        jobs_lost=3,
        planned_closure_on=None,
        note=None,
        declared_at=datetime(2026, 11, 3, tzinfo=UTC),
        declared_by="cell",
    )
    [announced] = site.events
    assert isinstance(announced, ClosureAnnounced) and announced.site_name is None
    assert site.snapshot().name is None and site.name == "THIERRY JANOYER"
