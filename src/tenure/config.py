"""Settings: one class, environment variables prefixed TENURE_ (and a .env file)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenure.kit.errors import ConfigurationError
from tenure.kit.money import FxRates

Environment = Literal["development", "test", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TENURE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Field("development", description="development, test or production")
    database_url: str = Field("sqlite:///./tenure.db", description="SQLAlchemy URL")
    redis_url: str | None = Field(None, description="Redis URL; enables distributed workers")
    secret_key: SecretStr | None = Field(
        None, description="Signs CSRF tokens; required in production"
    )
    data_dir: Path = Field(
        Path(".tenure"), description="Where local state (generated secret) lives"
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    session_max_age_hours: int = Field(24 * 7, ge=1)
    secure_cookies: bool | None = Field(None, description="Defaults to true in production")
    ingest_max_request_bytes: int = Field(
        16 * 2**20, ge=64 * 1024, description="Cap on a decompressed tracking request"
    )
    ingest_rate_limit: str = Field(
        "200/second", description="Tracking requests per write key (limits notation)"
    )
    ingest_max_clock_skew_hours: float = Field(
        24, ge=0, description="Larger sentAt gaps are replays, not clock skew: not corrected"
    )
    metric_catalogue: Path | None = Field(
        None, description="TOML file of event meanings (default: the wedding SaaS catalogue)"
    )
    reporting_currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    fx_rates: dict[str, float] = Field(
        default_factory=dict, description='Value of one unit in USD, e.g. {"ARS": 0.0011}'
    )
    allow_private_destinations: bool = Field(
        False, description="Let webhooks, Slack and SMS reach loopback/private addresses"
    )
    schedules: dict[str, str] = Field(
        default_factory=dict,
        description='Cron per periodic job, e.g. {"hub.prune_outbox": "0 4 * * *"} or "off"',
    )
    webhook_disable_after_hours: float = Field(
        72, gt=0, description="An endpoint failing without a success for this long is disabled"
    )
    webhook_timeout_seconds: float = Field(15, gt=0, le=120)
    webhook_lease_seconds: float = Field(
        300, gt=0, description="A sender's claim on deliveries; a crashed sender's lapses then"
    )
    churn_horizon_days: int = Field(
        60, ge=7, le=365, description="Churn predictions look this many days ahead"
    )
    churn_grace_days: int = Field(
        14, ge=0, le=90, description="A cancellation undone within this many days is no churn"
    )
    churn_alert_threshold: float = Field(
        0.25, gt=0, lt=1, description="Churn probability from which an account is flagged"
    )
    churn_bands: tuple[float, float, float] = Field(
        (0.10, 0.25, 0.50),
        description="Probabilities where the medium, high and critical churn bands start",
    )
    churn_min_churns: int = Field(
        50, ge=1, description="Churns a training set needs (a fifth of it in validation)"
    )
    churn_validation_snapshots: int = Field(
        3, ge=1, le=24, description="The latest matured snapshots kept for validation"
    )
    worker_poll_seconds: float = Field(
        0.2, gt=0, le=60, description="How often an idle worker looks at the outbox"
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        # psycopg 3 is the PostgreSQL driver; accept the URLs people paste from their hosts.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("churn_bands")
    @classmethod
    def _ordered_bands(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not 0 < value[0] < value[1] < value[2] < 1:
            raise ValueError("churn bands must be increasing probabilities between 0 and 1")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def fx(self) -> FxRates:
        return FxRates.with_overrides(self.reporting_currency, self.fx_rates)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def cookies_secure(self) -> bool:
        return self.is_production if self.secure_cookies is None else self.secure_cookies

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The secret key; in development a random one is generated once and kept in data_dir."""
        if self.secret_key is not None:
            value = self.secret_key.get_secret_value()
            if self.is_production and len(value) < 32:
                raise ConfigurationError("TENURE_SECRET_KEY must be at least 32 characters")
            return value
        if self.is_production:
            raise ConfigurationError("TENURE_SECRET_KEY is required when TENURE_ENV=production")
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            value = secrets.token_urlsafe(48)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
        except FileExistsError:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot store the secret key in {path}: {exc.strerror}"
            ) from exc
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
