"""Configuration from MF_* environment variables, shared by every service."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Every variable is documented in docs/operations.md; services subclass this."""

    model_config = SettingsConfigDict(env_prefix="MF_", extra="ignore")

    service_name: str
    database_url: str = Field(description="postgresql+asyncpg://user:password@host:port/database")
    kafka_bootstrap: str = "127.0.0.1:19092"
    redis_url: str = "redis://127.0.0.1:16379/0"
    jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-in-production-please")
    jwt_issuer: str = "memberflow"
    jwt_audience: str = "memberflow"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    topic_prefix: str = ""
    topic_partitions: int = Field(default=3, ge=1)
    create_topics: bool = True
    log_level: str = "INFO"
    db_pool_size: int = Field(default=10, ge=1)
    consumer_batch_size: int = Field(default=500, ge=1)
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval_ms: int = Field(default=1000, ge=1)
    run_consumer: bool = True
    run_relay: bool = True
    run_jobs: bool = True
