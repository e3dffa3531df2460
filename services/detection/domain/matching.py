"""Deduplication: is a newly reported project one we already track?

The rule: **one firm has one live project of a given kind in a territory.** Two reports
are the same project when they are in the same territory, of the same kind, and from the
same firm — the same SIREN when both reports have one, otherwise the same normalised
firm name when both have one. Without either, nothing proves it is the same firm, so
they are different projects (a duplicate is cheaper to merge by hand than two firms'
projects wrongly fused).

Two SIRENs that differ mean two firms, even under one name (homonyms are common among
small firms): the name is only the fallback for reports without a SIREN, typically an
exogenous project declared by the crisis cell before the firm is registered.

A resubmitted survey is matched earlier, by its lead id (the caller does that); this
rule catches the same project reported by another visit or another source.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = ["LEGAL_FORMS", "ProjectKey", "normalise_name", "same_project"]

#: Words that say how a firm is organised, not which firm it is.
LEGAL_FORMS: Final = frozenset({"sa", "sas", "sarl", "sasu", "eurl", "groupe", "france"})

# Dots are dropped rather than turned into spaces so that "S.A.S." reads as "sas".
_DOTS = re.compile(r"\.")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class ProjectKey:
    siren: str | None
    kind: str
    territory_id: str
    firm_name: str | None


def normalise_name(name: str | None) -> str | None:
    """Casefolded, unaccented, without legal forms or punctuation; None when nothing is left.

    ``"Blackstar S.A.S."``, ``"BLACKSTAR"`` and ``"Blackstar  France"`` all give
    ``"blackstar"``.
    """
    if name is None:
        return None
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    unaccented = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = _NOT_WORD.sub(" ", _DOTS.sub("", unaccented)).split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept) or None


def same_project(a: ProjectKey, b: ProjectKey) -> bool:
    """Whether two keys designate the same project (see the module docstring)."""
    if a.territory_id != b.territory_id or a.kind != b.kind:
        return False
    if a.siren and b.siren:
        return a.siren == b.siren
    name_a, name_b = normalise_name(a.firm_name), normalise_name(b.firm_name)
    return name_a is not None and name_a == name_b
