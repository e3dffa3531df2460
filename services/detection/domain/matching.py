"""Look-alikes: does a newly reported project look like one we already track?

A report becomes the same project as an earlier one only through its **lead id** (a
resubmitted survey: the caller checks that first). Anything else that merely *looks*
the same is flagged, never merged: two plants of one firm often do have two projects of
one kind, and merging them silently lost jobs from the ledger. The crisis cell decides.

Two reports look alike when they are in the same territory, of the same kind, and from
the same firm — the same SIREN when both reports have one, otherwise the same normalised
firm name when both have one. Without either, nothing suggests it is the same firm, so
no flag is raised.

Two SIRENs that differ mean two firms, even under one name (homonyms are common among
small firms): the name is only the fallback for reports without a SIREN, typically an
exogenous project declared by the crisis cell before the firm is registered.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = ["LEGAL_FORMS", "ProjectKey", "lookalike_reason", "normalise_name", "same_project"]

#: Words that say how a firm is organised, not which firm it is.
LEGAL_FORMS: Final = frozenset({"sa", "sas", "sarl", "sasu", "eurl", "groupe", "france"})

# Dots are dropped rather than turned into spaces so that "S.A.S." reads as "sas".
_DOTS = re.compile(r"\.")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class ProjectKey:
    """Whose project of which kind, in which territory, reported where: what a project is
    detected with and what look-alikes are compared on."""

    siren: str | None
    kind: str
    territory_id: str
    firm_name: str | None
    site_id: str | None = None  # where it was reported (None: declared by the crisis cell)


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


def lookalike_reason(existing: ProjectKey, new: ProjectKey) -> str | None:
    """Why ``new`` may be the same project as ``existing``, readably; None if it is not."""
    if not same_project(existing, new):
        return None
    if existing.siren and new.siren:
        firm = f"the same firm (SIREN {new.siren})"
    else:
        firm = f"the same firm name ({normalise_name(new.firm_name)!r})"
    where = ""
    if new.site_id and existing.site_id and new.site_id != existing.site_id:
        where = f", reported at another site ({new.site_id}; the other at {existing.site_id})"
    elif new.site_id and new.site_id == existing.site_id:
        where = f", reported at the same site ({new.site_id}) under another lead"
    elif new.site_id is None:
        where = ", declared by the crisis cell"
    return f"{firm} and the same kind ({new.kind}) in {new.territory_id}{where}"
