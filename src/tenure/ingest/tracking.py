"""The tracking API real SDKs call: Segment/RudderStack `/v1/*` and PostHog `/batch/`.

The contract, as the SDKs rely on it: success is exactly 200 `{"success": true}` and only
after commit; no path redirects (with or without a trailing slash); errors carry `code` and
`message` besides the problem+json fields; over the rate limit is 429 with Retry-After.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from tenure.auth import service as auth_service
from tenure.db import write_lock
from tenure.deps import AppState
from tenure.ingest import pipeline
from tenure.ingest.messages import BatchInvalid, Message, TimeContext, posthog_batch, segment_batch
from tenure.kit.errors import Unauthorized
from tenure.kit.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE
from tenure.logging import get_logger

log = get_logger("tenure.ingest")
router = APIRouter(tags=["tracking"])
SEGMENT_TYPES = ("track", "identify", "group", "page", "screen", "alias")


class IngestError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + code.replace("_", "-"),
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": message,
        "code": code,
        "message": message,
        "success": False,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The decompressed body, refusing anything over `limit` bytes (zip bombs included)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(
                413, "payload_too_large", f"request body is larger than {limit} bytes"
            )
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise IngestError(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported (use gzip or deflate)",
        )
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    try:
        inflater = zlib.decompressobj(wbits)
        body = inflater.decompress(raw, limit + 1)
        if encoding == "deflate" and not body and raw:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate without a header
            body = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise IngestError(400, "invalid_encoding", f"body is not valid {encoding}: {exc}") from exc
    if len(body) > limit or inflater.unconsumed_tail:
        raise IngestError(
            413, "payload_too_large", f"decompressed body is larger than {limit} bytes"
        )
    return body


def _parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise IngestError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc


def _write_key(request: Request, body: Any) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            user = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise IngestError(401, "invalid_credentials", "malformed Basic credentials") from exc
        key = user.split(":", 1)[0]
        if key:
            return key
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    if isinstance(body, dict):
        for field in ("writeKey", "api_key"):
            value = body.get(field)
            if isinstance(value, str) and value:
                return value
    raise IngestError(
        401,
        "missing_write_key",
        "no write key: send it as HTTP Basic user, or writeKey/api_key in the body",
    )


class RateLimiter:
    """Requests per write key, in memory or in Redis (shared by every API process)."""

    def __init__(self, rule: str, redis_url: str | None) -> None:
        self.item = parse(rule)
        storage = storage_from_string(redis_url if redis_url else "memory://")
        self.limiter = MovingWindowRateLimiter(storage)

    def retry_after(self, key: str) -> int | None:
        """None when allowed; else seconds to wait."""
        if self.limiter.hit(self.item, "ingest", key):
            return None
        stats = self.limiter.get_window_stats(self.item, "ingest", key)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _limiter(state: AppState) -> RateLimiter:
    limiter = getattr(state, "_ingest_limiter", None)
    if limiter is None:
        limiter = RateLimiter(state.settings.ingest_rate_limit, state.settings.redis_url)
        state._ingest_limiter = limiter  # type: ignore[attr-defined]
    return limiter


@dataclass
class _Job:
    messages: list[Message]
    source: str
    now: datetime
    result: pipeline.IngestResult | None = None
    error: BaseException | None = None


class GroupCommit:
    """Batches that arrive together share one transaction (group commit).

    Each request queues its validated batch; whichever request holds the writer lock stores
    every queued batch in one transaction and commits once, then every waiting request gets
    its own result. A commit (and on SQLite the write lock) costs the same for 500 events or
    5,000, so under load this is most of the gain; alone, a request commits by itself.
    """

    def __init__(self) -> None:
        self._writer = threading.Lock()
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []

    def run(self, state: AppState, job: _Job) -> pipeline.IngestResult:
        with self._mutex:
            self._queue.append(job)
        with self._writer:
            if job.result is None and job.error is None:
                with self._mutex:
                    jobs, self._queue = self._queue, []
                self._store_all(state, jobs)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    @staticmethod
    def _store_all(state: AppState, jobs: list[_Job]) -> None:
        try:
            with state.sessions() as session:
                write_lock(session)
                results = [
                    pipeline.ingest(session, j.messages, source=j.source, now=j.now, fx=state.fx)
                    for j in jobs
                ]
                session.commit()
        except BaseException as exc:
            for j in jobs:
                j.error = exc
            return
        for j, result in zip(jobs, results, strict=True):
            j.result = result


_GROUPS: dict[int, GroupCommit] = {}


def _store(state: AppState, key: str, messages_of: Callable[[TimeContext], list[Message]]) -> int:
    """Authenticate, validate and commit one request; runs in a worker thread."""
    now = state.clock.now()
    ctx = TimeContext(
        received_at=now, max_skew=timedelta(hours=state.settings.ingest_max_clock_skew_hours)
    )
    with state.sessions() as session:
        try:
            actor = auth_service.authenticate_api_key(session, key, now=now)
        except Unauthorized as exc:
            raise IngestError(401, "invalid_write_key", exc.detail) from exc
        if not actor.has_scope("ingest"):
            raise IngestError(403, "forbidden", "this key lacks the 'ingest' scope")
        session.commit()
        try:
            messages = messages_of(ctx)
        except BatchInvalid as exc:
            errors = [{"index": e.index, "reason": e.reason} for e in exc.errors]
            summary = "; ".join(
                (f"message {e.index}: " if e.index >= 0 else "") + e.reason for e in exc.errors[:5]
            )
            raise IngestError(
                400, "invalid_batch", f"nothing was stored: {summary}", errors=errors
            ) from exc
    group = _GROUPS.setdefault(id(state), GroupCommit())
    result = group.run(state, _Job(messages, str(actor.id), now))
    log.info(
        "ingested",
        source=actor.id,
        received=result.received,
        stored=result.stored,
        duplicates=result.duplicates,
        linked=result.linked,
    )
    return result.stored


async def _handle(
    request: Request, parse_messages: Callable[[Any, TimeContext], list[Message]]
) -> JSONResponse:
    state: AppState = request.app.state.tenure
    try:
        body_bytes = await _read_body(request, state.settings.ingest_max_request_bytes)
        body = _parse_json(body_bytes)
        key = _write_key(request, body)
        wait = _limiter(state).retry_after(key[:64])
        if wait is not None:
            return _error(
                429,
                "rate_limited",
                f"too many requests; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        await run_in_threadpool(_store, state, key, lambda ctx: parse_messages(body, ctx))
    except IngestError as exc:
        return _error(exc.status, exc.code, exc.message, **exc.extra)
    return JSONResponse({"success": True}, status_code=200)


def _segment_endpoint(implied: str | None) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> JSONResponse:
        return await _handle(
            request, lambda body, ctx: segment_batch(body, ctx, implied_type=implied)
        )

    endpoint.__name__ = f"segment_{implied or 'batch'}"
    return endpoint


async def posthog(request: Request) -> JSONResponse:
    return await _handle(request, posthog_batch)


def _add(path: str, endpoint: Callable[..., Any], summary: str) -> None:
    # Both spellings are real routes: a redirect would turn the SDK's POST into a lost GET.
    for variant in (path, path + "/"):
        router.add_api_route(
            variant,
            endpoint,
            methods=["POST"],
            summary=summary,
            include_in_schema=variant == path,
            response_model=None,
        )


_add("/v1/batch", _segment_endpoint(None), "Segment/RudderStack batch")
for _kind in SEGMENT_TYPES:
    _add(f"/v1/{_kind}", _segment_endpoint(_kind), f"Segment {_kind}")
_add("/batch", posthog, "PostHog batch")
_add("/capture", posthog, "PostHog capture")
