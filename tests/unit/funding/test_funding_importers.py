"""Importers on the real files: the Aides-territoires API feed of the Drôme (three aids,
none for businesses) and ADEME's Agir response (five business schemes). Variants of the
Drôme record, made for businesses, show the field mappings; they are marked as such."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pytest

from services.funding.adapters.aides_territoires import (
    ImportProblem,
    parse_ademe_agir,
    parse_aides_territoires,
    rates_from_text,
)
from services.funding.adapters.seed import DATA_DIR
from services.funding.domain.catalogue import Perimeter

pytestmark = pytest.mark.unit

DROME = json.loads(
    (DATA_DIR / "aides_departement_drome_format_api_aides_territoires.json").read_text("utf-8")
)
AGIR = json.loads(
    (DATA_DIR / "aides_ademe_agir_dispositifs_entreprises_2023.json").read_text("utf-8")
)


def for_business(**changes: Any) -> dict[str, Any]:
    """The real Drôme record 162, changed (made up) so businesses may apply."""
    record: dict[str, Any] = copy.deepcopy(DROME["results"][0])
    record.update(
        {
            "targeted_audiences": ["Communes", "Entreprises privées"],
            "aid_types": ["Subvention", "Ingénierie technique"],
            "subvention_rate": "[20, 80)",
            "start_date": "2024-01-15",
            "submission_deadline": "2025-06-30",
        }
    )
    record.update(changes)
    return record


def one(record: dict[str, Any]) -> Any:
    schemes, problems = parse_aides_territoires({"results": [record]})
    assert not problems, problems
    return schemes[0]


def test_funding_drome_sample_yields_three_problems_not_for_businesses() -> None:
    assert DROME["count"] == 166 and len(DROME["results"]) == 3
    schemes, problems = parse_aides_territoires(DROME)
    assert schemes == []
    assert [(p.index, p.id) for p in problems] == [(0, "162"), (1, "338"), (2, "650")]
    assert all(p.reason.startswith("not for businesses: targeted audiences are ") for p in problems)
    assert problems[0].reason == (
        "not for businesses: targeted audiences are Communes, Intercommunalités / Pays,"
        " Associations, Particuliers"
    )


def test_funding_aides_territoires_record_for_businesses_maps_every_field() -> None:
    s = one(for_business())
    assert s.id == "at-162"
    assert s.name == "Développement d’une alimentation de proximité"
    assert s.funders == ("Chambre d’agriculture de la Drôme",)
    assert s.perimeter == Perimeter("department", ("26",))
    assert s.aid_type == "grant"  # the money type wins over engineering
    assert s.beneficiaries == frozenset({"micro", "sme", "midcap", "large"})
    assert (s.rate_min_pct, s.rate_max_pct) == (20.0, 80.0)
    assert (s.opens_on, s.closes_on) == (date(2024, 1, 15), date(2025, 6, 30))
    assert s.themes == frozenset({"other"})  # "Alimentation" is no industrial theme
    assert s.source.startswith("Aides-territoires API, aid 162 (aid types: Subvention,")
    assert s.source_url == (
        "https://collectivites.ladrome.fr/service/developpement-dune-alimentation-de-proximite/"
    )
    assert not s.generated


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("[20, 80)", (20.0, 80.0)),
        ("(,40]", (None, 40.0)),
        ({"lower": 15, "upper": 55}, (15.0, 55.0)),
        ([10, 30], (10.0, 30.0)),
        (None, (None, None)),
    ],
)
def test_funding_aides_territoires_rate_formats(rate: Any, expected: tuple[Any, Any]) -> None:
    s = one(for_business(subvention_rate=rate))
    assert (s.rate_min_pct, s.rate_max_pct) == expected


def test_funding_aides_territoires_rate_bound_fields_of_the_api() -> None:
    record = for_business(subvention_rate_lower_bound=25, subvention_rate_upper_bound=45)
    del record["subvention_rate"]
    s = one(record)
    assert (s.rate_min_pct, s.rate_max_pct) == (25.0, 45.0)


@pytest.mark.parametrize(
    ("perimeter", "expected"),
    [
        ("Drôme (Département)", Perimeter("department", ("26",))),
        ("PAS-DE-CALAIS", Perimeter("department", ("62",))),
        ("Hauts-de-France (Région)", Perimeter("region", ("32",))),
        ("France", Perimeter.national()),
        ("Europe", Perimeter.national()),
        ("Outre-mer", Perimeter("region", ("01", "02", "03", "04", "06"))),
    ],
)
def test_funding_aides_territoires_perimeters(perimeter: str, expected: Perimeter) -> None:
    assert one(for_business(perimeter=perimeter)).perimeter == expected


def test_funding_aides_territoires_themes_and_types() -> None:
    s = one(
        for_business(
            categories=["Énergies / Déchets|Transition énergétique", "Économie circulaire"],
            aid_types=["Prêt", "Ingénierie financière"],
            subvention_rate=None,
        )
    )
    assert s.themes == frozenset({"energy", "circular_economy"})
    assert s.aid_type == "loan"
    codes = one(for_business(targeted_audiences=["private_sector"], aid_types=["grant"]))
    assert codes.aid_type == "grant"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"perimeter": "CA Valence Romans Agglo (EPCI)"}, "unknown perimeter"),
        ({"subvention_rate": "about half"}, "is not a range like [20, 80)"),
        ({"submission_deadline": "31/12/2025"}, "submission_deadline '31/12/2025' is not a date"),
        ({"aid_types": ["Chèque cadeau"]}, "no known aid type"),
        ({"targeted_audiences": []}, "no targeted audiences"),
        ({"financers": None}, "no financer"),
        ({"subvention_rate": "[90, 20]"}, "minimum rate (90.0 %) is above the maximum rate"),
        (
            {"start_date": "2025-07-01", "submission_deadline": "2025-01-01"},
            "before it opens",
        ),
    ],
)
def test_funding_aides_territoires_problems_say_why(changes: dict[str, Any], reason: str) -> None:
    schemes, problems = parse_aides_territoires({"results": [for_business(**changes)]})
    assert schemes == []
    assert len(problems) == 1 and problems[0].id == "162"
    assert reason in problems[0].reason


def test_funding_aides_territoires_rejects_a_document_without_results() -> None:
    assert parse_aides_territoires({"count": 0}) == (
        [],
        [ImportProblem(-1, None, "no 'results' list: not an Aides-territoires page")],
    )


def test_funding_ademe_agir_file_yields_its_five_schemes() -> None:
    schemes, problems = parse_ademe_agir(AGIR)
    assert problems == []
    assert len(schemes) == 5
    by_id = {s.id: s for s in schemes}
    eco = by_id["ademe-1ed7d411"]
    assert (
        eco.name == "Investissements d’écoconception pour améliorer la performance environnementale"
    )
    assert (eco.rate_min_pct, eco.rate_max_pct) == (15.0, 55.0)
    assert eco.de_minimis
    assert eco.perimeter == Perimeter.national()
    assert eco.funders == ("ADEME",)
    assert (eco.opens_on, eco.closes_on) == (date(2023, 1, 1), date(2023, 12, 31))
    assert eco.source_url == (
        "https://agirpourlatransition.ademe.fr/entreprises/aides-financieres/2023/"
        "investissements-decoconception-ameliorer-performance-environnementale"
    )
    assert "decarbonation" in eco.themes
    others = [s for s in schemes if s.id != eco.id]
    assert all(s.rate_min_pct is None and s.rate_max_pct is None for s in others)
    bcib = by_id["ademe-1ec8f1be"]
    assert (bcib.opens_on, bcib.closes_on) == (date(2022, 12, 26), date(2023, 2, 27))
    assert "call for projects" in bcib.source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("les aides aux investissements peuvent atteindre 15 % à 55 %.", (15.0, 55.0)),
        ("une aide de 20 à 40 % des dépenses", (20.0, 40.0)),
        ("un taux de 30 %-50 % selon la taille", (30.0, 50.0)),
        ("aide jusqu’à 40 % des coûts éligibles", (None, 40.0)),
        ("50 % de produits sous signe de qualité, dont 20 % de bio", (None, None)),
        ("règlement de minimis n° 1407/2013 du 18 décembre 2013 : 200 000 €", (None, None)),
        ("entre 2021 - 2023 % inattendu", (None, None)),
    ],
)
def test_funding_rates_from_text(text: str, expected: tuple[Any, Any]) -> None:
    assert rates_from_text(text) == expected
