"""Tracking messages: Segment/RudderStack and PostHog payloads, validated and normalised.

Pure functions over parsed JSON. A batch is valid only if every message is: the caller gets
either the normalised messages or the list of (index, reason) of every bad one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

MessageType = Literal["track", "identify", "group", "page", "screen", "alias"]
TYPES: frozenset[str] = frozenset({"track", "identify", "group", "page", "screen", "alias"})
MAX_MESSAGE_BYTES = 32 * 1024
FUTURE_TOLERANCE = timedelta(minutes=5)


@dataclass
class Message:
    index: int
    type: MessageType
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    event: str | None
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime
    sent_at: datetime | None
    previous_id: str | None = None
    set_once: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BadMessage:
    index: int
    reason: str


class BatchInvalid(Exception):
    def __init__(self, errors: list[BadMessage]) -> None:
        super().__init__(f"{len(errors)} invalid message(s)")
        self.errors = errors


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string (or epoch milliseconds) as aware UTC; None if absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be an ISO-8601 string")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str) or not value:
        raise ValueError("must be an ISO-8601 string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _id(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{name} must be a string")
    text = str(value)
    if len(text) > 255:
        raise ValueError(f"{name} is longer than 255 characters")
    return text


def _obj(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be an object")
    return value


@dataclass(frozen=True)
class TimeContext:
    received_at: datetime
    max_skew: timedelta


def _event_time(
    raw_timestamp: Any, raw_sent_at: Any, ctx: TimeContext, flags: list[str]
) -> tuple[datetime, datetime | None]:
    try:
        timestamp = parse_time(raw_timestamp)
    except ValueError as exc:
        raise ValueError(f"timestamp {raw_timestamp!r} is not a valid time") from exc
    try:
        sent_at = parse_time(raw_sent_at)
    except ValueError as exc:
        raise ValueError(f"sentAt {raw_sent_at!r} is not a valid time") from exc
    if timestamp is None:
        return ctx.received_at, sent_at
    if sent_at is not None:
        # Segment semantics: the device clock is off by (receivedAt - sentAt). A gap larger
        # than any clock error is a replay of old data, not skew: leave those times alone.
        skew = ctx.received_at - sent_at
        if abs(skew) <= ctx.max_skew:
            timestamp += skew
        else:
            flags.append("skew_ignored")
    if timestamp > ctx.received_at + FUTURE_TOLERANCE:
        flags.append("future_clamped")
        timestamp = ctx.received_at
    return timestamp, sent_at


def _size(raw: Mapping[str, Any]) -> int:
    try:
        return len(orjson.dumps(raw))
    except TypeError:  # a number orjson cannot represent (e.g. beyond 64 bits)
        return len(json.dumps(raw, separators=(",", ":"), default=str))


def segment_message(
    raw: Any, index: int, ctx: TimeContext, *, implied_type: str | None, batch_sent_at: Any
) -> Message:
    """One Segment/RudderStack message; raises ValueError with the reason."""
    if not isinstance(raw, dict):
        raise ValueError("message must be a JSON object")
    if _size(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message is larger than {MAX_MESSAGE_BYTES // 1024} KB")
    kind = raw.get("type", implied_type)
    if kind not in TYPES:
        raise ValueError(f"unknown type {kind!r}")
    if implied_type and kind != implied_type:
        raise ValueError(f"type {kind!r} sent to the /v1/{implied_type} endpoint")
    user_id = _id(raw.get("userId"), "userId")
    anonymous_id = _id(raw.get("anonymousId"), "anonymousId")
    if user_id is None and anonymous_id is None:
        raise ValueError("userId or anonymousId is required")
    context = _obj(raw.get("context"), "context")
    properties = _obj(raw.get("properties"), "properties")
    traits = _obj(raw.get("traits"), "traits")
    if not traits and kind in ("identify", "group"):
        # RudderStack sends identify traits under context.traits.
        traits = _obj(context.get("traits"), "context.traits")
    flags: list[str] = []
    message_id = _id(raw.get("messageId"), "messageId")
    if message_id is None:
        message_id = f"gen-{uuid.uuid4()}"
        flags.append("no_message_id")
    timestamp, sent_at = _event_time(
        raw.get("timestamp") or raw.get("originalTimestamp"),
        raw.get("sentAt", batch_sent_at),
        ctx,
        flags,
    )
    event: str | None = None
    group_id = _id(context.get("groupId"), "context.groupId")
    previous_id = None
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise ValueError("track needs an event name")
        if len(event) > 255:
            raise ValueError("event name is longer than 255 characters")
    elif kind in ("page", "screen"):
        name = raw.get("name", properties.get("name"))
        event = str(name) if name else None
    elif kind == "group":
        group_id = _id(raw.get("groupId"), "groupId")
        if group_id is None:
            raise ValueError("group needs a groupId")
    elif kind == "alias":
        previous_id = _id(raw.get("previousId"), "previousId")
        if previous_id is None or user_id is None:
            raise ValueError("alias needs previousId and userId")
    return Message(
        index=index,
        type=kind,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        group_id=group_id,
        event=event,
        properties=properties,
        traits=traits,
        context=context,
        timestamp=timestamp,
        sent_at=sent_at,
        previous_id=previous_id,
        flags=flags,
    )


def segment_batch(body: Any, ctx: TimeContext, *, implied_type: str | None = None) -> list[Message]:
    """The messages of a /v1/batch body (or of a single-message endpoint)."""
    if not isinstance(body, dict):
        raise BatchInvalid([BadMessage(-1, "body must be a JSON object")])
    if implied_type is None:
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise BatchInvalid([BadMessage(-1, "batch must be a list of messages")])
        sent_at = body.get("sentAt")
    else:
        batch, sent_at = [body], None
    messages: list[Message] = []
    errors: list[BadMessage] = []
    for index, raw in enumerate(batch):
        try:
            messages.append(
                segment_message(raw, index, ctx, implied_type=implied_type, batch_sent_at=sent_at)
            )
        except ValueError as exc:
            errors.append(BadMessage(index, str(exc)))
    if errors:
        raise BatchInvalid(errors)
    return messages


_POSTHOG_ACCOUNT_GROUPS = ("company", "account", "organization", "organisation", "team")


def _posthog_group(groups: dict[str, Any]) -> str | None:
    for key in _POSTHOG_ACCOUNT_GROUPS:
        if groups.get(key) not in (None, ""):
            return _id(groups[key], f"$groups.{key}")
    for value in groups.values():
        if value not in (None, ""):
            return _id(value, "$groups")
    return None


def posthog_message(raw: Any, index: int, ctx: TimeContext, batch_sent_at: Any) -> Message:
    if not isinstance(raw, dict):
        raise ValueError("message must be a JSON object")
    if _size(raw) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message is larger than {MAX_MESSAGE_BYTES // 1024} KB")
    event = raw.get("event")
    if not isinstance(event, str) or not event:
        raise ValueError("event is required")
    properties = dict(_obj(raw.get("properties"), "properties"))
    distinct_id = _id(raw.get("distinct_id", properties.get("distinct_id")), "distinct_id")
    if distinct_id is None:
        raise ValueError("distinct_id is required")
    flags: list[str] = []
    message_id = _id(raw.get("uuid"), "uuid")
    if message_id is None:
        message_id = f"gen-{uuid.uuid4()}"
        flags.append("no_message_id")
    timestamp, sent_at = _event_time(
        raw.get("timestamp"), raw.get("sent_at", batch_sent_at), ctx, flags
    )
    groups = _obj(properties.get("$groups"), "properties.$groups")
    group_id = _posthog_group(groups)
    kind: MessageType = "track"
    traits: dict[str, Any] = {}
    set_once: dict[str, Any] = {}
    previous_id = None
    user_id: str | None = distinct_id
    name: str | None = event
    if event in ("$identify", "$set", "$set_once"):
        kind = "identify"
        traits = dict(_obj(properties.get("$set"), "properties.$set"))
        set_once = dict(_obj(properties.get("$set_once"), "properties.$set_once"))
        name = None
    elif event == "$groupidentify":
        kind = "group"
        group_id = _id(properties.get("$group_key"), "properties.$group_key")
        if group_id is None:
            raise ValueError("$groupidentify needs properties.$group_key")
        traits = dict(_obj(properties.get("$group_set"), "properties.$group_set"))
        name = None
    elif event == "$create_alias":
        kind = "alias"
        alias = _id(properties.get("alias"), "properties.alias")
        if alias is None:
            raise ValueError("$create_alias needs properties.alias")
        previous_id, user_id = distinct_id, alias
        name = None
    elif event == "$pageview":
        kind, name = "page", properties.get("$current_url") or properties.get("title")
    elif event == "$screen":
        kind, name = "screen", properties.get("$screen_name")
    return Message(
        index=index,
        type=kind,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=None,
        group_id=group_id,
        event=str(name) if name else None,
        properties=properties,
        traits=traits,
        context={},
        timestamp=timestamp,
        sent_at=sent_at,
        previous_id=previous_id,
        set_once=set_once,
        flags=flags,
    )


def posthog_batch(body: Any, ctx: TimeContext) -> list[Message]:
    if not isinstance(body, dict):
        raise BatchInvalid([BadMessage(-1, "body must be a JSON object")])
    batch = body.get("batch")
    if batch is None and "event" in body:
        batch = [body]  # /capture/ style single event
    if not isinstance(batch, list):
        raise BatchInvalid([BadMessage(-1, "batch must be a list of events")])
    messages, errors = [], []
    for index, raw in enumerate(batch):
        try:
            messages.append(posthog_message(raw, index, ctx, body.get("sent_at")))
        except ValueError as exc:
            errors.append(BadMessage(index, str(exc)))
    if errors:
        raise BatchInvalid(errors)
    return messages
