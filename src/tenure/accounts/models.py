"""Tables of the accounts domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base, new_id


class AccountStatus(StrEnum):
    trial = "trial"
    active = "active"
    churned = "churned"


class Hemisphere(StrEnum):
    north = "north"
    south = "south"


class SubscriptionChangeKind(StrEnum):
    new = "new"
    expansion = "expansion"
    contraction = "contraction"
    failed_payment = "failed_payment"
    churn = "churn"
    reactivation = "reactivation"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        Index("ix_accounts_name_lower", "name_lower"),
        Index("ix_accounts_mrr", "mrr_base_cents", "id"),
        Index("ix_accounts_signup", "signup_at", "id"),
        Index("ix_accounts_category_status", "category", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # Lower-cased copy of the name: case-insensitive search that uses an index on every engine.
    name_lower: Mapped[str] = mapped_column(String(255))
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    plan: Mapped[str | None] = mapped_column(String(64), index=True)
    mrr_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # MRR converted to the reporting currency: what sorts and sums compare.
    mrr_base_cents: Mapped[int] = mapped_column(default=0)
    country: Mapped[str | None] = mapped_column(String(2))
    hemisphere: Mapped[str] = mapped_column(String(5), default=Hemisphere.north.value)
    timezone: Mapped[str | None] = mapped_column(String(64))
    signup_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=AccountStatus.active.value, index=True)
    churned_at: Mapped[datetime | None]
    churn_reason: Mapped[str | None] = mapped_column(String(255))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL"), index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list[str]] = mapped_column(default=list)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Timestamp of the newest `group` call applied: an older one arriving later loses.
    traits_at: Mapped[datetime | None]
    # Set when new data may change the account's scores; the health engine clears it.
    rescore_requested_at: Mapped[datetime | None] = mapped_column(index=True)
    # The latest health score and risk level (an active override applied), kept here so
    # lists sort and filter by them; the history and explanations live in health_scores.
    health_score: Mapped[float | None] = mapped_column(index=True)
    health_risk: Mapped[str | None] = mapped_column(String(32), index=True)
    health_as_of: Mapped[datetime | None]
    # The latest churn prediction, kept here for lists (history in churn_predictions).
    churn_probability: Mapped[float | None] = mapped_column(index=True)
    churn_risk: Mapped[str | None] = mapped_column(String(32), index=True)
    churn_mrr_at_risk_cents: Mapped[int | None] = mapped_column(BigInteger, index=True)
    churn_as_of: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("external_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    external_id: Mapped[str] = mapped_column(String(255))
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    phone: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None]
    # Channel -> granted (email, sms, in_app, ...); absent means no recorded consent.
    consents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    traits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Timestamp of the newest `identify` applied: an older one arriving later loses.
    traits_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContactAlias(Base):
    """Another id the same person was known by (Segment `alias`, anonymous ids)."""

    __tablename__ = "contact_aliases"

    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime]


class SubscriptionChange(Base):
    __tablename__ = "subscription_changes"
    __table_args__ = (Index("ix_subscription_changes_account_at", "account_id", "occurred_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    mrr_before_cents: Mapped[int] = mapped_column(default=0)
    mrr_after_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    plan: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]


class SubscriptionPeriod(Base):
    """A span during which the account paid a given MRR on a plan: the source of revenue and
    churn facts (a period that ends without a successor is a churn candidate)."""

    __tablename__ = "subscription_periods"
    __table_args__ = (Index("ix_subscription_periods_account_start", "account_id", "started_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    plan: Mapped[str | None] = mapped_column(String(64))
    mrr_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Note(Base):
    """A CSM's note on an account."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_account_created", "account_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    author_label: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    pinned: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
