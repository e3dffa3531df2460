"""Support priority: components, reasons, ordering."""

from __future__ import annotations

import pytest

from services.detection.domain.priority import SupportPriority, support_priority

pytestmark = pytest.mark.unit


def test_reasons_state_each_component() -> None:
    p = support_priority(
        jobs_planned=12,
        capex_eur=1_000_000,
        maturity="study",
        obstacles=["financing", "land", "other"],
        hidden=True,
    )
    assert p == SupportPriority(
        score=53.1,
        reasons=(
            "12 jobs planned: +25.6",
            "investment of 1.00 M€: +5.5",
            "maturity study: +5.0",
            "obstacles public support can lift (land, financing): +12.0",
            "unknown to public actors when detected: +5.0",
        ),
    )


def test_unknowns_score_zero_with_a_reason() -> None:
    p = support_priority(jobs_planned=0, capex_eur=None, maturity=None, obstacles=[], hidden=False)
    assert p.score == 0.0
    assert p.reasons == (
        "0 jobs planned: +0.0",
        "investment unknown: +0.0",
        "maturity unknown: +0.0",
        "no obstacle public support can lift: +0.0",
        "already known to public actors: +0.0",
    )


def test_reasons_add_up_to_the_score() -> None:
    p = support_priority(
        jobs_planned=37,
        capex_eur=3_333_333,
        maturity="ready",
        obstacles=["permits", "energy_grid", "hiring_skills"],
        hidden=False,
    )
    points = [float(r.rsplit("+", 1)[1]) for r in p.reasons]
    assert p.score == round(sum(points), 1)


def test_a_big_ready_project_needing_money_beats_a_small_idea() -> None:
    big = support_priority(
        jobs_planned=50, capex_eur=None, maturity="ready", obstacles=["financing"], hidden=False
    )
    small = support_priority(
        jobs_planned=2, capex_eur=None, maturity="idea", obstacles=[], hidden=False
    )
    assert big.score > small.score
    assert big.reasons[0] == "50 jobs planned: +39.3"
    assert small.reasons[0] == "2 jobs planned: +11.0"


def test_each_criterion_raises_the_score() -> None:
    base = {
        "jobs_planned": 10,
        "capex_eur": 500_000,
        "maturity": "study",
        "obstacles": ["financing"],
        "hidden": False,
    }

    def score(**change: object) -> float:
        return support_priority(**{**base, **change}).score  # type: ignore[arg-type]

    assert score(jobs_planned=11) > score()
    assert score(capex_eur=600_000) > score()
    assert score(maturity="idea") < score() < score(maturity="ready") < score(maturity="started")
    assert score(obstacles=["financing", "land"]) > score()
    assert score(obstacles=["financing", "financing"]) == score()
    assert score(obstacles=["financing", "other"]) == score()
    assert score(hidden=True) == score() + 5.0


def test_deterministic_and_order_independent() -> None:
    a = support_priority(
        jobs_planned=7,
        capex_eur=250_000,
        maturity="started",
        obstacles=["permits", "land"],
        hidden=True,
    )
    b = support_priority(
        jobs_planned=7,
        capex_eur=250_000,
        maturity="started",
        obstacles=["land", "permits"],
        hidden=True,
    )
    assert a == b
