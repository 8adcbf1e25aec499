"""Pydantic shapes of the support domain at the edge: interactions and survey responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

InteractionType = Literal[
    "how_to",
    "bug",
    "billing",
    "feature_request",
    "onboarding_help",
    "integration_issue",
    "data_import",
    "account_access",
    "performance",
    "cancellation_request",
    "refund",
    "complaint",
    "training",
    "outage",
    "other",
]
Channel = Literal["email", "phone", "chat", "video", "in_app"]
Priority = Literal["low", "normal", "high", "urgent"]
InteractionStatus = Literal["open", "pending", "resolved", "closed"]
SurveyKind = Literal["nps", "csat", "ces"]
Order = Literal["asc", "desc"]

INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionType)
CHANNELS: tuple[str, ...] = get_args(Channel)
PRIORITIES: tuple[str, ...] = get_args(Priority)
STATUSES: tuple[str, ...] = get_args(InteractionStatus)
# Inclusive score range of each survey kind.
SCORE_RANGES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


class References(BaseModel):
    """The account (required on create, by id or external id) and contact (optional) of a row."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID | None = None
    account_external_id: str | None = Field(None, min_length=1, max_length=255)
    contact_id: uuid.UUID | None = None
    contact_external_id: str | None = Field(None, min_length=1, max_length=255)


# ---------------------------------------------------------------------------------------------
# Support interactions


class SupportInteractionUpsert(References):
    """Body of PUT .../by-external-id/{external_id}: fields left out keep their stored value."""

    type: InteractionType
    channel: Channel
    status: InteractionStatus = "open"
    priority: Priority = "normal"
    sentiment: float | None = Field(None, ge=-1.0, le=1.0, allow_inf_nan=False)
    outcome: str | None = Field(None, max_length=64)
    escalated: bool = False
    subject: str | None = Field(None, max_length=500)
    assignee: str | None = Field(None, max_length=255)
    opened_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    follow_up_at: AwareDatetime | None = None


class SupportInteractionCreate(SupportInteractionUpsert):
    external_id: str | None = Field(None, min_length=1, max_length=255)


_NOT_NULL = ("type", "channel", "status", "priority", "escalated", "opened_at")


class SupportInteractionUpdate(References):
    """Body of PATCH: only the fields given change; null clears an optional field."""

    type: InteractionType | None = None
    channel: Channel | None = None
    status: InteractionStatus | None = None
    priority: Priority | None = None
    sentiment: float | None = Field(None, ge=-1.0, le=1.0, allow_inf_nan=False)
    outcome: str | None = Field(None, max_length=64)
    escalated: bool | None = None
    subject: str | None = Field(None, max_length=500)
    assignee: str | None = Field(None, max_length=255)
    opened_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    follow_up_at: AwareDatetime | None = None

    @field_validator(*_NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Left out is fine (the validator does not run); an explicit null is not.
        if value is None:
            raise ValueError("may not be null")
        return value


class SupportInteractionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    account_id: uuid.UUID
    contact_id: uuid.UUID | None
    type: str
    channel: str
    status: str
    priority: str
    sentiment: float | None
    outcome: str | None
    escalated: bool
    subject: str | None
    assignee: str | None
    opened_at: datetime
    resolved_at: datetime | None
    follow_up_at: datetime | None
    created_at: datetime


class SupportInteractionPage(BaseModel):
    items: list[SupportInteractionRead]
    total: int
    next_cursor: str | None
    prev_cursor: str | None


# ---------------------------------------------------------------------------------------------
# Survey responses


class SurveyResponseUpsert(References):
    """Body of PUT .../by-external-id/{external_id}: fields left out keep their stored value."""

    kind: SurveyKind
    score: int
    comment: str | None = Field(None, max_length=10_000)
    responded_at: AwareDatetime | None = None

    @field_validator("score")
    @classmethod
    def _score_in_range(cls, score: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid and reported on its own
            return score
        low, high = SCORE_RANGES[kind]
        if not low <= score <= high:
            raise ValueError(f"a {kind} score must be between {low} and {high}")
        return score


class SurveyResponseCreate(SurveyResponseUpsert):
    external_id: str | None = Field(None, min_length=1, max_length=255)


class SurveyResponseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str | None
    account_id: uuid.UUID
    contact_id: uuid.UUID | None
    kind: str
    score: int
    comment: str | None
    responded_at: datetime
    created_at: datetime


class SurveyResponsePage(BaseModel):
    items: list[SurveyResponseRead]
    total: int
    next_cursor: str | None
    prev_cursor: str | None
