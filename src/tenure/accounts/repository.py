"""Every query of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, Contact
from tenure.kit.bulk import bulk_insert


@dataclass(frozen=True)
class AccountFilters:
    q: str | None = None
    category: str | None = None
    plan: str | None = None
    status: str | None = None
    owner_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filtered(filters: AccountFilters) -> Select[Account]:
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
    return query


def count(session: Session, filters: AccountFilters) -> int:
    sub = filtered(filters).with_only_columns(Account.id).subquery()
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
