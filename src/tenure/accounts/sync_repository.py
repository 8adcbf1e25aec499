"""Queries used when trackers and imports sync accounts and contacts."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from tenure.accounts.models import (
    Account,
    Contact,
    ContactAlias,
    SubscriptionChange,
    SubscriptionPeriod,
)
from tenure.kit.bulk import driver_rows, insert_ignoring_conflicts, placeholder


def accounts_by_external_ids(session: Session, external_ids: Collection[str]) -> list[Account]:
    if not external_ids:
        return []
    return list(session.scalars(select(Account).where(Account.external_id.in_(external_ids))))


def accounts_by_ids(session: Session, ids: Collection[uuid.UUID]) -> list[Account]:
    if not ids:
        return []
    return list(session.scalars(select(Account).where(Account.id.in_(ids))))


def contacts_by_external_ids(session: Session, external_ids: Collection[str]) -> list[Contact]:
    if not external_ids:
        return []
    return list(session.scalars(select(Contact).where(Contact.external_id.in_(external_ids))))


def aliases(session: Session, names: Collection[str]) -> dict[str, str]:
    if not names:
        return {}
    rows = session.execute(
        select(ContactAlias.alias, ContactAlias.external_id).where(ContactAlias.alias.in_(names))
    )
    return {alias: target for alias, target in rows}


def add_alias(session: Session, alias: str, external_id: str, now: datetime) -> None:
    existing = session.get(ContactAlias, alias)
    if existing is None:
        session.add(ContactAlias(alias=alias, external_id=external_id, created_at=now))
    else:
        existing.external_id = external_id


def mark_for_rescore(session: Session, ids: Collection[uuid.UUID], now: datetime) -> None:
    ids = sorted(ids, key=str)  # a fixed lock order: concurrent batches cannot deadlock
    if ids:
        session.execute(
            update(Account)
            .where(Account.id.in_(ids))
            .values(rescore_requested_at=now)
            .execution_options(synchronize_session=False)
        )


def account_refs(
    session: Session, external_ids: Collection[str]
) -> list[tuple[str, uuid.UUID, str | None]]:
    if not external_ids:
        return []
    rows = session.execute(
        select(Account.external_id, Account.id, Account.timezone).where(
            Account.external_id.in_(external_ids)
        )
    )
    return [(e, i, tz) for e, i, tz in rows]


def account_refs_by_id(
    session: Session, ids: Collection[uuid.UUID]
) -> list[tuple[str, uuid.UUID, str | None]]:
    if not ids:
        return []
    rows = session.execute(
        select(Account.external_id, Account.id, Account.timezone).where(Account.id.in_(ids))
    )
    return [(e, i, tz) for e, i, tz in rows]


def contact_refs(
    session: Session, external_ids: Collection[str]
) -> list[tuple[str, uuid.UUID, uuid.UUID | None]]:
    if not external_ids:
        return []
    rows = session.execute(
        select(Contact.external_id, Contact.id, Contact.account_id).where(
            Contact.external_id.in_(external_ids)
        )
    )
    return [(e, i, a) for e, i, a in rows]


def insert_contacts(session: Session, rows: list[dict[str, object]]) -> None:
    """Insert contacts, skipping external ids that exist (a concurrent batch made them)."""
    if rows:
        insert_ignoring_conflicts(
            session, Contact, {k: [r[k] for r in rows] for k in rows[0]}, ["external_id"]
        )


def set_contact_accounts(session: Session, pairs: list[dict[str, object]]) -> None:
    """Executemany of {"cid", "aid"}: contacts that now belong to an account."""
    if pairs:
        table: Table = Contact.__table__  # type: ignore[assignment]
        session.execute(
            update(table).where(table.c.id == bindparam("cid")).values(account_id=bindparam("aid")),
            pairs,
        )


def touch_last_seen(session: Session, pairs: list[dict[str, object]]) -> None:
    """Executemany of {"cid", "seen"}: move last_seen_at forward, never back."""
    if not pairs:
        return
    ph = placeholder(session)
    rows = driver_rows(
        session,
        Contact,
        {"last_seen_at": [p["seen"] for p in pairs], "id": [p["cid"] for p in pairs]},
    )
    session.connection().exec_driver_sql(
        f"UPDATE contacts SET last_seen_at = {ph} WHERE id = {ph} "  # noqa: S608
        f"AND (last_seen_at IS NULL OR last_seen_at < {ph})",
        [(seen, cid, seen) for seen, cid in rows],
    )


def by_external_ids(
    model: type[SubscriptionChange] | type[SubscriptionPeriod],
    session: Session,
    external_ids: Collection[str],
) -> list[Any]:
    if not external_ids:
        return []
    return list(session.scalars(select(model).where(model.external_id.in_(external_ids))))
