"""The churn definition: grace periods, reactivations, marked churns, the horizon edges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.accounts.schemas import AccountUpdate
from tenure.churn import labels as L
from tenure.kit.actor import Actor
from tests.factories.accounts import make_account

T0 = datetime(2026, 1, 10, tzinfo=UTC)
END = datetime(2026, 12, 31, tzinfo=UTC)
DAY = timedelta(days=1)
GRACE = timedelta(days=14)
A, B = uuid.uuid4(), uuid.uuid4()


def events(
    changes: list[tuple[uuid.UUID, str, datetime]],
    *,
    marked: list[L.ChurnEvent] | None = None,
    until: datetime = END,
) -> list[L.ChurnEvent]:
    return L.churns_from_changes(changes, marked or [], until=until, grace=GRACE)


class TestGracePeriod:
    def test_reactivation_within_grace_is_no_churn(self) -> None:
        assert events([(A, "churn", T0), (A, "reactivation", T0 + 10 * DAY)]) == []

    def test_reactivation_on_the_last_day_of_grace_is_no_churn(self) -> None:
        assert events([(A, "churn", T0), (A, "reactivation", T0 + GRACE)]) == []

    def test_reactivation_after_grace_leaves_the_churn(self) -> None:
        got = events([(A, "churn", T0), (A, "reactivation", T0 + 20 * DAY)])
        assert got == [(A, T0)]

    def test_churn_is_final_only_after_the_grace_period(self) -> None:
        changes = [(A, "churn", T0)]
        assert events(changes, until=T0 + 13 * DAY) == []
        assert events(changes, until=T0 + GRACE) == [(A, T0)]

    def test_nothing_from_until_on_is_read(self) -> None:
        # The reactivation comes after `until`: as known then, the churn stands.
        changes = [(A, "churn", T0), (A, "reactivation", T0 + 20 * DAY)]
        assert events(changes, until=T0 + 15 * DAY) == [(A, T0)]


class TestReactivation:
    def test_churn_reactivation_churn_again_counts_twice(self) -> None:
        second = T0 + 90 * DAY
        changes = [(A, "churn", T0), (A, "reactivation", T0 + 40 * DAY), (A, "churn", second)]
        assert events(changes) == [(A, T0), (A, second)]

    def test_repeated_churn_change_without_reactivation_counts_once(self) -> None:
        changes = [(A, "churn", T0), (A, "churn", T0 + 30 * DAY)]
        assert events(changes) == [(A, T0)]

    def test_other_kinds_are_ignored(self) -> None:
        assert events([(A, "contraction", T0), (A, "failed_payment", T0)]) == []

    def test_churned_state_follows_the_latest_change_before(self) -> None:
        changes = [(A, "churn", T0), (A, "reactivation", T0 + 40 * DAY), (B, "churn", T0)]
        assert L.churned_state(changes, at=T0 + 10 * DAY) == {A, B}
        assert L.churned_state(changes, at=T0 + 50 * DAY) == {B}
        assert L.churned_state(changes, at=T0) == set()


class TestMarkedChurn:
    def test_marked_without_a_change_is_a_churn(self) -> None:
        assert events([], marked=[(B, T0)]) == [(B, T0)]

    def test_marked_with_its_churn_change_counts_once(self) -> None:
        assert events([(B, "churn", T0)], marked=[(B, T0 + DAY)]) == [(B, T0)]

    def test_marked_after_until_is_unknown(self) -> None:
        assert events([], marked=[(B, T0)], until=T0 - DAY) == []


class TestLabels:
    def test_horizon_is_open_at_the_snapshot_and_closed_at_its_end(self) -> None:
        snapshot, horizon = T0, timedelta(days=60)
        ids = [uuid.uuid4() for _ in range(5)]
        evs = [
            (ids[0], snapshot),  # at the snapshot: not in the window
            (ids[1], snapshot + horizon),  # exactly at the edge: in
            (ids[2], snapshot + horizon + timedelta(seconds=1)),  # just after: out
            (ids[3], snapshot + DAY),
        ]
        y = L.labels(evs, ids, snapshot, horizon)
        assert y.tolist() == [0, 1, 0, 1, 0]
        assert y.dtype == np.int64


def test_churn_events_from_the_database(db: Session) -> None:
    now = T0 - 30 * DAY
    gone, back, marked, kept = (make_account(db, now=now, signup_at=now) for _ in range(4))
    db.flush()

    def change(account_id: uuid.UUID, kind: str, at: datetime) -> None:
        accounts_service.bulk_insert_subscription_changes(
            db,
            {
                "id": [uuid.uuid4()],
                "account_id": [account_id],
                "kind": [kind],
                "mrr_before_cents": [7900],
                "mrr_after_cents": [0 if kind == "churn" else 7900],
                "currency": ["USD"],
                "occurred_at": [at],
                "created_at": [at],
            },
        )

    change(gone.id, "churn", T0)
    change(back.id, "churn", T0)
    change(back.id, "reactivation", T0 + 5 * DAY)
    change(kept.id, "expansion", T0)
    accounts_service.update_account(
        db,
        marked.id,
        AccountUpdate(status="churned"),
        actor=Actor.system("tests"),
        now=T0 + 2 * DAY,
    )
    db.commit()
    assert L.churn_events(db, until=END) == [(gone.id, T0), (marked.id, T0 + 2 * DAY)]
    # Not final yet ten days after the churn; the marked churn is.
    assert L.churn_events(db, until=T0 + 10 * DAY) == [(marked.id, T0 + 2 * DAY)]
