"""Look-alikes: name normalisation, the look-alike rule and its readable reason."""

from __future__ import annotations

import pytest

from services.detection.domain.matching import (
    ProjectKey,
    lookalike_reason,
    normalise_name,
    same_project,
)

pytestmark = pytest.mark.unit

TI = "TI-TEST-01"


def key(
    siren: str | None = None,
    name: str | None = None,
    kind: str = "new_site",
    territory: str = TI,
) -> ProjectKey:
    return ProjectKey(siren=siren, kind=kind, territory_id=territory, firm_name=name)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Blackstar SAS", "blackstar"),
        ("BLACKSTAR", "blackstar"),
        ("Blackstar S.A.S.", "blackstar"),
        ("  Blackstar   France ", "blackstar"),
        ("Groupe Blackstar", "blackstar"),
        ("Pneus-Rechapés du Béthunois SARL", "pneus rechapes du bethunois"),
        ("Société Générale d'Usinage", "societe generale d usinage"),
        ("ÉTS MARTIN & FILS, SASU", "ets martin fils"),
        ("SAS", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_name(raw: str | None, normalised: str | None) -> None:
    assert normalise_name(raw) == normalised


def test_same_siren_other_name_is_the_same_project() -> None:
    assert same_project(key("123456789", "Blackstar"), key("123456789", "BS Retreading"))


def test_no_siren_same_normalised_name_is_the_same_project() -> None:
    assert same_project(key(None, "Blackstar SAS"), key(None, "BLACKSTAR"))
    assert same_project(key("123456789", "Blackstar SAS"), key(None, "BLACKSTAR"))


def test_different_sirens_are_different_firms_even_with_one_name() -> None:
    assert not same_project(key("123456789", "Martin"), key("987654321", "Martin"))


def test_different_kind_is_a_different_project() -> None:
    assert not same_project(
        key("123456789", kind="new_site"), key("123456789", kind="capacity_extension")
    )


def test_different_territory_is_a_different_project() -> None:
    assert not same_project(
        key("123456789", territory=TI), key("123456789", territory="TI-TEST-02")
    )


def test_nothing_to_compare_is_a_different_project() -> None:
    assert not same_project(key(None, None), key(None, None))
    assert not same_project(key("123456789", None), key(None, "Blackstar"))
    assert not same_project(key(None, "SAS"), key(None, "SARL"))
    assert not same_project(key(None, "Blackstar"), key(None, "Whitestar"))


def test_symmetric() -> None:
    keys = [
        key("123456789", "Blackstar"),
        key(None, "BLACKSTAR SAS"),
        key("987654321", "blackstar"),
        key(None, None),
        key(None, "Blackstar", kind="other"),
    ]
    for a in keys:
        for b in keys:
            assert same_project(a, b) == same_project(b, a)


def test_the_reason_names_the_firm_the_kind_and_the_two_sites() -> None:
    plant_a = ProjectKey("900000000", "new_line", TI, "Acme", site_id="90000000000011")
    plant_b = ProjectKey("900000000", "new_line", TI, "Acme", site_id="90000000000029")
    reason = lookalike_reason(plant_a, plant_b)
    assert reason is not None
    assert "SIREN 900000000" in reason and "new_line" in reason
    assert "another site (90000000000029; the other at 90000000000011)" in reason
    declared = ProjectKey(None, "new_line", TI, "ACME S.A.S.")
    assert "firm name ('acme')" in (lookalike_reason(plant_a, declared) or "")
    assert "declared by the crisis cell" in (lookalike_reason(plant_a, declared) or "")
    assert lookalike_reason(plant_a, ProjectKey("900000001", "new_line", TI, "Acme")) is None
