"""Reference nomenclatures: NAF rév. 2 activity codes and INSEE headcount bands.

Pure domain objects: they are built from already-parsed records (see
``adapters.reference_data`` for the loaders) and never read files themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# NAF rév. 2 sub-class: 2 digits (division), 2 digits (group + class), 1 letter.
# Sirene v3 writes "22.11Z"; IREP and pre-2008 Sirene write "2211Z".
_NAF_RE = re.compile(r"^(\d{2})\.?(\d{2})([A-Z])$")


class UnknownNafCode(ValueError):
    """A NAF code that is malformed or not in the NAF rév. 2 nomenclature."""


class UnknownHeadcountBand(ValueError):
    """A headcount band code that is not one of INSEE's 16 codes."""


@dataclass(frozen=True)
class NafCode:
    code: str  # sub-class, "22.11Z"
    label: str
    class_code: str  # "22.11"
    group_code: str  # "22.1"
    division: str  # "22"
    section: str  # "C"


def normalize_naf_code(code: str) -> str:
    """Return ``code`` in the Sirene v3 form ``"22.11Z"``.

    Accepts ``"2211Z"``, ``"22.11Z"``, lower case and surrounding spaces. Only
    the shape is checked; use ``NafNomenclature.require`` to check existence.
    """
    match = _NAF_RE.match(code.strip().upper())
    if match is None:
        raise UnknownNafCode(
            f"{code!r} is not a NAF rév. 2 sub-class code (expected like '22.11Z' or '2211Z')"
        )
    division, rest, letter = match.groups()
    return f"{division}.{rest}{letter}"


class NafNomenclature:
    """The 732 sub-classes of NAF rév. 2, indexed by code."""

    def __init__(self, codes: Iterable[NafCode]) -> None:
        self._by_code: dict[str, NafCode] = {}
        for naf in codes:
            if naf.code in self._by_code:
                raise ValueError(f"duplicate NAF code {naf.code}")
            self._by_code[naf.code] = naf

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[NafCode]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    @staticmethod
    def normalize(code: str) -> str:
        return normalize_naf_code(code)

    def get(self, code: str) -> NafCode | None:
        try:
            key = normalize_naf_code(code)
        except UnknownNafCode:
            return None
        return self._by_code.get(key)

    def require(self, code: str) -> NafCode:
        key = normalize_naf_code(code)
        naf = self._by_code.get(key)
        if naf is None:
            raise UnknownNafCode(f"NAF code {key} is not in the NAF rév. 2 nomenclature")
        return naf

    def section_of(self, code: str) -> str:
        return self.require(code).section

    def codes_in_section(self, section: str) -> list[NafCode]:
        wanted = section.strip().upper()
        return [naf for naf in self._by_code.values() if naf.section == wanted]


@dataclass(frozen=True)
class HeadcountBand:
    """One ``trancheEffectifsEtablissement`` code; ``min``/``max`` are None when open."""

    code: str
    label: str
    min: int | None
    max: int | None


class HeadcountBands:
    """The 16 INSEE headcount band codes (``NN``, ``00``, ``01`` … ``53``)."""

    def __init__(self, bands: Iterable[HeadcountBand]) -> None:
        self._by_code: dict[str, HeadcountBand] = {}
        for band in bands:
            if band.code in self._by_code:
                raise ValueError(f"duplicate headcount band {band.code}")
            self._by_code[band.code] = band

    def __len__(self) -> int:
        return len(self._by_code)

    def __iter__(self) -> Iterator[HeadcountBand]:
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip().upper() in self._by_code

    def get(self, code: str) -> HeadcountBand | None:
        return self._by_code.get(code.strip().upper())

    def require(self, code: str) -> HeadcountBand:
        band = self.get(code)
        if band is None:
            known = ", ".join(self._by_code)
            raise UnknownHeadcountBand(
                f"headcount band {code!r} is not an INSEE code (known: {known})"
            )
        return band

    def midpoint(self, code: str) -> int | None:
        """A rough headcount for a band: an ESTIMATE, for planning and priorities only.

        Sirene publishes bands, never headcounts, so this number must not be
        shown or summed as if it were a count of jobs (the job-compensation
        ledger uses declared figures). Closed bands give the integer middle of
        ``[min, max]``; the open top band (``53``, 10,000 and more) gives its
        lower bound; ``NN`` (no employees declared) gives None.
        """
        band = self.require(code)
        if band.min is None:
            return None
        if band.max is None:
            return band.min
        return (band.min + band.max) // 2
