"""The funding API's request models (responses are plain JSON documents)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.campaigns import ProjectKind
from shared.events.funding import AidType, FirmSize


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PerimeterIn(_In):
    scale: Literal["national", "region", "department", "epci", "territory"]
    codes: list[str] = Field(default_factory=list, examples=[["32"]])


class SchemeIn(_In):
    id: str = Field(min_length=2, max_length=120, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    name: str = Field(min_length=2, max_length=300)
    funders: list[str] = Field(min_length=1)
    perimeter: PerimeterIn
    aid_type: AidType
    beneficiaries: list[FirmSize] = Field(default_factory=list, description="empty: every size")
    naf_sections: list[str] = Field(default_factory=list)
    naf_prefixes: list[str] = Field(default_factory=list, examples=[["22", "25.62"]])
    kinds: list[ProjectKind] = Field(default_factory=list)
    themes: list[str] = Field(default_factory=list)
    rate_min_pct: float | None = None
    rate_max_pct: float | None = None
    amount_min_eur: int | None = None
    amount_max_eur: int | None = None
    capex_min_eur: int | None = None
    capex_max_eur: int | None = None
    opens_on: date | None = None
    closes_on: date | None = None
    source_url: str | None = None
    source: str = Field(default="", description="where the scheme's figures come from")
    de_minimis: bool = False


class RoundIn(_In):
    name: str
    closes_on: date | None = None
    envelope_eur: int | None = Field(default=None, ge=0)
    quota: int | None = Field(default=None, ge=0)


class CallIn(_In):
    id: str = Field(min_length=2, max_length=120)
    scheme_id: str
    name: str
    rounds: list[RoundIn] = Field(min_length=1)
    source_url: str | None = None
    source: str = ""


class RoundResultIn(_In):
    round: str
    decided_on: date
    applications: int = Field(ge=0, examples=[50])
    selected: int = Field(ge=0, examples=[18])
    per_territory: dict[str, int] = Field(default_factory=dict, examples=[{"ti-3205": 18}])


class ApplicationIn(_In):
    project_id: uuid.UUID
    scheme_id: str
    amount_requested_eur: int = Field(gt=0)


class AwardIn(_In):
    amount_eur: int = Field(gt=0)
    decided_on: date


class RefusalIn(_In):
    reason: str = Field(min_length=3, max_length=500)
    decided_on: date


class PaymentIn(_In):
    amount_eur: int = Field(gt=0)
    paid_on: date
