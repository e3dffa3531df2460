"""Settings of the campaigns service: environment variables prefixed `CAMPAIGNS_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CAMPAIGNS_", extra="ignore")

    service_name: ClassVar[str] = "campaigns"
    http_port: int = 8002

    # Defaults of a campaign launched by a closure shock; the crisis cell changes them.
    default_budget_days: float = Field(default=150.0, gt=0, description="Béthune: 150 days")
    default_cost_per_visit_days: float = Field(
        default=0.75, gt=0, description="a half-day visit plus a quarter-day of preparation"
    )
    default_daily_cap: int = Field(default=2, ge=1, description="visits per consultant per day")
    default_period_weeks: int = Field(default=26, ge=1, le=156)
    default_roster: list[str] = Field(
        default=["consultant-1", "consultant-2", "consultant-3"],
        description="consultant ids (the `sub` of their tokens) staffed on a new campaign"
        " of a territory without a roster of its own (`territory_rosters`)",
    )
    territory_rosters: dict[str, list[str]] = Field(
        default_factory=dict,
        description='each territory\'s consultants, e.g. {"ti-3205": ["marie.dupont"]}:'
        " a territory's new campaigns are staffed with its own roster, never another's",
    )
