from __future__ import annotations

import random

import pytest

from services.site_registry.domain.siret import (
    InvalidIdentifier,
    complete_luhn,
    is_valid_siret,
    luhn_ok,
    make_siret,
    validate_siren,
    validate_siret,
)

BRIDGESTONE_BETHUNE = "36120038900019"


def test_bridgestone_bethune_is_valid() -> None:
    assert validate_siret(BRIDGESTONE_BETHUNE) == BRIDGESTONE_BETHUNE


def test_spaces_are_stripped() -> None:
    assert validate_siret("361 200 389 00019") == BRIDGESTONE_BETHUNE
    assert validate_siren(" 361 200 389 ") == "361200389"


def test_wrong_check_digit_is_rejected_with_a_readable_message() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^SIRET 36120038900018 fails the Luhn check$"):
        validate_siret("36120038900018")


def test_wrong_length_names_the_length() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^SIRET must be 14 digits, got 13$"):
        validate_siret("3612003890001")
    with pytest.raises(InvalidIdentifier, match=r"^SIREN must be 9 digits, got 8$"):
        validate_siren("36120038")


def test_non_digits_are_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="14 digits"):
        validate_siret("3612003890001X")
    with pytest.raises(InvalidIdentifier, match="empty"):
        validate_siret("")
    # Unicode digits pass str.isdigit() but are not SIRET digits.
    with pytest.raises(InvalidIdentifier):
        validate_siret("٣٦١٢٠٠٣٨٩٠٠٠١٩")


def test_zero_padded_siren_is_not_a_siret() -> None:
    # Found in the IREP registry (Auchan Béthune): SIREN 410409460 padded to
    # 14 digits. Leading zeros keep the 14-digit Luhn sum valid.
    assert luhn_ok("00000410409460")
    with pytest.raises(InvalidIdentifier, match="SIREN 000004104"):
        validate_siret("00000410409460")


def test_la_poste_uses_the_digit_sum_rule() -> None:
    assert validate_siren("356000000") == "356000000"
    # Head office: passes Luhn.
    assert validate_siret("35600000000048") == "35600000000048"
    # Digit sum 15, a multiple of 5, although Luhn fails.
    assert not luhn_ok("35600000000001")
    assert validate_siret("35600000000001") == "35600000000001"
    with pytest.raises(InvalidIdentifier, match="La Poste"):
        validate_siret("35600000000002")


def test_the_la_poste_exception_is_only_for_la_poste() -> None:
    # Same digit sum trick on another SIREN must not pass.
    assert sum(map(int, "36120038900012")) % 5 == 0
    assert not is_valid_siret("36120038900012")


def test_validate_siren() -> None:
    assert validate_siren("361200389") == "361200389"
    with pytest.raises(InvalidIdentifier, match=r"^SIREN 361200388 fails the Luhn check$"):
        validate_siren("361200388")


def test_luhn_ok_rejects_non_digits() -> None:
    assert not luhn_ok("")
    assert not luhn_ok("12a4")
    assert luhn_ok("0")


def test_complete_luhn_appends_the_only_valid_digit() -> None:
    rng = random.Random(1)
    for _ in range(500):
        prefix = str(rng.randrange(10**12, 10**13))
        full = complete_luhn(prefix)
        assert len(full) == len(prefix) + 1 and full.startswith(prefix)
        assert luhn_ok(full)
        others = [prefix + str(d) for d in range(10) if prefix + str(d) != full]
        assert not any(luhn_ok(o) for o in others)


def test_make_siret_builds_valid_siren_and_siret() -> None:
    siret = make_siret("36120038", "0001")
    assert siret[:9] == "361200389"
    assert validate_siret(siret) == siret
    rng = random.Random(2)
    for _ in range(200):
        siret = make_siret(f"{rng.randrange(10**8):08d}", f"{rng.randrange(10**4):04d}")
        validate_siret(siret)
        validate_siren(siret[:9])


def test_make_siret_rejects_bad_parts() -> None:
    with pytest.raises(InvalidIdentifier):
        make_siret("3612003", "0001")
    with pytest.raises(InvalidIdentifier):
        make_siret("36120038", "01")
    with pytest.raises(InvalidIdentifier, match="La Poste"):
        make_siret("35600000", "0001")


def test_invalid_identifier_is_a_value_error() -> None:
    assert issubclass(InvalidIdentifier, ValueError)
