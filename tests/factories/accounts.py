from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.accounts.models import Account, Contact
from tenure.accounts.schemas import AccountCreate
from tenure.kit.actor import Actor

_seq = itertools.count(1)


def make_account(session: Session, *, now: datetime, **fields: Any) -> Account:
    n = next(_seq)
    data: dict[str, Any] = {
        "external_id": f"acc_{n:05d}",
        "name": f"Account {n}",
        "category": "photographer",
        "plan": "professional",
        "mrr_cents": 7900,
        "country": "US",
        "timezone": "America/New_York",
    }
    data.update(fields)
    return accounts_service.create_account(
        session, AccountCreate(**data), actor=Actor.system("tests"), now=now
    )


def make_contact(session: Session, account: Account, *, now: datetime, **fields: Any) -> Contact:
    n = next(_seq)
    contact = Contact(
        external_id=fields.pop("external_id", f"usr_{n:05d}"),
        account_id=account.id,
        email=fields.pop("email", f"person{n}@example.com"),
        name=fields.pop("name", f"Person {n}"),
        role=fields.pop("role", "owner"),
        consents=fields.pop("consents", {"email": True}),
        traits=fields.pop("traits", {}),
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(contact)
    session.flush()
    return contact
