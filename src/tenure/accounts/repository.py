"""Every query of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, Contact, Note, SubscriptionPeriod
from tenure.kit.bulk import bulk_insert


@dataclass(frozen=True)
class AccountFilters:
    q: str | None = None
    category: str | None = None
    plan: str | None = None
    status: str | None = None
    owner_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    tag: str | None = None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _has_tag(dialect: str, tag: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return type_coerce(Account.tags, JSONB).contains([tag])
    each = func.json_each(Account.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def filtered(filters: AccountFilters, dialect: str = "sqlite") -> Select[Account]:
    query = select(Account)
    if filters.q:
        needle = filters.q.strip().lower()
        query = query.where(
            or_(
                Account.name_lower.like(f"%{_like_escape(needle)}%", escape="\\"),
                Account.external_id == filters.q.strip(),
            )
        )
    if filters.category:
        query = query.where(Account.category == filters.category)
    if filters.plan:
        query = query.where(Account.plan == filters.plan)
    if filters.status:
        query = query.where(Account.status == filters.status)
    if filters.owner_id:
        query = query.where(Account.owner_id == filters.owner_id)
    if filters.parent_id:
        query = query.where(Account.parent_id == filters.parent_id)
    if filters.tag:
        query = query.where(_has_tag(dialect, filters.tag))
    return query


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def count(session: Session, filters: AccountFilters) -> int:
    sub = filtered(filters, dialect_of(session)).with_only_columns(Account.id).subquery()
    return session.scalar(select(func.count()).select_from(sub)) or 0


def by_id(session: Session, account_id: uuid.UUID) -> Account | None:
    return session.get(Account, account_id)


def by_external_id(session: Session, external_id: str) -> Account | None:
    return session.scalar(select(Account).where(Account.external_id == external_id))


def children(session: Session, parent_id: uuid.UUID) -> list[Account]:
    return list(
        session.scalars(
            select(Account).where(Account.parent_id == parent_id).order_by(Account.name)
        )
    )


def contacts_of(session: Session, account_id: uuid.UUID) -> list[Contact]:
    return list(
        session.scalars(
            select(Contact).where(Contact.account_id == account_id).order_by(Contact.name)
        )
    )


def distinct_values(session: Session, column: str) -> list[str]:
    col = getattr(Account, column)
    return [
        v for v in session.scalars(select(col).where(col.is_not(None)).distinct().order_by(col))
    ]


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Account.status, func.count()).group_by(Account.status))
    return {status: n for status, n in rows}


def mrr_by_currency(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Account.currency, func.sum(Account.mrr_cents))
        .where(Account.status != "churned")
        .group_by(Account.currency)
    )
    return {currency: int(total or 0) for currency, total in rows}


def mrr_base_total(session: Session) -> int:
    total = session.scalar(
        select(func.sum(Account.mrr_base_cents)).where(Account.status != "churned")
    )
    return int(total or 0)


def category_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Account.category, func.count())
        .where(Account.status != "churned")
        .group_by(Account.category)
        .order_by(func.count().desc())
    )
    return {category or "uncategorised": n for category, n in rows}


def insert_columns(session: Session, model: type[Any], columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, model, columns)


def ids(*, hemisphere: str | None = None) -> Select[Any]:
    query = select(Account.id)
    if hemisphere:
        query = query.where(Account.hemisphere == hemisphere)
    return query


def contact_by_id(session: Session, contact_id: uuid.UUID) -> Contact | None:
    return session.get(Contact, contact_id)


def contact_by_external_id(session: Session, external_id: str) -> Contact | None:
    return session.scalar(select(Contact).where(Contact.external_id == external_id))


def periods_of(session: Session, account_id: uuid.UUID) -> list[SubscriptionPeriod]:
    return list(
        session.scalars(
            select(SubscriptionPeriod)
            .where(SubscriptionPeriod.account_id == account_id)
            .order_by(SubscriptionPeriod.started_at)
        )
    )


def notes_of(session: Session, account_id: uuid.UUID) -> list[Note]:
    return list(
        session.scalars(
            select(Note)
            .where(Note.account_id == account_id)
            .order_by(Note.pinned.desc(), Note.created_at.desc())
        )
    )


def note_by_id(session: Session, note_id: uuid.UUID) -> Note | None:
    return session.get(Note, note_id)
