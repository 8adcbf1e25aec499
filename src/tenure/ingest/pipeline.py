"""From validated tracking messages to stored facts, in the caller's transaction.

Order of work for a batch: aliases, accounts (`group`), contacts (`identify` and first
sightings), then the events themselves (new message ids only), the usage_daily rollup of the
day each event happened, linking of events that were waiting for their account or contact,
last-seen times, and rescore marks for every account whose data changed.

Hot path: a batch of track calls touches accounts and contacts only through light Core
queries (ids, timezones) and executemany statements; whole ORM rows are loaded only for the
accounts and contacts that `group` and `identify` calls describe.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.accounts import sync
from tenure.accounts.sync import AccountRef, ContactRef
from tenure.hub import service as hub_service
from tenure.hub.events import DomainEvent, EventIngested
from tenure.ingest import repository as repo
from tenure.ingest.messages import Message
from tenure.ingest.rollup import ACTIVE_USERS, ALL_EVENTS
from tenure.kit.money import DEFAULT_FX, FxRates

ACTIVITY = frozenset({"track", "page", "screen"})
# Rollup entries a bulk load may hold back before writing them (about 100 MB).
DEFERRED_LIMIT = 300_000
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class IngestResult:
    received: int
    stored: int
    duplicates: int
    linked: int


@dataclass(frozen=True)
class _Activity:
    account_id: uuid.UUID
    contact_id: uuid.UUID | None
    timestamp: datetime
    type: str
    name: str | None


def _metric(kind: str, name: str | None) -> str:
    if kind == "page":
        return "$page"
    if kind == "screen":
        return "$screen"
    return name or "$unnamed"


class _Zones:
    """Local days per account timezone, cached for the batch."""

    def __init__(self) -> None:
        self._zones: dict[uuid.UUID, ZoneInfo] = {}

    def know(self, account_id: uuid.UUID, timezone: str | None) -> None:
        self._zones[account_id] = ZoneInfo(timezone) if timezone else _UTC

    def missing(self, ids: set[uuid.UUID]) -> set[uuid.UUID]:
        return ids - self._zones.keys()

    def day(self, account_id: uuid.UUID, at: datetime) -> date:
        return at.astimezone(self._zones.get(account_id, _UTC)).date()


@dataclass
class _Ingested:
    events: int
    first_at: datetime
    last_at: datetime


def _count_ingested(
    into: dict[uuid.UUID, _Ingested], rows: list[dict[str, Any]], new: Collection[str]
) -> None:
    for r in rows:
        account_id = r["account_id"]
        if account_id is None or r["message_id"] not in new:
            continue
        at = r["timestamp"]
        seen = into.get(account_id)
        if seen is None:
            into[account_id] = _Ingested(1, at, at)
        else:
            seen.events += 1
            seen.first_at = min(seen.first_at, at)
            seen.last_at = max(seen.last_at, at)


def _publish_ingested(
    session: Session, ingested: dict[uuid.UUID, _Ingested], *, now: datetime
) -> None:
    """One `event.ingested` per account and batch (or import), not one per event."""
    events: list[tuple[DomainEvent, uuid.UUID | None]] = [
        (
            EventIngested(
                account_id=account_id, events=i.events, first_at=i.first_at, last_at=i.last_at
            ),
            account_id,
        )
        for account_id, i in sorted(ingested.items())
    ]
    hub_service.publish_many(session, events, now=now)
    ingested.clear()


class Deferred:
    """Bookkeeping held back across many batches of one bulk load (CSV import) and written
    once by `finish`: usage counts, active days, last-seen times, rescore marks, and the
    account/contact lookups, which would otherwise be repeated for every chunk."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[uuid.UUID, date, str]] = Counter()
        self.active: set[tuple[uuid.UUID, date, uuid.UUID]] = set()
        self.seen: dict[uuid.UUID, datetime] = {}
        self.touched: set[uuid.UUID] = set()
        self.ingested: dict[uuid.UUID, _Ingested] = {}
        self.accounts: dict[str, AccountRef] = {}
        self.contacts: dict[str, ContactRef] = {}
        self.zones = _Zones()


