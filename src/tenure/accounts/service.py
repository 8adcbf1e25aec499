"""Accounts: listing, reading, creating and updating them; portfolio summaries."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, event
from sqlalchemy.orm import Session

from tenure.accounts import repository as repo
from tenure.accounts.events import announce
from tenure.accounts.models import (
    Account,
    AccountStatus,
    Contact,
    Hemisphere,
    Note,
    SubscriptionChange,
    SubscriptionPeriod,
)
from tenure.accounts.repository import AccountFilters
from tenure.accounts.schemas import AccountCreate, AccountUpdate
from tenure.auth import service as auth_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from tenure.kit.money import DEFAULT_FX, FxRates
from tenure.kit.pagination import Page, paginate

__all__ = ["AccountFilters"]

# Countries wholly or mostly south of the equator: their wedding peak is Nov-Apr.
SOUTHERN_COUNTRIES = frozenset(
    {
        "AR",
        "AU",
        "BO",
        "BR",
        "BW",
        "CL",
        "FJ",
        "LS",
        "MG",
        "MU",
        "MZ",
        "NA",
        "NZ",
        "PE",
        "PY",
        "SZ",
        "UY",
        "ZA",
        "ZM",
        "ZW",
    }
)
SORTS: dict[str, Any] = {
    "name": Account.name_lower,
    "mrr": Account.mrr_base_cents,
    "signup": Account.signup_at,
    "updated": Account.updated_at,
}
MAX_PAGE = 200


def announce_changes(session: Session, accounts: Iterable[Account], *, now: datetime) -> int:
    """Publish account.created / account.updated for these accounts (call before flush)."""
    return announce(session, accounts, now=now)


def hemisphere_of(country: str | None) -> str:
    return Hemisphere.south.value if country in SOUTHERN_COUNTRIES else Hemisphere.north.value


def list_accounts(
    session: Session,
    filters: AccountFilters,
    *,
    sort: str = "name",
    descending: bool = False,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Account]:
    """One page of accounts matching the filters, in a stable order."""
    if sort not in SORTS:
        raise InvalidInput(f"unknown sort '{sort}' (choose {', '.join(SORTS)})", field="sort")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    return paginate(
        session,
        repo.filtered(filters, repo.dialect_of(session)),
        sort_column=SORTS[sort],
        id_column=Account.id,
        descending=descending,
        cursor=cursor,
        limit=limit,
    )


def count_accounts(session: Session, filters: AccountFilters) -> int:
    return repo.count(session, filters)


def get_account(session: Session, account_id: uuid.UUID) -> Account:
    account = repo.by_id(session, account_id)
    if account is None:
        raise NotFound(f"no account with id {account_id}")
    return account


def get_account_by_external_id(session: Session, external_id: str) -> Account | None:
    return repo.by_external_id(session, external_id)


def _check_parent(session: Session, account_id: uuid.UUID | None, parent_id: uuid.UUID) -> None:
    parent = repo.by_id(session, parent_id)
    if parent is None:
        raise InvalidInput(f"parent account {parent_id} does not exist", field="parent_id")
    # Walk up: an account may not become its own ancestor.
    seen: set[uuid.UUID] = set()
    node: Account | None = parent
    while node is not None:
        if node.id == account_id or node.id in seen:
            raise InvalidInput("an account cannot be its own ancestor", field="parent_id")
        seen.add(node.id)
        node = repo.by_id(session, node.parent_id) if node.parent_id else None


def create_account(
    session: Session,
    data: AccountCreate,
    *,
    actor: Actor,
    now: datetime,
    fx: FxRates = DEFAULT_FX,
) -> Account:
    """Create an account; external ids are unique."""
    if repo.by_external_id(session, data.external_id) is not None:
        raise Conflict(f"an account with external_id {data.external_id} already exists")
    if data.parent_id is not None:
        _check_parent(session, None, data.parent_id)
    if data.owner_id is not None:
        auth_service.get_user(session, data.owner_id)
    account = Account(
        external_id=data.external_id,
        name=data.name,
        name_lower=data.name.lower(),
        category=data.category,
        plan=data.plan,
        mrr_cents=data.mrr_cents,
        currency=data.currency,
        mrr_base_cents=fx.to_base(data.mrr_cents, data.currency),
        country=data.country,
        hemisphere=data.hemisphere or hemisphere_of(data.country),
        timezone=data.timezone,
        signup_at=(data.signup_at or now).astimezone(UTC),
        status=data.status,
        churned_at=now if data.status == AccountStatus.churned.value else None,
        parent_id=data.parent_id,
        owner_id=data.owner_id,
        tags=list(dict.fromkeys(data.tags)),
        traits=data.traits,
        created_at=now,
        updated_at=now,
    )
    session.add(account)
    announce(session, [account], now=now)
    auth_service.audit(
        session,
        actor,
        "account.create",
        now=now,
        target_type="account",
        target_id=account.id,
        details={"external_id": account.external_id},
    )
    return account


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | datetime):
        return str(value)
    return value


def update_account(
    session: Session,
    account_id: uuid.UUID,
    data: AccountUpdate,
    *,
    actor: Actor,
    now: datetime,
    fx: FxRates = DEFAULT_FX,
) -> Account:
    """Apply the fields present in `data`; the audit entry lists what changed, before and after."""
    account = get_account(session, account_id)
    changes = data.model_dump(exclude_unset=True)
    if "parent_id" in changes and changes["parent_id"] is not None:
        _check_parent(session, account.id, changes["parent_id"])
    if changes.get("owner_id") is not None:
        auth_service.get_user(session, changes["owner_id"])
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        if (
            field in ("name", "currency", "hemisphere", "status", "tags", "traits", "mrr_cents")
            and value is None
        ):
            raise InvalidInput(f"{field} cannot be null", field=field)
        old = getattr(account, field)
        if old != value:
            diff[field] = {"from": _jsonable(old), "to": _jsonable(value)}
            setattr(account, field, value)
    if "name" in diff:
        account.name_lower = account.name.lower()
    if "mrr_cents" in diff or "currency" in diff:
        account.mrr_base_cents = fx.to_base(account.mrr_cents, account.currency)
    if "country" in diff and "hemisphere" not in changes:
        account.hemisphere = hemisphere_of(account.country)
    if "status" in diff:
        account.churned_at = now if account.status == AccountStatus.churned.value else None
    if diff:
        account.updated_at = now
        announce(session, [account], now=now)
        auth_service.audit(
            session,
            actor,
            "account.update",
            now=now,
            target_type="account",
            target_id=account.id,
            details={"changes": diff},
        )
    return account


def list_contacts(session: Session, account_id: uuid.UUID) -> list[Contact]:
    get_account(session, account_id)
    return repo.contacts_of(session, account_id)


def list_children(session: Session, account_id: uuid.UUID) -> list[Account]:
    return repo.children(session, account_id)


@dataclass(frozen=True)
class Facets:
    categories: list[str]
    plans: list[str]
    statuses: list[str]


def facets(session: Session) -> Facets:
    """The values the account filters can take, from the data."""
    return Facets(
        categories=repo.distinct_values(session, "category"),
        plans=repo.distinct_values(session, "plan"),
        statuses=[s.value for s in AccountStatus],
    )


@dataclass(frozen=True)
class PortfolioSummary:
    total: int
    by_status: dict[str, int]
    mrr_base_cents: int
    mrr_by_currency: dict[str, int]
    by_category: dict[str, int]


def portfolio_summary(session: Session) -> PortfolioSummary:
    """Counts and MRR (in the reporting currency and per billing currency) of the portfolio."""
    by_status = repo.status_counts(session)
    return PortfolioSummary(
        total=sum(by_status.values()),
        by_status=by_status,
        mrr_base_cents=repo.mrr_base_total(session),
        mrr_by_currency=repo.mrr_by_currency(session),
        by_category=repo.category_counts(session),
    )


def bulk_insert_accounts(
    session: Session, columns: Mapping[str, Sequence[Any]], *, fx: FxRates = DEFAULT_FX
) -> int:
    """Insert accounts given as columns (bulk loads: simulator, imports); not audited per row."""
    columns = dict(columns)
    columns["mrr_base_cents"] = [
        fx.to_base(cents, currency)
        for cents, currency in zip(columns["mrr_cents"], columns["currency"], strict=True)
    ]
    columns.setdefault("name_lower", [name.lower() for name in columns["name"]])
    if "hemisphere" not in columns:
        columns["hemisphere"] = [hemisphere_of(c) for c in columns["country"]]
    return repo.insert_columns(session, Account, columns)


def bulk_insert_contacts(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert contacts given as columns (bulk loads)."""
    return repo.insert_columns(session, Contact, columns)


