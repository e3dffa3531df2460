"""The project aggregate: detection, merged reports, qualification, stages, jobs, abandonment.

Pure unit tests: made-up SIREN/SIRET, a fixed clock, no I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.detection.domain.matching import ProjectKey
from services.detection.domain.model import (
    FIGURE_FIELDS,
    AlreadyQualified,
    Figures,
    InvalidProjectChange,
    Project,
    Report,
)
from services.detection.domain.stages import IllegalTransition, Stage
from shared.errors import Conflict, DomainError
from shared.events import detection as ev

pytestmark = pytest.mark.unit

NOW = datetime(2021, 4, 6, 9, 0, tzinfo=UTC)
SHOCK_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
CAMPAIGN_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
LEAD_ID = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
TERRITORY = "TI-TEST-01"
SECRET = "Mme Dupont veut doubler la ligne de rechapage, discret svp"


def at(hours: int) -> datetime:
    return NOW + timedelta(hours=hours)


def survey(rev: int, hours: int = 0) -> Report:
    return Report(source="survey", reference=f"survey s-1 rev {rev}", reported_at=at(hours))


KEY = ProjectKey(
    siren="900000000",
    kind="capacity_extension",
    territory_id=TERRITORY,
    firm_name="Rechapage du Nord SAS",
    site_id="90000000000011",
)
FIGURES = Figures(
    description=SECRET,
    jobs_planned=12,
    capex_eur=1_500_000,
    funding_need_eur=400_000,
    maturity="study",
    obstacles=("financing", "land"),
    consent_to_share=True,
)


def detect(key: ProjectKey = KEY, figures: Figures = FIGURES, **change: Any) -> Project:
    args: dict[str, Any] = {
        "origin": "endogenous",
        "hidden": True,
        "report": survey(1),
        "now": NOW,
        "shock_id": SHOCK_ID,
        "campaign_id": CAMPAIGN_ID,
        "naf_code": "22.11Z",
        "lead_id": LEAD_ID,
    }
    return Project.detect(key, figures, **{**args, **change})


def funded() -> Project:
    p = detect()
    p.qualify(now=at(1))
    p.move_to(Stage.FUNDED, now=at(2))
    return p


def assert_versions(p: Project) -> None:
    versions = [e.version for e in p.events]  # type: ignore[attr-defined]
    assert versions == list(range(1, len(p.events) + 1))
    assert p.version == len(p.events)


# --------------------------------------------------------------------------- detect


def test_detect_records_the_whole_state_without_the_description() -> None:
    p = detect()
    assert p.stage is Stage.DETECTED
    assert p.version == 1
    assert p.detected_on == NOW.date()
    assert p.lead_ids == {LEAD_ID}
    assert p.figures.obstacles == ("land", "financing")  # canonical order
    [event] = p.events
    assert isinstance(event, ev.ProjectDetected)
    assert event.model_dump(mode="json") == {
        "project_id": str(p.id),
        "version": 1,
        "territory_id": TERRITORY,
        "shock_id": str(SHOCK_ID),
        "campaign_id": str(CAMPAIGN_ID),
        "site_id": "90000000000011",
        "siren": "900000000",
        "firm_name": "Rechapage du Nord SAS",
        "naf_code": "22.11Z",
        "origin": "endogenous",
        "kind": "capacity_extension",
        "stage": "detected",
        "hidden": True,
        "jobs_planned": 12,
        "jobs_created": 0,
        "capex_eur": 1_500_000,
        "funding_need_eur": 400_000,
        "maturity": "study",
        "obstacles": ["land", "financing"],
        "consent_to_share": True,
        "detected_on": "2021-04-06",
        "occurred_at": "2021-04-06T09:00:00Z",
        "possible_duplicate_of": None,
        "source": "survey",
    }
    assert "Dupont" not in event.model_dump_json()
    [report] = p.reports
    assert report.reference == "survey s-1 rev 1"
    assert report.figures["description"] == SECRET
    assert report.figures["jobs_planned"] == 12
    assert report.figures["hidden"] is True


def test_detect_an_exogenous_project_from_the_crisis_cell() -> None:
    p = detect(
        ProjectKey(siren=None, kind="new_site", territory_id=TERRITORY, firm_name="Blackstar"),
        origin="exogenous",
        report=Report("crisis_cell", "declared by the crisis cell", NOW),
        naf_code=None,
        lead_id=None,
        detected_on=date(2021, 4, 1),
    )
    assert p.lead_ids == set()
    assert p.detected_on == date(2021, 4, 1)
    [event] = p.events
    assert isinstance(event, ev.ProjectDetected)
    assert (event.origin, event.source, event.siren) == ("exogenous", "crisis_cell", None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: detect(replace(KEY, kind="spaceport")), "unknown project kind"),
        (lambda: detect(origin="imported"), "origin must be"),
        (lambda: detect(replace(KEY, siren="12345")), "SIREN has 9 digits"),
        (lambda: detect(naf_code="2211Z"), "NAF code"),
        (lambda: replace(FIGURES, jobs_planned=-1), "jobs_planned cannot be negative"),
        (lambda: replace(FIGURES, capex_eur=-5), "capex_eur cannot be negative"),
        (lambda: replace(FIGURES, funding_need_eur=-1), "funding_need_eur cannot be negative"),
        (lambda: replace(FIGURES, land_needs_ha=-0.5), "land_needs_ha cannot be negative"),
        (lambda: replace(FIGURES, maturity="dreaming"), "unknown maturity"),
        (lambda: replace(FIGURES, obstacles=("taxes",)), "unknown obstacles taxes"),
        (lambda: detect(report=Report("gossip", "x", NOW)), "unknown report source"),
    ],
)
def test_detect_refuses_bad_input(make: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidProjectChange, match=message):
        make()


# --------------------------------------------------------------------------- figures


def test_figures_are_a_value_in_canonical_form() -> None:
    reordered = replace(FIGURES, obstacles=("land", "financing", "land"))
    assert reordered == FIGURES  # obstacles in one order, once each
    assert hash(reordered) == hash(FIGURES)
    assert FIGURE_FIELDS == (
        "description",
        "jobs_planned",
        "capex_eur",
        "funding_need_eur",
        "maturity",
        "obstacles",
        "land_needs_ha",
        "consent_to_share",
    )
    assert Figures(description="x", jobs_planned=0, consent_to_share=False).given() == {
        "description": "x",
        "jobs_planned": 0,
        "obstacles": [],
        "consent_to_share": False,
    }


def test_newer_figures_replace_those_they_give() -> None:
    newer = Figures(description="other", jobs_planned=20, consent_to_share=True, land_needs_ha=2)
    merged, changed = FIGURES.merged(newer)
    assert changed == ["description", "jobs_planned", "obstacles", "land_needs_ha"]
    assert merged == replace(
        FIGURES, description="other", jobs_planned=20, obstacles=(), land_needs_ha=2
    )
    assert merged.capex_eur == 1_500_000  # not given: kept
    assert FIGURES.merged(FIGURES) == (FIGURES, [])


# --------------------------------------------------------------------------- merge


def test_merge_changes_record_one_update_with_changed_fields() -> None:
    p = detect()
    changed = p.merge_report(
        survey(2, hours=1),
        replace(
            FIGURES,
            jobs_planned=20,
            obstacles=("land", "financing", "permits"),
            description="a longer text",
        ),
        now=at(1),
    )
    assert changed == ["description", "jobs_planned", "obstacles"]
    assert (p.figures.jobs_planned, p.figures.obstacles) == (20, ("land", "financing", "permits"))
    assert len(p.events) == 2
    event = p.events[-1]
    assert isinstance(event, ev.ProjectUpdated)
    assert event.changed_fields == changed
    assert (event.jobs_planned, event.version, event.source) == (20, 2, "survey")
    assert "longer text" not in event.model_dump_json()
    assert len(p.reports) == 2


def test_identical_figures_record_nothing_but_keep_the_report() -> None:
    p = detect()
    changed = p.merge_report(
        Report("survey", "visit by another consultant", at(1)),
        replace(FIGURES, obstacles=("financing", "land"), capex_eur=None),  # not a change
        now=at(1),
    )
    assert changed == []
    assert len(p.events) == 1
    assert p.version == 1
    assert len(p.reports) == 2
    assert p.reports[-1].figures == {
        "description": SECRET,
        "jobs_planned": 12,
        "funding_need_eur": 400_000,
        "maturity": "study",
        "obstacles": ["land", "financing"],
        "consent_to_share": True,
    }


def test_missing_figures_keep_the_current_value_and_empty_obstacles_clear() -> None:
    p = detect()
    emptied = replace(FIGURES, capex_eur=None, obstacles=())
    assert p.merge_report(survey(2, 1), emptied, now=at(1)) == ["obstacles"]
    assert (p.figures.capex_eur, p.figures.obstacles) == (1_500_000, ())


def test_an_older_report_is_kept_but_not_applied() -> None:
    p = detect(report=survey(2, hours=5))
    assert p.merge_report(survey(1, hours=0), replace(FIGURES, jobs_planned=3), now=at(6)) == []
    assert p.figures.jobs_planned == 12
    assert len(p.reports) == 2
    assert len(p.events) == 1


def test_hidden_is_fixed_at_detection_and_lead_ids_accumulate() -> None:
    p = detect()
    other_lead = uuid.uuid4()
    changed = p.merge_report(
        Report("survey", "survey s-9 rev 1", at(1)),
        FIGURES,
        now=at(1),
        hidden=False,
        lead_id=other_lead,
    )
    assert changed == []
    assert p.hidden is True
    assert p.reports[-1].figures == {**FIGURES.given(), "hidden": False}
    assert p.lead_ids == {LEAD_ID, other_lead}


def test_consent_can_be_withdrawn() -> None:
    p = detect()
    withdrawn = replace(FIGURES, consent_to_share=False)
    assert p.merge_report(survey(2, 1), withdrawn, now=at(1)) == ["consent_to_share"]
    event = p.events[-1]
    assert isinstance(event, ev.ProjectUpdated)
    assert event.consent_to_share is False


def test_a_report_on_an_abandoned_project_changes_nothing() -> None:
    p = detect()
    p.abandon("the firm was sold", now=at(1))
    assert p.merge_report(survey(2, 2), replace(FIGURES, jobs_planned=40), now=at(2)) == []
    assert (p.figures.jobs_planned, p.stage) == (12, Stage.ABANDONED)
    assert len(p.reports) == 3
    assert len(p.events) == 2


# --------------------------------------------------------------------------- qualify


def test_qualify_with_corrected_figures() -> None:
    p = detect()
    corrected = p.qualify(now=at(1), jobs_planned=8, capex_eur=1_500_000)
    assert corrected == ["jobs_planned"]
    assert (p.stage, p.figures.jobs_planned) == (Stage.QUALIFIED, 8)
    event = p.events[-1]
    assert isinstance(event, ev.ProjectQualified)
    assert (event.stage, event.jobs_planned, event.version) == ("qualified", 8, 2)
    report = p.reports[-1]
    assert (report.source, report.reported_at) == ("crisis_cell", at(1))
    assert report.figures == {"jobs_planned": 8, "capex_eur": 1_500_000}


def test_qualify_refuses_a_negative_correction_and_changes_nothing() -> None:
    p = detect()
    with pytest.raises(InvalidProjectChange, match="capex_eur cannot be negative"):
        p.qualify(now=at(1), jobs_planned=8, capex_eur=-1)
    assert (p.stage, p.figures, len(p.reports), len(p.events)) == (
        Stage.DETECTED,
        FIGURES,
        1,
        1,
    )


def test_qualify_without_corrections_adds_no_report() -> None:
    p = detect()
    assert p.qualify(now=at(1)) == []
    assert len(p.reports) == 1
    assert len(p.events) == 2


def test_qualify_twice_or_after_abandon_is_refused() -> None:
    p = detect()
    p.qualify(now=at(1))
    with pytest.raises(AlreadyQualified, match="already past qualification"):
        p.qualify(now=at(2))
    gone = detect()
    gone.abandon("duplicate of another visit", now=at(1))
    with pytest.raises(IllegalTransition):
        gone.qualify(now=at(2))
    assert issubclass(AlreadyQualified, Conflict)


def test_a_late_survey_does_not_undo_the_analysts_correction() -> None:
    p = detect()
    p.qualify(now=at(3), jobs_planned=8)
    assert p.merge_report(survey(2, hours=2), FIGURES, now=at(4)) == []
    assert p.figures.jobs_planned == 8


# --------------------------------------------------------------------------- stages


def test_funding_path_with_a_refusal() -> None:
    p = detect()
    p.qualify(now=at(1))
    assert p.move_to(Stage.IN_FUNDING, now=at(2), source="funding")
    assert p.move_to(Stage.QUALIFIED, now=at(3), reason="refused by the Région", source="funding")
    assert p.move_to(Stage.IN_FUNDING, now=at(4), source="funding")
    assert p.move_to(Stage.FUNDED, now=at(5), source="funding")
    assert p.move_to(Stage.LAUNCHED, now=at(6))
    changes = [e for e in p.events if isinstance(e, ev.ProjectStageChanged)]
    assert [(e.previous_stage, e.stage) for e in changes] == [
        ("qualified", "in_funding"),
        ("in_funding", "qualified"),
        ("qualified", "in_funding"),
        ("in_funding", "funded"),
        ("funded", "launched"),
    ]
    refusal = p.reports[2]
    assert refusal.source == "funding"
    assert refusal.figures == {"stage": "qualified", "reason": "refused by the Région"}
    assert "Région" not in changes[1].model_dump_json()
    assert_versions(p)


def test_same_stage_is_a_no_op() -> None:
    p = detect()
    p.qualify(now=at(1))
    p.move_to(Stage.IN_FUNDING, now=at(2))
    assert p.move_to(Stage.IN_FUNDING, now=at(3)) is False
    assert len(p.events) == 3


def test_illegal_moves_are_refused() -> None:
    p = detect()
    with pytest.raises(IllegalTransition, match="qualify it first"):
        p.move_to(Stage.FUNDED, now=at(1))
    assert (p.stage, p.version, len(p.events)) == (Stage.DETECTED, 1, 1)


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        (Stage.QUALIFIED, "use qualify"),
        (Stage.ABANDONED, "abandon()"),
    ],
)
def test_move_to_sends_other_commands_elsewhere(stage: Stage, message: str) -> None:
    p = detect()
    with pytest.raises(InvalidProjectChange, match=message):
        p.move_to(stage, now=at(1))


def test_jobs_are_not_a_plain_stage_move() -> None:
    p = funded()
    with pytest.raises(InvalidProjectChange, match="record_jobs"):
        p.move_to(Stage.JOBS_CREATED, now=at(3))


# --------------------------------------------------------------------------- jobs


def test_record_jobs_partial_then_complete() -> None:
    p = funded()
    assert p.record_jobs(
        jobs_created_total=5, created_on=date(2021, 4, 5), complete=False, now=at(3)
    )
    assert p.record_jobs(
        jobs_created_total=15, created_on=date(2021, 4, 6), complete=True, now=at(4)
    )
    jobs = [e for e in p.events if isinstance(e, ev.JobsCreated)]
    assert [(e.jobs_added, e.jobs_created, e.complete, e.stage) for e in jobs] == [
        (5, 5, False, "jobs_created"),
        (10, 15, True, "jobs_created"),
    ]
    assert jobs[0].created_on == date(2021, 4, 5)
    assert (p.jobs_created, p.figures.jobs_planned, p.jobs_complete) == (15, 12, True)
    assert not p.live
    assert_versions(p)


def test_record_jobs_retry_is_a_no_op_and_a_decrease_is_refused() -> None:
    p = funded()
    p.record_jobs(jobs_created_total=5, created_on=date(2021, 4, 5), complete=False, now=at(3))
    assert not p.record_jobs(
        jobs_created_total=5, created_on=date(2021, 4, 5), complete=False, now=at(4)
    )
    with pytest.raises(InvalidProjectChange, match="cannot decrease"):
        p.record_jobs(jobs_created_total=4, created_on=date(2021, 4, 6), complete=True, now=at(4))
    assert p.jobs_created == 5
    assert len(p.events) == 4


def test_record_jobs_from_launched() -> None:
    p = funded()
    p.move_to(Stage.LAUNCHED, now=at(3))
    p.record_jobs(jobs_created_total=3, created_on=date(2021, 4, 6), complete=False, now=at(4))
    assert p.stage is Stage.JOBS_CREATED


@pytest.mark.parametrize("stage", [Stage.DETECTED, Stage.QUALIFIED, Stage.IN_FUNDING])
def test_record_jobs_before_funding_is_refused(stage: Stage) -> None:
    p = detect()
    if stage is not Stage.DETECTED:
        p.qualify(now=at(1))
    if stage is Stage.IN_FUNDING:
        p.move_to(Stage.IN_FUNDING, now=at(2))
    with pytest.raises(IllegalTransition):
        p.record_jobs(jobs_created_total=3, created_on=date(2021, 4, 6), complete=False, now=at(3))


def test_record_jobs_refuses_zero_and_the_future() -> None:
    p = funded()
    with pytest.raises(InvalidProjectChange, match="at least one job"):
        p.record_jobs(jobs_created_total=0, created_on=date(2021, 4, 6), complete=True, now=at(3))
    with pytest.raises(InvalidProjectChange, match="future"):
        p.record_jobs(jobs_created_total=2, created_on=date(2021, 5, 1), complete=True, now=at(3))
    assert p.stage is Stage.FUNDED


# --------------------------------------------------------------------------- abandon


def test_abandon_with_a_reason() -> None:
    p = detect()
    p.qualify(now=at(1))
    p.abandon("  the firm chose a site in Belgium  ", now=at(2))
    assert (p.stage, p.abandoned_reason) == (Stage.ABANDONED, "the firm chose a site in Belgium")
    event = p.events[-1]
    assert isinstance(event, ev.ProjectAbandoned)
    assert (event.previous_stage, event.reason) == ("qualified", "the firm chose a site in Belgium")
    assert not p.live
    assert_versions(p)


def test_abandon_refusals() -> None:
    p = detect()
    with pytest.raises(InvalidProjectChange, match="reason is empty"):
        p.abandon("   ", now=at(1))
    with pytest.raises(InvalidProjectChange, match="characters long"):
        p.abandon("x" * 501, now=at(1))
    p.abandon("dropped", now=at(1))
    with pytest.raises(IllegalTransition):
        p.abandon("again", now=at(2))
    with_jobs = funded()
    with_jobs.record_jobs(
        jobs_created_total=2, created_on=date(2021, 4, 6), complete=False, now=at(3)
    )
    with pytest.raises(IllegalTransition, match="only report more jobs"):
        with_jobs.abandon("changed its mind", now=at(4))
    assert issubclass(InvalidProjectChange, DomainError)


# --------------------------------------------------------------------------- whole life


def test_versions_increase_by_one_per_event_and_events_carry_no_free_text() -> None:
    p = detect()
    revised = replace(FIGURES, jobs_planned=14, description=SECRET + " (rev 2)")
    p.merge_report(survey(2, 1), revised, now=at(1))
    p.merge_report(survey(3, 2), revised, now=at(2))  # nothing new
    p.qualify(now=at(3), capex_eur=2_000_000)
    p.move_to(Stage.IN_FUNDING, now=at(4), reason="filed with Bpifrance")
    p.move_to(Stage.FUNDED, now=at(5))
    p.record_jobs(jobs_created_total=9, created_on=date(2021, 4, 6), complete=False, now=at(6))
    p.record_jobs(jobs_created_total=16, created_on=date(2021, 4, 6), complete=True, now=at(7))
    assert [type(e).__name__ for e in p.events] == [
        "ProjectDetected",
        "ProjectUpdated",
        "ProjectQualified",
        "ProjectStageChanged",
        "ProjectStageChanged",
        "JobsCreated",
        "JobsCreated",
    ]
    assert_versions(p)
    dumped = json.dumps([e.model_dump(mode="json") for e in p.events])
    assert "Dupont" not in dumped
    assert "Bpifrance" not in dumped
    assert [e.occurred_at for e in p.events] == [  # type: ignore[attr-defined]
        NOW,
        at(1),
        at(3),
        at(4),
        at(5),
        at(6),
        at(7),
    ]


def test_key_priority_and_live() -> None:
    p = detect()
    key = p.key()
    assert (key.siren, key.kind, key.territory_id, key.firm_name) == (
        "900000000",
        "capacity_extension",
        TERRITORY,
        "Rechapage du Nord SAS",
    )
    assert p.live
    priority = p.priority()
    assert priority.reasons[0] == "12 jobs planned: +25.6"
    assert priority.reasons[-1] == "unknown to public actors when detected: +5.0"


# --------------------------------------------------------------------- look-alikes


def lookalike(of: Project, **change: Any) -> Project:
    return detect(
        replace(KEY, site_id="90000000000029"),
        replace(FIGURES, jobs_planned=14),
        lead_id=uuid.uuid4(),
        looks_like=(of.id, "the same firm (SIREN 900000000) and the same kind"),
        **change,
    )


def test_a_lookalike_is_its_own_project_flagged_with_the_reason() -> None:
    first = detect()
    second = lookalike(first)
    assert second.id != first.id
    assert second.possible_duplicate_of == first.id
    assert "SIREN 900000000" in (second.duplicate_reason or "")
    [event] = second.events
    assert event.possible_duplicate_of == first.id  # the ledger hears of it
    assert (first.figures.jobs_planned, second.figures.jobs_planned) == (12, 14)  # not merged


def test_dismissing_the_flag_records_one_event_and_is_idempotent() -> None:
    second = lookalike(detect())
    second.events.clear()
    assert second.dismiss_duplicate(now=at(1), by="cell-1", note="two plants") is True
    assert second.possible_duplicate_of is None
    [event] = second.events
    assert isinstance(event, ev.ProjectUpdated)
    assert event.changed_fields == ["possible_duplicate_of"]
    assert event.possible_duplicate_of is None
    assert second.dismiss_duplicate(now=at(2), by="cell-1") is False
    assert "two plants" in str(second.reports[-1].figures)


def test_absorb_joins_leads_reports_and_newer_figures_and_ends_the_other() -> None:
    first = detect()
    second = lookalike(first, report=Report("survey", "survey s-2 rev 1", at(1)))
    first.events.clear()
    second.events.clear()

    changed = first.absorb(second, now=at(2), by="cell-1")

    assert changed == ["jobs_planned"] and first.figures.jobs_planned == 14  # the newer wins
    assert second.lead_ids == set() and len(first.lead_ids) == 2
    assert any("from project" in r.reference and "s-2" in r.reference for r in first.reports)
    assert second.merged_into == first.id and not second.live
    [merged] = second.events
    assert isinstance(merged, ev.ProjectMerged) and merged.merged_into == first.id
    [updated] = first.events
    assert isinstance(updated, ev.ProjectUpdated) and "merged" in updated.changed_fields
    with pytest.raises(Conflict, match="merged into"):
        second.qualify(now=at(3))
    with pytest.raises(Conflict, match="merged into"):
        first.absorb(second, now=at(3), by="cell-1")


def test_absorb_keeps_newer_figures_of_the_survivor() -> None:
    first = detect(report=Report("survey", "survey s-1 rev 2", at(5)))
    second = lookalike(first, report=Report("survey", "survey s-2 rev 1", at(1)))
    assert first.absorb(second, now=at(6), by="cell-1") == []
    assert first.figures.jobs_planned == 12


def test_a_project_already_funded_is_not_absorbed_into_a_detected_one() -> None:
    first = detect()
    second = lookalike(first)
    second.qualify(now=at(1))
    second.move_to(Stage.FUNDED, now=at(2))
    with pytest.raises(Conflict, match=r"merge .* into it instead"):
        first.absorb(second, now=at(3), by="cell-1")
    with pytest.raises(InvalidProjectChange, match="itself"):
        first.absorb(first, now=at(3), by="cell-1")


def test_a_naive_datetime_is_refused_at_the_edge() -> None:
    from datetime import datetime as dt_

    with pytest.raises(DomainError, match="no UTC offset"):
        detect(report=Report("survey", "survey s-1 rev 1", dt_(2021, 4, 6, 9, 0)))
