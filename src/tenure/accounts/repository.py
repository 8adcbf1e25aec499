"""Every query of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    exists,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from tenure.accounts.models import Account, Contact, Note, SubscriptionChange, SubscriptionPeriod
from tenure.kit.bulk import bulk_insert, update_by_key


@dataclass(frozen=True)
class AccountFilters:
    q: str | None = None
    category: str | None = None
    plan: str | None = None
    status: str | None = None
    owner_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    tag: str | None = None
    # Latest health risk levels (any of them); "unscored" matches accounts without a score.
    risk: tuple[str, ...] = ()


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
    if filters.risk:
        levels = [r for r in filters.risk if r != "unscored"]
        conditions = [Account.health_risk.in_(levels)] if levels else []
        if "unscored" in filters.risk:
            conditions.append(Account.health_risk.is_(None))
        query = query.where(or_(*conditions))
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


def health_frame(
    session: Session, *, as_of: datetime, account_ids: Collection[uuid.UUID] | None
) -> list[tuple[Any, ...]]:
    """(id, category, plan, status, hemisphere, signup_at, churned_at, parent_id,
    mrr_base_cents, mrr_cents, health_score, health_risk, health_as_of) of accounts that
    existed and had not churned at `as_of`."""
    a = Account
    query = select(
        a.id,
        a.category,
        a.plan,
        a.status,
        a.hemisphere,
        a.signup_at,
        a.churned_at,
        a.parent_id,
        a.mrr_base_cents,
        a.mrr_cents,
        a.health_score,
        a.health_risk,
        a.health_as_of,
    ).where(*_alive(as_of))
    if account_ids is not None:
        query = query.where(a.id.in_(list(account_ids)))
    return [tuple(row) for row in session.execute(query.order_by(a.id))]


def _alive(as_of: datetime) -> list[ColumnElement[bool]]:
    a = Account
    return [a.signup_at <= as_of, or_(a.churned_at.is_(None), a.churned_at > as_of)]


def alive_ids(as_of: datetime) -> Select[Any]:
    """The ids of the accounts `health_frame` reads (a subquery for other domains' reads)."""
    return select(Account.id).where(*_alive(as_of))


def lifetimes(
    session: Session,
) -> list[tuple[uuid.UUID, str | None, str, datetime, datetime | None]]:
    """(id, category, hemisphere, signup_at, churned_at) of every account."""
    a = Account
    return [
        tuple(row)  # type: ignore[misc]
        for row in session.execute(
            select(a.id, a.category, a.hemisphere, a.signup_at, a.churned_at)
        )
    ]


def subscription_changes_between(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    account_ids: Collection[uuid.UUID] | None,
) -> list[tuple[uuid.UUID, str, int, int, datetime]]:
    sc = SubscriptionChange
    query = (
        select(sc.account_id, sc.kind, sc.mrr_before_cents, sc.mrr_after_cents, sc.occurred_at)
        .where(sc.occurred_at >= since, sc.occurred_at < until)
        .order_by(sc.occurred_at)
    )
    if account_ids is not None:
        query = query.where(sc.account_id.in_(list(account_ids)))
    return [(a, k, int(b), int(f), at) for a, k, b, f, at in session.execute(query)]


def set_health(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {"id", "health_score", "health_risk", "health_as_of"}: an UPDATE by key for
    every row, through the driver-level bulk path (`kit.bulk`: no ORM bookkeeping)."""
    if not rows:
        return
    update_by_key(
        session,
        Account,
        {
            "id": [r["id"] for r in rows],
            "health_score": [r["health_score"] for r in rows],
            "health_risk": [r["health_risk"] for r in rows],
            "health_as_of": [r["health_as_of"] for r in rows],
        },
        "id",
    )


def currencies(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    out: dict[uuid.UUID, str] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(
            select(Account.id, Account.currency).where(Account.id.in_(ids[start : start + 5000]))
        )
        out.update({row[0]: row[1] for row in rows})
    return out


@cache
def _trait_queries(name: str) -> tuple[Select[Any], Select[Any]]:
    """Every account's value of the trait, and those of the accounts in :ids (built once:
    one prediction runs the second)."""
    value = Account.traits[name].as_string()
    query = select(Account.id, value).where(value.is_not(None))
    return query, query.where(Account.id.in_(bindparam("ids", expanding=True)))


def trait_values(session: Session, name: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    query, among = _trait_queries(name)
    if len(ids) > 5000:
        # Most of the book: one pass over the table beats many IN-lists.
        wanted = set(ids)
        return {row[0]: row[1] for row in session.execute(query) if row[0] in wanted}
    out: dict[uuid.UUID, str] = {}
    for start in range(0, len(ids), 5000):
        rows = session.execute(among, {"ids": list(ids[start : start + 5000])})
        out.update({row[0]: row[1] for row in rows})
    return out


def set_churn(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {"id", "churn_probability", "churn_risk", "churn_mrr_at_risk_cents",
    "churn_as_of"}: an UPDATE by key for every row through the driver-level bulk path."""
    if not rows:
        return
    names = ("id", "churn_probability", "churn_risk", "churn_mrr_at_risk_cents", "churn_as_of")
    update_by_key(session, Account, {n: [r[n] for r in rows] for n in names}, "id")


def churn_as_of(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    out: dict[uuid.UUID, Any] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows = session.execute(
            select(
                Account.id, Account.churn_as_of, Account.churn_risk, Account.churn_probability
            ).where(Account.id.in_(chunk))
        )
        out.update({row[0]: (row[1], row[2], row[3]) for row in rows})
    return out


def at_risk(
    session: Session,
    *,
    levels: Sequence[str],
    owner_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> tuple[list[Account], int]:
    """Live accounts with a churn prediction, by MRR at risk (largest first), and how many."""
    query = select(Account).where(
        Account.churn_probability.is_not(None), Account.status != "churned"
    )
    if levels:
        query = query.where(Account.churn_risk.in_(list(levels)))
    if owner_id is not None:
        query = query.where(Account.owner_id == owner_id)
    total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = session.scalars(
        query.order_by(
            Account.churn_mrr_at_risk_cents.desc(), Account.churn_probability.desc(), Account.id
        )
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


def rescore_requested(session: Session, *, before: datetime, limit: int) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(Account.id)
            .where(
                Account.rescore_requested_at.is_not(None), Account.rescore_requested_at <= before
            )
            .order_by(Account.rescore_requested_at)
            .limit(limit)
        )
    )


def clear_rescore(
    session: Session, ids: Collection[uuid.UUID], *, requested_before: datetime
) -> None:
    """Clear the marks of these accounts unless new data came in after `requested_before`."""
    if ids:
        session.execute(
            update(Account)
            .where(Account.id.in_(list(ids)), Account.rescore_requested_at <= requested_before)
            .values(rescore_requested_at=None)
            .execution_options(synchronize_session=False)
        )


def parents_of(session: Session, ids: Collection[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(child, parent) pairs for these children."""
    return [
        (c, p)  # type: ignore[misc]
        for c, p in session.execute(
            select(Account.id, Account.parent_id).where(
                Account.id.in_(list(ids)), Account.parent_id.is_not(None)
            )
        )
    ]


def children_ids(session: Session, parent_ids: Collection[uuid.UUID]) -> list[uuid.UUID]:
    if not parent_ids:
        return []
    return list(session.scalars(select(Account.id).where(Account.parent_id.in_(list(parent_ids)))))


def health_by_account(session: Session) -> list[tuple[float | None, str | None, int]]:
    return [
        (s, r, m)
        for s, r, m in session.execute(
            select(Account.health_score, Account.health_risk, Account.mrr_base_cents).where(
                Account.status != "churned"
            )
        )
    ]
