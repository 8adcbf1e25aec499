"""The import files: CSV tables and Segment /v1/batch bodies, reproducible and truth-free."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tenure.sim import (
    AccountRecord,
    ContactRecord,
    SimConfig,
    SubscriptionRecord,
    SupportRecord,
    SurveyRecord,
)
from tenure.sim.files import write_files

CONFIG = SimConfig(accounts=120, months=6, seed=3)
HIDDEN = ("hazard", "latent", "health", "price_sensitivity", "foreseeable", "wind_down")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sim")
    write_files(CONFIG, directory)
    return directory


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _batches(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_writes_exactly_the_import_files(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == [
        "accounts.csv",
        "contacts.csv",
        "events.jsonl",
        "subscriptions.csv",
        "support.csv",
        "surveys.csv",
    ]


@pytest.mark.parametrize(
    ("name", "record"),
    [
        ("accounts.csv", AccountRecord),
        ("contacts.csv", ContactRecord),
        ("subscriptions.csv", SubscriptionRecord),
        ("support.csv", SupportRecord),
        ("surveys.csv", SurveyRecord),
    ],
)
def test_csv_headers_are_the_record_fields(out: Path, name: str, record: type) -> None:
    with (out / name).open(encoding="utf-8") as stream:
        header = next(csv.reader(stream))
    assert header == [f.name for f in dataclasses.fields(record)]


def test_csv_values_are_iso_utc_and_json(out: Path) -> None:
    accounts = _read_csv(out / "accounts.csv")
    assert len(accounts) == CONFIG.accounts
    for row in accounts:
        assert row["signup_at"].endswith("Z") and "T" in row["signup_at"]
        assert isinstance(json.loads(row["tags"]), list)
        assert isinstance(json.loads(row["traits"]), dict)
        assert int(row["mrr_cents"]) >= 0
    contacts = _read_csv(out / "contacts.csv")
    assert all(set(json.loads(r["consents"])) == {"email", "sms", "in_app"} for r in contacts)
    support = _read_csv(out / "support.csv")
    assert {r["escalated"] for r in support} <= {"true", "false"}
    assert all(r["resolved_at"] == "" for r in support if r["status"] in ("open", "pending"))


def test_events_file_is_segment_batches(out: Path) -> None:
    batches = _batches(out / "events.jsonl")
    messages = [m for body in batches for m in body["batch"]]
    assert all(1 <= len(body["batch"]) <= 100 for body in batches)
    for body in batches:
        assert body["sentAt"].endswith("Z")
        assert body["sentAt"] >= max(m["timestamp"] for m in body["batch"])
    kinds = Counter(m["type"] for m in messages)
    contacts = _read_csv(out / "contacts.csv")
    assert kinds["group"] == CONFIG.accounts
    assert kinds["identify"] == len(contacts)
    assert set(kinds) == {"identify", "group", "track"}
    assert len({m["messageId"] for m in messages}) == len(messages)
    users = {r["external_id"]: r["account_external_id"] for r in contacts}
    for m in messages:
        assert m["timestamp"].endswith("Z") and m["userId"] in users
        if m["type"] == "track":
            assert m["context"]["groupId"] == users[m["userId"]]
            assert isinstance(m["event"], str) and isinstance(m["properties"], dict)
        elif m["type"] == "group":
            assert {"name", "plan", "mrr", "category", "country"} <= set(m["traits"])
        else:
            assert {"email", "name", "phone", "role"} <= set(m["traits"])


def test_no_hidden_truth_in_the_files(out: Path) -> None:
    for name in ("accounts.csv", "contacts.csv", "support.csv", "surveys.csv"):
        rows = _read_csv(out / name)
        keys = set(rows[0])
        for row in rows:
            for column in ("traits", "consents"):
                if row.get(column):
                    keys |= _keys(json.loads(row[column]))
        assert not [k for k in keys for word in HIDDEN if word in k]
    keys = _keys(_batches(out / "events.jsonl"))
    assert not [k for k in keys for word in HIDDEN if word in k]


def test_same_seed_same_bytes_and_truth_only_on_request(out: Path, tmp_path: Path) -> None:
    write_files(CONFIG, tmp_path / "again")
    for path in out.iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name
    write_files(dataclasses.replace(CONFIG, seed=4), tmp_path / "other")
    assert (tmp_path / "other" / "events.jsonl").read_bytes() != (out / "events.jsonl").read_bytes()
    summary = write_files(CONFIG, tmp_path / "truth", include_truth=True)
    truth = json.loads((tmp_path / "truth" / "truth.json").read_text(encoding="utf-8"))
    assert len(truth) == summary.accounts == CONFIG.accounts
    assert {"health", "hazard", "churns"} <= set(truth[0])
    assert (tmp_path / "truth" / "events.jsonl").read_bytes() == (out / "events.jsonl").read_bytes()
