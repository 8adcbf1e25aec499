"""Routes: the live feed (SSE), the event catalogue and dead letters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from tenure.auth.dependencies import Admin, Reader
from tenure.deps import DB, State
from tenure.hub import service
from tenure.hub.events import EVENT_TYPES
from tenure.hub.live import LiveEvent
from tenure.kit.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["events"])

BACKLOG = 1000
PING_SECONDS = 15


class EventType(BaseModel):
    type: str
    version: int
    description: str
    json_schema: dict[str, Any]


class DeadLetterRead(BaseModel):
    outbox_id: int
    subscriber: str
    event_type: str
    version: int
    account_id: uuid.UUID | None
    attempts: int
    last_error: str | None
    occurred_at: datetime
    updated_at: datetime


@router.get("/events/types", response_model=list[EventType], summary="The domain event catalogue")
def event_types(_: Reader) -> list[EventType]:
    return [
        EventType(
            type=name,
            version=cls.VERSION,
            description=(cls.__doc__ or "").strip(),
            json_schema=cls.model_json_schema(),
        )
        for name, cls in sorted(EVENT_TYPES.items())
    ]


def _sse(item: LiveEvent) -> ServerSentEvent:
    return ServerSentEvent(
        data=orjson.dumps(item.to_json()).decode(), id=str(item.id), event=item.type
    )


@router.get(
    "/live",
    summary="Domain events as they happen (Server-Sent Events)",
    response_description="text/event-stream; each event's id is its outbox id",
)
async def live(
    state: State,
    _: Reader,
    types: Annotated[
        str | None, Query(description="Comma-separated event types (default: all)")
    ] = None,
    account_id: uuid.UUID | None = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, description="Resume after this event id (or the header)")
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    wanted = frozenset(t.strip() for t in types.split(",") if t.strip()) if types else None
    if wanted:
        unknown = sorted(wanted - EVENT_TYPES.keys())
        if unknown:
            raise InvalidInput(f"unknown event types: {', '.join(unknown)}", field="types")
    resume = last_event_id
    if last_event_id_header:
        try:
            resume = int(last_event_id_header)
        except ValueError:
            raise InvalidInput(
                "Last-Event-ID must be an event id from this feed", field="Last-Event-ID"
            ) from None
    feed = state.live
    # Listen before reading the backlog: nothing committed in between is missed.
    listener = feed.listen(types=wanted, account_id=account_id)

    def backlog(after: int) -> list[LiveEvent]:
        with state.sessions() as session:
            return service.live_backlog(
                session, after=after, types=wanted, account_id=account_id, limit=BACKLOG
            )

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            sent: set[int] = set()
            if resume is not None:
                for item in await run_in_threadpool(backlog, resume):
                    sent.add(item.id)
                    yield _sse(item)
            yield ServerSentEvent(data=orjson.dumps({"listening": True}).decode(), event="ready")
            while True:
                if listener.lagged.is_set() and listener.queue.empty():
                    # Too slow to keep up: reconnect with Last-Event-ID to catch up.
                    yield ServerSentEvent(data='{"lagged": true}', event="lagged")
                    return
                try:
                    item = await asyncio.wait_for(listener.queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                if item.id not in sent:
                    yield _sse(item)
        finally:
            feed.forget(listener)

    return EventSourceResponse(stream(), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})


@router.get("/hub/dead-letters", response_model=list[DeadLetterRead])
def dead_letters(
    db: DB,
    _: Admin,
    subscriber: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterRead]:
    """Deliveries to in-process subscribers that failed every attempt."""
    return [
        DeadLetterRead(**vars(d)) for d in service.list_dead(db, subscriber=subscriber, limit=limit)
    ]


@router.post("/hub/dead-letters/{outbox_id}/{subscriber}/replay", status_code=202)
def replay_dead_letter(
    outbox_id: int, subscriber: str, db: DB, state: State, _: Admin
) -> dict[str, Any]:
    service.replay(db, outbox_id, subscriber, now=state.clock.now())
    return {"replayed": True, "outbox_id": outbox_id, "subscriber": subscriber}
