"""Tables of the churn domain: the model registry and every prediction made with it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenure.db import Base, JSONType, new_id


class ChurnModel(Base):
    """One trained model: LightGBM's text format (never a pickle) with what it needs to be
    used and judged: features, category codes, calibration, metrics, training window."""

    __tablename__ = "churn_models"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(unique=True)
    # candidate (trained, not in use), active (the one predictions use), retired.
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    activated_at: Mapped[datetime | None]
    # Deferred: lists and pages need the figures, not the trees.
    model_text: Mapped[str] = mapped_column(Text, deferred=True)
    # SHA-256 of model_text: a row altered after training is refused, not half-read.
    model_sha256: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[str]] = mapped_column(JSONType)
    # {"plan": [...], "category": [...]}: the integer code of each value is its position.
    codes: Mapped[dict[str, Any]]
    # {"method": "platt", "a": ..., "b": ...} over LightGBM's raw score.
    calibration: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    # {"lightgbm": {...}, "logistic_regression": {...}, "health_score": {...}}.
    metrics: Mapped[dict[str, Any]]
    # Snapshots, split, horizon, grace, counts.
    training: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Per feature: quantile edges and training proportions (drift), median (explanations).
    reference: Mapped[dict[str, Any]]
    # The latest population stability figures: {"as_of", "psi": {feature: value}, ...}.
    drift: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Why it was (not) promoted.
    note: Mapped[str] = mapped_column(String(1000), default="")


class ChurnPrediction(Base):
    """A prediction for one account, kept so its outcome can be recorded when the horizon
    has passed (live accuracy)."""

    __tablename__ = "churn_predictions"
    __table_args__ = (
        Index("ix_churn_predictions_account", "account_id", "as_of"),
        Index("ix_churn_predictions_pending", "outcome", "as_of"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("churn_models.id", ondelete="CASCADE"), index=True
    )
    as_of: Mapped[datetime]
    horizon_days: Mapped[int]
    probability: Mapped[float]
    risk_level: Mapped[str] = mapped_column(String(32))
    mrr_cents: Mapped[int] = mapped_column(BigInteger)
    mrr_at_risk_cents: Mapped[int] = mapped_column(BigInteger)
    # [{"feature", "value", "contribution", "text"}], largest |contribution| first.
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    # None until the horizon (and the grace period) has passed; then 1 churned, 0 stayed.
    outcome: Mapped[int | None]
    outcome_at: Mapped[datetime | None]
