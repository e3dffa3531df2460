"""The firm's size for aid intensity: INSEE's company category of the firm when the
registry has it (PME, ETI, GE), else the estimate from the site's headcount band — and
matching says which it used."""

from __future__ import annotations

import uuid

import pytest

from services.funding.domain.projects import FundingSite
from services.funding.service_layer.matching import firm_size_of, firm_size_of_site
from shared.events import funding as fd
from shared.events import site_registry as sr
from tests.unit.funding.builders import SITE, project_event, site_event
from tests.unit.funding.test_handlers import catalogued, handle

pytestmark = pytest.mark.unit

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000077")


def site(band: str | None, category: str | None) -> FundingSite:
    return FundingSite(
        site_id=SITE,
        siren=SITE[:9],
        commune_insee="62193",
        headcount_band=band,
        company_category=category,
        version=1,
    )


@pytest.mark.parametrize(
    ("band", "category", "expected"),
    [
        # The category wins over the band: it is the whole firm's legal size.
        ("12", "GE", ("large", "company_category")),
        ("01", "ETI", ("midcap", "company_category")),
        ("53", "PME", ("sme", "company_category")),  # a band from before the firm shrank
        (None, "GE", ("large", "company_category")),
        # INSEE's PME includes micro-entreprises: a site under 10 employees tells them apart.
        ("03", "PME", ("micro", "company_category")),
        ("00", "PME", ("micro", "company_category")),
        ("11", "PME", ("sme", "company_category")),
        (None, "PME", ("sme", "company_category")),
        ("NN", "PME", ("sme", "company_category")),
        # Without a category, the band's estimate, as before.
        ("03", None, ("micro", "headcount_band")),
        ("22", None, ("sme", "headcount_band")),
        ("41", None, ("midcap", "headcount_band")),
        ("52", None, ("large", "headcount_band")),
        ("NN", None, (None, None)),
        (None, None, (None, None)),
    ],
)
def test_company_category_then_headcount_band(
    band: str | None, category: str | None, expected: tuple[str | None, str | None]
) -> None:
    assert firm_size_of_site(site(band, category)) == expected


def test_no_site_no_size() -> None:
    assert firm_size_of_site(None) == (None, None)


def test_without_a_category_the_estimate_is_the_bands() -> None:
    for band in ("00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41", "42", "51"):
        size, source = firm_size_of_site(site(band, None))
        assert size == firm_size_of(band) and source == "headcount_band"


async def test_a_large_firms_site_gets_the_large_firm_cap_and_says_why() -> None:
    uow = await catalogued()
    # A site of 20 to 49 employees (an SME by its band) of a GE firm.
    await handle(uow, site_event(company_category="GE", legal_category="5710"))
    published = await handle(uow, project_event(project_id=PROJECT))

    stored = uow.sites.by_id[SITE]
    assert stored.company_category == "GE" and stored.headcount_band == "12"
    plan = uow.projects.plans[PROJECT]
    assert plan is not None
    assert plan.cap_pct == 0.0  # GBER art. 17 gives large firms nothing outside AFR zones
    assert any("firm size large (from the firm's INSEE company category)" in n for n in plan.notes)
    # The test catalogue's schemes are for micro-firms and SMEs: a large firm fails them,
    # and the reason says where its size comes from.
    assert uow.matches.eligible(PROJECT) == [] and published == []


async def test_the_sme_estimate_from_the_band_is_named_as_such() -> None:
    uow = await catalogued()
    await handle(uow, site_event())
    published = await handle(uow, project_event(project_id=PROJECT))

    plan = uow.projects.plans[PROJECT]
    assert plan is not None and plan.cap_pct == 10.0
    proposal = next(e for e in published if isinstance(e, fd.MatchProposed))
    assert (proposal.firm_size, proposal.firm_size_source) == ("sme", "headcount_band")
    beneficiary = next(c for c in proposal.criteria if c.criterion == "beneficiary")
    assert beneficiary.reason.endswith(
        "the firm is an SME (estimated from its site's headcount band)"
    )


async def test_a_category_learnt_later_is_used_at_the_next_match() -> None:
    uow = await catalogued()
    await handle(uow, site_event())
    await handle(uow, project_event(project_id=PROJECT))
    # The registry imports the legal units: the site's firm is a PME (its site has 20 to
    # 49 employees, so an SME still, now by its category).
    await handle(
        uow,
        site_event(
            sr.SiteUpdated,
            version=2,
            company_category="PME",
            changed_fields=["legal_category", "company_category"],
            legal_category="5499",
        ),
    )
    published = await handle(uow, project_event(project_id=PROJECT, version=3))

    stored = uow.sites.by_id[SITE]
    assert (stored.company_category, stored.version) == ("PME", 2)
    updates = [e for e in published if isinstance(e, fd.MatchUpdated)]
    assert updates and all(u.firm_size_source == "company_category" for u in updates)
    assert all(u.firm_size == "sme" and u.still_eligible for u in updates)
