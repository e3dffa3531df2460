"""Funding's commands through the fake unit of work: the catalogue (schemes, calls,
selection rounds, the Aides-territoires import) and funders' applications and decisions,
with the events each publishes (a decision moves the project's stage in detection)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import date

import pytest

from services.funding.adapters.seed import DATA_DIR
from services.funding.domain.applications import (
    Application,
    Award,
    Decision,
    ImplausibleDate,
    InvalidDecision,
    Payment,
    Refusal,
)
from services.funding.domain.catalogue import (
    Call,
    InvalidCall,
    InvalidScheme,
    RoundResult,
    SelectionRound,
)
from services.funding.service_layer import access, commands
from services.funding.service_layer.handlers import Handlers
from shared.auth import Principal, Role
from shared.errors import NotFound, OutOfScope
from shared.events import funding as fd
from tests.unit.funding.builders import (
    CATALOGUE,
    NOW,
    REGION,
    TERRITORY,
    admin,
    crisis_cell,
    envelope,
    matcher,
    project_event,
    region_funder,
    scheme,
    site_event,
)
from tests.unit.funding.fakes import FakeFundingUnitOfWork

PROJECT = uuid.UUID("00000000-0000-4000-8000-000000000007")
MATCHER = matcher()
CLOCK = MATCHER.clock
ADEME = region_funder("ADEME")


async def with_matched_project(*, consent: bool = True) -> FakeFundingUnitOfWork:
    """The catalogue, and one qualified project of region 32 matched to it (what funders
    were told of it already published)."""
    uow = FakeFundingUnitOfWork()
    for s in CATALOGUE:
        await uow.schemes.upsert(s)
    handlers = Handlers(MATCHER)
    await handlers.site_changed(uow, envelope(site_event()))
    await handlers.project_changed(
        uow, envelope(project_event(project_id=PROJECT, consent_to_share=consent))
    )
    await uow.commit()
    uow.published.clear()
    return uow


async def committed(uow: FakeFundingUnitOfWork) -> list[str]:
    await uow.commit()
    return uow.published_types()


# --- schemes ------------------------------------------------------------------------------


async def test_a_new_scheme_is_stored_and_every_project_matched_against_it() -> None:
    uow = await with_matched_project()
    saved = await commands.save_scheme(uow, scheme("hdf-new"), region_funder(), MATCHER)

    assert saved.changed is True and uow.schemes.by_id["hdf-new"] == saved.scheme
    assert "hdf-new" in {m.scheme_id for m in uow.matches.eligible(PROJECT)}
    await uow.commit()
    proposed = [e for e in uow.published if isinstance(e, fd.MatchProposed)]
    assert [(e.project_id, e.scheme_id) for e in proposed] == [(PROJECT, "hdf-new")]
    assert uow.commits == 2  # the fixture's and the test's: the command never commits


async def test_saving_a_scheme_unchanged_changes_nothing() -> None:
    uow = await with_matched_project()
    saved = await commands.save_scheme(uow, CATALOGUE[0], region_funder(), MATCHER)

    assert saved.changed is False
    assert uow.schemes.versions[CATALOGUE[0].id] == 1
    assert await committed(uow) == []


async def test_a_scheme_that_no_longer_fits_withdraws_its_proposal() -> None:
    uow = await with_matched_project()
    stricter = replace(CATALOGUE[1], capex_max_eur=1_000_000)  # the project invests 1.2 M€
    await commands.save_scheme(uow, stricter, admin(), MATCHER)

    await uow.commit()
    told = [
        (type(e), e.still_eligible if isinstance(e, fd.MatchUpdated) else None)
        for e in uow.published
        if isinstance(e, fd.MatchState) and e.scheme_id == stricter.id
    ]
    assert told == [(fd.MatchUpdated, False)]
    assert uow.matches.by_key[(PROJECT, stricter.id)].eligible is False


async def test_only_a_schemes_funders_or_an_admin_may_change_it() -> None:
    uow = await with_matched_project()
    with pytest.raises(OutOfScope, match="funders"):
        await commands.save_scheme(uow, scheme("hdf-new"), ADEME, MATCHER)
    taken = replace(CATALOGUE[0], funders=("ADEME",))  # ADEME claiming the region's scheme
    with pytest.raises(OutOfScope, match="belongs to other funders"):
        await commands.save_scheme(uow, taken, ADEME, MATCHER)
    with pytest.raises(OutOfScope):
        await commands.save_scheme(uow, scheme("hdf-new"), crisis_cell(), MATCHER)

    assert uow.schemes.by_id[CATALOGUE[0].id] == CATALOGUE[0]
    assert "hdf-new" not in uow.schemes.by_id
    assert await committed(uow) == []


async def test_an_inconsistent_scheme_is_refused_with_every_problem() -> None:
    uow = FakeFundingUnitOfWork()
    bad = scheme("hdf-bad", rate_max_pct=140.0, closes_on=date(2022, 1, 1))
    with pytest.raises(InvalidScheme) as refused:
        await commands.save_scheme(uow, bad, admin(), MATCHER)
    assert len(refused.value.problems) == 2
    assert uow.schemes.by_id == {}


async def test_an_aides_territoires_document_is_imported_once() -> None:
    uow = await with_matched_project()
    path = DATA_DIR / "aides_departement_drome_format_api_aides_territoires.json"
    drome = json.loads(path.read_text("utf-8"))["results"]  # three aids, none for businesses
    for_business = {
        **drome[0],
        "targeted_audiences": ["Communes", "Entreprises privées"],  # made up for the test
        "aid_types": ["Subvention"],
        "submission_deadline": "2025-06-30",
    }
    document = {"results": [*drome, for_business]}

    report = await commands.import_aides_territoires(uow, document, MATCHER)
    assert (report.schemes, report.changed, len(report.problems)) == (1, 1, 3)
    assert "not for businesses" in report.problems[0]
    assert f"at-{drome[0]['id']}" in uow.schemes.by_id
    await uow.commit()
    # Drôme's schemes are not for a project of region 32: its matches are unchanged.
    assert not any(isinstance(e, fd.MatchProposed) for e in uow.published)

    again = await commands.import_aides_territoires(uow, document, MATCHER)
    assert (again.schemes, again.changed) == (report.schemes, 0)


# --- calls and selection rounds ---------------------------------------------------------


def call(**changes: object) -> Call:
    base = Call(
        id="hdf-call",
        scheme_id="hdf-a",
        name="Appel à projets de test",
        rounds=(
            SelectionRound("vague 1", date(2024, 3, 1), quota=50),
            SelectionRound("vague 2", date(2024, 9, 1)),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def result(**changes: object) -> RoundResult:
    base = RoundResult(
        call_id="hdf-call",
        round="vague 1",
        decided_on=date(2024, 4, 1),
        applications=50,
        selected=18,
        per_territory={"ti-3205": 18},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_a_call_and_its_rounds_results_are_recorded_by_the_schemes_funders() -> None:
    uow = await with_matched_project()
    assert await commands.save_call(uow, call(), region_funder()) == call()
    assert uow.calls.by_id["hdf-call"] == call()
    assert await commands.record_round(uow, result(), region_funder()) == result()
    revised = result(selected=20, per_territory={"ti-3205": 20})
    await commands.record_round(uow, revised, region_funder())

    assert uow.calls.results == {("hdf-call", "vague 1"): revised}
    assert await committed(uow) == []  # the catalogue's calls are not on the funder feed


async def test_calls_are_refused_for_unknown_schemes_other_funders_or_out_of_order() -> None:
    uow = await with_matched_project()
    with pytest.raises(NotFound):
        await commands.save_call(uow, call(scheme_id="nope"), admin())
    with pytest.raises(OutOfScope):
        await commands.save_call(uow, call(), ADEME)
    late_first = (SelectionRound("b", date(2024, 9, 1)), SelectionRound("a", date(2024, 3, 1)))
    with pytest.raises(InvalidCall, match="date order"):
        await commands.save_call(uow, call(rounds=late_first), admin())
    assert uow.calls.by_id == {}


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"call_id": "nope"}, NotFound, "no call"),
        ({"selected": 60}, InvalidDecision, "60 selected out of 50"),
        ({"per_territory": {"ti-3205": 18, "ti-3209": 1}}, InvalidDecision, "more than"),
    ],
)
async def test_impossible_round_results_are_refused(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    uow = await with_matched_project()
    await commands.save_call(uow, call(), admin())
    with pytest.raises(error, match=message):
        await commands.record_round(uow, result(**changes), region_funder())
    assert uow.calls.results == {}


async def test_only_the_calls_funders_record_its_rounds() -> None:
    uow = await with_matched_project()
    await commands.save_call(uow, call(), admin())
    with pytest.raises(OutOfScope, match="call's funders"):
        await commands.record_round(uow, result(), ADEME)


# --- applications and decisions ---------------------------------------------------------


async def submitted(uow: FakeFundingUnitOfWork, funder: Principal | None = None) -> Application:
    application = await commands.submit_application(
        uow, PROJECT, "hdf-a", 300_000, funder or region_funder(), CLOCK
    )
    await uow.commit()
    return application


async def test_an_application_is_recorded_and_announced() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)

    assert uow.applications.by_id[application.id] == application
    assert (application.status, application.funder) == ("submitted", REGION)
    assert application.submitted_at == NOW
    (event,) = uow.published
    assert isinstance(event, fd.ApplicationSubmitted)  # detection: the project is in funding
    assert (event.project_id, event.scheme_id, event.application_id) == (
        PROJECT,
        "hdf-a",
        application.id,
    )
    assert (event.amount_requested_eur, event.funder, event.occurred_at) == (300_000, REGION, NOW)


async def test_an_application_needs_consent_a_match_and_the_funders_own_scheme() -> None:
    private = await with_matched_project(consent=False)
    with pytest.raises(NotFound, match="you may see"):  # funders never learn it exists
        await commands.submit_application(private, PROJECT, "hdf-a", 1, region_funder(), CLOCK)
    with pytest.raises(commands.NotShared):  # an admin sees it, but may not share it
        await commands.submit_application(private, PROJECT, "hdf-a", 1, admin(), CLOCK)

    uow = await with_matched_project()
    with pytest.raises(InvalidDecision, match="does not match"):
        await commands.submit_application(uow, PROJECT, "ara-only", 1, admin(), CLOCK)
    with pytest.raises(OutOfScope, match="financed by"):
        await commands.submit_application(uow, PROJECT, "hdf-a", 1, region_funder("ADEME"), CLOCK)
    with pytest.raises(NotFound, match="you may see"):  # a funder of another region
        await commands.submit_application(
            uow, PROJECT, "hdf-a", 1, region_funder(regions=("84",)), CLOCK
        )
    assert uow.applications.by_id == private.applications.by_id == {}
    assert await committed(uow) == [] and await committed(private) == []


async def test_an_application_recorded_after_the_fact_is_checked_on_the_day_it_was_filed() -> None:
    """A call closed since (France Relance's 2020-2022 reviews, entered in 2023): today's
    matches refuse it, the day it was filed takes it; a decision dated before that day,
    a filing day in the future or one when the scheme was not open yet are refused."""
    uow = await with_matched_project()
    closed = scheme("hdf-2021", opens_on=date(2020, 9, 4), closes_on=date(2022, 12, 31))
    await uow.schemes.upsert(closed)
    with pytest.raises(InvalidDecision, match="does not match"):
        await commands.submit_application(uow, PROJECT, "hdf-2021", 1, region_funder(), CLOCK)
    with pytest.raises(InvalidDecision, match=r"on 2020-06-01: .*not open"):
        await commands.submit_application(
            uow, PROJECT, "hdf-2021", 1, region_funder(), CLOCK, filed_on=date(2020, 6, 1)
        )
    with pytest.raises(ImplausibleDate, match="after today"):
        await commands.submit_application(
            uow, PROJECT, "hdf-2021", 1, region_funder(), CLOCK, filed_on=date(2023, 6, 16)
        )

    application = await commands.submit_application(
        uow, PROJECT, "hdf-2021", 300_000, region_funder(), CLOCK, filed_on=date(2021, 2, 1)
    )
    assert (application.filed_on, application.submitted_at) == (date(2021, 2, 1), NOW)
    assert await committed(uow) == ["rebond.funding.application_submitted.v1"]
    with pytest.raises(ImplausibleDate, match="before the application was filed"):
        await decide(uow, application, Award(250_000, date(2021, 1, 15)))
    granted = await decide(uow, application, Award(250_000, date(2021, 3, 20)))
    assert (granted.status, granted.decided_on) == ("granted", date(2021, 3, 20))


async def decide(
    uow: FakeFundingUnitOfWork,
    application: Application,
    decision: Award | Refusal | Payment,
    funder: Principal | None = None,
) -> Application:
    return await commands.decide(uow, application.id, decision, funder or region_funder(), CLOCK)


async def test_an_award_is_granted_then_paid_in_part() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)

    granted = await decide(uow, application, Award(250_000, date(2023, 6, 10)))
    paid = await decide(uow, application, Payment(100_000, date(2023, 7, 1)))

    stored = uow.applications.by_id[application.id]
    assert stored == paid
    assert (granted.status, stored.amount_granted_eur, stored.amount_paid_eur) == (
        "granted",
        250_000,
        100_000,
    )
    assert stored.decided_on == date(2023, 6, 10)
    await uow.commit()
    award, payment = uow.published[1:]
    assert isinstance(award, fd.AwardGranted)  # detection: the project is funded
    assert (award.application_id, award.amount_eur, award.decided_on) == (
        application.id,
        250_000,
        date(2023, 6, 10),
    )
    assert (award.project_id, award.scheme_id, award.funder, award.occurred_at) == (
        PROJECT,
        "hdf-a",
        REGION,
        NOW,
    )
    assert isinstance(payment, fd.PaymentMade)
    assert (payment.amount_eur, payment.paid_on) == (100_000, date(2023, 7, 1))


async def test_an_award_above_the_schemes_maximum_or_decided_twice_is_refused() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)
    with pytest.raises(InvalidDecision, match="above the scheme's maximum"):
        await decide(uow, application, Award(600_000, date(2023, 6, 10)), admin())
    await decide(uow, application, Award(250_000, date(2023, 6, 10)), admin())
    with pytest.raises(InvalidDecision, match="already granted"):
        await decide(uow, application, Refusal("changed our mind", date(2023, 6, 11)))
    assert uow.applications.by_id[application.id].status == "granted"


async def test_a_refusal_is_recorded_with_its_reason_and_ends_the_application() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)
    refused = await decide(uow, application, Refusal("envelope exhausted", date(2023, 6, 5)))

    assert uow.applications.by_id[application.id] == refused
    assert (refused.status, refused.refusal_reason) == ("refused", "envelope exhausted")
    await uow.commit()
    event = uow.published[-1]
    assert isinstance(event, fd.AwardRefused)  # detection: the project is back to qualified
    assert (event.reason, event.decided_on) == ("envelope exhausted", date(2023, 6, 5))
    with pytest.raises(InvalidDecision, match="already refused"):
        await decide(uow, application, Award(1, date(2023, 6, 6)))
    with pytest.raises(InvalidDecision, match="no award to pay"):
        await decide(uow, application, Payment(1, date(2023, 6, 6)))


@pytest.mark.parametrize(
    ("decision", "field"),
    [
        (Award(1, date(2093, 6, 10)), "decided_on"),
        (Refusal("typo in the year", date(2032, 6, 10)), "decided_on"),
    ],
)
async def test_a_decision_dated_years_ahead_is_refused(decision: Decision, field: str) -> None:
    uow = await with_matched_project()
    application = await submitted(uow)
    with pytest.raises(ImplausibleDate, match=field) as err:
        await decide(uow, application, decision)
    assert err.value.status_code == 422
    assert uow.applications.by_id[application.id].status == "submitted"


async def test_a_payment_dated_years_ahead_is_refused() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)
    await decide(uow, application, Award(250_000, date(2023, 6, 10)))
    with pytest.raises(ImplausibleDate, match="paid_on"):
        await decide(uow, application, Payment(1, date(2030, 1, 1)))
    assert uow.applications.by_id[application.id].amount_paid_eur == 0


async def test_payments_never_exceed_the_award() -> None:
    uow = await with_matched_project()
    application = await submitted(uow)
    await decide(uow, application, Award(250_000, date(2023, 6, 10)))
    await decide(uow, application, Payment(100_000, date(2023, 7, 1)))
    await uow.commit()
    with pytest.raises(InvalidDecision, match="exceed the award of 250000 €"):
        await decide(uow, application, Payment(200_000, date(2023, 8, 1)))

    assert uow.applications.by_id[application.id].amount_paid_eur == 100_000
    assert await committed(uow) == [
        fd.ApplicationSubmitted.event_type,
        fd.AwardGranted.event_type,
        fd.PaymentMade.event_type,
    ]


async def test_decisions_on_an_unknown_or_hidden_application_are_refused() -> None:
    uow = await with_matched_project()
    award = Award(1, date(2023, 6, 10))
    with pytest.raises(NotFound, match="no application"):
        await commands.decide(uow, uuid.uuid4(), award, admin(), CLOCK)
    application = await submitted(uow)
    with pytest.raises(NotFound, match="you may see"):
        await decide(uow, application, award, region_funder(regions=("84",)))
    with pytest.raises(OutOfScope):
        await decide(uow, application, Payment(1, date(2023, 6, 10)), ADEME)
    assert uow.applications.by_id[application.id] == application


# --- who sees a project: role AND scope ---------------------------------------------------


def _funder_with_territories() -> Principal:
    """A funder's token that also carries a `territories` claim (the mint command issued
    such tokens): the claim belongs to crisis cells and consultants, not to funders."""
    return replace(region_funder(), territories=frozenset({TERRITORY}))


async def test_a_funder_with_a_territories_claim_still_sees_no_unconsented_project() -> None:
    # Issue 10: the visibility check accepted the territory scope whatever the role.
    private = await with_matched_project(consent=False)
    project = private.projects.by_id[PROJECT]
    funder = _funder_with_territories()

    assert not access.may_see(funder, project)
    with pytest.raises(NotFound, match="you may see"):
        await commands.submit_application(private, PROJECT, "hdf-a", 1, funder, CLOCK)
    # Without a funder's role, a consultant's territories see nothing in funding either.
    consultant = Principal(
        subject="c", roles=frozenset({Role.CONSULTANT}), territories=frozenset({TERRITORY})
    )
    assert not access.may_see(consultant, project)
    # What each role does see stands.
    assert access.may_see(crisis_cell(), project) and access.may_see(admin(), project)
    assert not access.may_see(crisis_cell("ti-8401"), project)
    consented = replace(project, consent_to_share=True)
    assert access.may_see(funder, consented) and access.may_see(region_funder(), consented)
    assert not access.may_see(region_funder(regions=("84",)), consented)
    # A crisis cell's token carrying `regions` gains nothing from them.
    cell_with_regions = replace(crisis_cell("ti-8401"), regions=frozenset({"32"}))
    assert not access.may_see(cell_with_regions, consented)
