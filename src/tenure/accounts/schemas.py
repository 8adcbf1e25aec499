"""Pydantic shapes of the accounts domain at the edge."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from tenure.accounts.models import AccountStatus

Status = Literal["trial", "active", "churned"]
SortKey = Literal["name", "mrr", "signup", "updated"]


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone '{value}'") from exc
    return value


class AccountBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    category: str | None = Field(None, max_length=64)
    plan: str | None = Field(None, max_length=64)
    mrr_cents: int = Field(0, ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    hemisphere: Literal["north", "south"] | None = None
    timezone: str | None = None
    status: Status = AccountStatus.active.value
    tags: list[str] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=dict)

    _tz = field_validator("timezone")(_check_timezone)


class AccountCreate(AccountBase):
    external_id: str = Field(min_length=1, max_length=255)
    signup_at: AwareDatetime | None = None
    parent_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    category: str | None = Field(None, max_length=64)
    plan: str | None = Field(None, max_length=64)
    mrr_cents: int | None = Field(None, ge=0)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    hemisphere: Literal["north", "south"] | None = None
    timezone: str | None = None
    status: Status | None = None
    churn_reason: str | None = Field(None, max_length=255)
    tags: list[str] | None = None
    traits: dict[str, Any] | None = None
    parent_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None

    _tz = field_validator("timezone")(_check_timezone)


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str
    name: str
    category: str | None
    plan: str | None
    mrr_cents: int
    currency: str
    mrr_base_cents: int
    country: str | None
    hemisphere: str
    timezone: str | None
    signup_at: datetime
    status: str
    churned_at: datetime | None
    churn_reason: str | None
    owner_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    tags: list[str]
    traits: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    health_score: float | None = Field(
        None, description="Latest health score 0-100 (a CSM's override applied)"
    )
    health_risk: str | None = Field(None, description="Latest risk level: low, medium, ...")
    health_as_of: datetime | None = None


class AccountPage(BaseModel):
    items: list[AccountRead]
    total: int
    next_cursor: str | None
    prev_cursor: str | None


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    external_id: str
    account_id: uuid.UUID | None
    email: str | None
    name: str | None
    phone: str | None
    role: str | None
    timezone: str | None
    last_seen_at: datetime | None
    consents: dict[str, Any]
    traits: dict[str, Any]


class AccountUpsert(BaseModel):
    """One account of a bulk upsert or import, matched by external_id; absent fields stay."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255)
    name: str | None = Field(None, min_length=1, max_length=255)
    category: str | None = Field(None, max_length=64)
    plan: str | None = Field(None, max_length=64)
    mrr_cents: int | None = Field(None, ge=0)
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    hemisphere: Literal["north", "south"] | None = None
    timezone: str | None = None
    status: Status | None = None
    signup_at: AwareDatetime | None = None
    churned_at: AwareDatetime | None = None
    churn_reason: str | None = Field(None, max_length=255)
    parent_external_id: str | None = Field(None, max_length=255)
    tags: list[str] | None = None
    traits: dict[str, Any] | None = None

    _tz = field_validator("timezone")(_check_timezone)


class ContactUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=255)
    account_external_id: str | None = Field(None, max_length=255)
    email: str | None = Field(None, max_length=320)
    name: str | None = Field(None, max_length=255)
    phone: str | None = Field(None, max_length=64)
    role: str | None = Field(None, max_length=64)
    timezone: str | None = None
    consents: dict[str, bool] | None = None
    traits: dict[str, Any] | None = None

    _tz = field_validator("timezone")(_check_timezone)


ChangeKind = Literal["new", "expansion", "contraction", "failed_payment", "churn", "reactivation"]


class SubscriptionChangeUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, max_length=255)
    account_external_id: str = Field(min_length=1, max_length=255)
    kind: ChangeKind
    mrr_before_cents: int = Field(0, ge=0)
    mrr_after_cents: int = Field(0, ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    plan: str | None = Field(None, max_length=64)
    reason: str | None = Field(None, max_length=255)
    occurred_at: AwareDatetime


class UpsertResult(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class BulkAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[AccountUpsert] = Field(min_length=1, max_length=5000)


class SubscriptionPeriodUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, max_length=255)
    account_external_id: str = Field(min_length=1, max_length=255)
    plan: str | None = Field(None, max_length=64)
    mrr_cents: int = Field(ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> SubscriptionPeriodUpsert:
        if self.ended_at is not None and self.ended_at <= self.started_at:
            raise ValueError("ended_at must be after started_at")
        return self


class SubscriptionPeriodRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    external_id: str | None
    plan: str | None
    mrr_cents: int
    currency: str
    started_at: datetime
    ended_at: datetime | None


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=10_000)
    pinned: bool = False


class NoteRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    author_label: str
    body: str
    pinned: bool
    created_at: datetime
