"""usage_firsts: the first day each metric was seen per account, kept on every usage write
(the tracking API here, bulk loads in the churn tests) and rebuilt from usage_daily."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.ingest import service as ingest_service
from tenure.ingest.models import UsageFirst
from tenure.ingest.rollup import ACTIVE_USERS, ALL_EVENTS
from tests.conftest import NOW
from tests.ingest.test_tracking import group_call, post, track, write_key

__all__ = ["write_key"]  # the fixture, used by name below

DAY = timedelta(days=1)


def firsts(db: Session) -> dict[tuple[str, str], date]:
    db.rollback()
    rows = db.execute(
        select(Account.external_id, UsageFirst.metric, UsageFirst.first_day).join(
            Account, Account.id == UsageFirst.account_id
        )
    )
    return {(a, m): d for a, m, d in rows}


def local_day(days_ago: int) -> date:
    # The accounts are in Europe/London; noon UTC is the same day there all year.
    return (NOW - days_ago * DAY).date()


def test_the_first_day_of_each_metric_survives_later_and_earlier_batches(
    client: TestClient, write_key: str, db: Session
) -> None:
    noon = NOW.replace(hour=12, minute=0, second=0, microsecond=0)
    first = [
        group_call(1, "acc_1"),
        group_call(2, "acc_2"),
        track(1, event="invoice_sent", at=noon - 10 * DAY),
        track(2, event="login", at=noon - 10 * DAY),
        track(3, group="acc_2", event="login", at=noon - 3 * DAY),
    ]
    assert post(client, write_key, first).status_code == 200
    assert firsts(db) == {
        ("acc_1", "invoice_sent"): local_day(10),
        ("acc_1", "login"): local_day(10),
        ("acc_1", ALL_EVENTS): local_day(10),
        ("acc_1", ACTIVE_USERS): local_day(10),
        ("acc_2", "login"): local_day(3),
        ("acc_2", ALL_EVENTS): local_day(3),
        ("acc_2", ACTIVE_USERS): local_day(3),
    }

    # Later use changes nothing; an event that happened earlier (sent late) moves the day
    # back; a new metric gets its own row.
    later = [
        track(4, event="invoice_sent", at=noon - 1 * DAY),
        track(5, event="login", at=noon - 40 * DAY),
        track(6, event="form_created", at=noon - 2 * DAY),
    ]
    assert post(client, write_key, later).status_code == 200
    after = firsts(db)
    assert after[("acc_1", "invoice_sent")] == local_day(10)
    assert after[("acc_1", "login")] == local_day(40)
    assert after[("acc_1", ALL_EVENTS)] == local_day(40)
    assert after[("acc_1", "form_created")] == local_day(2)
    assert after[("acc_2", "login")] == local_day(3)

    # Rebuilt from usage_daily: the same table.
    ingest_service.rebuild_usage_firsts(db)
    db.commit()
    assert firsts(db) == after


def test_first_days_by_group_of_metrics(client: TestClient, write_key: str, db: Session) -> None:
    noon = NOW.replace(hour=12, minute=0, second=0, microsecond=0)
    batch = [
        group_call(1, "acc_1"),
        track(1, event="invoice_sent", at=noon - 9 * DAY),
        track(2, event="payment_received", at=noon - 12 * DAY),
        track(3, event="form_created", at=noon - 4 * DAY),
        track(4, event="login", at=noon - 30 * DAY),
    ]
    assert post(client, write_key, batch).status_code == 200
    db.rollback()
    account = db.scalars(select(Account)).one()
    groups = {"invoice_sent": "billing", "payment_received": "billing", "form_created": "forms"}
    rows = ingest_service.first_days(db, metrics=groups, account_ids=[account.id])
    found = {g: d if isinstance(d, date) else date.fromisoformat(d) for _, g, d in rows}
    # A group's first day is its earliest metric's; metrics outside the groups are ignored.
    assert found == {"billing": local_day(12), "forms": local_day(4)}
