"""The page-cursor codec, the clock every service shares, and the command bus's input check."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from shared.clock import Clock
from shared.command_bus import ControlCharacters, refuse_control_characters
from shared.cursor import decode_cursor, encode_cursor, parse_cursor
from shared.errors import BadCursor


def test_a_cursor_round_trips_its_parts() -> None:
    parts = ("2026-12-01", "3", str(uuid.uuid4()))

    assert decode_cursor(encode_cursor(*parts), 3) == parts


@pytest.mark.parametrize(
    "cursor",
    ["", "%%%", "not base64!", encode_cursor("a", "b"), encode_cursor("only-one") + "x"],
)
def test_a_cursor_this_api_did_not_hand_out_is_a_bad_cursor(cursor: str) -> None:
    with pytest.raises(BadCursor, match="is not one this API returned"):
        decode_cursor(cursor, 3)


def test_a_part_that_does_not_parse_is_a_bad_cursor_not_a_crash() -> None:
    cursor = encode_cursor("9999-99-99", "not-a-uuid")

    with pytest.raises(BadCursor):
        parse_cursor(cursor, lambda p: (date.fromisoformat(p[0]), uuid.UUID(p[1])), 2)


def test_a_huge_cursor_is_quoted_short_in_the_message() -> None:
    with pytest.raises(BadCursor) as refused:
        decode_cursor("A" * 10_000 + "!", 1)

    assert len(refused.value.message) < 200


def test_parts_may_not_contain_the_separator() -> None:
    with pytest.raises(ValueError):
        encode_cursor("a|b")


def test_today_is_the_date_in_france_not_in_utc() -> None:
    late_in_summer = datetime(2026, 7, 14, 22, 30, tzinfo=UTC)  # 00:30 on the 15th in Paris
    late_in_winter = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 on the 1st in Paris

    assert Clock.fixed(late_in_summer).today() == date(2026, 7, 15)
    assert Clock.fixed(late_in_winter).today() == date(2026, 12, 1)
    assert Clock.fixed(late_in_summer).now() == late_in_summer


# --- the command bus refuses control characters in any string of a command's input ----


@pytest.mark.parametrize("text", ["Ö\x00q", "a\x1fb", "x\x7f"])
def test_control_characters_anywhere_in_the_input_are_refused_naming_the_field(
    text: str,
) -> None:
    body = {"projects": [{"description": "ok", "contact": {"name": text}}]}

    with pytest.raises(ControlCharacters, match=r"projects\.0\.contact\.name"):
        refuse_control_characters(body)


def test_tabs_and_new_lines_are_text() -> None:
    refuse_control_characters({"comments": "line 1\r\nline 2\tend", "n": 3, "none": None})
