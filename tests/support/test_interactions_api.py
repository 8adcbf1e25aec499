from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.clock import FixedClock
from tests.conftest import NOW
from tests.factories.accounts import make_account, make_contact
from tests.factories.support import make_interaction

PROBLEM = "application/problem+json"
URL = "/api/v1/support/interactions"
UNKNOWN = "00000000-0000-0000-0000-000000000000"


def _z(at: Any) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return {e["field"] for e in response.json()["errors"]}


class TestCreateAndRead:
    def test_create_by_external_ids_then_read(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, external_id="acc_bloom")
        contact = make_contact(db, account, now=NOW, external_id="usr_ava")
        db.commit()
        response = api.post(
            URL,
            json={
                "external_id": "zd_1001",
                "account_external_id": "acc_bloom",
                "contact_external_id": "usr_ava",
                "type": "integration_issue",
                "channel": "chat",
                "sentiment": -0.4,
                "subject": "Stripe payouts not syncing",
                "follow_up_at": "2026-06-20T09:00:00+02:00",
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["account_id"] == str(account.id)
        assert created["contact_id"] == str(contact.id)
        assert (created["status"], created["priority"], created["escalated"]) == (
            "open",
            "normal",
            False,
        )
        assert created["opened_at"] == _z(NOW) and created["resolved_at"] is None
        assert created["follow_up_at"] == "2026-06-20T07:00:00Z"
        assert api.get(f"{URL}/{created['id']}").json() == created
        assert api.get(f"{URL}/by-external-id/zd_1001").json() == created

    def test_validation_errors_list_every_field(self, api: TestClient) -> None:
        response = api.post(
            URL,
            json={
                "account_id": "not-a-uuid",
                "type": "rant",
                "channel": "fax",
                "status": "archived",
                "priority": "critical",
                "sentiment": 1.5,
                "outcome": "x" * 65,
                "escalated": "maybe",
                "opened_at": "2026-06-01T10:00:00",
                "colour": "red",
            },
        )
        assert _fields(response) == {
            "body.account_id",
            "body.type",
            "body.channel",
            "body.status",
            "body.priority",
            "body.sentiment",
            "body.outcome",
            "body.escalated",
            "body.opened_at",
            "body.colour",
        }

    def test_every_simulator_type_and_channel_is_accepted(
        self, api: TestClient, db: Session
    ) -> None:
        from tenure.sim import catalog

        account = make_account(db, now=NOW)
        db.commit()
        for kind, channel in zip(
            catalog.SUPPORT_TYPES,
            catalog.SUPPORT_CHANNELS * 3,
            strict=True,
        ):
            body = {"account_id": str(account.id), "type": kind, "channel": channel}
            assert api.post(URL, json=body).status_code == 201, kind

    def test_unknown_references_are_422_and_unknown_ids_404(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        other = make_account(db, now=NOW)
        stranger = make_contact(db, other, now=NOW)
        db.commit()
        base = {"type": "bug", "channel": "email"}
        cases = {
            "account_external_id": {"account_external_id": "acc_nobody"},
            "account_id": {"account_id": UNKNOWN},
            "contact_id": {"account_id": str(account.id), "contact_id": str(stranger.id)},
            "contact_external_id": {
                "account_id": str(account.id),
                "contact_external_id": "usr_nobody",
            },
        }
        for field, refs in cases.items():
            response = api.post(URL, json=base | refs)
            assert _fields(response) == {f"body.{field}"}, field
            assert response.json()["field"] == field
        missing = api.post(URL, json=base)
        assert _fields(missing) == {"body.account_id"}
        assert "account_external_id" in missing.json()["detail"]

        for path in (f"{URL}/{UNKNOWN}", f"{URL}/by-external-id/nope"):
            response = api.get(path)
            assert response.status_code == 404
            assert response.headers["content-type"] == PROBLEM
        assert api.patch(f"{URL}/{UNKNOWN}", json={}).status_code == 404

    def test_duplicate_external_id_is_409(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW)
        db.commit()
        body = {
            "external_id": "t1",
            "account_id": str(account.id),
            "type": "bug",
            "channel": "chat",
        }
        assert api.post(URL, json=body).status_code == 201
        duplicate = api.post(URL, json=body)
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"] == PROBLEM


class TestListing:
    def test_filters_combine(self, api: TestClient, db: Session) -> None:
        bloom = make_account(db, now=NOW)
        lens = make_account(db, now=NOW)
        rows = [
            (bloom, "bug", "email", "high", True, "open", 1),
            (bloom, "bug", "chat", "normal", False, "resolved", 2),
            (bloom, "billing", "email", "normal", False, "open", 10),
            (lens, "bug", "email", "high", True, "open", 3),
        ]
        for account, kind, channel, priority, escalated, status, days_ago in rows:
            make_interaction(
                db,
                account,
                now=NOW,
                type=kind,
                channel=channel,
                priority=priority,
                escalated=escalated,
                status=status,
                opened_at=NOW - timedelta(days=days_ago),
            )
        db.commit()

        def count(query: str) -> int:
            body = api.get(f"{URL}?{query}").json()
            assert len(body["items"]) == body["total"]
            return int(body["total"])

        assert count(f"account_id={bloom.id}") == 3
        assert count(f"account_id={bloom.id}&type=bug") == 2
        assert count("status=open&escalated=true&priority=high") == 2
        assert count(f"channel=email&account_id={lens.id}") == 1
        assert count("escalated=false") == 2
        after = (NOW - timedelta(days=3)).isoformat().replace("+", "%2B")
        before = (NOW - timedelta(days=1)).isoformat().replace("+", "%2B")
        # opened_after is inclusive, opened_before exclusive
        assert count(f"opened_after={after}&opened_before={before}") == 2
        assert count(f"account_id={UNKNOWN}") == 0

    def test_pages_newest_first_cover_everything_once_both_ways(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        for i in range(12):
            # Pairs share an opened_at: the id breaks the tie, so nothing is skipped.
            make_interaction(db, account, now=NOW, opened_at=NOW - timedelta(hours=i // 2))
        db.commit()
        seen: list[dict[str, Any]] = []
        pages: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = f"{URL}?limit=5" + (f"&cursor={cursor}" if cursor else "")
            page = api.get(query).json()
            pages.append(page)
            seen += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(pages) == 3 and pages[0]["total"] == 12
        assert len({i["id"] for i in seen}) == 12
        opened = [i["opened_at"] for i in seen]
        assert opened == sorted(opened, reverse=True)
        back = api.get(f"{URL}?limit=5&cursor={pages[2]['prev_cursor']}").json()
        assert [i["id"] for i in back["items"]] == [i["id"] for i in pages[1]["items"]]
        oldest = api.get(f"{URL}?limit=3&order=asc").json()["items"]
        assert [i["id"] for i in oldest] == [i["id"] for i in reversed(seen)][:3]

    def test_bad_query_parameters_are_422(self, api: TestClient) -> None:
        assert _fields(api.get(f"{URL}?status=archived")) == {"query.status"}
        assert _fields(api.get(f"{URL}?type=rant&limit=0")) == {
            "query.type",
            "query.limit",
        }
        assert _fields(api.get(f"{URL}?opened_after=2026-06-01T00:00:00")) == {"query.opened_after"}
        garbage = api.get(f"{URL}?cursor=garbage")
        assert garbage.status_code == 422 and "cursor" in garbage.json()["detail"]


class TestStatus:
    def test_lifecycle_sets_keeps_and_clears_resolved_at(
        self, api: TestClient, db: Session, clock: FixedClock
    ) -> None:
        account = make_account(db, now=NOW)
        ticket = make_interaction(db, account, now=NOW)
        db.commit()
        url = f"{URL}/{ticket.id}"

        def move(status: str, **extra: Any) -> dict[str, Any]:
            response = api.patch(url, json={"status": status, **extra})
            assert response.status_code == 200, response.text
            return dict(response.json())

        assert move("pending")["resolved_at"] is None
        clock.advance(timedelta(hours=2))
        assert move("resolved")["resolved_at"] == _z(NOW + timedelta(hours=2))
        clock.advance(timedelta(hours=3))
        assert move("closed")["resolved_at"] == _z(NOW + timedelta(hours=2))  # kept
        reopened = move("open")
        assert reopened["resolved_at"] is None
        given = "2026-06-15T16:30:00Z"
        assert move("closed", resolved_at=given)["resolved_at"] == given
        assert move("open")["status"] == "open"
        assert move("resolved")["resolved_at"] == _z(clock.now())

    def test_invalid_transitions_are_422_naming_both_states(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        resolved = make_interaction(db, account, now=NOW, status="resolved")
        closed = make_interaction(db, account, now=NOW, status="closed")
        db.commit()
        for row, target in ((resolved, "pending"), (closed, "resolved"), (closed, "pending")):
            response = api.patch(f"{URL}/{row.id}", json={"status": target})
            assert _fields(response) == {"body.status"}
            problem = response.json()
            assert (problem["from"], problem["to"]) == (row.status, target)
            assert problem["type"].endswith("/invalid-transition")
            assert f"from {row.status} to {target}" in problem["detail"]
        assert api.get(f"{URL}/{closed.id}").json()["status"] == "closed"

    def test_resolved_at_belongs_to_resolved_tickets_after_opening(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        ticket = make_interaction(db, account, now=NOW)
        db.commit()
        early = _z(NOW - timedelta(days=1))
        on_open = api.patch(f"{URL}/{ticket.id}", json={"resolved_at": early})
        assert _fields(on_open) == {"body.resolved_at"}
        before_opening = api.patch(
            f"{URL}/{ticket.id}", json={"status": "resolved", "resolved_at": early}
        )
        assert _fields(before_opening) == {"body.resolved_at"}
        created = api.post(
            URL,
            json={
                "account_id": str(account.id),
                "type": "bug",
                "channel": "email",
                "status": "closed",
                "opened_at": "2026-05-01T10:00:00Z",
                "resolved_at": "2026-05-02T10:00:00Z",
                "outcome": "fixed",
            },
        )
        assert created.status_code == 201
        assert created.json()["resolved_at"] == "2026-05-02T10:00:00Z"

    def test_patch_changes_given_fields_and_refuses_nulls_for_required_ones(
        self, api: TestClient, db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        other = make_account(db, now=NOW, external_id="acc_other")
        ticket = make_interaction(db, account, now=NOW, subject="Invoice", priority="low")
        db.commit()
        nulls = api.patch(
            f"{URL}/{ticket.id}", json={"status": None, "type": None, "escalated": None}
        )
        assert _fields(nulls) == {"body.status", "body.type", "body.escalated"}
        changed = api.patch(
            f"{URL}/{ticket.id}",
            json={"escalated": True, "assignee": "sam@support", "account_external_id": "acc_other"},
        ).json()
        assert changed["escalated"] is True and changed["assignee"] == "sam@support"
        assert changed["account_id"] == str(other.id)
        assert (changed["subject"], changed["priority"]) == ("Invoice", "low")
        cleared = api.patch(f"{URL}/{ticket.id}", json={"subject": None}).json()
        assert cleared["subject"] is None


class TestUpsert:
    def test_same_put_twice_is_one_row_and_the_same_answer(
        self, api: TestClient, db: Session, clock: FixedClock
    ) -> None:
        account = make_account(db, now=NOW, external_id="acc_1")
        db.commit()
        body = {
            "account_external_id": "acc_1",
            "type": "billing",
            "channel": "email",
            "status": "resolved",
            "outcome": "invoice_corrected",
        }
        first = api.put(f"{URL}/by-external-id/zd_77", json=body)
        assert first.status_code == 201, first.text
        clock.advance(timedelta(hours=1))
        second = api.put(f"{URL}/by-external-id/zd_77", json=body)
        assert second.status_code == 200
        assert second.json() == first.json()
        assert first.json()["external_id"] == "zd_77"
        listing = api.get(f"{URL}?account_id={account.id}").json()
        assert listing["total"] == 1
        log = api.get("/api/v1/audit", params={"target_id": first.json()["id"]}).json()
        assert [e["action"] for e in log] == ["support_interaction.create"]

    def test_put_updates_the_fields_given_and_follows_the_lifecycle(
        self, api: TestClient, db: Session
    ) -> None:
        make_account(db, now=NOW, external_id="acc_1")
        db.commit()
        url = f"{URL}/by-external-id/zd_78"
        base = {"account_external_id": "acc_1", "type": "bug", "channel": "chat"}
        created = api.put(url, json=base | {"subject": "Crash on upload"}).json()
        resolved = api.put(url, json=base | {"status": "resolved"})
        assert resolved.status_code == 200
        assert resolved.json()["id"] == created["id"]
        assert resolved.json()["subject"] == "Crash on upload"  # left out: kept
        assert resolved.json()["resolved_at"] == _z(NOW)
        backwards = api.put(url, json=base | {"status": "pending"})
        assert _fields(backwards) == {"body.status"}
        extra = api.put(url, json=base | {"external_id": "other"})
        assert _fields(extra) == {"body.external_id"}


class TestAccess:
    def test_read_only_key_reads_but_cannot_write(
        self, key_client: Callable[..., TestClient], db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        ticket = make_interaction(db, account, now=NOW)
        db.commit()
        reader = key_client("read")
        assert reader.get(URL).status_code == 200
        assert reader.get(f"{URL}/{ticket.id}").status_code == 200
        body = {"account_id": str(account.id), "type": "bug", "channel": "chat"}
        for response in (
            reader.post(URL, json=body),
            reader.patch(f"{URL}/{ticket.id}", json={"status": "pending"}),
            reader.put(f"{URL}/by-external-id/x", json=body),
        ):
            assert response.status_code == 403
            assert response.headers["content-type"] == PROBLEM
        assert reader.get(f"{URL}/{ticket.id}").json()["status"] == "open"

    def test_writes_are_audited_with_their_changes(
        self, admin_client: TestClient, key_client: Callable[..., TestClient], db: Session
    ) -> None:
        account = make_account(db, now=NOW)
        db.commit()
        writer = key_client("write")
        created = writer.post(
            URL, json={"account_id": str(account.id), "type": "outage", "channel": "phone"}
        ).json()
        admin_client.patch(f"{URL}/{created['id']}", json={"status": "resolved"})
        admin_client.patch(f"{URL}/{created['id']}", json={"status": "resolved"})  # no change
        log = admin_client.get("/api/v1/audit", params={"target_id": created["id"]}).json()
        assert [(e["action"], e["actor_type"]) for e in log] == [
            ("support_interaction.update", "user"),
            ("support_interaction.create", "api_key"),
        ]
        assert log[0]["details"]["changes"] == {
            "status": {"from": "open", "to": "resolved"},
            "resolved_at": {"from": None, "to": NOW.isoformat()},
        }
