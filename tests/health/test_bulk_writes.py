"""A portfolio rescore writes through the bulk paths (on PostgreSQL, from `kit.bulk.COPY_FROM`
rows: COPY into temporary tables, outbox ids drawn from the sequence): the same scores,
latest values and events as row by row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.health import service
from tenure.hub.live import PENDING_KEY
from tenure.hub.models import Outbox
from tenure.kit import bulk
from tests.conftest import NOW
from tests.health.test_service import (
    TICKETS,
    account,
    all_rows,
    health_events,
    install,
    shown,
    stored,
    ticket,
)


@pytest.mark.parametrize("copy_from", [1, 5000])
def test_rescore_through_the_bulk_paths(
    db: Session, monkeypatch: pytest.MonkeyPatch, copy_from: int
) -> None:
    monkeypatch.setattr(bulk, "COPY_FROM", copy_from)
    install(db, TICKETS)
    calm, busy, late = account(db), account(db), account(db)
    ticket(db, busy, NOW - timedelta(days=3))
    db.commit()
    for back in (7, 0):
        at = NOW - timedelta(days=back)
        service.rescore(db, as_of=at, now=at)
        live = list(db.info.get(PENDING_KEY, []))
        db.commit()
    # A later rescore of the same day replaces the day's row.
    service.rescore(db, as_of=NOW + timedelta(hours=1), now=NOW + timedelta(hours=1))
    db.commit()

    assert len(all_rows(db)) == 6
    today = stored(db, busy)
    assert today["score"] == 75
    assert today["delta_7"] == -25
    assert today["as_of"] == NOW + timedelta(hours=1)
    assert today["signals"]["open_tickets"] == 1
    assert today["components"]["support"]["score"] == 75
    assert stored(db, calm)["delta_7"] == 0
    assert shown(db, busy) == (75.0, "low")
    assert shown(db, late) == (100.0, "low")

    assert [e["score"] for e in health_events(db, busy)] == [100, 75]
    assert [e["score"] for e in health_events(db, calm)] == [100]
    # Outbox ids follow publication; the live feed got the same ids and payloads.
    rows = list(
        db.scalars(select(Outbox).where(Outbox.event_type == "health.changed").order_by(Outbox.id))
    )
    assert [r.payload["score"] for r in rows] == [100, 100, 100, 75]
    assert [(e.id, e.data) for e in live] == [(rows[-1].id, rows[-1].payload)]
