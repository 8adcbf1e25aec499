from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import NOW
from tests.factories.accounts import make_account, make_contact
from tests.factories.support import make_survey

PROBLEM = "application/problem+json"
URL = "/api/v1/surveys/responses"
UNKNOWN = "00000000-0000-0000-0000-000000000000"


def _fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    return {e["field"] for e in response.json()["errors"]}


class TestCreateAndRead:
    def test_create_then_read(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW, external_id="acc_bloom")
        contact = make_contact(db, account, now=NOW, external_id="usr_ava")
        db.commit()
        response = api.post(
            URL,
            json={
                "external_id": "typeform_9",
                "account_external_id": "acc_bloom",
                "contact_id": str(contact.id),
                "kind": "nps",
                "score": 3,
                "comment": "Too slow in peak season",
                "responded_at": "2026-06-14T20:00:00-04:00",
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["account_id"], created["contact_id"]) == (str(account.id), str(contact.id))
        assert created["responded_at"] == "2026-06-15T00:00:00Z"
        assert api.get(f"{URL}/{created['id']}").json() == created
        assert api.get(f"{URL}/by-external-id/typeform_9").json() == created

    def test_score_range_depends_on_the_kind(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW)
        db.commit()
        for kind, low, high in (("nps", 0, 10), ("csat", 1, 5), ("ces", 1, 7)):
            for score in (low, high):
                body = {"account_id": str(account.id), "kind": kind, "score": score}
                assert api.post(URL, json=body).status_code == 201, (kind, score)
            for score in (low - 1, high + 1):
                body = {"account_id": str(account.id), "kind": kind, "score": score}
                response = api.post(URL, json=body)
                assert _fields(response) == {"body.score"}
                assert f"{kind} score must be between {low} and {high}" in response.text
        assert api.get(URL).json()["total"] == 6

    def test_validation_errors_list_every_field(self, api: TestClient) -> None:
        response = api.post(
            URL,
            json={
                "account_id": UNKNOWN,
                "kind": "ces5",
                "score": "lots",
                "comment": "x" * 10_001,
                "responded_at": "2026-06-01T10:00:00",
                "rating": 5,
            },
        )
        assert _fields(response) == {
            "body.kind",
            "body.score",
            "body.comment",
            "body.responded_at",
            "body.rating",
        }

    def test_unknown_account_is_422_and_unknown_id_404(self, api: TestClient) -> None:
        body = {"account_external_id": "acc_nobody", "kind": "csat", "score": 4}
        assert _fields(api.post(URL, json=body)) == {"body.account_external_id"}
        body = {"account_id": UNKNOWN, "kind": "csat", "score": 4}
        assert _fields(api.put(f"{URL}/by-external-id/s1", json=body)) == {"body.account_id"}
        missing = api.get(f"{URL}/{UNKNOWN}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM


class TestListing:
    def test_filters_and_pages(self, api: TestClient, db: Session) -> None:
        bloom = make_account(db, now=NOW)
        lens = make_account(db, now=NOW)
        for i in range(7):
            make_survey(db, bloom, now=NOW, kind="nps", responded_at=NOW - timedelta(days=i))
        make_survey(db, bloom, now=NOW, kind="csat", score=2, responded_at=NOW)
        make_survey(db, lens, now=NOW, kind="ces", score=6, responded_at=NOW)
        db.commit()

        def get(query: str) -> dict[str, Any]:
            response = api.get(f"{URL}?{query}")
            assert response.status_code == 200, response.text
            return dict(response.json())

        assert get(f"account_id={bloom.id}")["total"] == 8
        assert [r["kind"] for r in get(f"account_id={lens.id}")["items"]] == ["ces"]
        since = (NOW - timedelta(days=2)).isoformat().replace("+", "%2B")
        until = NOW.isoformat().replace("+", "%2B")
        # since is inclusive, until exclusive: days 2 and 1
        assert get(f"kind=nps&since={since}&until={until}")["total"] == 2

        first = get("kind=nps&limit=4")
        second = get(f"kind=nps&limit=4&cursor={first['next_cursor']}")
        assert second["next_cursor"] is None
        days = [r["responded_at"] for r in first["items"] + second["items"]]
        assert len(set(days)) == 7 and days == sorted(days, reverse=True)
        assert _fields(api.get(f"{URL}?kind=promoter")) == {"query.kind"}


class TestUpsert:
    def test_same_put_twice_is_one_row_then_changes_are_audited(
        self, api: TestClient, db: Session
    ) -> None:
        make_account(db, now=NOW, external_id="acc_1")
        db.commit()
        url = f"{URL}/by-external-id/delighted_5"
        body = {"account_external_id": "acc_1", "kind": "nps", "score": 6, "comment": "ok"}
        first = api.put(url, json=body)
        assert first.status_code == 201, first.text
        second = api.put(url, json=body)
        assert (second.status_code, second.json()) == (200, first.json())
        assert api.get(URL).json()["total"] == 1

        changed = api.put(url, json={"account_external_id": "acc_1", "kind": "nps", "score": 9})
        assert changed.status_code == 200
        assert (changed.json()["score"], changed.json()["comment"]) == (9, "ok")
        out_of_range = api.put(url, json=body | {"kind": "csat"})
        assert _fields(out_of_range) == {"body.score"}

        log = api.get("/api/v1/audit", params={"target_id": first.json()["id"]}).json()
        assert [e["action"] for e in log] == ["survey_response.update", "survey_response.create"]
        assert log[0]["details"]["changes"] == {"score": {"from": 6, "to": 9}}

    def test_post_with_a_taken_external_id_is_409(self, api: TestClient, db: Session) -> None:
        account = make_account(db, now=NOW)
        make_survey(db, account, now=NOW, external_id="s1")
        db.commit()
        body = {"external_id": "s1", "account_id": str(account.id), "kind": "nps", "score": 1}
        assert api.post(URL, json=body).status_code == 409


def test_read_only_key_reads_but_cannot_write(
    key_client: Callable[..., TestClient], db: Session
) -> None:
    account = make_account(db, now=NOW)
    db.commit()
    reader = key_client("read")
    assert reader.get(URL).status_code == 200
    body = {"account_id": str(account.id), "kind": "nps", "score": 10}
    for response in (reader.post(URL, json=body), reader.put(f"{URL}/by-external-id/x", json=body)):
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
    assert reader.get(URL).json()["total"] == 0
