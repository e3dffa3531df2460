"""Settings of the detection service: environment variables prefixed `DETECTION_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DetectionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DETECTION_", extra="ignore")

    service_name: ClassVar[str] = "detection"
    http_port: int = 8003
