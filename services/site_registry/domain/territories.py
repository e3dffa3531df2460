"""What a Territoire d'industrie's identifier says about it."""

from __future__ import annotations


def region_of(territory_id: str) -> str | None:
    """The INSEE region code an ANCT identifier carries: `ti-3205` is in region 32
    (Hauts-de-France), `ti-0101` in 01 (Guadeloupe). None for an identifier of another
    shape. Checked against the regions of every territory's communes in the tests."""
    code = territory_id.removeprefix("ti-")
    return code[:2] if len(code) >= 4 and code[:4].isdigit() else None
