"""Events: the hot path (a million rows), parsed without pydantic, stored by the pipeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tenure.ingest import pipeline
from tenure.ingest.csvimport.columns import parse_object, parse_time
from tenure.ingest.csvimport.kinds import MAX_ID, Context, Importer, Issues, derived_id
from tenure.ingest.messages import FUTURE_TOLERANCE, Message

IMPORT_SOURCE = "import"  # events.source of imported events: message ids are unique per source


class EventsImporter(Importer[Message]):
    # Rows fail only on their own content: after a bad row in all-or-nothing mode, nothing
    # is gained by storing more; the rest of the file is only validated.
    checks_references = False

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        index = ctx.header.index
        self.i_account = index.get("account_id", -1)
        self.i_user = index.get("user_id", -1)
        self.i_event = index.get("event", -1)
        self.i_time = index.get("timestamp", -1)
        self.i_props = index.get("properties", -1)
        self.i_id = index.get("message_id", -1)
        self.latest = ctx.now + FUTURE_TOLERANCE
        # Rollups, last-seen and lookups are held across chunks and written once at the end.
        self.deferred = pipeline.Deferred()
        self.names = {
            name: ctx.header.header_of(name)
            for name in ("account_id", "user_id", "event", "timestamp", "properties", "message_id")
        }

    def parse(self, line: int, cells: list[str]) -> Message | None:
        if len(cells) != self.width:
            self.check_width(line, cells)
            return None
        account = cells[self.i_account].strip() if self.i_account >= 0 else ""
        user = cells[self.i_user].strip() if self.i_user >= 0 else ""
        event = cells[self.i_event].strip()
        moment = cells[self.i_time].strip()
        props = cells[self.i_props].strip() if self.i_props >= 0 else ""
        message_id = cells[self.i_id].strip() if self.i_id >= 0 else ""
        issues: Issues = []
        names = self.names
        if not account and not user:
            who = names["account_id"] if self.i_account >= 0 else names["user_id"]
            issues.append((who, "an account_id or a user_id is required"))
        if len(account) > MAX_ID:
            issues.append((names["account_id"], f"is longer than {MAX_ID} characters"))
        if len(user) > MAX_ID:
            issues.append((names["user_id"], f"is longer than {MAX_ID} characters"))
        if not event:
            issues.append((names["event"], "a value is required"))
        elif len(event) > MAX_ID:
            issues.append((names["event"], f"is longer than {MAX_ID} characters"))
        if len(message_id) > MAX_ID:
            issues.append((names["message_id"], f"is longer than {MAX_ID} characters"))
        timestamp: datetime | None = None
        if not moment:
            issues.append((names["timestamp"], "a value is required"))
        else:
            try:
                timestamp = parse_time(moment)
            except ValueError as exc:
                issues.append((names["timestamp"], str(exc)))
            else:
                if timestamp > self.latest:
                    issues.append((names["timestamp"], f"{moment!r} is in the future"))
        properties: dict[str, Any] = {}
        if props:
            try:
                properties = parse_object(props)
            except ValueError as exc:
                issues.append((names["properties"], str(exc)))
        if issues or timestamp is None:
            self.log.reject(line, issues)
            return None
        if not message_id:
            # The same row imported again gets the same id, so the pipeline skips it.
            message_id = derived_id(account, user, event, timestamp.isoformat(), props)
        return Message(
            index=0,
            type="track",
            message_id=message_id,
            user_id=user or None,
            anonymous_id=None,
            group_id=account or None,
            event=event,
            properties=properties,
            traits={},
            context={},
            timestamp=timestamp,
            sent_at=None,
        )

    def write(self, items: list[tuple[int, Message]]) -> None:
        messages = [message for _, message in items]
        for index, message in enumerate(messages):
            message.index = index
        result = pipeline.ingest(
            self.session,
            messages,
            source=IMPORT_SOURCE,
            now=self.ctx.now,
            fx=self.ctx.fx,
            deferred=self.deferred,
        )
        report = self.ctx.report
        report.stored += result.stored
        report.duplicates += result.duplicates
        report.linked += result.linked

    def finish(self) -> None:
        pipeline.finish(self.session, self.deferred, now=self.ctx.now)
