"""The site aggregate: what it records when registered, updated, closed, and when a
closure is announced on it — and what it refuses."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime

import pytest

from services.site_registry.domain.model import (
    ClosureShock,
    InvalidShock,
    OpenShockExists,
    ShockStatus,
    Site,
    SiteFacts,
    SiteIsClosed,
    SiteSource,
    SiteStatus,
)
from shared.events.site_registry import (
    ClosureAnnounced,
    SiteClosed,
    SiteRegistered,
    SiteUpdated,
)

pytestmark = pytest.mark.unit

SIRET = "12345678900011"
TERRITORIES = ("ti-3205",)
NOTE = "Le directeur a prévenu M. Dupont au 06 12 34 56 78"
DECLARED_BY = "agent-dupont-7"
DECLARED_AT = datetime(2025, 2, 1, 9, 30, tzinfo=UTC)


def facts(**overrides: object) -> SiteFacts:
    base = SiteFacts(
        siren=SIRET[:9],
        name="Fonderie du Nord",
        naf_code="24.51Z",
        naf_section="C",
        headcount_band="32",
        commune_insee="59350",
        lon=3.06,
        lat=50.63,
        source=SiteSource.SIRENE,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def registered_site() -> Site:
    site = Site.register(SIRET, facts(), TERRITORIES)
    site.events.clear()
    return site


def announce(site: Site, **overrides: object) -> ClosureShock:
    kwargs: dict[str, object] = {
        "open_shock": None,
        "announced_on": date(2025, 2, 1),
        "jobs_lost": 240,
        "planned_closure_on": date(2025, 9, 30),
        "note": NOTE,
        "declared_at": DECLARED_AT,
        "declared_by": DECLARED_BY,
    }
    kwargs.update(overrides)
    return site.announce_closure(**kwargs)  # type: ignore[arg-type]


# --- register / update / close --------------------------------------------------------


def test_register_records_one_site_registered_at_version_1() -> None:
    site = Site.register(SIRET, facts(), TERRITORIES)

    assert site.version == 1
    assert site.status is SiteStatus.ACTIVE
    assert len(site.events) == 1
    (event,) = site.events
    assert isinstance(event, SiteRegistered)
    assert event.version == 1
    assert event.site_id == SIRET
    assert event.name == "Fonderie du Nord"
    assert event.territory_ids == ["ti-3205"]
    assert event.status == "active"
    assert event.source == "sirene"
    assert event.key() == SIRET


def test_register_keeps_the_initial_status() -> None:
    site = Site.register(SIRET, facts(), TERRITORIES, status=SiteStatus.CLOSED)

    (event,) = site.events
    assert isinstance(event, SiteRegistered)
    assert event.status == "closed"


def test_update_with_equal_facts_records_nothing() -> None:
    site = registered_site()

    changed = site.update(facts(), TERRITORIES)

    assert changed == []
    assert site.events == []
    assert site.version == 1


def test_update_with_a_new_name_records_one_site_updated_naming_the_field() -> None:
    site = registered_site()

    changed = site.update(facts(name="Fonderie du Nord SAS"), TERRITORIES)

    assert changed == ["name"]
    assert site.version == 2
    (event,) = site.events
    assert isinstance(event, SiteUpdated)
    assert event.changed_fields == ["name"]
    assert event.version == 2
    assert event.name == "Fonderie du Nord SAS"
    assert site.facts.name == "Fonderie du Nord SAS"


def test_update_reports_every_changed_field_including_territories() -> None:
    site = registered_site()

    changed = site.update(facts(headcount_band="31", lat=50.7), ("ti-3205", "ti-3206"))

    assert changed == ["headcount_band", "lat", "territory_ids"]
    (event,) = site.events
    assert isinstance(event, SiteUpdated)
    assert event.territory_ids == ["ti-3205", "ti-3206"]


def test_successive_updates_bump_the_version_each_time() -> None:
    site = registered_site()

    site.update(facts(name="A"), TERRITORIES)
    site.update(facts(name="B"), TERRITORIES)

    assert site.version == 3
    assert [e.version for e in site.events if isinstance(e, SiteUpdated)] == [2, 3]


def test_close_records_site_closed_once_and_is_idempotent() -> None:
    site = registered_site()

    first = site.close(date(2025, 3, 31))
    second = site.close(date(2025, 4, 30))

    assert first is True
    assert second is False
    assert site.status is SiteStatus.CLOSED
    assert site.closed_on == date(2025, 3, 31)
    assert site.version == 2
    (event,) = site.events
    assert isinstance(event, SiteClosed)
    assert event.closed_on == date(2025, 3, 31)
    assert event.version == 2
    assert event.territory_ids == ["ti-3205"]


def test_update_of_a_closed_site_with_the_same_facts_reopens_it() -> None:
    site = registered_site()
    site.close(None)
    site.events.clear()

    changed = site.update(facts(), TERRITORIES)

    assert changed == ["status"]
    assert site.status is SiteStatus.ACTIVE
    assert site.closed_on is None
    (event,) = site.events
    assert isinstance(event, SiteUpdated)
    assert event.status == "active"
    assert event.version == 3


def test_snapshot_is_the_current_public_state() -> None:
    site = registered_site()
    site.update(facts(name="Renamed"), TERRITORIES)

    snapshot = site.snapshot()

    assert snapshot.name == "Renamed"
    assert snapshot.version == 2
    assert snapshot.status == "active"


# --- closure announcements ---------------------------------------------------------------


def test_announce_closure_refuses_a_closed_site() -> None:
    site = registered_site()
    site.close(date(2025, 1, 15))
    site.events.clear()

    with pytest.raises(SiteIsClosed, match="already closed") as excinfo:
        announce(site)

    assert excinfo.value.status_code == 409
    assert site.events == []
    assert site.version == 2


def test_announce_closure_refuses_a_site_with_an_open_shock() -> None:
    site = registered_site()
    existing = announce(registered_site())

    with pytest.raises(OpenShockExists, match=str(existing.id)) as excinfo:
        announce(site, open_shock=existing)

    assert excinfo.value.status_code == 409
    assert site.events == []
    assert site.status is SiteStatus.ACTIVE


@pytest.mark.parametrize("jobs_lost", [0, -12])
def test_announce_closure_refuses_a_non_positive_job_count(jobs_lost: int) -> None:
    site = registered_site()

    with pytest.raises(InvalidShock, match="jobs_lost must be a positive") as excinfo:
        announce(site, jobs_lost=jobs_lost)

    assert excinfo.value.status_code == 422
    assert site.events == []
    assert site.version == 1


def test_announce_closure_refuses_a_planned_closure_before_the_announcement() -> None:
    site = registered_site()

    with pytest.raises(InvalidShock, match="is before announced_on"):
        announce(site, announced_on=date(2025, 2, 1), planned_closure_on=date(2025, 1, 31))

    assert site.events == []
    assert site.status is SiteStatus.ACTIVE


def test_announce_closure_accepts_a_closure_planned_the_day_of_the_announcement() -> None:
    site = registered_site()

    announce(site, announced_on=date(2025, 2, 1), planned_closure_on=date(2025, 2, 1))

    assert site.status is SiteStatus.CLOSURE_ANNOUNCED


def test_announce_closure_marks_the_site_and_records_closure_announced() -> None:
    site = registered_site()
    shock_id = uuid.uuid4()

    shock = announce(site, jobs_lost=240, shock_id=shock_id)

    assert site.status is SiteStatus.CLOSURE_ANNOUNCED
    assert site.version == 2
    (event,) = site.events
    assert isinstance(event, ClosureAnnounced)
    assert event.jobs_lost == 240
    assert event.version == 2
    assert event.shock_id == shock_id
    assert event.site_id == SIRET
    assert event.site_name == "Fonderie du Nord"
    assert event.territory_ids == ["ti-3205"]
    assert event.announced_on == date(2025, 2, 1)
    assert event.planned_closure_on == date(2025, 9, 30)
    assert event.declared_at == DECLARED_AT
    assert shock.id == shock_id
    assert shock.status is ShockStatus.OPEN


def test_closure_announced_carries_neither_the_note_nor_the_declarant() -> None:
    site = registered_site()

    shock = announce(site)

    (event,) = site.events
    wire = event.model_dump_json()
    assert NOTE not in wire
    assert "Dupont" not in wire
    assert DECLARED_BY not in wire
    assert "note" not in type(event).model_fields
    assert "declared_by" not in type(event).model_fields
    # The registry itself keeps both, on the shock.
    assert shock.note == NOTE
    assert shock.declared_by == DECLARED_BY


def test_announce_closure_without_a_planned_date_or_note() -> None:
    site = registered_site()

    announce(site, planned_closure_on=None, note=None)

    (event,) = site.events
    assert isinstance(event, ClosureAnnounced)
    assert event.planned_closure_on is None
