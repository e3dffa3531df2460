"""Tools a test needs from the machine: a local run without one skips, naming it; a CI
run fails (CI must have installed everything, so a missing tool is a broken set-up)."""

from __future__ import annotations

import os

import pytest


def require(tool: str | None, reason: str) -> str:
    if tool is not None:
        return tool
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI=true: a skip would hide the check)")
    pytest.skip(reason)