def _write_rollup(
    session: Session,
    counts: Counter[tuple[uuid.UUID, date, str]],
    active: set[tuple[uuid.UUID, date, uuid.UUID]],
) -> None:
    # A contact already active that day (an earlier batch) is not counted again.
    for account_id, day in repo.insert_active_days(session, active):
        counts[(account_id, day, ACTIVE_USERS)] += 1
    repo.add_usage(session, counts)


def finish(session: Session, deferred: Deferred, *, now: datetime) -> None:
    """Write what a bulk load held back (see `Deferred`)."""
    _write_rollup(session, deferred.counts, deferred.active)
    _publish_ingested(session, deferred.ingested, now=now)
    sync.touch_last_seen(session, deferred.seen)
    sync.mark_for_rescore(session, deferred.touched, now=now)
    deferred.counts.clear()
    deferred.active.clear()
    deferred.seen.clear()
    deferred.touched.clear()


def _rollup(
    session: Session, items: list[_Activity], zones: _Zones, deferred: Deferred | None = None
) -> None:
    """Add these (newly attributed) events to usage_daily, active users included."""
    if not items:
        return
    counts: Counter[tuple[uuid.UUID, date, str]] = Counter()
    active: set[tuple[uuid.UUID, date, uuid.UUID]] = set()
    for item in items:
        day = zones.day(item.account_id, item.timestamp)
        counts[(item.account_id, day, _metric(item.type, item.name))] += 1
        counts[(item.account_id, day, ALL_EVENTS)] += 1
        if item.contact_id is not None:
            active.add((item.account_id, day, item.contact_id))
    if deferred is not None:
        deferred.counts.update(counts)
        deferred.active |= active
        return
    _write_rollup(session, counts, active)


def _canonical(user: str | None, aliases: dict[str, str]) -> str | None:
    for _ in range(8):  # alias chains are short; the bound guards against cycles
        if user is None or user not in aliases:
            return user
        user = aliases[user]
    return user


