"""Health API shapes: scores with their explanation, overrides, distribution, scorecards."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ComponentScore(BaseModel):
    score: float = Field(description="0-100")
    # None on a parent account, whose components are the means of its children's.
    weight: float | None
    contribution: float | None = Field(description="Points this component adds to the score")


class RiskFactor(BaseModel):
    signal: str
    impact: float | None = Field(description="Points the signal cost the score")
    text: str


class OverrideRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    score: float | None
    risk_level: str | None
    reason: str
    expires_at: datetime
    created_at: datetime
    created_by: str
    removed_at: datetime | None = None


class OverrideCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float | None = Field(None, ge=0, le=100, description="Score to show instead")
    risk_level: str | None = Field(
        None, max_length=32, description="Risk level to show instead (default: the score's)"
    )
    reason: str = Field(max_length=1000, description="Why; kept in the audit log")
    expires_at: AwareDatetime = Field(description="When the computed score applies again")


class HealthRead(BaseModel):
    """The latest computed score of an account, and the override shown beside it."""

    account_id: uuid.UUID
    score: float | None = Field(description="Computed score, None when no component had data")
    risk_level: str | None
    as_of: datetime
    scored_on: date
    scorecard_key: str
    scorecard_version: int
    components: dict[str, ComponentScore]
    missing: list[str] = Field(description="Components without data (weight redistributed)")
    factors: list[RiskFactor] = Field(description="What pulled the score down most, worst first")
    signals: dict[str, float | None]
    delta_7: float | None = Field(description="Change against the score 7 days earlier")
    delta_30: float | None = Field(description="Change against the score 30 days earlier")
    children: int = Field(description="On a parent account: children rolled up")
    override: OverrideRead | None
    effective_score: float | None = Field(description="The override's score, else the computed")
    effective_risk: str | None


class HealthPoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scored_on: date
    as_of: datetime
    score: float | None
    risk_level: str | None
    delta_7: float | None
    delta_30: float | None
    scorecard_key: str
    scorecard_version: int
    components: dict[str, ComponentScore]
    missing: list[str]


class HealthHistory(BaseModel):
    account_id: uuid.UUID
    since: datetime
    until: datetime
    points: list[HealthPoint]


class LevelCount(BaseModel):
    level: str
    label: str | None
    colour: str
    accounts: int
    mrr_cents: int = Field(description="Base MRR of those accounts, in minor units")


class HistogramBin(BaseModel):
    min: int
    max: int
    accounts: int


class DistributionRead(BaseModel):
    levels: list[LevelCount] = Field(description="Per risk level, lowest band first")
    histogram: list[HistogramBin]
    scored: int
    unscored: int


class PreviewLevel(BaseModel):
    level: str
    accounts: int


class PreviewRead(BaseModel):
    """The distribution the portfolio would have with a scorecard; nothing is saved."""

    as_of: datetime
    accounts: int
    scored: int
    mean: float | None
    levels: list[PreviewLevel]
    histogram: list[HistogramBin]


class ScorecardVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    active: bool
    created_at: datetime
    created_by: str


class ScorecardRead(BaseModel):
    key: str
    version: int
    name: str
    default: bool
    priority: int
    segment: dict[str, Any]
    active: bool
    created_at: datetime
    created_by: str
    definition: dict[str, Any]


class ScorecardDetail(ScorecardRead):
    versions: list[ScorecardVersionRead] = Field(description="Newest first")


class SignalRead(BaseModel):
    name: str
    label: str
    meaning: str
    baseline: str | None = Field(description="Seasonal baseline it can be compared with")
    component: str
