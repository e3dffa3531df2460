"""Settings of the site registry: environment variables prefixed `SITE_REGISTRY_`."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SiteRegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SITE_REGISTRY_", extra="ignore")

    service_name: ClassVar[str] = "site_registry"
    http_port: int = 8001