def bulk_insert_subscription_changes(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert subscription changes given as columns (bulk loads)."""
    return repo.insert_columns(session, SubscriptionChange, columns)


def ids_query(*, hemisphere: str | None = None) -> Select[Any]:
    """A subquery of account ids, for other domains to filter their rows by account traits."""
    return repo.ids(hemisphere=hemisphere)


def get_contact_by_id(session: Session, contact_id: uuid.UUID) -> Contact | None:
    """The contact with this id, or None (for other domains resolving references)."""
    return repo.contact_by_id(session, contact_id)


def get_contact_by_external_id(session: Session, external_id: str) -> Contact | None:
    """The contact with this external id (the SDK `userId`), or None."""
    return repo.contact_by_external_id(session, external_id)


def add_tags(
    session: Session, account_id: uuid.UUID, tags: Sequence[str], *, actor: Actor, now: datetime
) -> Account:
    """Add tags (kept unique, in order of first use)."""
    account = get_account(session, account_id)
    merged = list(dict.fromkeys([*account.tags, *(t.strip() for t in tags if t.strip())]))
    if merged != account.tags:
        auth_service.audit(
            session,
            actor,
            "account.tag",
            now=now,
            target_type="account",
            target_id=account.id,
            details={"added": sorted(set(merged) - set(account.tags))},
        )
        account.tags = merged
        account.updated_at = now
        announce(session, [account], now=now)
    return account


def remove_tag(
    session: Session, account_id: uuid.UUID, tag: str, *, actor: Actor, now: datetime
) -> Account:
    account = get_account(session, account_id)
    if tag in account.tags:
        account.tags = [t for t in account.tags if t != tag]
        account.updated_at = now
        announce(session, [account], now=now)
        auth_service.audit(
            session,
            actor,
            "account.untag",
            now=now,
            target_type="account",
            target_id=account.id,
            details={"removed": tag},
        )
    return account


def list_periods(session: Session, account_id: uuid.UUID) -> list[SubscriptionPeriod]:
    get_account(session, account_id)
    return repo.periods_of(session, account_id)


def list_notes(session: Session, account_id: uuid.UUID) -> list[Note]:
    get_account(session, account_id)
    return repo.notes_of(session, account_id)


def add_note(
    session: Session,
    account_id: uuid.UUID,
    body: str,
    *,
    actor: Actor,
    now: datetime,
    pinned: bool = False,
) -> Note:
    """A note on the account by the acting user or key (audited)."""
    account = get_account(session, account_id)
    note = Note(
        account_id=account.id,
        author_id=actor.user_id,
        author_label=actor.label,
        body=body.strip(),
        pinned=pinned,
        created_at=now,
        updated_at=now,
    )
    if not note.body:
        raise InvalidInput("a note cannot be empty", field="body")
    session.add(note)
    session.flush()
    auth_service.audit(
        session,
        actor,
        "note.create",
        now=now,
        target_type="account",
        target_id=account.id,
        details={"note_id": str(note.id)},
    )
    return note


def delete_note(session: Session, note_id: uuid.UUID, *, actor: Actor, now: datetime) -> None:
    """Authors delete their own notes; admins any note."""
    note = repo.note_by_id(session, note_id)
    if note is None:
        raise NotFound(f"no note with id {note_id}")
    if not actor.has_scope("admin") and (actor.user_id is None or actor.user_id != note.author_id):
        raise Forbidden("only the author or an admin can delete this note")
    session.delete(note)
    auth_service.audit(
        session,
        actor,
        "note.delete",
        now=now,
        target_type="account",
        target_id=note.account_id,
        details={"note_id": str(note_id)},
    )


# Health scoring reads accounts through these (the health domain owns no account data).


def health_frame(
    session: Session, *, as_of: datetime, account_ids: Collection[uuid.UUID] | None = None
) -> list[tuple[Any, ...]]:
    """(id, category, plan, status, hemisphere, signup_at, churned_at, parent_id,
    mrr_base_cents, mrr_cents, health_score, health_risk, health_as_of) of accounts alive
    at `as_of`, by id."""
    return repo.health_frame(session, as_of=as_of, account_ids=account_ids)


def alive_ids(as_of: datetime) -> Select[Any]:
    """A query of the ids `health_frame` returns without `account_ids` (the accounts alive
    at `as_of`): other domains read the whole portfolio's rows through it, no ids bound."""
    return repo.alive_ids(as_of)


def lifetimes(
    session: Session,
) -> list[tuple[uuid.UUID, str | None, str, datetime, datetime | None]]:
    """(id, category, hemisphere, signup_at, churned_at) of every account."""
    return repo.lifetimes(session)


def subscription_changes_between(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    account_ids: Collection[uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, str, int, int, datetime]]:
    """(account, kind, MRR before, MRR after, when) in [since, until), oldest first."""
    return repo.subscription_changes_between(
        session, since=since, until=until, account_ids=account_ids
    )


def set_health(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store the latest score and risk level on accounts: rows of id, health_score,
    health_risk, health_as_of."""
    repo.set_health(session, rows)


def currencies(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The billing currency of each account."""
    return repo.currencies(session, ids)


def trait_values(session: Session, name: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The text value of one account trait (`group` traits, CSV import) for each of the
    accounts that has it."""
    return repo.trait_values(session, name, ids)


def set_churn(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store the latest churn prediction on accounts: rows of id, churn_probability,
    churn_risk, churn_mrr_at_risk_cents, churn_as_of."""
    repo.set_churn(session, rows)


def churn_state(
    session: Session, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime | None, str | None, float | None]]:
    """(as_of, risk level, probability) of each account's latest churn prediction."""
    return repo.churn_as_of(session, ids)


def at_risk(
    session: Session,
    *,
    levels: Sequence[str] = (),
    owner_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Account], int]:
    """Live accounts with a churn prediction, largest MRR at risk first, and their count."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if offset < 0:
        raise InvalidInput("offset must not be negative", field="offset")
    return repo.at_risk(session, levels=levels, owner_id=owner_id, limit=limit, offset=offset)


def rescore_requested(session: Session, *, before: datetime, limit: int) -> list[uuid.UUID]:
    """Accounts whose data changed (marked at or before `before`), oldest mark first."""
    return repo.rescore_requested(session, before=before, limit=limit)


def clear_rescore(
    session: Session, ids: Collection[uuid.UUID], *, requested_before: datetime
) -> None:
    repo.clear_rescore(session, ids, requested_before=requested_before)


def request_rescore(session: Session, ids: Collection[uuid.UUID], *, now: datetime) -> None:
    """New data may change these accounts' scores: the worker rescores them shortly.

    The marks are written once, just before the transaction commits (one UPDATE however
    many rows a bulk load touched)."""
    pending: dict[uuid.UUID, datetime] = session.info.setdefault(_RESCORE_KEY, {})
    for account_id in ids:
        pending[account_id] = now


_RESCORE_KEY = "tenure.rescore"


@event.listens_for(Session, "before_commit")
def _write_rescore_marks(session: Session) -> None:
    pending: dict[uuid.UUID, datetime] | None = session.info.pop(_RESCORE_KEY, None)
    if pending:
        from tenure.accounts import sync

        sync.mark_for_rescore(session, list(pending), now=max(pending.values()))


@event.listens_for(Session, "after_rollback")
def _drop_rescore_marks(session: Session) -> None:
    session.info.pop(_RESCORE_KEY, None)


def parents_of(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    return dict(repo.parents_of(session, ids))


def children_of(session: Session, parent_ids: Collection[uuid.UUID]) -> list[uuid.UUID]:
    """Ids of the direct children of these accounts."""
    return repo.children_ids(session, parent_ids)


def health_by_account(session: Session) -> list[tuple[float | None, str | None, int]]:
    """(latest health score, risk level, MRR in the reporting currency) of live accounts."""
    return repo.health_by_account(session)
