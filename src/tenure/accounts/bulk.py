"""Create-or-update by external id, many at a time: the bulk API and CSV imports.

Only the fields a row carries are written; a row identical to what is stored counts as
unchanged. One audit entry per call lists how many rows were created and updated.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tenure.accounts import sync_repository as repo
from tenure.accounts.events import announce
from tenure.accounts.models import (
    Account,
    AccountStatus,
    Contact,
    SubscriptionChange,
    SubscriptionPeriod,
)
from tenure.accounts.schemas import (
    AccountUpsert,
    ContactUpsert,
    SubscriptionChangeUpsert,
    SubscriptionPeriodUpsert,
    UpsertResult,
)
from tenure.accounts.service import hemisphere_of, request_rescore
from tenure.auth import service as auth_service
from tenure.kit.actor import Actor
from tenure.kit.errors import InvalidInput
from tenure.kit.money import DEFAULT_FX, FxRates


class RowInvalid(InvalidInput):
    """A row refers to something that does not exist; carries the row's position."""

    def __init__(self, position: int, detail: str, field: str | None = None) -> None:
        super().__init__(detail, position=position, field=field)
        self.position = position
        self.field = field


def _apply(target: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if isinstance(value, datetime):
            value = value.astimezone(UTC)
        if getattr(target, key) != value:
            setattr(target, key, value)
            changed = True
    return changed


def _tally(result: UpsertResult, row: Any, *, created: bool, changed: bool, now: datetime) -> None:
    if created:
        result.created += 1
    elif changed:
        if hasattr(row, "updated_at"):
            row.updated_at = now
        result.updated += 1
    else:
        result.unchanged += 1


def _audit_bulk(
    session: Session, actor: Actor, result: UpsertResult, kind: str, *, now: datetime, audit: bool
) -> None:
    """One audit entry per bulk call, when it changed anything."""
    if audit and (result.created or result.updated):
        auth_service.audit(
            session,
            actor,
            f"{kind}.bulk_upsert",
            now=now,
            target_type=kind,
            details=result.model_dump(),
        )


def upsert_accounts(
    session: Session,
    rows: Sequence[AccountUpsert],
    *,
    actor: Actor,
    now: datetime,
    fx: FxRates = DEFAULT_FX,
    audit: bool = True,
) -> UpsertResult:
    """Create or update accounts by external id (parents may be in the same call)."""
    result = UpsertResult()
    wanted = {r.external_id for r in rows} | {
        r.parent_external_id for r in rows if r.parent_external_id
    }
    known = {a.external_id: a for a in repo.accounts_by_external_ids(session, wanted)}
    for position, row in enumerate(rows):
        values = row.model_dump(exclude_unset=True, exclude={"external_id", "parent_external_id"})
        if row.currency is not None and not fx.knows(row.currency):
            raise RowInvalid(position, f"no exchange rate for {row.currency}", "currency")
        account = known.get(row.external_id)
        if account is None:
            if not row.name:
                raise RowInvalid(
                    position, f"account {row.external_id} is new and needs a name", "name"
                )
            account = Account(
                id=uuid.uuid4(),
                external_id=row.external_id,
                name=row.name,
                name_lower=row.name.lower(),
                mrr_cents=0,
                currency="USD",
                mrr_base_cents=0,
                hemisphere=hemisphere_of(row.country),
                signup_at=(row.signup_at or now),
                status=AccountStatus.active.value,
                tags=[],
                traits={},
                created_at=now,
                updated_at=now,
            )
            session.add(account)
            known[row.external_id] = account
            created = True
        else:
            created = False
        if values.get("tags") is not None:
            values["tags"] = list(dict.fromkeys(values["tags"]))
        if values.get("traits") is not None:
            values["traits"] = {**account.traits, **values["traits"]}
        changed = _apply(
            account,
            {
                k: v
                for k, v in values.items()
                if v is not None
                or k in ("churned_at", "churn_reason", "category", "plan", "timezone", "country")
            },
        )
        if row.parent_external_id is not None:
            parent = known.get(row.parent_external_id)
            if parent is None:
                raise RowInvalid(
                    position,
                    f"parent account {row.parent_external_id} does not exist",
                    "parent_external_id",
                )
            if parent.id == account.id:
                raise RowInvalid(
                    position, "an account cannot be its own parent", "parent_external_id"
                )
            changed |= _apply(account, {"parent_id": parent.id})
        account.name_lower = account.name.lower()
        if "country" in values and "hemisphere" not in values:
            account.hemisphere = hemisphere_of(account.country)
        account.mrr_base_cents = fx.to_base(account.mrr_cents, account.currency)
        if account.status == AccountStatus.churned.value and account.churned_at is None:
            account.churned_at = now
        _tally(result, account, created=created, changed=changed, now=now)
    announce(session, known.values(), now=now)
    session.flush()
    _audit_bulk(session, actor, result, "account", now=now, audit=audit)
    return result


def upsert_contacts(
    session: Session,
    rows: Sequence[ContactUpsert],
    *,
    actor: Actor,
    now: datetime,
    audit: bool = True,
) -> UpsertResult:
    """Create or update contacts by external id; accounts are referenced by external id."""
    result = UpsertResult()
    known = {
        c.external_id: c
        for c in repo.contacts_by_external_ids(session, {r.external_id for r in rows})
    }
    accounts = {
        a.external_id: a
        for a in repo.accounts_by_external_ids(
            session, {r.account_external_id for r in rows if r.account_external_id}
        )
    }
    for position, row in enumerate(rows):
        values = row.model_dump(exclude_unset=True, exclude={"external_id", "account_external_id"})
        if row.account_external_id:
            account = accounts.get(row.account_external_id)
            if account is None:
                raise RowInvalid(
                    position,
                    f"account {row.account_external_id} does not exist",
                    "account_external_id",
                )
            values["account_id"] = account.id
        contact = known.get(row.external_id)
        created = contact is None
        if contact is None:
            contact = Contact(
                id=uuid.uuid4(),
                external_id=row.external_id,
                consents={},
                traits={},
                created_at=now,
                updated_at=now,
            )
            session.add(contact)
            known[row.external_id] = contact
        for key in ("consents", "traits"):
            if values.get(key) is not None:
                values[key] = {**getattr(contact, key), **values[key]}
        changed = _apply(contact, values)
        _tally(result, contact, created=created, changed=changed, now=now)
    session.flush()
    _audit_bulk(session, actor, result, "contact", now=now, audit=audit)
    return result


def _upsert_account_facts(
    session: Session,
    rows: Sequence[Any],  # SubscriptionChangeUpsert | SubscriptionPeriodUpsert
    model: type[SubscriptionChange] | type[SubscriptionPeriod],
    *,
    actor: Actor,
    now: datetime,
    audit: bool,
) -> UpsertResult:
    """Facts about an account (MRR changes, billing periods) matched by their external id."""
    result = UpsertResult()
    accounts = {
        a.external_id: a
        for a in repo.accounts_by_external_ids(session, {r.account_external_id for r in rows})
    }
    known: dict[str, Any] = {
        f.external_id: f
        for f in repo.by_external_ids(
            model, session, {r.external_id for r in rows if r.external_id}
        )
    }
    timestamped = hasattr(model, "updated_at")
    touched: set[uuid.UUID] = set()
    for position, row in enumerate(rows):
        account = accounts.get(row.account_external_id)
        if account is None:
            raise RowInvalid(
                position, f"account {row.account_external_id} does not exist", "account_external_id"
            )
        values = row.model_dump(exclude={"account_external_id", "external_id"})
        values["account_id"] = account.id
        fact: Any = known.get(row.external_id) if row.external_id else None
        created = fact is None
        if fact is None:
            fact = model(id=uuid.uuid4(), external_id=row.external_id, created_at=now)
            if timestamped:
                fact.updated_at = now
            session.add(fact)
            if row.external_id:
                known[row.external_id] = fact
        changed = _apply(fact, values)
        _tally(result, fact, created=created, changed=changed, now=now)
        if created or changed:
            touched.add(account.id)
    session.flush()
    request_rescore(session, touched, now=now)
    _audit_bulk(session, actor, result, model.__tablename__.removesuffix("s"), now=now, audit=audit)
    return result


def upsert_subscription_changes(
    session: Session,
    rows: Sequence[SubscriptionChangeUpsert],
    *,
    actor: Actor,
    now: datetime,
    audit: bool = True,
) -> UpsertResult:
    """Record MRR movements; rows with an external id already stored are updated."""
    return _upsert_account_facts(
        session, rows, SubscriptionChange, actor=actor, now=now, audit=audit
    )


def upsert_subscription_periods(
    session: Session,
    rows: Sequence[SubscriptionPeriodUpsert],
    *,
    actor: Actor,
    now: datetime,
    audit: bool = True,
) -> UpsertResult:
    """Record billing periods (start, end, MRR, plan); existing external ids are updated."""
    return _upsert_account_facts(
        session, rows, SubscriptionPeriod, actor=actor, now=now, audit=audit
    )
