"""SIREN / SIRET identifiers (INSEE Sirene).

A SIREN (9 digits) identifies a legal unit; a SIRET (14 digits) is the SIREN
followed by a 5-digit NIC and identifies one establishment. Both end with a
Luhn check digit, with one historical exception: La Poste (SIREN 356000000)
has more establishments than a single Luhn-checked NIC range allows, so INSEE
numbers its SIRETs so that the sum of the 14 digits is a multiple of 5.
"""

from __future__ import annotations

SIREN_LENGTH = 9
SIRET_LENGTH = 14
LA_POSTE_SIREN = "356000000"

# ASCII digit -> its value, and -> the digit sum of its double (7 -> 14 -> 5).
# With bytes.translate and sum() the whole Luhn sum runs in C, which matters
# when the national Sirene file brings tens of millions of SIRETs to check.
_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


class InvalidIdentifier(ValueError):
    """A SIREN or SIRET that is malformed or fails its check digit."""


def _luhn_sum(digits: str) -> int:
    # Luhn doubles every second digit counting from the right, so slicing from
    # the end keeps one function for SIREN (9) and SIRET (14) lengths.
    # Callers have checked that `digits` is ASCII digits only.
    raw = digits.encode("ascii")
    return sum(raw[-1::-2].translate(_PLAIN)) + sum(raw[-2::-2].translate(_DOUBLED))


def luhn_ok(digits: str) -> bool:
    """True if ``digits`` (a non-empty string of ASCII digits) passes the Luhn check."""
    if not digits or not (digits.isascii() and digits.isdigit()):
        return False
    return _luhn_sum(digits) % 10 == 0


def complete_luhn(prefix: str) -> str:
    """Append the one digit that makes ``prefix`` + digit pass the Luhn check."""
    if not prefix or not (prefix.isascii() and prefix.isdigit()):
        raise InvalidIdentifier(f"Luhn prefix must be digits, got {prefix!r}")
    # Appending a digit shifts every existing digit one place left, so the
    # prefix is summed as if a 0 were already in the check position.
    return prefix + str((10 - _luhn_sum(prefix + "0") % 10) % 10)


def make_siren(prefix8: str) -> str:
    """Build a valid SIREN from its first 8 digits."""
    if len(prefix8) != SIREN_LENGTH - 1:
        raise InvalidIdentifier(f"SIREN prefix must be 8 digits, got {len(prefix8)}")
    return complete_luhn(prefix8)


def make_siret(siren8: str, nic4: str) -> str:
    """Build a valid SIRET from 8 SIREN digits and 4 NIC digits.

    Both check digits are completed: the SIREN's own (9th digit) and the
    SIRET's (14th digit), so the result passes ``validate_siret``. Intended for
    generated data; do not use it with La Poste's SIREN.
    """
    if len(nic4) != 4 or not (nic4.isascii() and nic4.isdigit()):
        raise InvalidIdentifier(f"NIC prefix must be 4 digits, got {nic4!r}")
    siren = make_siren(siren8)
    if siren == LA_POSTE_SIREN:
        raise InvalidIdentifier("make_siret cannot build La Poste SIRETs")
    return complete_luhn(siren + nic4)


def _clean(value: str) -> str:
    # Sirene exports and people write SIRETs as "361 200 389 00019".
    return value.replace(" ", "").replace("\u00a0", "")


def validate_siren(value: str) -> str:
    """Return the SIREN without spaces, or raise ``InvalidIdentifier``."""
    siren = _clean(value)
    if len(siren) != SIREN_LENGTH or not (siren.isascii() and siren.isdigit()):
        raise InvalidIdentifier(f"SIREN must be {SIREN_LENGTH} digits, got {_describe(siren)}")
    if not luhn_ok(siren):
        raise InvalidIdentifier(f"SIREN {siren} fails the Luhn check")
    return siren


def validate_siret(value: str) -> str:
    """Return the SIRET without spaces, or raise ``InvalidIdentifier``.

    Besides the SIRET's own check digit, the embedded SIREN must pass its
    check too: a SIREN left-padded with zeros to 14 digits (seen in the IREP
    registry, e.g. ``00000410409460``) passes the 14-digit Luhn check because
    leading zeros do not change a Luhn sum, yet is not a SIRET.
    """
    siret = _clean(value)
    if len(siret) != SIRET_LENGTH or not (siret.isascii() and siret.isdigit()):
        raise InvalidIdentifier(f"SIRET must be {SIRET_LENGTH} digits, got {_describe(siret)}")
    siren = siret[:SIREN_LENGTH]
    if siren == LA_POSTE_SIREN:
        # La Poste's head office (35600000000048) passes Luhn; the other
        # establishments follow the digit-sum rule instead.
        if sum(map(int, siret)) % 5 == 0 or luhn_ok(siret):
            return siret
        raise InvalidIdentifier(
            f"SIRET {siret} (La Poste) fails the La Poste check: digit sum not a multiple of 5"
        )
    if not luhn_ok(siret):
        raise InvalidIdentifier(f"SIRET {siret} fails the Luhn check")
    if not luhn_ok(siren):
        raise InvalidIdentifier(f"SIRET {siret} has SIREN {siren}, which fails the Luhn check")
    return siret


def is_valid_siret(value: str) -> bool:
    try:
        validate_siret(value)
    except InvalidIdentifier:
        return False
    return True


def _describe(value: str) -> str:
    if value.isascii() and value.isdigit():
        return str(len(value))
    if not value:
        return "an empty value"
    return f"{value!r}"
