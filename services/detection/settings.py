"""Settings of the detection service: environment variables prefixed `DETECTION_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DetectionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DETECTION_", extra="ignore")

    service_name: ClassVar[str] = "detection"
    http_port: int = 8003
    #: Processes that decode and fold the events of a `rebuild-ledger` (0: in the CLI's
    #: own process). Decoding is per-message CPU: one process reads Kafka several times
    #: faster than it validates what it reads. They pay only with idle cores beside the
    #: database and the broker (docs/benchmarks.md, section 4): off by default.
    rebuild_workers: int = Field(default=0, ge=0, le=32)
