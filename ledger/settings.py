"""Configuration from the environment (SPEC §3)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every LEDGER_* variable, with its default."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    database_url: str = "sqlite:///./var/ledger.sqlite"
    timezone: str = "UTC"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    sla_tick_seconds: Annotated[float, Field(gt=0)] = 10.0
    rate_limit: Annotated[float, Field(ge=0)] = 0.0
    pool_size: Annotated[int, Field(ge=1, le=200)] = 10
