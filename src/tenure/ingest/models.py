"""Raw events (source of truth for usage) and the usage_daily rollup."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "message_id"),
        Index("ix_events_account_timestamp", "account_id", "timestamp"),
        # Events waiting for their account or contact to arrive (linked when they do).
        Index(
            "ix_events_unlinked_group",
            "group_external_id",
            sqlite_where=text("account_id IS NULL"),
            postgresql_where=text("account_id IS NULL"),
        ),
        Index(
            "ix_events_unlinked_user",
            "user_external_id",
            sqlite_where=text("contact_id IS NULL"),
            postgresql_where=text("contact_id IS NULL"),
        ),
    )

    # A sequence, not a UUID: events are the largest table and only ever appended; the
    # natural key is (source, message_id). On SQLite this makes the key the rowid.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    # Where it came from (a write key's id, "import", "sim"): message ids are unique per source.
    source: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE")
    )
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    user_external_id: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    group_external_id: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(255))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timestamp: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    flags: Mapped[list[str]] = mapped_column(default=list)


class UsageDaily(Base):
    __tablename__ = "usage_daily"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class UsageDay(Base):
    """One row per account and active day: what health scoring reads (events, sessions and
    the key features used, as a bitmask over the metric catalogue's key features). Derived
    from usage_daily on every write; `tenure import rebuild-usage-days` recomputes it after
    the catalogue changes."""

    __tablename__ = "usage_days"
    __table_args__ = (Index("ix_usage_days_day", "day"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    events: Mapped[int] = mapped_column(default=0)
    sessions: Mapped[int] = mapped_column(default=0)
    features: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageFirst(Base):
    """The first day each metric was seen for an account: adoption milestones (the first
    invoice sent, the first form created) and onboarding progress read it, instead of
    scanning all of usage_daily. Kept on every write to usage_daily."""

    __tablename__ = "usage_firsts"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    metric: Mapped[str] = mapped_column(String(255), primary_key=True)
    first_day: Mapped[date]


class ActiveDay(Base):
    """A contact was active on a (local) day: makes `$active_users` exact under resends and
    late events, without rereading events."""

    __tablename__ = "active_days"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
