"""Routes: /api/v1/accounts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from tenure.accounts import service
from tenure.accounts.schemas import (
    AccountCreate,
    AccountPage,
    AccountRead,
    AccountUpdate,
    ContactRead,
    SortKey,
    Status,
)
from tenure.auth.dependencies import Reader, Writer
from tenure.deps import DB, State

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


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
    sort: SortKey = "name",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE)] = 50,
) -> AccountPage:
    filters = service.AccountFilters(
        q=q, category=category, plan=plan, status=status, owner_id=owner_id, parent_id=parent_id
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
