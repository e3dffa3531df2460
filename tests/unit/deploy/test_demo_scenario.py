"""The Béthune scenario of `make demo` (deploy/local/scenario.py): pure, deterministic,
and 900 / 450 / 450 by construction, whatever the seed."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _scenario() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_local_scenario", ROOT / "deploy/local/scenario.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while built
    spec.loader.exec_module(module)
    return module


sc = _scenario()
#: 164 targets, two sites of one firm among them (as Faurecia's in the demo file)
TARGETS = [
    sc.Target(f"{i:09d}00011", "22.11Z", f"v{i}", f"consultant-{i % 3 + 1}") for i in range(162)
] + [
    sc.Target("07150239700020", "29.32Z", "fa", "consultant-1"),
    sc.Target("07150239700061", "29.32Z", "fb", "consultant-2"),
]


@pytest.mark.parametrize("seed", [2020, 1, 77])
def test_the_published_figures_hold_by_construction(seed: int) -> None:
    s = sc.build(TARGETS, seed)
    assert s.jobs_created() == (450, 450)
    assert [(r.selected, r.bethune, len(s.selected(n))) for n, r in enumerate(s.rounds)] == [
        (25, 1, 1),
        (50, 18, 18),
        (200, 65, 65),
    ]
    earlier = [v for v in s.visits if v.source == "earlier_survey"]
    assert (len(earlier), sum(len(v.leads) for v in earlier)) == (55, 26)
    assert len(s.visits) == 164 and not any(v.declined for v in earlier)
    # No two projects of one firm share a kind: none is a look-alike under review.
    kinds = [(lead.site_id[:9], lead.kind) for lead in s.leads]
    assert len(kinds) == len(set(kinds))
    assert s.exogenous[0].firm_name == "Blackstar"
    # Generated texts say so.
    assert all(lead.description.startswith("GENERATED") for lead in s.leads)
    assert all(x.firm_name.startswith("GENERATED") for x in s.exogenous[1:])
    for lead in s.leads:
        if lead.fate == "selected":
            decided = s.rounds[lead.round].decided_on
            assert sc.PUBLISHED.announced_on < lead.filed_on < decided < lead.created_on
            assert lead.created_on <= sc.PUBLISHED.compensated_by
            assert 0 < lead.award_eur <= lead.funding_need_eur


def test_the_same_seed_gives_the_same_replay() -> None:
    assert sc.build(TARGETS, 5) == sc.build(list(reversed(TARGETS)), 5)
    assert sc.build(TARGETS, 5) != sc.build(TARGETS, 6)


def test_a_campaign_that_is_not_the_reference_case_is_refused() -> None:
    with pytest.raises(sc.ScenarioError, match="164"):
        sc.build(TARGETS[:100], 1)


@pytest.mark.parametrize("total,parts,minimum", [(450, 84, 2), (450, 4, 40), (7, 7, 1)])
def test_a_partition_adds_up_exactly(total: int, parts: int, minimum: int) -> None:
    shares = sc.partition(total, parts, random.Random(3), minimum=minimum)
    assert sum(shares) == total and len(shares) == parts and min(shares) >= minimum
