"""Support interactions and survey responses."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base, new_id


class SupportInteraction(Base):
    __tablename__ = "support_interactions"
    __table_args__ = (
        Index("ix_support_interactions_account_opened", "account_id", "opened_at"),
        # The API lists the whole portfolio newest first: keyset pages walk this index.
        Index("ix_support_interactions_opened", "opened_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="open")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    # -1.0 (angry) .. 1.0 (delighted); None when unknown.
    sentiment: Mapped[float | None]
    outcome: Mapped[str | None] = mapped_column(String(64))
    escalated: Mapped[bool] = mapped_column(default=False)
    subject: Mapped[str | None] = mapped_column(String(500))
    assignee: Mapped[str | None] = mapped_column(String(255))
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    follow_up_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class SurveyResponse(Base):
    __tablename__ = "survey_responses"
    __table_args__ = (
        Index("ix_survey_responses_account_at", "account_id", "responded_at"),
        Index("ix_survey_responses_responded", "responded_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(8))  # nps | csat | ces
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime]
    created_at: Mapped[datetime]
