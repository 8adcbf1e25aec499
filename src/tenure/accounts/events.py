"""Domain events of accounts: `account.created` and `account.updated` to the outbox.

Every path that writes accounts (API, bulk upserts, CSV import, tracking `group` calls)
calls `announce` before it flushes: the events come from SQLAlchemy's change history, so
they list exactly the fields that changed, before and after.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.hub import service as hub_service
from tenure.hub.events import AccountCreated, AccountUpdated, DomainEvent, FieldChange

# What subscribers and webhook receivers care about (not bookkeeping like updated_at).
TRACKED = (
    "name",
    "category",
    "plan",
    "status",
    "mrr_cents",
    "currency",
    "country",
    "hemisphere",
    "timezone",
    "owner_id",
    "parent_id",
    "tags",
    "signup_at",
    "churned_at",
    "churn_reason",
)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _created(account: Account) -> AccountCreated:
    return AccountCreated(
        account_id=account.id,
        external_id=account.external_id,
        name=account.name,
        category=account.category,
        plan=account.plan,
        status=account.status,
        mrr_cents=account.mrr_cents,
        currency=account.currency,
        signup_at=account.signup_at,
    )


def _changes(account: Account) -> dict[str, FieldChange]:
    state = inspect(account)
    changes: dict[str, FieldChange] = {}
    for field in TRACKED:
        history = state.attrs[field].history
        if not history.has_changes():
            continue
        before = history.deleted[0] if history.deleted else None
        after = history.added[0] if history.added else None
        if before != after:
            changes[field] = FieldChange(before=_plain(before), after=_plain(after))
    return changes


def announce(session: Session, accounts: Iterable[Account], *, now: datetime) -> int:
    """Publish what happened to these accounts since they were loaded (call before flush)."""
    events: list[tuple[DomainEvent, uuid.UUID | None]] = []
    for account in accounts:
        state = inspect(account)
        if state.transient or state.pending:
            # The primary key's default applies at flush; the event needs it now.
            account.id = account.id or uuid.uuid4()
            events.append((_created(account), account.id))
        elif changes := _changes(account):
            events.append((AccountUpdated(account_id=account.id, changes=changes), account.id))
    hub_service.publish_many(session, events, now=now)
    return len(events)
