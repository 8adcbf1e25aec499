"""Outbox rows written in bulk: ids in the order of publication, each id on its own row
(one multi-row INSERT per up to 5,000 rows on SQLite; COPY with drawn ids on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.hub import service as hub_service
from tenure.hub.events import EventIngested
from tenure.hub.models import Outbox
from tests.conftest import NOW


def test_publish_many_keeps_the_order_and_the_rows_of_each_id(db: Session) -> None:
    # One event published alone first: the batch's ids all come after it.
    first = hub_service.publish(
        db,
        EventIngested(account_id=uuid.uuid4(), events=1, first_at=NOW, last_at=NOW),
        account_id=None,
        now=NOW,
    )
    accounts = [uuid.uuid4() for _ in range(6_001)]
    events = [
        (
            EventIngested(
                account_id=a, events=k + 1, first_at=NOW, last_at=NOW + timedelta(seconds=k)
            ),
            a,
        )
        for k, a in enumerate(accounts)
    ]
    hub_service.publish_many(db, events, now=NOW)
    db.commit()
    rows = db.execute(
        select(Outbox.id, Outbox.account_id, Outbox.payload)
        .where(Outbox.id > first)
        .order_by(Outbox.id)
    ).all()
    assert len(rows) == len(accounts)
    ids = [r[0] for r in rows]
    assert len(set(ids)) == len(ids)
    # In publication order, each row carrying its own event.
    assert [r[1] for r in rows] == accounts
    assert [r[2]["events"] for r in rows] == list(range(1, len(accounts) + 1))


def test_the_ids_returned_are_those_of_the_rows(db: Session) -> None:
    from tenure.hub import repository as hub_repository

    rows = [
        {
            "event_type": "event.ingested",
            "version": 1,
            "account_id": uuid.uuid4(),
            "payload": {"n": k},
            "occurred_at": NOW,
            "created_at": NOW,
        }
        for k in range(5_003)
    ]
    ids = hub_repository.insert_outbox_rows(db, rows)
    db.commit()
    assert ids == sorted(ids) and len(set(ids)) == len(rows)
    stored = dict(db.execute(select(Outbox.id, Outbox.payload)).all())
    assert [stored[i]["n"] for i in ids] == list(range(len(rows)))