def ingest(
    session: Session,
    messages: list[Message],
    *,
    source: str,
    now: datetime,
    fx: FxRates = DEFAULT_FX,
    deferred: Deferred | None = None,
) -> IngestResult:
    """Store a validated batch; duplicates (same source and message id) change nothing.

    With `deferred`, the rollup and contact bookkeeping accumulate there until `finish`.
    """
    if not messages:
        return IngestResult(0, 0, 0, 0)
    received = len(messages)
    # The same message twice in one batch (an SDK retry that merged queues) is one message.
    messages = list({m.message_id: m for m in reversed(messages)}.values())[::-1]
    by_time = sorted(messages, key=lambda m: m.timestamp)

    # Identities: aliases known before, and those this batch declares.
    ids = {m.user_id for m in messages if m.user_id} | {
        m.anonymous_id for m in messages if m.anonymous_id
    }
    aliases = sync.resolve_aliases(session, ids)
    for m in by_time:
        pair = None
        if m.type == "alias" and m.previous_id and m.user_id:
            pair = (m.previous_id, m.user_id)
        elif m.type == "identify" and m.user_id and m.anonymous_id:
            pair = (m.anonymous_id, m.user_id)
        if pair and pair[0] != pair[1] and aliases.get(pair[0]) != pair[1]:
            aliases[pair[0]] = pair[1]
            sync.record_alias(session, pair[0], pair[1], now=now)

    def user_of(m: Message) -> str | None:
        if m.user_id:
            return _canonical(m.user_id, aliases)
        return _canonical(aliases.get(m.anonymous_id or ""), aliases)

    zones = deferred.zones if deferred is not None else _Zones()
    touched: set[uuid.UUID] = deferred.touched if deferred is not None else set()

    # Accounts: full rows only for group calls (oldest first, so the newest traits win).
    group_calls = [m for m in by_time if m.type == "group" and m.group_id]
    full = sync.accounts_by_external_id(session, {m.group_id for m in group_calls if m.group_id})
    new_accounts: set[str] = set()
    for m in group_calls:
        assert m.group_id is not None
        account, created = sync.apply_group(
            session, m.group_id, m.traits, at=m.timestamp, now=now, known=full, fx=fx
        )
        touched.add(account.id)
        if created:
            new_accounts.add(m.group_id)
    accounts_service.announce_changes(session, full.values(), now=now)
    accounts: dict[str, AccountRef] = deferred.accounts if deferred is not None else {}
    accounts.update({e: AccountRef(a.id, e, a.timezone) for e, a in full.items()})
    accounts.update(
        sync.account_refs(session, {m.group_id for m in messages if m.group_id} - accounts.keys())
    )

    # Contacts: full rows for identify calls; refs for everyone else; new ones in one insert.
    identify_calls = [m for m in by_time if m.type == "identify"]
    people = sync.contacts_by_external_id(session, {u for m in identify_calls if (u := user_of(m))})
    new_users: set[str] = set()
    for m in identify_calls:
        user = user_of(m)
        if user is None:
            continue
        tz = m.context.get("timezone")
        _, created = sync.apply_identify(
            session,
            user,
            m.traits,
            m.set_once,
            at=m.timestamp,
            now=now,
            known=people,
            timezone=tz if isinstance(tz, str) else None,
        )
        if created:
            new_users.add(user)
    session.flush()
    contacts: dict[str, ContactRef] = deferred.contacts if deferred is not None else {}
    contacts.update({e: ContactRef(c.id, e, c.account_id) for e, c in people.items()})
    # Aliases are settled by now: each message's user, resolved once.
    user_by_message = {m.message_id: user_of(m) for m in messages}
    users = {u for u in user_by_message.values() if u}
    contacts.update(sync.contact_refs(session, users - contacts.keys()))
    unseen = users - contacts.keys()
    contacts.update(sync.create_contacts(session, unseen, now=now))
    new_users |= unseen

    # Who belongs to which account: the group of the message, else the contact's account.
    moved: dict[uuid.UUID, uuid.UUID] = {}
    adopted: set[str] = set()
    for m in by_time:
        user = user_by_message[m.message_id]
        group = accounts.get(m.group_id) if m.group_id else None
        person = contacts.get(user) if user else None
        if group is not None and person is not None and person.account_id != group.id:
            if person.account_id is None:
                adopted.add(person.external_id)
            person.account_id = group.id
            moved[person.id] = group.id
    sync.set_contact_accounts(session, moved)

    rows: list[dict[str, Any]] = []
    for m in messages:
        user = user_by_message[m.message_id]
        person = contacts.get(user) if user else None
        group = accounts.get(m.group_id) if m.group_id else None
        rows.append(
            {
                "source": source,
                "message_id": m.message_id,
                "account_id": group.id if group else (person.account_id if person else None),
                "contact_id": person.id if person else None,
                "user_external_id": m.user_id,
                "anonymous_id": m.anonymous_id,
                "group_external_id": m.group_id,
                "type": m.type,
                "name": m.event,
                "properties": m.properties,
                "context": m.context,
                "timestamp": m.timestamp,
                "sent_at": m.sent_at,
                "received_at": now,
                "flags": m.flags,
            }
        )
    new = repo.insert_new_events(session, rows)  # message ids actually stored
    ingested: dict[uuid.UUID, _Ingested] = deferred.ingested if deferred is not None else {}
    _count_ingested(ingested, rows, new)

    for ref in accounts.values():
        zones.know(ref.id, ref.timezone)
    account_ids = {r["account_id"] for r in rows if r["account_id"] is not None}
    for ref in sync.account_refs_by_id(session, zones.missing(account_ids)).values():
        zones.know(ref.id, ref.timezone)
    fresh = [
        _Activity(r["account_id"], r["contact_id"], r["timestamp"], r["type"], r["name"])
        for r in rows
        if r["message_id"] in new and r["account_id"] is not None and r["type"] in ACTIVITY
    ]
    _rollup(session, fresh, zones, deferred)
    touched.update(a.account_id for a in fresh)

    linked = _link_waiting(
        session,
        new_accounts,
        new_users | adopted,
        aliases,
        accounts,
        contacts,
        zones,
        touched,
        deferred,
    )

    seen: dict[uuid.UUID, datetime] = deferred.seen if deferred is not None else {}
    for r in rows:
        cid = r["contact_id"]
        if cid is not None and r["type"] in ACTIVITY and r["message_id"] in new:
            seen[cid] = max(seen.get(cid, r["timestamp"]), r["timestamp"])
    if deferred is None:
        _publish_ingested(session, ingested, now=now)
        sync.touch_last_seen(session, seen)
        sync.mark_for_rescore(session, touched, now=now)
    elif len(deferred.counts) + len(deferred.active) > DEFERRED_LIMIT:
        finish(session, deferred, now=now)  # bounded memory, whatever the file size
    return IngestResult(
        received=received,
        stored=len(new),
        duplicates=received - len(new),
        linked=linked,
    )


