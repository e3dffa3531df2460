"""The indexed catalogue examines fewer schemes and finds exactly what the full scan
finds: the same eligible schemes, in the same order, with the same criteria and reasons,
for projects whose place, NAF code or kind are known, partly known or unknown."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import get_args

import pytest

from services.funding.domain.matching import IndexedCatalogue, ProjectProfile, match
from shared.events.campaigns import ProjectKind
from tests.bench.generate_schemes import generate_schemes

pytestmark = pytest.mark.unit

TODAY = date(2026, 11, 23)
KINDS = get_args(ProjectKind)


def projects(n: int, epcis: list[str], seed: int) -> list[ProjectProfile]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        region = rng.choice(("32", "11", "44", "84", None))
        capex = rng.choice((None, 150_000, 1_200_000, 25_000_000))
        out.append(
            ProjectProfile(
                project_id=uuid.UUID(int=rng.getrandbits(128)),
                territory_id=rng.choice(("ti-3205", "ti-4408", f"ti-{region or '32'}07")),
                region_code=region,
                department_code=rng.choice(("62", "59", "57", None)),
                epci_sirens=tuple(rng.sample(epcis, min(len(epcis), rng.choice((0, 0, 1, 2))))),
                firm_size=rng.choice(("micro", "sme", "midcap", "large", None)),
                naf_code=rng.choice(("22.11Z", "25.62A", "10.71C", "28.29B", "2016Z", None)),
                kind=rng.choice(KINDS),  # type: ignore[arg-type]
                jobs_planned=rng.randint(0, 120),
                capex_eur=capex,
                funding_need_eur=None if capex is None else capex // 3,
                consent_to_share=True,
            )
        )
    return out


def test_the_index_finds_what_the_full_scan_finds() -> None:
    schemes = generate_schemes(3_000, seed=11)
    catalogue = IndexedCatalogue(schemes)
    epcis = sorted({c for s in schemes if s.perimeter.scale == "epci" for c in s.perimeter.codes})
    examined = 0
    found_any = 0
    for project in projects(300, epcis[:40], seed=5):
        full = match(project, schemes, TODAY)
        indexed = match(project, catalogue, TODAY)
        assert [(m.scheme.id, m.criteria) for m in indexed] == [
            (m.scheme.id, m.criteria) for m in full
        ]
        found_any += bool(full)
        examined += len(catalogue.candidates_for(project, TODAY))
    assert found_any > 100  # the comparison is not between empty lists
    assert examined < 300 * len(schemes) * 0.6  # and the index does leave schemes out


def test_an_empty_catalogue_and_a_catalogue_in_another_order() -> None:
    project = projects(1, [], seed=1)[0]
    assert match(project, IndexedCatalogue(), TODAY) == []
    schemes = generate_schemes(500, seed=3)
    shuffled = schemes[:]
    random.Random(2).shuffle(shuffled)
    assert [m.scheme.id for m in match(project, IndexedCatalogue(shuffled), TODAY)] == [
        m.scheme.id for m in match(project, schemes, TODAY)
    ]
