"""The catalogue of domain events: one pydantic model per event type and version.

An outbox row stores `event_type`, `version` and the model's JSON payload; `parse_event`
turns a row back into the typed event. Changing a payload's shape means a new VERSION.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from tenure.kit.errors import InvalidInput


class UnknownEvent(InvalidInput):
    """An outbox row whose type, version or payload this code does not understand."""


class DomainEvent(BaseModel):
    """Base of every event published on the hub."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class AccountCreated(DomainEvent):
    TYPE: ClassVar[str] = "account.created"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    external_id: str
    name: str
    category: str | None = None
    plan: str | None = None
    status: str
    mrr_cents: int
    currency: str
    signup_at: AwareDatetime


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    before: JsonValue
    after: JsonValue


class AccountUpdated(DomainEvent):
    TYPE: ClassVar[str] = "account.updated"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    # Field name -> its value before and after the change (only fields that changed).
    changes: dict[str, FieldChange] = Field(min_length=1)


class EventIngested(DomainEvent):
    """Raw events stored for one account by one ingest batch (not one per event)."""

    TYPE: ClassVar[str] = "event.ingested"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    events: int = Field(ge=1)
    first_at: AwareDatetime
    last_at: AwareDatetime


class HealthChanged(DomainEvent):
    TYPE: ClassVar[str] = "health.changed"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    as_of: AwareDatetime
    score: float = Field(ge=0, le=100)
    previous_score: float | None = Field(default=None, ge=0, le=100)
    risk_level: str
    previous_risk_level: str | None = None
    scorecard_version: str


class ChurnRiskChanged(DomainEvent):
    TYPE: ClassVar[str] = "churn.risk_changed"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    as_of: AwareDatetime
    probability: float = Field(ge=0, le=1)
    previous_probability: float | None = Field(default=None, ge=0, le=1)
    risk_level: str
    previous_risk_level: str | None = None
    model_version: str


class MilestoneAchieved(DomainEvent):
    TYPE: ClassVar[str] = "milestone.achieved"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    milestone_key: str
    milestone_name: str
    achieved_at: AwareDatetime


class InterventionCreated(DomainEvent):
    TYPE: ClassVar[str] = "intervention.created"
    VERSION: ClassVar[int] = 1

    intervention_id: uuid.UUID
    account_id: uuid.UUID
    kind: str
    reason: str | None = None
    playbook_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None


class PlaybookFired(DomainEvent):
    TYPE: ClassVar[str] = "playbook.fired"
    VERSION: ClassVar[int] = 1

    playbook_id: uuid.UUID
    run_id: uuid.UUID
    account_id: uuid.UUID
    trigger: str


class AlertFired(DomainEvent):
    TYPE: ClassVar[str] = "alert.fired"
    VERSION: ClassVar[int] = 1

    alert_id: uuid.UUID
    rule: str
    severity: Literal["info", "warning", "critical"]
    message: str
    # None for alerts about the system itself (lag, backlog, failures).
    account_id: uuid.UUID | None = None


class InterventionUpdated(DomainEvent):
    TYPE: ClassVar[str] = "intervention.updated"
    VERSION: ClassVar[int] = 1

    intervention_id: uuid.UUID
    account_id: uuid.UUID
    changes: dict[str, FieldChange] = Field(min_length=1)


class InterventionCompleted(DomainEvent):
    TYPE: ClassVar[str] = "intervention.completed"
    VERSION: ClassVar[int] = 1

    intervention_id: uuid.UUID
    account_id: uuid.UUID
    outcome: str


class OnboardingStageCompleted(DomainEvent):
    TYPE: ClassVar[str] = "onboarding.stage_completed"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    journey: str
    stage: str
    completed_at: AwareDatetime


class OnboardingStalled(DomainEvent):
    TYPE: ClassVar[str] = "onboarding.stalled"
    VERSION: ClassVar[int] = 1

    account_id: uuid.UUID
    journey: str
    stage: str
    stalled_days: int = Field(ge=0)


class AlertResolved(DomainEvent):
    TYPE: ClassVar[str] = "alert.resolved"
    VERSION: ClassVar[int] = 1

    alert_id: uuid.UUID
    rule: str
    account_id: uuid.UUID | None = None


class HookReceived(DomainEvent):
    """JSON posted by another system (billing, support...) to an incoming hook."""

    TYPE: ClassVar[str] = "hook.received"
    VERSION: ClassVar[int] = 1

    hook_id: uuid.UUID
    hook_name: str
    # The account named at the hook's account path, when there is one and it is known.
    account_id: uuid.UUID | None = None
    account_external_id: str | None = None
    body: JsonValue


class WebhookTest(DomainEvent):
    """Sent by `tenure webhooks test` and the dashboard's Test button."""

    TYPE: ClassVar[str] = "webhook.test"
    VERSION: ClassVar[int] = 1

    message: str
    # Delivered to this endpoint only (not to every endpoint that takes all events).
    endpoint_id: uuid.UUID


def _registry(*classes: type[DomainEvent]) -> dict[str, type[DomainEvent]]:
    registry: dict[str, type[DomainEvent]] = {}
    for cls in classes:
        if cls.TYPE in registry:
            raise RuntimeError(f"event type {cls.TYPE} is declared twice")
        registry[cls.TYPE] = cls
    return registry


EVENT_TYPES: dict[str, type[DomainEvent]] = _registry(
    AccountCreated,
    AccountUpdated,
    EventIngested,
    HealthChanged,
    ChurnRiskChanged,
    MilestoneAchieved,
    InterventionCreated,
    PlaybookFired,
    AlertFired,
    InterventionUpdated,
    InterventionCompleted,
    OnboardingStageCompleted,
    OnboardingStalled,
    AlertResolved,
    HookReceived,
    WebhookTest,
)


def dump_event(event: DomainEvent) -> dict[str, Any]:
    """The JSON payload stored in the outbox."""
    return event.model_dump(mode="json")


def parse_event(event_type: str, version: int, payload: dict[str, Any]) -> DomainEvent:
    """The typed event of an outbox row; UnknownEvent when this code cannot read it."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEvent(f"unknown event type {event_type!r}")
    if version != cls.VERSION:
        raise UnknownEvent(
            f"{event_type} version {version} is not readable (this code has {cls.VERSION})"
        )
    try:
        return cls.model_validate(payload)
    except ValidationError as exc:
        raise UnknownEvent(f"invalid {event_type} payload: {exc}") from exc
