"""Accounts and contacts as trackers and imports describe them (Segment group/identify/alias).

Traits carry a clock: a `group` or `identify` older than the last one applied does not
overwrite newer traits, so messages may arrive in any order.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from tenure.accounts import sync_repository as repo
from tenure.accounts.models import Account, AccountStatus, Contact
from tenure.accounts.service import hemisphere_of
from tenure.kit.money import DEFAULT_FX, FxRates

# Account traits with a column of their own; every other trait is kept in `traits`.
_ACCOUNT_KEYS = {
    "name",
    "plan",
    "mrr",
    "mrr_cents",
    "category",
    "industry",
    "country",
    "timezone",
    "currency",
    "status",
    "created_at",
    "createdAt",
}
_CONTACT_KEYS = {
    "email",
    "name",
    "firstName",
    "first_name",
    "lastName",
    "last_name",
    "phone",
    "role",
    "title",
    "timezone",
}


def _text(value: Any, limit: int = 255) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text[:limit] or None


def _country(traits: Mapping[str, Any]) -> str | None:
    raw = traits.get("country")
    address = traits.get("address")
    if raw is None and isinstance(address, dict):
        raw = address.get("country")
    text = _text(raw)
    return text.upper() if text and len(text) == 2 and text.isalpha() else None


def _timezone(value: Any) -> str | None:
    text = _text(value, 64)
    if not text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return text


def _mrr_cents(traits: Mapping[str, Any]) -> int | None:
    for key, scale in (("mrr_cents", 1), ("mrr", 100)):
        value = traits.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return round(value * scale)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            if number >= 0:
                return round(number * scale)
    return None


def accounts_by_external_id(session: Session, external_ids: Collection[str]) -> dict[str, Account]:
    return {a.external_id: a for a in repo.accounts_by_external_ids(session, external_ids)}


def accounts_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Account]:
    return {a.id: a for a in repo.accounts_by_ids(session, ids)}


def contacts_by_external_id(session: Session, external_ids: Collection[str]) -> dict[str, Contact]:
    return {c.external_id: c for c in repo.contacts_by_external_ids(session, external_ids)}


def resolve_aliases(session: Session, names: Collection[str]) -> dict[str, str]:
    """alias -> the external id it now stands for."""
    return repo.aliases(session, names)


def apply_group(
    session: Session,
    external_id: str,
    traits: Mapping[str, Any],
    *,
    at: datetime,
    now: datetime,
    known: dict[str, Account],
    fx: FxRates = DEFAULT_FX,
) -> tuple[Account, bool]:
    """Create or update the account a `group` call describes; returns (account, created)."""
    account = known.get(external_id)
    created = account is None
    if account is None:
        name = _text(traits.get("name")) or external_id
        account = Account(
            id=uuid.uuid4(),
            external_id=external_id,
            name=name,
            name_lower=name.lower(),
            mrr_cents=0,
            currency="USD",
            mrr_base_cents=0,
            hemisphere="north",
            signup_at=at,
            status=AccountStatus.active.value,
            tags=[],
            traits={},
            created_at=now,
            updated_at=now,
        )
        session.add(account)
        known[external_id] = account
    elif account.traits_at is not None and at < account.traits_at:
        return account, False
    account.traits_at = at
    if (new_name := _text(traits.get("name"))) is not None:
        account.name, account.name_lower = new_name, new_name.lower()
    if (plan := _text(traits.get("plan"), 64)) is not None:
        account.plan = plan
    if (category := _text(traits.get("category") or traits.get("industry"), 64)) is not None:
        account.category = category.lower().replace(" ", "_")
    if (country := _country(traits)) is not None:
        account.country = country
        account.hemisphere = hemisphere_of(country)
    if (tz := _timezone(traits.get("timezone"))) is not None:
        account.timezone = tz
    currency = _text(traits.get("currency"), 3)
    if currency and currency.upper() in fx.usd_value:
        account.currency = currency.upper()
    if (mrr := _mrr_cents(traits)) is not None:
        account.mrr_cents = mrr
    account.mrr_base_cents = fx.to_base(account.mrr_cents, account.currency)
    status = _text(traits.get("status"), 16)
    if status in {s.value for s in AccountStatus}:
        account.status = status
    created_at = traits.get("created_at") or traits.get("createdAt")
    if created and isinstance(created_at, str):
        with contextlib.suppress(ValueError):
            account.signup_at = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    extra = {k: v for k, v in traits.items() if k not in _ACCOUNT_KEYS}
    if extra:
        account.traits = {**account.traits, **extra}
    account.updated_at = now
    return account, created


def apply_identify(
    session: Session,
    external_id: str,
    traits: Mapping[str, Any],
    set_once: Mapping[str, Any],
    *,
    at: datetime,
    now: datetime,
    known: dict[str, Contact],
    timezone: str | None = None,
) -> tuple[Contact, bool]:
    """Create or update the contact an `identify` call describes; returns (contact, created)."""
    contact = known.get(external_id)
    created = contact is None
    if contact is None:
        contact = Contact(
            id=uuid.uuid4(),
            external_id=external_id,
            consents={},
            traits={},
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        known[external_id] = contact
    merged = {**{k: v for k, v in set_once.items() if k not in contact.traits}}
    if contact.traits_at is None or at >= contact.traits_at:
        merged.update(traits)
        contact.traits_at = at
    if not merged:
        return contact, created
    if (email := _text(merged.get("email"), 320)) is not None:
        contact.email = email
    first = _text(merged.get("firstName") or merged.get("first_name"))
    last = _text(merged.get("lastName") or merged.get("last_name"))
    name = _text(merged.get("name")) or " ".join(p for p in (first, last) if p) or None
    if name:
        contact.name = name
    if (phone := _text(merged.get("phone"), 64)) is not None:
        contact.phone = phone
    if (role := _text(merged.get("role") or merged.get("title"), 64)) is not None:
        contact.role = role
    if (tz := _timezone(merged.get("timezone") or timezone)) is not None:
        contact.timezone = tz
    extra = {k: v for k, v in merged.items() if k not in _CONTACT_KEYS}
    if extra:
        contact.traits = {**contact.traits, **extra}
    contact.updated_at = now
    return contact, created


def record_alias(session: Session, alias: str, external_id: str, *, now: datetime) -> None:
    repo.add_alias(session, alias, external_id, now)


def mark_for_rescore(
    session: Session, account_ids: Collection[uuid.UUID], *, now: datetime
) -> None:
    """Ask the health engine to rescore these accounts (new data may change their scores)."""
    repo.mark_for_rescore(session, account_ids, now)


@dataclass
class AccountRef:
    id: uuid.UUID
    external_id: str
    timezone: str | None


@dataclass
class ContactRef:
    id: uuid.UUID
    external_id: str
    account_id: uuid.UUID | None


def account_refs(session: Session, external_ids: Collection[str]) -> dict[str, AccountRef]:
    """Id and timezone of existing accounts, without loading whole rows."""
    return {e: AccountRef(i, e, tz) for e, i, tz in repo.account_refs(session, external_ids)}


def account_refs_by_id(session: Session, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, AccountRef]:
    return {i: AccountRef(i, e, tz) for e, i, tz in repo.account_refs_by_id(session, ids)}


def contact_refs(session: Session, external_ids: Collection[str]) -> dict[str, ContactRef]:
    return {e: ContactRef(i, e, a) for e, i, a in repo.contact_refs(session, external_ids)}


def create_contacts(
    session: Session, external_ids: Collection[str], *, now: datetime
) -> dict[str, ContactRef]:
    """Contacts known only by their id (first seen in a track call), inserted in one go.

    A concurrent batch may create the same contact first: the conflict is ignored and the
    stored row is read back, so both batches agree on its id.
    """
    if not external_ids:
        return {}
    ordered = sorted(external_ids)
    repo.insert_contacts(
        session,
        [
            {
                "id": uuid.uuid4(),
                "external_id": e,
                "consents": {},
                "traits": {},
                "created_at": now,
                "updated_at": now,
            }
            for e in ordered
        ],
    )
    return contact_refs(session, ordered)


def set_contact_accounts(session: Session, pairs: Mapping[uuid.UUID, uuid.UUID]) -> None:
    # Sorted: concurrent batches update rows in one order and cannot deadlock.
    ordered = sorted(pairs.items(), key=lambda p: str(p[0]))
    repo.set_contact_accounts(session, [{"cid": c, "aid": a} for c, a in ordered])


def touch_last_seen(session: Session, seen: Mapping[uuid.UUID, datetime]) -> None:
    ordered = sorted(seen.items(), key=lambda p: str(p[0]))
    repo.touch_last_seen(session, [{"cid": c, "seen": at} for c, at in ordered])
