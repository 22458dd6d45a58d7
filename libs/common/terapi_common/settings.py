"""Settings read once from `TERAPI_*` environment variables and validated at boot."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".terapi"


class TerapiSettings(BaseSettings):
    """What every service needs: where to listen, the database, the broker and the key ring."""

    model_config = SettingsConfigDict(env_prefix="TERAPI_", extra="ignore")

    host: str = "0.0.0.0"  # noqa: S104  # a pod must listen on its interface, not loopback
    port: int = Field(default=3003, ge=1, le=65535)
    public_url: AnyHttpUrl = AnyHttpUrl("http://localhost:3003")
    home: Path = Field(default_factory=default_home)

    database_url: SecretStr | None = None
    amqp_url: SecretStr | None = None
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    amqp_prefetch: int = Field(default=32, ge=1)
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    auto_migrate: bool = True
    # Processes serving one service on one port (SO_REUSEPORT), to use every core of a node.
    workers: int = Field(default=1, ge=1, le=64)
    reuse_port: bool = False

    # Key ring: "1:<base64>,2:<base64>" or a single base64 key (version 1).
    # The highest version encrypts unless `encryption_key_version` names another; every
    # listed version decrypts, so keys can rotate (docs/deploy.md).
    encryption_key: SecretStr | None = None
    encryption_key_version: int | None = Field(default=None, ge=1, le=255)

    # How long housekeeping keeps rows: the Logs view's operations, and the record of which
    # events each consumer handled (it only has to outlive a redelivery).
    log_retention_days: int = Field(default=30, ge=1)
    dedupe_retention_days: int = Field(default=7, ge=1)

    # Extra provider catalog files, `:`-separated, validated at start-up.
    providers_path: str | None = None

    log_level: str = "info"
    log_format: str = "auto"  # auto | json | console
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.lower()
        if value not in {"debug", "info", "warning", "error"}:
            raise ValueError("log_level must be debug, info, warning or error")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in {"auto", "json", "console"}:
            raise ValueError("log_format must be auto, json or console")
        return value

    @property
    def public_base(self) -> str:
        """The public URL without a trailing slash, for building links."""
        return str(self.public_url).rstrip("/")


class WebhookSettings(BaseSettings):
    """Delivery tuning for the webhooks service."""

    model_config = SettingsConfigDict(env_prefix="TERAPI_WEBHOOK_", extra="ignore")

    timeout_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    first_retry_seconds: float = Field(default=5.0, gt=0)
    max_retry_seconds: float = Field(default=6 * 3600.0, gt=0)
    # Self-hosted Terapi usually delivers to the app on its own network; a multi-tenant
    # deployment turns this off so webhook URLs cannot reach private addresses (SSRF).
    allow_private_targets: bool = True
    # Delivered and abandoned webhooks are kept this long (pending ones always).
    retention_days: int = Field(default=30, ge=1)
