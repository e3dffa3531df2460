"""The stage table: every cell of the Stage × Stage grid, the messages, the ledger ranks."""

from __future__ import annotations

import itertools

import pytest

from services.detection.domain.stages import (
    STAGE_RANK,
    TRANSITIONS,
    IllegalTransition,
    Stage,
    allowed_moves,
    check_transition,
    reached,
)
from shared.errors import Conflict
from shared.events import detection as ev

pytestmark = pytest.mark.unit

S = Stage
# Written out again on purpose: a change to the table must be a change to this test too.
LEGAL = {
    (S.DETECTED, S.QUALIFIED),
    (S.DETECTED, S.ABANDONED),
    (S.QUALIFIED, S.IN_FUNDING),
    (S.QUALIFIED, S.FUNDED),
    (S.QUALIFIED, S.LAUNCHED),
    (S.QUALIFIED, S.ABANDONED),
    (S.IN_FUNDING, S.FUNDED),
    (S.IN_FUNDING, S.QUALIFIED),
    (S.IN_FUNDING, S.ABANDONED),
    (S.FUNDED, S.LAUNCHED),
    (S.FUNDED, S.JOBS_CREATED),
    (S.FUNDED, S.ABANDONED),
    (S.LAUNCHED, S.JOBS_CREATED),
    (S.LAUNCHED, S.ABANDONED),
    (S.JOBS_CREATED, S.JOBS_CREATED),
}
GRID = list(itertools.product(Stage, Stage))


def test_stage_strings_are_the_event_contract() -> None:
    assert [s.value for s in Stage] == list(ev.Stage.__args__)  # type: ignore[attr-defined]


def test_table_matches_the_written_out_edges() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL
    assert set(TRANSITIONS) == set(Stage)


@pytest.mark.parametrize(("current", "target"), GRID, ids=[f"{a}->{b}" for a, b in GRID])
def test_every_transition(current: Stage, target: Stage) -> None:
    if (current, target) in LEGAL:
        check_transition(current, target)
        return
    with pytest.raises(IllegalTransition) as caught:
        check_transition(current, target)
    error = caught.value
    assert isinstance(error, Conflict)
    assert error.code == "illegal_transition"
    assert error.status_code == 409
    assert (error.current, error.target) == (current, target)
    assert error.message.startswith(f"a project in stage {current} cannot move to {target}: ")
    assert error.message.endswith(f"(allowed: {', '.join(allowed_moves(current)) or 'none'})")


def test_message_reads_well() -> None:
    with pytest.raises(IllegalTransition) as caught:
        check_transition(Stage.DETECTED, Stage.FUNDED)
    assert caught.value.message == (
        "a project in stage detected cannot move to funded: qualify it first"
        " (allowed: qualified, abandoned)"
    )


def test_final_stages() -> None:
    assert allowed_moves(Stage.ABANDONED) == ()
    assert allowed_moves(Stage.JOBS_CREATED) == (Stage.JOBS_CREATED,)
    with pytest.raises(IllegalTransition, match="only report more jobs"):
        check_transition(Stage.JOBS_CREATED, Stage.ABANDONED)
    with pytest.raises(IllegalTransition, match=r"abandoned project is final.*\(allowed: none\)"):
        check_transition(Stage.ABANDONED, Stage.QUALIFIED)


def test_nothing_goes_back_to_detected() -> None:
    for stage in Stage:
        assert Stage.DETECTED not in TRANSITIONS[stage]


def test_refusal_is_the_only_backward_edge() -> None:
    backward = {
        (a, b) for a, b in LEGAL if b is not Stage.ABANDONED and STAGE_RANK[b] < STAGE_RANK[a]
    }
    assert backward == {(Stage.IN_FUNDING, Stage.QUALIFIED)}


@pytest.mark.parametrize(
    ("stage", "qualified", "funded"),
    [
        (Stage.DETECTED, False, False),
        (Stage.QUALIFIED, True, False),
        (Stage.IN_FUNDING, True, False),
        (Stage.FUNDED, True, True),
        (Stage.LAUNCHED, True, True),
        (Stage.JOBS_CREATED, True, True),
        (Stage.ABANDONED, False, False),
    ],
)
def test_ledger_buckets(stage: Stage, qualified: bool, funded: bool) -> None:
    assert reached(stage, Stage.DETECTED) is (stage is not Stage.ABANDONED)
    assert reached(stage, Stage.QUALIFIED) is qualified
    assert reached(stage, Stage.FUNDED) is funded
