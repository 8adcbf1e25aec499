"""Routes: /api/v1/accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from tenure.accounts import bulk, service
from tenure.accounts.schemas import (
    AccountCreate,
    AccountPage,
    AccountRead,
    AccountUpdate,
    BulkAccounts,
    ContactRead,
    ContactUpsert,
    NoteCreate,
    NoteRead,
    SortKey,
    Status,
    SubscriptionChangeUpsert,
    SubscriptionPeriodRead,
    SubscriptionPeriodUpsert,
    UpsertResult,
)
from tenure.auth.dependencies import Reader, Writer
from tenure.deps import DB, State
from tenure.ingest import pipeline
from tenure.kit.errors import InvalidInput, NotFound

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


def _risk_levels(db: DB, risk: str | None) -> tuple[str, ...]:
    if not risk:
        return ()
    from tenure.health import service as health_service

    wanted = tuple(dict.fromkeys(risk.split(",")))
    known = [*health_service.risk_levels(db), "unscored"]
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise InvalidInput(
            f"unknown risk level {', '.join(unknown)} (choose from {', '.join(known)})",
            field="risk",
        )
    return wanted


@router.get("", response_model=AccountPage, summary="List accounts (cursor pagination)")
def list_accounts(
    db: DB,
    _: Reader,
    q: Annotated[
        str | None, Query(max_length=200, description="Name contains, or external id")
    ] = None,
    category: str | None = None,
    plan: str | None = None,
    status: Status | None = None,
    owner_id: uuid.UUID | None = None,
    parent_id: uuid.UUID | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    risk: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Health risk levels, comma-separated (e.g. high,critical; unscored)",
            pattern=r"^[a-z_]+(,[a-z_]+)*$",
        ),
    ] = None,
    sort: SortKey = "name",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> AccountPage:
    filters = service.AccountFilters(
        q=q,
        category=category,
        plan=plan,
        status=status,
        owner_id=owner_id,
        parent_id=parent_id,
        tag=tag,
        risk=_risk_levels(db, risk),
    )
    page = service.list_accounts(
        db, filters, sort=sort, descending=order == "desc", cursor=cursor, limit=limit
    )
    return AccountPage(
        items=[AccountRead.model_validate(a) for a in page.items],
        total=service.count_accounts(db, filters),
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


@router.post("", response_model=AccountRead, status_code=201)
def create_account(body: AccountCreate, db: DB, state: State, actor: Writer) -> AccountRead:
    account = service.create_account(db, body, actor=actor, now=state.clock.now(), fx=state.fx)
    return AccountRead.model_validate(account)


@router.put("/bulk", response_model=UpsertResult, summary="Create or update up to 5,000 accounts")
def bulk_upsert(body: BulkAccounts, db: DB, state: State, actor: Writer) -> UpsertResult:
    """Matched by external_id; only the fields given are written. All or nothing."""
    now = state.clock.now()
    result = bulk.upsert_accounts(db, body.accounts, actor=actor, now=now, fx=state.fx)
    # Events tracked before these accounts existed are attached (and counted) now.
    pipeline.link_waiting(db, now=now, account_external_ids=[a.external_id for a in body.accounts])
    return result


@router.get("/{account_id}", response_model=AccountRead)
def get_account(account_id: uuid.UUID, db: DB, _: Reader) -> AccountRead:
    return AccountRead.model_validate(service.get_account(db, account_id))


@router.patch("/{account_id}", response_model=AccountRead)
def update_account(
    account_id: uuid.UUID, body: AccountUpdate, db: DB, state: State, actor: Writer
) -> AccountRead:
    account = service.update_account(
        db, account_id, body, actor=actor, now=state.clock.now(), fx=state.fx
    )
    return AccountRead.model_validate(account)


@router.get("/{account_id}/contacts", response_model=list[ContactRead])
def list_contacts(account_id: uuid.UUID, db: DB, _: Reader) -> list[ContactRead]:
    return [ContactRead.model_validate(c) for c in service.list_contacts(db, account_id)]


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1)


@router.post("/{account_id}/tags", response_model=AccountRead)
def add_tags(
    account_id: uuid.UUID, body: TagsIn, db: DB, state: State, actor: Writer
) -> AccountRead:
    account = service.add_tags(db, account_id, body.tags, actor=actor, now=state.clock.now())
    return AccountRead.model_validate(account)


@router.delete("/{account_id}/tags/{tag}", response_model=AccountRead)
def remove_tag(account_id: uuid.UUID, tag: str, db: DB, state: State, actor: Writer) -> AccountRead:
    account = service.remove_tag(db, account_id, tag, actor=actor, now=state.clock.now())
    return AccountRead.model_validate(account)


contacts_router = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


class BulkContacts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactUpsert] = Field(min_length=1, max_length=5000)


@contacts_router.put("/bulk", response_model=UpsertResult, summary="Create or update contacts")
def bulk_contacts(body: BulkContacts, db: DB, state: State, actor: Writer) -> UpsertResult:
    now = state.clock.now()
    result = bulk.upsert_contacts(db, body.contacts, actor=actor, now=now)
    pipeline.link_waiting(db, now=now, contact_external_ids=[c.external_id for c in body.contacts])
    return result


@contacts_router.get("/{contact_id}", response_model=ContactRead)
def get_contact(contact_id: uuid.UUID, db: DB, _: Reader) -> ContactRead:
    contact = service.get_contact_by_id(db, contact_id)
    if contact is None:
        raise NotFound(f"no contact with id {contact_id}")
    return ContactRead.model_validate(contact)


subscriptions_router = APIRouter(prefix="/api/v1/subscription-changes", tags=["subscriptions"])


class BulkChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[SubscriptionChangeUpsert] = Field(min_length=1, max_length=5000)


@subscriptions_router.put(
    "/bulk",
    response_model=UpsertResult,
    summary="Record MRR movements (new, expansion, churn, ...)",
)
def bulk_changes(body: BulkChanges, db: DB, state: State, actor: Writer) -> UpsertResult:
    return bulk.upsert_subscription_changes(db, body.changes, actor=actor, now=state.clock.now())


class BulkPeriods(BaseModel):
    model_config = ConfigDict(extra="forbid")

    periods: list[SubscriptionPeriodUpsert] = Field(min_length=1, max_length=5000)


periods_router = APIRouter(prefix="/api/v1/subscription-periods", tags=["subscriptions"])


@periods_router.put(
    "/bulk", response_model=UpsertResult, summary="Record billing periods (start, end, MRR, plan)"
)
def bulk_periods(body: BulkPeriods, db: DB, state: State, actor: Writer) -> UpsertResult:
    return bulk.upsert_subscription_periods(db, body.periods, actor=actor, now=state.clock.now())


@router.get("/{account_id}/subscription-periods", response_model=list[SubscriptionPeriodRead])
def list_periods(account_id: uuid.UUID, db: DB, _: Reader) -> list[SubscriptionPeriodRead]:
    return [SubscriptionPeriodRead.model_validate(p) for p in service.list_periods(db, account_id)]


@router.get("/{account_id}/notes", response_model=list[NoteRead])
def list_notes(account_id: uuid.UUID, db: DB, _: Reader) -> list[NoteRead]:
    return [NoteRead.model_validate(n) for n in service.list_notes(db, account_id)]


@router.post("/{account_id}/notes", response_model=NoteRead, status_code=201)
def add_note(
    account_id: uuid.UUID, body: NoteCreate, db: DB, state: State, actor: Writer
) -> NoteRead:
    note = service.add_note(
        db, account_id, body.body, pinned=body.pinned, actor=actor, now=state.clock.now()
    )
    return NoteRead.model_validate(note)


notes_router = APIRouter(prefix="/api/v1/notes", tags=["accounts"])


@notes_router.delete("/{note_id}", status_code=204)
def delete_note(note_id: uuid.UUID, db: DB, state: State, actor: Writer) -> None:
    service.delete_note(db, note_id, actor=actor, now=state.clock.now())
