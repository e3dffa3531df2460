"""One scrubber for the free text that leaves a service in an event.

A consultant types what the firm said into a lead's description; a crisis cell types why
a project was abandoned. People put a phone number or an e-mail address in such notes,
and an event is read by every consumer of its topic and kept as long as the topic. So the
free text of an event passes `scrub` when the event is built: direct identifiers of a
person are replaced by a readable placeholder, and the original stays in the owning
service's database.

Masked: e-mail addresses (also written ``nom(at)domaine.fr``), French phone numbers in
every usual format (``06 12 34 56 78``, ``06.12.34.56.78``, ``0612345678``,
``+33 6 12 34 56 78``, ``+33 (0)6…``, ``0033 6…``) and other international numbers, IBANs
and French social security numbers (NIR); and the names the caller knows belong to a
person (a survey's contact: ``names=``), whole or by each of their words. Left alone:
what is not a person's — SIRET (14 digits) and SIREN (9 digits) of a firm, amounts, job
counts, dates, percentages. A name the caller does not know cannot be told from a firm's
or a place's: free text that names someone else keeps the name.

Pure Python, a few compiled regular expressions: about a microsecond per hundred
characters. `scrub` is idempotent (a placeholder is never masked again).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, overload

EMAIL: Final = "[e-mail]"
PHONE: Final = "[téléphone]"
IBAN: Final = "[IBAN]"
NIR: Final = "[n° de sécurité sociale]"
NAME: Final = "[nom]"

_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]*"  # local part
    r"\s?(?:@|\(at\)|\[at\]|\{at\}|\(arobase\)|\[arobase\])\s?"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"  # first label
    r"(?:(?:\.|\s?(?:\(dot\)|\[dot\]|\(point\)|\[point\])\s?)"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+",
    re.IGNORECASE,
)

# An IBAN: country, check digits, then 11 to 30 letters or digits, grouped by 4 or not.
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}(?:[ \-]?[A-Z0-9]{4}){2,7}(?:[ \-]?[A-Z0-9]{1,3})?\b")

# A NIR: sex (1-4, 7, 8), year, month (01-12, or 20-99 when unknown), department
# (2 digits, 2A, 2B), commune, order number, then the 2-digit key, spaced or not.
_NIR = re.compile(
    r"(?<![0-9A-Za-z])[1-478] ?[0-9]{2} ?(?:0[1-9]|1[0-2]|[2-9][0-9]) ?(?:[0-9]{2}|2[AB])"
    r" ?[0-9]{3} ?[0-9]{3}(?: ?[0-9]{2})?(?![0-9])",
    re.IGNORECASE,
)

_SEP = r"[ .\-]?"
# French numbers: 0 then 9 digits (two by two, or in one block), or +33 / 0033 then 9
# digits, the national 0 sometimes kept in brackets. Not glued to other digits, so that
# a SIRET (14 digits) or a longer reference never loses ten of its digits.
_PHONE_FR = re.compile(
    r"(?<![0-9])(?:"
    r"(?:\+|00)\s?33\s?(?:\(0\)\s?)?[1-9]"
    r"|0[1-9]"
    rf")(?:{_SEP}[0-9]{{2}}){{4}}(?![0-9])"
)
# Other international numbers: + or 00, a country code, then 8 to 14 more digits,
# however grouped; not when the figure is an amount or a count (``+1 200 000 €``).
_PHONE_INTL = re.compile(
    r"(?<![0-9\w])(?:\+|00)\s?[1-9][0-9]{0,2}(?:\s?\(0\))?(?:[ .\-/]?[0-9]){8,14}(?![0-9])"
    r"(?!\s?(?:€|eur\b|euros?\b|k€|m€|%|emplois?\b|postes?\b|salariés?\b|jobs?\b|ha\b|m2|m²))",
    re.IGNORECASE,
)


def _iban_or_text(match: re.Match[str]) -> str:
    raw = match.group(0)
    compact = re.sub(r"[ \-]", "", raw)
    if not 15 <= len(compact) <= 34 or not any(c.isdigit() for c in compact[4:]):
        return raw
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    # A valid checksum, or the shape of a French IBAN (a typo is still somebody's account).
    if int(number) % 97 == 1 or (compact.startswith("FR") and len(compact) == 27):
        return IBAN
    return raw


def _nir_or_text(match: re.Match[str]) -> str:
    raw = match.group(0)
    compact = raw.replace(" ", "").upper()
    if len(compact) == 13 or (len(compact) == 15 and raw.count(" ") >= 5):
        return NIR  # without its key, or written the way a NIR is: surely one
    if len(compact) != 15:
        return raw
    body = compact[:13].replace("2A", "19", 1).replace("2B", "18", 1)
    if not body.isdigit():
        return raw
    # 15 digits in one block: only a true NIR (its key checks) is masked, not a reference.
    return NIR if 97 - int(body) % 97 == int(compact[13:]) else raw


def _names_pattern(names: Iterable[str | None]) -> re.Pattern[str] | None:
    words = {n.strip() for n in names if n and n.strip()}
    words |= {w for n in list(words) for w in re.split(r"[\s,;/]+", n) if len(w) >= 3}
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@overload
def scrub(text: str, *, names: Iterable[str | None] = ()) -> str: ...
@overload
def scrub(text: None, *, names: Iterable[str | None] = ()) -> None: ...
def scrub(text: str | None, *, names: Iterable[str | None] = ()) -> str | None:
    """`text` with every direct identifier of a person replaced by a placeholder; `names`
    are persons' names known to the caller (a survey's contact), masked as well."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    known = _names_pattern(names)
    if known is not None:
        text = known.sub(NAME, text)
    if not any(c.isdigit() for c in text):
        return text
    text = _IBAN.sub(_iban_or_text, text)
    text = _NIR.sub(_nir_or_text, text)
    text = _PHONE_FR.sub(PHONE, text)
    return _PHONE_INTL.sub(PHONE, text)
