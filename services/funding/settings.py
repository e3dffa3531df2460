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
    funder_feed_poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how often a funder feed stream looks for entries another replica"
        " committed (this process's commits wake its streams at once)",
    )
    funder_feed_heartbeat_s: float = Field(
        default=15.0, gt=0, le=300, description="a comment line on an idle feed stream"
    )
    funder_feed_max_stream_s: float = Field(
        default=900.0,
        gt=0,
        description="a feed stream ends after this long; the client reconnects with"
        " Last-Event-ID, and its token is checked again",
    )
    funder_feed_batch: int = Field(
        default=200, ge=1, le=1000, description="entries read at once by a feed stream"
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="a webhook receiver has this long to answer"
    )
    webhook_retry_base_s: float = Field(
        default=5.0, gt=0, description="the first retry's delay; it doubles at each failure"
    )
    webhook_retry_max_s: float = Field(
        default=3600.0, gt=0, description="the longest delay between two retries"
    )
    webhook_poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often the delivery worker looks for work"
    )

    @property
    def webhooks_may_target_loopback(self) -> bool:
        """Loopback and private addresses as webhook URLs: in development and test only."""
        return self.environment in ("development", "test")
