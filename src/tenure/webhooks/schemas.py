"""Webhooks API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/tenure"])
    event_types: list[str] = Field(
        default_factory=list, description="Event types to send; empty means every type"
    )
    description: str = Field("", max_length=500)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=2048)
    event_types: list[str] | None = None
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class EndpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointSecret(BaseModel):
    secret: str = Field(description="Standard Webhooks signing secret (whsec_...)")
    previous_secret_expires_at: datetime | None = None


class EndpointCreated(EndpointRead):
    secret: str


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response: str | None
    error: str | None


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    webhook_id: str = Field(description="The webhook-id header: the same on every attempt")
    endpoint_id: uuid.UUID
    outbox_id: int
    event_type: str
    account_id: uuid.UUID | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetail(DeliveryRead):
    log: list[AttemptRead]


class DeliveryPage(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None
    prev_cursor: str | None


class ReplayRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    failed_only: bool = Field(True, description="Only deliveries that failed (else all)")


class ReplayResult(BaseModel):
    replayed: int


class HookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = Field("", max_length=500)
    account_path: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$",
        description="Dotted path to the account's external id in posted JSON, e.g. data.customer",
    )


class HookRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str
    token_prefix: str
    account_path: str | None
    enabled: bool
    received: int
    last_received_at: datetime | None
    created_at: datetime


class HookCreated(HookRead):
    token: str = Field(description="Shown once: post JSON to /api/v1/hooks/{token}")
    url_path: str


class HookAccepted(BaseModel):
    accepted: bool = True
    event_id: int
    account_id: uuid.UUID | None
