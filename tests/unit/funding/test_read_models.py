"""The API's read models say what the stored documents say: a scheme, a plan and an
application read through `XOut` give the same JSON as the rows hold."""

from __future__ import annotations

import json
import uuid
from dataclasses import fields

import pytest

from services.funding.adapters.orm import ApplicationRow
from services.funding.adapters.repository import plan_to_dict, scheme_to_dict
from services.funding.adapters.seed import load_seed
from services.funding.domain.applications import Application
from services.funding.domain.catalogue import Scheme
from services.funding.domain.matching import match
from services.funding.domain.plan import IntensityCaps, financing_plan
from services.funding.domain.projects import FundingProject, FundingSite
from services.funding.entrypoints import schemas as s
from services.funding.service_layer.matching import profile
from tests.unit.funding.builders import CATALOGUE, NOW, TERRITORY

SEED = load_seed()


def same_json(a: object, b: object) -> bool:
    # 15 and 15.0 are one JSON number: the stored documents keep the seed's integers.
    return bool(json.loads(json.dumps(a)) == json.loads(json.dumps(b)))


@pytest.mark.parametrize("scheme", SEED, ids=lambda sc: sc.id)
def test_a_scheme_reads_as_it_is_stored(scheme: Scheme) -> None:
    stored = scheme_to_dict(scheme)
    assert same_json(s.SchemeOut.model_validate(stored).model_dump(mode="json"), stored)
    assert same_json(s.SchemeOut.of(scheme).model_dump(mode="json"), stored)


def test_a_financing_plan_reads_as_it_is_stored() -> None:
    project = FundingProject(
        project_id=uuid.uuid4(),
        version=1,
        territory_id=TERRITORY,
        site_id="12345678900011",
        siren="123456789",
        firm_name=None,
        naf_code="22.21Z",
        kind="modernisation_automation",
        stage="qualified",
        origin="endogenous",
        jobs_planned=8,
        capex_eur=1_200_000,
        funding_need_eur=400_000,
        consent_to_share=True,
    )
    site = FundingSite(
        site_id="12345678900011",
        siren="123456789",
        commune_insee="62193",
        headcount_band="12",
        version=1,
    )
    prof = profile(project, site)
    plan = financing_plan(prof, match(prof, CATALOGUE, NOW.date()), IntensityCaps(), "none")
    stored = plan_to_dict(plan)
    assert plan.lines
    assert s.FinancingPlanOut.model_validate(stored).model_dump(mode="json") == stored


def test_an_application_reads_with_every_column_of_its_row() -> None:
    assert list(s.ApplicationOut.model_fields) == list(ApplicationRow.model_fields)
    assert set(s.ApplicationOut.model_fields) == {f.name for f in fields(Application)}
