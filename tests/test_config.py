from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tenure.config import Settings
from tenure.kit.errors import ConfigurationError


class TestSecretKey:
    def test_development_generates_and_keeps_a_private_secret(self, tmp_path: Path) -> None:
        settings = Settings(env="development", data_dir=tmp_path / "data")
        first = settings.resolved_secret_key()
        again = Settings(env="development", data_dir=tmp_path / "data").resolved_secret_key()
        assert first == again and len(first) >= 40
        mode = stat.S_IMODE((tmp_path / "data" / "secret_key").stat().st_mode)
        assert mode == 0o600

    def test_production_refuses_to_start_without_a_secret(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="TENURE_SECRET_KEY is required"):
            Settings(env="production", data_dir=tmp_path).resolved_secret_key()
        assert not (tmp_path / "secret_key").exists()

    def test_production_refuses_a_short_secret(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="at least 32"):
            Settings(env="production", secret_key="short").resolved_secret_key()


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENURE_DATABASE_URL", "postgres://u@db:5432/tenure")
    monkeypatch.setenv("TENURE_PORT", "9000")
    monkeypatch.setenv("TENURE_LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@db:5432/tenure"
    assert settings.port == 9000
    assert settings.log_level == "DEBUG"


def test_defaults_are_an_embedded_sqlite_file() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url == "sqlite:///./tenure.db"
    assert settings.redis_url is None
    assert not settings.cookies_secure
