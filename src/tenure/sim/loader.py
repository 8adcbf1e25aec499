"""The fast bulk path: simulated business straight into the database, a chunk at a time.

It streams `generate()`, so memory stays flat whatever the portfolio size, and writes through
each domain's bulk service functions (one transaction per chunk of accounts).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from tenure.accounts import service as accounts_service
from tenure.db import make_session_factory
from tenure.ingest import service as ingest_service
from tenure.ingest.rollup import daily_counts
from tenure.kit.money import DEFAULT_FX, FxRates
from tenure.sim.generator import generate
from tenure.sim.records import AccountBundle, SimConfig
from tenure.support import service as support_service

SOURCE = "sim"


@dataclass
class LoadStats:
    accounts: int = 0
    contacts: int = 0
    events: int = 0
    usage_rows: int = 0
    subscription_changes: int = 0
    support_interactions: int = 0
    survey_responses: int = 0
    seconds: float = 0.0
    churned: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class _Columns:
    """Rows accumulated as columns, ready for `kit.bulk.bulk_insert`."""

    def __init__(self) -> None:
        self.data: dict[str, list[Any]] = {}

    def add(self, **row: Any) -> None:
        if not self.data:
            self.data = {k: [] for k in row}
        for key, value in row.items():
            self.data[key].append(value)

    def extend(self, **cols: list[Any]) -> None:
        if not self.data:
            self.data = {k: [] for k in cols}
        for key, values in cols.items():
            self.data[key].extend(values)

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0


@dataclass
class _Chunk:
    accounts: _Columns = field(default_factory=_Columns)
    contacts: _Columns = field(default_factory=_Columns)
    events: _Columns = field(default_factory=_Columns)
    usage: _Columns = field(default_factory=_Columns)
    subscriptions: _Columns = field(default_factory=_Columns)
    support: _Columns = field(default_factory=_Columns)
    surveys: _Columns = field(default_factory=_Columns)


def _batches(bundles: Iterator[AccountBundle], size: int) -> Iterator[list[AccountBundle]]:
    while batch := list(islice(bundles, size)):
        yield batch


def _rows(
    bundle: AccountBundle,
    chunk: _Chunk,
    account_ids: dict[str, uuid.UUID],
    owners: Sequence[uuid.UUID],
    now: datetime,
) -> None:
    a = bundle.account
    account_id = uuid.uuid4()
    account_ids[a.external_id] = account_id
    chunk.accounts.add(
        id=account_id,
        external_id=a.external_id,
        name=a.name,
        category=a.category,
        plan=a.plan,
        mrr_cents=a.mrr_cents,
        currency=a.currency,
        country=a.country,
        hemisphere=a.hemisphere,
        timezone=a.timezone,
        signup_at=a.signup_at,
        status=a.status,
        churned_at=a.churned_at,
        churn_reason=a.churn_reason,
        owner_id=owners[bundle.index % len(owners)] if owners else None,
        parent_id=account_ids.get(a.parent_external_id) if a.parent_external_id else None,
        tags=a.tags,
        traits=a.traits,
        created_at=a.signup_at,
        updated_at=now,
    )
    contact_ids: dict[str, uuid.UUID] = {}
    for c in bundle.contacts:
        contact_ids[c.external_id] = cid = uuid.uuid4()
        chunk.contacts.add(
            id=cid,
            external_id=c.external_id,
            account_id=account_id,
            email=c.email,
            name=c.name,
            phone=c.phone,
            role=c.role,
            timezone=c.timezone,
            last_seen_at=c.last_seen_at,
            consents=c.consents,
            traits=c.traits,
            created_at=c.created_at,
            updated_at=c.last_seen_at or c.created_at,
        )
    block = bundle.events
    n = len(block)
    if n:
        by_user = [contact_ids.get(u) for u in block.user_ids]
        who = block.contact_index.tolist()
        names = block.names
        times = [datetime.fromtimestamp(t, UTC) for t in block.timestamps.tolist()]
        chunk.events.extend(
            source=[SOURCE] * n,
            message_id=[block.message_id(k) for k in range(n)],
            account_id=[account_id] * n,
            contact_id=[by_user[w] for w in who],
            user_external_id=[block.user_ids[w] for w in who],
            group_external_id=[block.group_id] * n,
            type=["track"] * n,
            name=[names[c] for c in block.name_codes.tolist()],
            properties=[block.properties(k) for k in range(n)],
            # The group is kept in group_external_id; nothing else is in a sim event's context.
            context=[{}] * n,
            timestamp=times,
            sent_at=[None] * n,
            received_at=times,
            flags=[[]] * n,
        )
    counts = daily_counts(
        block.timestamps, block.name_codes, block.names, block.contact_index, a.timezone
    )
    chunk.usage.extend(
        account_id=[account_id] * len(counts),
        day=[c.day for c in counts],
        metric=[c.metric for c in counts],
        count=[c.count for c in counts],
    )
    for s in bundle.subscriptions:
        chunk.subscriptions.add(
            id=uuid.uuid4(),
            account_id=account_id,
            external_id=s.external_id,
            kind=s.kind,
            mrr_before_cents=s.mrr_before_cents,
            mrr_after_cents=s.mrr_after_cents,
            currency=s.currency,
            plan=s.plan,
            reason=s.reason,
            occurred_at=s.occurred_at,
            created_at=s.occurred_at,
        )
    for t in bundle.support:
        chunk.support.add(
            id=uuid.uuid4(),
            external_id=t.external_id,
            account_id=account_id,
            contact_id=contact_ids.get(t.contact_external_id or ""),
            type=t.type,
            channel=t.channel,
            status=t.status,
            priority=t.priority,
            sentiment=t.sentiment,
            outcome=t.outcome,
            escalated=t.escalated,
            subject=t.subject,
            assignee=t.assignee,
            opened_at=t.opened_at,
            resolved_at=t.resolved_at,
            follow_up_at=t.follow_up_at,
            created_at=t.opened_at,
        )
    for r in bundle.surveys:
        chunk.surveys.add(
            id=uuid.uuid4(),
            external_id=r.external_id,
            account_id=account_id,
            contact_id=contact_ids.get(r.contact_external_id or ""),
            kind=r.kind,
            score=r.score,
            comment=r.comment,
            responded_at=r.responded_at,
            created_at=r.responded_at,
        )


def load(
    engine: Engine,
    config: SimConfig,
    *,
    now: datetime,
    owners: Sequence[uuid.UUID] = (),
    chunk_accounts: int = 100,
    show_progress: bool = True,
    fx: FxRates = DEFAULT_FX,
) -> LoadStats:
    """Generate the business described by `config` and write it; returns what was written."""
    sessions = make_session_factory(engine)
    stats = LoadStats()
    account_ids: dict[str, uuid.UUID] = {}
    started = time.perf_counter()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("Simulating and loading accounts", total=config.accounts, events=0)
        for batch in _batches(generate(config), chunk_accounts):
            chunk = _Chunk()
            for bundle in batch:
                _rows(bundle, chunk, account_ids, owners, now)
                stats.churned += bundle.account.status == "churned"
            with sessions() as session, session.begin():
                accounts_service.bulk_insert_accounts(session, chunk.accounts.data, fx=fx)
                accounts_service.bulk_insert_contacts(session, chunk.contacts.data)
                accounts_service.bulk_insert_subscription_changes(session, chunk.subscriptions.data)
                ingest_service.bulk_insert_events(session, chunk.events.data)
                ingest_service.bulk_insert_usage(session, chunk.usage.data)
                support_service.bulk_insert_interactions(session, chunk.support.data)
                support_service.bulk_insert_surveys(session, chunk.surveys.data)
            stats.accounts += len(chunk.accounts)
            stats.contacts += len(chunk.contacts)
            stats.events += len(chunk.events)
            stats.usage_rows += len(chunk.usage)
            stats.subscription_changes += len(chunk.subscriptions)
            stats.support_interactions += len(chunk.support)
            stats.survey_responses += len(chunk.surveys)
            progress.update(task, advance=len(batch), events=stats.events)
    stats.seconds = time.perf_counter() - started
    return stats
