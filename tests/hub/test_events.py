from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tenure.hub.events import (
    EVENT_TYPES,
    AccountCreated,
    AccountUpdated,
    AlertFired,
    AlertResolved,
    ChurnRiskChanged,
    DomainEvent,
    EventIngested,
    FieldChange,
    HealthChanged,
    HookReceived,
    InterventionCompleted,
    InterventionCreated,
    InterventionUpdated,
    MilestoneAchieved,
    OnboardingStageCompleted,
    OnboardingStalled,
    PlaybookFired,
    UnknownEvent,
    WebhookTest,
    dump_event,
    parse_event,
)

AT = datetime(2026, 6, 15, 12, tzinfo=UTC)
ACCOUNT = uuid.uuid4()

SAMPLES: list[DomainEvent] = [
    AccountCreated(
        account_id=ACCOUNT,
        external_id="acc_1",
        name="Golden Hour Photography",
        category="photographer",
        plan="pro",
        status="trial",
        mrr_cents=7900,
        currency="EUR",
        signup_at=AT,
    ),
    AccountUpdated(
        account_id=ACCOUNT,
        changes={
            "plan": FieldChange(before="pro", after="business"),
            "tags": FieldChange(before=[], after=["vip"]),
        },
    ),
    EventIngested(account_id=ACCOUNT, events=42, first_at=AT - timedelta(days=3), last_at=AT),
    HealthChanged(
        account_id=ACCOUNT,
        as_of=AT,
        score=41.5,
        previous_score=72.0,
        risk_level="high",
        previous_risk_level="low",
        scorecard_version="wedding-3",
    ),
    ChurnRiskChanged(
        account_id=ACCOUNT,
        as_of=AT,
        probability=0.62,
        previous_probability=None,
        risk_level="high",
        model_version="2026-06-01",
    ),
    MilestoneAchieved(
        account_id=ACCOUNT,
        milestone_key="first_gallery",
        milestone_name="First gallery",
        achieved_at=AT,
    ),
    InterventionCreated(
        intervention_id=uuid.uuid4(), account_id=ACCOUNT, kind="call", playbook_id=uuid.uuid4()
    ),
    PlaybookFired(
        playbook_id=uuid.uuid4(), run_id=uuid.uuid4(), account_id=ACCOUNT, trigger="health.changed"
    ),
    AlertFired(
        alert_id=uuid.uuid4(), rule="outbox_backlog", severity="critical", message="backlog 10k"
    ),
    InterventionUpdated(
        intervention_id=uuid.uuid4(),
        account_id=ACCOUNT,
        changes={"status": FieldChange(before="open", after="in_progress")},
    ),
    InterventionCompleted(intervention_id=uuid.uuid4(), account_id=ACCOUNT, outcome="saved"),
    OnboardingStageCompleted(
        account_id=ACCOUNT, journey="photographer", stage="first_gallery", completed_at=AT
    ),
    OnboardingStalled(account_id=ACCOUNT, journey="photographer", stage="invite", stalled_days=9),
    AlertResolved(alert_id=uuid.uuid4(), rule="outbox_backlog"),
    HookReceived(
        hook_id=uuid.uuid4(),
        hook_name="billing",
        account_id=ACCOUNT,
        account_external_id="acc_1",
        body={"type": "invoice.payment_failed", "data": {"customer": "acc_1", "amount": 7900}},
    ),
    WebhookTest(message="hello", endpoint_id=uuid.uuid4()),
]


def test_the_catalogue_covers_every_event_type() -> None:
    assert {type(e).TYPE for e in SAMPLES} == set(EVENT_TYPES)
    assert {
        "account.created",
        "account.updated",
        "event.ingested",
        "health.changed",
        "churn.risk_changed",
        "milestone.achieved",
        "intervention.created",
        "playbook.fired",
        "alert.fired",
        "alert.resolved",
        "intervention.updated",
        "intervention.completed",
        "onboarding.stage_completed",
        "onboarding.stalled",
        "hook.received",
    } <= set(EVENT_TYPES)
    for event_type, cls in EVENT_TYPES.items():
        assert event_type == cls.TYPE
        assert cls.VERSION >= 1


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).TYPE)
def test_payload_round_trips_through_json(event: DomainEvent) -> None:
    import orjson

    payload = orjson.loads(orjson.dumps(dump_event(event)))
    assert "TYPE" not in payload
    parsed = parse_event(event.TYPE, event.VERSION, payload)
    assert type(parsed) is type(event)
    assert parsed == event


def test_unknown_type_version_or_payload_is_refused() -> None:
    payload = dump_event(SAMPLES[2])
    with pytest.raises(UnknownEvent, match="unknown event type"):
        parse_event("event.vanished", 1, payload)
    with pytest.raises(UnknownEvent, match="version 2"):
        parse_event("event.ingested", 2, payload)
    with pytest.raises(UnknownEvent, match=r"invalid event\.ingested"):
        parse_event("event.ingested", 1, {**payload, "events": 0})
    with pytest.raises(UnknownEvent, match=r"invalid event\.ingested"):
        parse_event("event.ingested", 1, {**payload, "surprise": True})


def test_events_are_validated_when_built() -> None:
    with pytest.raises(ValidationError):
        EventIngested(account_id=ACCOUNT, events=1, first_at=datetime(2026, 1, 1), last_at=AT)
    with pytest.raises(ValidationError):
        HealthChanged(
            account_id=ACCOUNT, as_of=AT, score=101, risk_level="low", scorecard_version="1"
        )
    with pytest.raises(ValidationError):
        AccountUpdated(account_id=ACCOUNT, changes={})
