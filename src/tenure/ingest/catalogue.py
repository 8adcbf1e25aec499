"""The metric catalogue: what product events mean for health and churn (TOML, validated)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tenure.kit.errors import ConfigurationError


class Activity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_events: list[str] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)


class KeyFeature(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    events: list[str] = Field(min_length=1)


class MetricCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity: Activity
    key_features: list[KeyFeature] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> MetricCatalogue:
        names = [f.name for f in self.key_features]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"key feature names must be unique: {', '.join(sorted(dupes))}")
        owner: dict[str, str] = {}
        for feature in self.key_features:
            for event in feature.events:
                if event in owner:
                    raise ValueError(
                        f"event {event!r} is in key features {owner[event]!r} and {feature.name!r}"
                    )
                owner[event] = feature.name
        return self

    def feature_of(self, event: str) -> str | None:
        for feature in self.key_features:
            if event in feature.events:
                return feature.name
        return None


def load_catalogue(path: Path | None = None) -> MetricCatalogue:
    """The catalogue at `path`, or the shipped wedding-SaaS default."""
    try:
        if path is None:
            text = files("tenure.ingest").joinpath("catalogue_wedding.toml").read_text()
            where = "the default catalogue"
        else:
            text = Path(path).read_text(encoding="utf-8")
            where = str(path)
        data = tomllib.loads(text)
        return MetricCatalogue.model_validate(data)
    except OSError as exc:
        raise ConfigurationError(f"cannot read metric catalogue {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"metric catalogue {where} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigurationError(f"metric catalogue {where}: {loc}: {first['msg']}") from exc


@cache
def _cached(path: Path | None) -> MetricCatalogue:
    return load_catalogue(path)


def current_catalogue() -> MetricCatalogue:
    """The catalogue of this installation (TENURE_METRIC_CATALOGUE), loaded once."""
    from tenure.config import get_settings

    return _cached(get_settings().metric_catalogue)


def feature_bits(catalogue: MetricCatalogue) -> dict[str, int]:
    """Event name -> bit of its key feature (bit k = the catalogue's k-th key feature)."""
    return {e: 1 << k for k, f in enumerate(catalogue.key_features) for e in f.events}
