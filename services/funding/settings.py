"""Settings of the funding service: environment variables prefixed `FUNDING_`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FundingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FUNDING_", extra="ignore")

    service_name: ClassVar[str] = "funding"
    http_port: int = 8004
    load_seed: bool = Field(default=True, description="load the curated real schemes at start")
    propose_top: int = Field(
        default=10, ge=1, description="matches proposed to funders: the N best-ranked schemes"
    )
    #: aid-intensity zone per territory (AFR map); territories not listed are "none"
    zones: dict[str, Literal["afr_a", "afr_c", "none"]] = Field(default_factory=dict)
