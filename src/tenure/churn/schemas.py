"""Pydantic shapes of the churn API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Factor(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="SHAP value in log-odds: > 0 raises the risk")
    text: str


class PredictionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: uuid.UUID
    as_of: datetime = Field(description="The snapshot: features use data before this instant")
    horizon_days: int
    probability: float
    risk_level: str
    mrr_cents: int
    mrr_at_risk_cents: int
    model_version: int
    factors: list[Factor]
    outcome: int | None = Field(None, description="Once the horizon has passed: 1 churned")
    outcome_at: datetime | None = None


class PredictionPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    as_of: datetime
    probability: float
    risk_level: str
    outcome: int | None


class ModelSummary(BaseModel):
    version: int
    status: str
    created_at: datetime
    created_by: str
    activated_at: datetime | None
    note: str
    roc_auc: float | None
    roc_auc_logistic: float | None
    roc_auc_health: float | None
    training: dict[str, Any]
    predictions: int
    matured: int


class ModelDetail(ModelSummary):
    features: list[str]
    codes: dict[str, Any]
    calibration: dict[str, Any]
    params: dict[str, Any]
    metrics: dict[str, Any]
    fingerprint: str
    live: dict[str, Any] = Field(description="The same figures over matured predictions")
    drift: dict[str, Any] | None


class PortfolioPrediction(BaseModel):
    model_version: int
    as_of: datetime
    accounts: int
    flagged: int
    announced: int
    drift_flagged: list[str]


class AtRiskRow(BaseModel):
    account_id: uuid.UUID
    name: str
    category: str | None
    plan: str | None
    owner_id: uuid.UUID | None
    mrr_base_cents: int
    churn_probability: float
    churn_risk: str
    churn_mrr_at_risk_cents: int
    churn_as_of: datetime
    health_score: float | None


class AtRiskPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AtRiskRow]


class FeatureRead(BaseModel):
    name: str
    meaning: str
    window: str


class DriftRead(BaseModel):
    model_version: int
    as_of: datetime | None
    threshold: float
    psi: dict[str, float]
    flagged: list[str]
