"""Tables of the hub: the transactional outbox and per-subscriber delivery state."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base


class DeliveryStatus(StrEnum):
    pending = "pending"
    done = "done"
    dead = "dead"


class Outbox(Base):
    """A domain event, written in the transaction of the state change it announces."""

    __tablename__ = "outbox"
    __table_args__ = (
        # Rows the dispatcher has not fanned out yet: a small, hot set.
        Index(
            "ix_outbox_unfanned",
            "id",
            sqlite_where=text("fanned_out_at IS NULL"),
            postgresql_where=text("fanned_out_at IS NULL"),
        ),
        Index("ix_outbox_account_id", "account_id", "id"),
    )

    # A sequence: the id is the order of publication. On SQLite the key is the rowid.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    # No foreign key: an event about an account (account.deleted) outlives the account.
    account_id: Mapped[uuid.UUID | None]
    payload: Mapped[dict[str, Any]]
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]
    # Set once delivery rows exist for every subscriber of the event type. Not a cursor on
    # ids: on PostgreSQL a lower id can commit after a higher one and must not be skipped.
    fanned_out_at: Mapped[datetime | None]


class HubDelivery(Base):
    """Delivery of one outbox row to one subscriber."""

    __tablename__ = "hub_deliveries"
    __table_args__ = (
        # What the dispatcher reads: a subscriber's pending rows, per account, in order.
        Index(
            "ix_hub_deliveries_pending",
            "subscriber",
            "account_id",
            "outbox_id",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_hub_deliveries_dead",
            "outbox_id",
            sqlite_where=text("status = 'dead'"),
            postgresql_where=text("status = 'dead'"),
        ),
    )

    outbox_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        ForeignKey("outbox.id", ondelete="CASCADE"),
        primary_key=True,
    )
    subscriber: Mapped[str] = mapped_column(String(128), primary_key=True)
    # Copied from the outbox row: ordering per account is checked on this table alone.
    account_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.pending.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime]