def _link_waiting(
    session: Session,
    new_accounts: set[str],
    users: set[str],
    aliases: dict[str, str],
    accounts: dict[str, AccountRef],
    contacts: dict[str, ContactRef],
    zones: _Zones,
    touched: set[uuid.UUID],
    deferred: Deferred | None = None,
) -> int:
    """Attach events that arrived before their account or contact, and roll them up."""
    alias_names = {alias for alias, target in aliases.items() if target in users}
    waiting = repo.waiting_events(
        session, group_ids=new_accounts, user_ids=users | alias_names, anonymous_ids=alias_names
    )
    if not waiting:
        return 0
    by_contact_id = {c.id: c for c in contacts.values()}
    updates: list[dict[str, Any]] = []
    attributed: list[_Activity] = []
    for event in waiting:
        contact_id, account_id = event.contact_id, event.account_id
        if contact_id is None:
            user = _canonical(event.user_external_id, aliases) or _canonical(
                aliases.get(event.anonymous_id or ""), aliases
            )
            person = contacts.get(user) if user else None
            contact_id = person.id if person else None
        if account_id is None:
            group = accounts.get(event.group_external_id) if event.group_external_id else None
            owner = by_contact_id.get(contact_id) if contact_id else None
            account_id = group.id if group else (owner.account_id if owner else None)
            if account_id is not None and event.type in ACTIVITY:
                attributed.append(
                    _Activity(account_id, contact_id, event.timestamp, event.type, event.name)
                )
        if (contact_id, account_id) != (event.contact_id, event.account_id):
            updates.append({"eid": event.id, "aid": account_id, "cid": contact_id})
    repo.link_events(session, updates)
    _rollup(session, attributed, zones, deferred)
    touched.update(a.account_id for a in attributed)
    return len(attributed)


def link_waiting(
    session: Session,
    *,
    now: datetime,
    account_external_ids: Collection[str] = (),
    contact_external_ids: Collection[str] = (),
) -> int:
    """Attach waiting events to accounts/contacts created outside tracking (REST, CSV)."""
    accounts = sync.account_refs(session, account_external_ids)
    contacts = sync.contact_refs(session, contact_external_ids)
    if not accounts and not contacts:
        return 0
    zones = _Zones()
    for ref in accounts.values():
        zones.know(ref.id, ref.timezone)
    owners = {c.account_id for c in contacts.values() if c.account_id}
    for ref in sync.account_refs_by_id(session, zones.missing(owners)).values():
        zones.know(ref.id, ref.timezone)
    touched: set[uuid.UUID] = set()
    linked = _link_waiting(
        session, set(accounts), set(contacts), {}, accounts, contacts, zones, touched
    )
    sync.mark_for_rescore(session, touched, now=now)
    return linked
