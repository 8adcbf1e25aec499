"""Tables of the health domain: scorecards, score history, overrides, seasonal baselines."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base, JSONType, new_id


class ScorecardVersion(Base):
    """One saved version of a scorecard (the configuration is never edited in place)."""

    __tablename__ = "scorecards"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    # The latest version of each key is the one in use; retired keys are inactive.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))


class HealthScore(Base):
    """An account's score on one day (the day's latest computation), with its explanation."""

    __tablename__ = "health_scores"
    __table_args__ = (Index("ix_health_scores_day", "scored_on"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    scored_on: Mapped[date] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    # None when no component had any data.
    score: Mapped[float | None]
    risk_level: Mapped[str | None] = mapped_column(String(32))
    scorecard_key: Mapped[str] = mapped_column(String(64))
    scorecard_version: Mapped[int]
    # {component: {"score", "weight", "contribution"}}; missing components are listed apart.
    components: Mapped[dict[str, Any]]
    missing: Mapped[list[str]]
    # [{"signal", "impact", "text"}], most costly first.
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # {signal: value} as measured (None where there was no data).
    signals: Mapped[dict[str, Any]]
    delta_7: Mapped[float | None]
    delta_30: Mapped[float | None]
    # Set on a parent account: its score is rolled up from this many children.
    children: Mapped[int] = mapped_column(default=0)


class HealthOverride(Base):
    """A CSM's judgement placed over the computed score until it expires or is removed."""

    __tablename__ = "health_overrides"
    __table_args__ = (Index("ix_health_overrides_account", "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    score: Mapped[float | None]
    risk_level: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(1000))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[uuid.UUID | None]
    removed_at: Mapped[datetime | None]


class SeasonalBaseline(Base):
    """What is expected of an account of a category in a hemisphere and calendar month,
    learned from the portfolio on `learned_on` (robust statistics over surviving accounts)."""

    __tablename__ = "health_baselines"

    learned_on: Mapped[date] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(64), primary_key=True)
    hemisphere: Mapped[str] = mapped_column(String(5), primary_key=True)
    month: Mapped[int] = mapped_column(primary_key=True)  # 1-12; 0 = the whole year
    signal: Mapped[str] = mapped_column(String(32), primary_key=True)
    expected: Mapped[float]
    accounts: Mapped[int]
    # "learned" from the portfolio, or "prior" (the shipped calendar) where data was thin.
    source: Mapped[str] = mapped_column(String(8))
