"""The accounts list filtered by health risk level (a CSM's "who needs me" view)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.clock import FixedClock
from tests.factories.accounts import make_account


def _portfolio(db: Session, clock: FixedClock) -> dict[str, str]:
    levels = {"acc_low": ("low", 88.0), "acc_high": ("high", 31.5), "acc_crit": ("critical", 12.0)}
    ids = {}
    for external_id, (risk, score) in levels.items():
        account = make_account(db, now=clock.now(), external_id=external_id, name=external_id)
        accounts_service.set_health(
            db,
            [
                {
                    "id": account.id,
                    "health_score": score,
                    "health_risk": risk,
                    "health_as_of": clock.now(),
                }
            ],
        )
        ids[external_id] = str(account.id)
    make_account(db, now=clock.now(), external_id="acc_new", name="acc_new")
    db.commit()
    return ids


def test_filter_by_one_or_several_risk_levels(
    db: Session, clock: FixedClock, key_client: Callable[..., TestClient]
) -> None:
    _portfolio(db, clock)
    client = key_client("read")
    high = client.get("/api/v1/accounts", params={"risk": "high"}).json()
    assert [a["external_id"] for a in high["items"]] == ["acc_high"]
    assert high["items"][0]["health_score"] == 31.5
    assert high["items"][0]["health_risk"] == "high"
    assert high["total"] == 1
    at_risk = client.get("/api/v1/accounts", params={"risk": "high,critical"}).json()
    assert sorted(a["external_id"] for a in at_risk["items"]) == ["acc_crit", "acc_high"]
    unscored = client.get("/api/v1/accounts", params={"risk": "unscored"}).json()
    assert [a["external_id"] for a in unscored["items"]] == ["acc_new"]
    assert unscored["items"][0]["health_score"] is None


def test_unknown_risk_level_is_refused(
    db: Session, clock: FixedClock, key_client: Callable[..., TestClient]
) -> None:
    _portfolio(db, clock)
    response = key_client("read").get("/api/v1/accounts", params={"risk": "high,doomed"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "doomed" in response.json()["detail"]
    assert "critical" in response.json()["detail"]
