"""Opaque page cursors: the sort key of a page's last item, base64url-encoded.

A cursor is a tuple of strings. Decoding checks the shape (how many parts) and lets the
caller parse each part; anything that fails is a `BadCursor` (400), never a 500, so a
client that edits or truncates a cursor gets a readable refusal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from shared.errors import BadCursor

T = TypeVar("T")

_SEPARATOR = "|"


def encode_cursor(*parts: str) -> str:
    if any(_SEPARATOR in p for p in parts):
        raise ValueError(f"cursor parts may not contain {_SEPARATOR!r}")
    raw = _SEPARATOR.join(parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> tuple[str, ...]:
    """The cursor's `arity` parts, or BadCursor."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise _bad(cursor) from exc
    parts = tuple(raw.split(_SEPARATOR))
    if not raw or len(parts) != arity:
        raise _bad(cursor)
    return parts


def parse_cursor(cursor: str, parse: Callable[[tuple[str, ...]], T], arity: int) -> T:
    """Decode and parse in one step: a part that does not parse is a BadCursor too."""
    parts = decode_cursor(cursor, arity)
    try:
        return parse(parts)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(cursor) from exc


def _bad(cursor: str) -> BadCursor:
    shown = cursor if len(cursor) <= 80 else cursor[:77] + "..."
    return BadCursor(f"cursor {shown!r} is not one this API returned")
