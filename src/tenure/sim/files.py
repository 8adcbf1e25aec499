"""Writing a simulated business to import files: CSV tables and Segment batch requests.

`events.jsonl` holds one Segment HTTP API `/v1/batch` body per line (at most 100 messages):
an `identify` per contact, a `group` per account, then the account's `track` events. Posting
the lines to a Segment-compatible endpoint recreates accounts, contacts and usage. The hidden
truth is only written when asked for (`include_truth=True`), because import fixtures must
not contain it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from tenure.sim.generator import generate
from tenure.sim.records import (
    AccountBundle,
    AccountRecord,
    ContactRecord,
    SimConfig,
    SubscriptionRecord,
    SupportRecord,
    SurveyRecord,
    iso,
)

BATCH_SIZE = 100
CSV_FILES: dict[str, type] = {
    "accounts.csv": AccountRecord,
    "contacts.csv": ContactRecord,
    "subscriptions.csv": SubscriptionRecord,
    "support.csv": SupportRecord,
    "surveys.csv": SurveyRecord,
}
EVENTS_FILE = "events.jsonl"
TRUTH_FILE = "truth.json"
OUTPUT_FILES: tuple[str, ...] = (*CSV_FILES, EVENTS_FILE)


@dataclass(slots=True)
class FileSummary:
    accounts: int = 0
    contacts: int = 0
    events: int = 0
    subscriptions: int = 0
    support: int = 0
    surveys: int = 0
    batches: int = 0
    files: list[Path] = field(default_factory=list)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return str(value)


def _row(record: Any) -> list[str]:
    return [_cell(getattr(record, f.name)) for f in dataclasses.fields(record)]


class _BatchWriter:
    """Packs messages into /v1/batch lines of at most BATCH_SIZE messages."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._messages: list[dict[str, Any]] = []
        self.lines = 0

    def add(self, messages: Iterable[dict[str, Any]]) -> None:
        for message in messages:
            self._messages.append(message)
            if len(self._messages) == BATCH_SIZE:
                self.flush()

    def flush(self) -> None:
        if not self._messages:
            return
        # Sent as soon as the newest message of the batch happened, like a live SDK.
        sent_at = max(m["timestamp"] for m in self._messages)
        body = {"batch": self._messages, "sentAt": sent_at}
        self._stream.write(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
        self._stream.write("\n")
        self._messages = []
        self.lines += 1


def segment_messages(bundle: AccountBundle) -> Iterable[dict[str, Any]]:
    """The account as Segment messages: identifies, a group, then its tracks in time order."""
    account = bundle.account
    group_id = account.external_id
    context = {"groupId": group_id}
    for contact in bundle.contacts:
        yield {
            "type": "identify",
            "messageId": f"sim_identify_{contact.external_id}",
            "userId": contact.external_id,
            "traits": {
                "email": contact.email,
                "name": contact.name,
                "phone": contact.phone,
                "role": contact.role,
                "timezone": contact.timezone,
                "consents": contact.consents,
                "createdAt": iso(contact.created_at),
                "company": {"id": group_id, "name": account.name},
                **contact.traits,
            },
            "context": context,
            "timestamp": iso(contact.created_at),
        }
    traits: dict[str, Any] = {
        "name": account.name,
        "plan": account.plan,
        # Segment users expect a plain `mrr`; Tenure keeps integer minor units beside it.
        "mrr": account.mrr_cents / 100,
        "mrr_cents": account.mrr_cents,
        "currency": account.currency,
        "category": account.category,
        "industry": "weddings",
        "country": account.country,
        "hemisphere": account.hemisphere,
        "timezone": account.timezone,
        "createdAt": iso(account.signup_at),
        "status": account.status,
        "tags": account.tags,
        **account.traits,
    }
    if account.churned_at is not None:
        traits["churned_at"] = iso(account.churned_at)
        traits["churn_reason"] = account.churn_reason
    if account.parent_external_id is not None:
        traits["parent_group_id"] = account.parent_external_id
    yield {
        "type": "group",
        "messageId": f"sim_group_{group_id}",
        "userId": bundle.contacts[0].external_id,
        "groupId": group_id,
        "traits": traits,
        "context": context,
        "timestamp": iso(account.signup_at),
    }
    events = bundle.events
    if len(events) == 0:
        return
    stamps = np.datetime_as_string(events.timestamps.astype("datetime64[s]"), unit="s")
    names = events.names
    users = events.user_ids
    codes = events.name_codes.tolist()
    contacts = events.contact_index.tolist()
    for k, stamp in enumerate(stamps.tolist()):
        yield {
            "type": "track",
            "messageId": events.message_id(k),
            "userId": users[contacts[k]],
            "event": names[codes[k]],
            "properties": events.properties(k),
            "context": context,
            "timestamp": f"{stamp}Z",
        }


def write_files(
    config: SimConfig,
    out_dir: Path | str,
    progress: Callable[[int], None] | None = None,
    *,
    include_truth: bool = False,
) -> FileSummary:
    """Simulate `config` and write the import files into `out_dir` (created if missing).

    Files are written under temporary names and renamed at the end, so an interrupted run
    never leaves a complete-looking but truncated set. `progress` is called with the number
    of accounts just finished.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [*OUTPUT_FILES, *((TRUTH_FILE,) if include_truth else ())]
    temporary = {name: out / f".{name}.partial" for name in names}
    summary = FileSummary()
    streams = {
        name: path.open("w", encoding="utf-8", newline="") for name, path in temporary.items()
    }
    try:
        writers = {name: csv.writer(streams[name]) for name in CSV_FILES}
        for name, record_type in CSV_FILES.items():
            writers[name].writerow([f.name for f in dataclasses.fields(record_type)])
        batches = _BatchWriter(streams[EVENTS_FILE])
        truth = streams.get(TRUTH_FILE)
        if truth is not None:
            truth.write("[\n")
        for bundle in generate(config):
            writers["accounts.csv"].writerow(_row(bundle.account))
            writers["contacts.csv"].writerows(_row(c) for c in bundle.contacts)
            writers["subscriptions.csv"].writerows(_row(s) for s in bundle.subscriptions)
            writers["support.csv"].writerows(_row(s) for s in bundle.support)
            writers["surveys.csv"].writerows(_row(s) for s in bundle.surveys)
            batches.add(segment_messages(bundle))
            if truth is not None:
                truth.write(",\n" if summary.accounts else "")
                truth.write(json.dumps(bundle.truth.to_dict(), separators=(",", ":")))
            summary.accounts += 1
            summary.contacts += len(bundle.contacts)
            summary.events += len(bundle.events)
            summary.subscriptions += len(bundle.subscriptions)
            summary.support += len(bundle.support)
            summary.surveys += len(bundle.surveys)
            if progress is not None:
                progress(1)
        batches.flush()
        summary.batches = batches.lines
        if truth is not None:
            truth.write("\n]\n")
    except BaseException:
        for stream in streams.values():
            stream.close()
        for path in temporary.values():
            path.unlink(missing_ok=True)
        raise
    for stream in streams.values():
        stream.close()
    for name, path in temporary.items():
        os.replace(path, out / name)
        summary.files.append(out / name)
    return summary
