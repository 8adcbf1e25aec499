"""Sends due webhook deliveries: signed, concurrent across accounts, in order within one.

A round claims due deliveries (a lease, so a crashed sender's claim lapses and another
sends them again: at least once, with the same `webhook-id`), groups them into chains per
(endpoint, account), sends chains concurrently and each chain in order, stopping a chain
at its first failure, then records every attempt in one transaction.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import httpx
import orjson
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import Clock
from tenure.db import write_lock
from tenure.hub import service as hub_service
from tenure.hub.events import AlertFired
from tenure.kit.netguard import DestinationRefused, check_destination_async
from tenure.logging import get_logger
from tenure.webhooks import repository as repo
from tenure.webhooks import signing
from tenure.webhooks.models import WebhookStatus
from tenure.webhooks.repository import Claimed
from tenure.webhooks.service import MAX_ATTEMPTS, MAX_ERROR, retry_delay, webhook_id

log = get_logger("tenure.webhooks")

RESPONSE_KEEP = 1000


@dataclass
class Result:
    item: Claimed
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def body_of(item: Claimed) -> bytes:
    """The Standard Webhooks payload: type, timestamp, data."""
    return orjson.dumps(
        {"type": item.event_type, "timestamp": item.occurred_at.isoformat(), "data": item.payload}
    )


class WebhookSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock,
        allow_private: bool,
        timeout: float = 15.0,
        lease: timedelta = timedelta(minutes=5),
        disable_after: timedelta = timedelta(hours=72),
        batch: int = 1000,
        concurrency: int = 64,
        rng: random.Random | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.allow_private = allow_private
        self.timeout = timeout
        self.lease = lease
        self.disable_after = disable_after
        self.batch = batch
        self.concurrency = concurrency
        self._rng = rng or random.Random()  # noqa: S311  (jitter, not secrecy)

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client of a sending loop (aiohttp: its pool stays fast with many
        connections, where httpx's checks every pooled connection on every request)."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"user-agent": "Tenure-Webhooks/1"},
        )

    async def run_once(self, client: aiohttp.ClientSession) -> int:
        """One round; returns how many attempts were made."""
        now = self.clock.now()
        chains, skipped = self._claim(now)
        if not chains and not skipped:
            return 0
        refused = await self._check_destinations(chains)
        semaphore = asyncio.Semaphore(self.concurrency)
        results: list[Result] = []
        released: list[uuid.UUID] = list(skipped)

        async def run_chain(chain: list[Claimed]) -> None:
            for position, item in enumerate(chain):
                result = await self._attempt(client, item, refused.get(item.endpoint_id), semaphore)
                results.append(result)
                if not result.ok:
                    released.extend(c.id for c in chain[position + 1 :])
                    return

        await asyncio.gather(*(run_chain(chain) for chain in chains))
        self._record(results, released)
        return len(results)

    def _claim(self, now: datetime) -> tuple[list[list[Claimed]], list[uuid.UUID]]:
        with self.sessions() as session, session.begin():
            write_lock(session)
            claimed = repo.claim_due(
                session, now=now, lease_until=now + self.lease, limit=self.batch
            )
            chains: dict[tuple[uuid.UUID, uuid.UUID], list[Claimed]] = defaultdict(list)
            loose: list[list[Claimed]] = []
            for item in claimed:
                if item.account_id is None:
                    loose.append([item])
                else:
                    chains[(item.endpoint_id, item.account_id)].append(item)
            # On PostgreSQL an earlier delivery may be in another sender's hands (its row
            # was skipped as locked): then this account waits for the next round.
            first = repo.first_pending(session, list(chains))
            skipped: list[uuid.UUID] = []
            ordered: list[list[Claimed]] = []
            for key, chain in chains.items():
                if first.get(key, chain[0].outbox_id) < chain[0].outbox_id:
                    skipped.extend(c.id for c in chain)
                else:
                    ordered.append(chain)
            return ordered + loose, skipped

    async def _check_destinations(self, chains: list[list[Claimed]]) -> dict[uuid.UUID, str]:
        """Endpoint id -> why it is refused, checked now, after DNS resolution."""
        urls = {chain[0].endpoint_id: chain[0].url for chain in chains}
        refused: dict[uuid.UUID, str] = {}
        for endpoint_id, url in urls.items():
            try:
                await check_destination_async(url, allow_private=self.allow_private)
            except DestinationRefused as exc:
                refused[endpoint_id] = exc.detail
        return refused

    async def _attempt(
        self,
        client: aiohttp.ClientSession,
        item: Claimed,
        refusal: str | None,
        semaphore: asyncio.Semaphore,
    ) -> Result:
        if refusal is not None:
            return Result(item, self.clock.now(), None, 0.0, None, refusal[:MAX_ERROR])
        body = body_of(item)
        async with semaphore:
            # Timed and signed once a connection slot is ours: queueing here is not the
            # receiver's latency, and the signed timestamp is the sending time.
            attempted_at = self.clock.now()
            headers = signing.headers(
                item.secrets, webhook_id(item.id), int(attempted_at.timestamp()), body
            )
            started = time.perf_counter()
            try:
                async with client.post(
                    item.url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    raw = await response.content.read(RESPONSE_KEEP * 4)
                    status = response.status
                text = raw.decode("utf-8", errors="replace")[:RESPONSE_KEEP]
                ok = 200 <= status < 300
                return Result(
                    item,
                    attempted_at,
                    status,
                    (time.perf_counter() - started) * 1000,
                    text,
                    None if ok else f"HTTP {status}",
                )
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, TimeoutError):
                    reason = f"no answer within {self.timeout:g} s"
                return Result(
                    item,
                    attempted_at,
                    None,
                    (time.perf_counter() - started) * 1000,
                    None,
                    reason[:MAX_ERROR],
                )

    def _record(self, results: list[Result], released: list[uuid.UUID]) -> None:
        now = self.clock.now()
        with self.sessions() as session, session.begin():
            write_lock(session)
            repo.add_attempts(
                session,
                [
                    {
                        "delivery_id": r.item.id,
                        "attempted_at": r.attempted_at,
                        "status_code": r.status_code,
                        "latency_ms": round(r.latency_ms, 2),
                        "response": r.response,
                        "error": r.error,
                    }
                    for r in results
                ],
            )
            succeeded: set[uuid.UUID] = set()
            failed: dict[uuid.UUID, Result] = {}
            gone: set[uuid.UUID] = set()
            updates: list[dict[str, Any]] = []
            for r in results:
                values: dict[str, Any] = {
                    "id": r.item.id,
                    "attempts": r.item.attempts + 1,
                    "lease_until": None,
                    "last_status_code": r.status_code,
                    "last_latency_ms": round(r.latency_ms, 2),
                    "last_error": r.error,
                    "updated_at": now,
                }
                if r.ok:
                    values.update(status=WebhookStatus.delivered.value, delivered_at=now)
                    succeeded.add(r.item.endpoint_id)
                else:
                    failed[r.item.endpoint_id] = r
                    if r.status_code == 410:
                        gone.add(r.item.endpoint_id)
                    attempts = r.item.attempts + 1
                    if attempts >= MAX_ATTEMPTS or r.status_code == 410:
                        values["status"] = WebhookStatus.failed.value
                    else:
                        values["next_attempt_at"] = now + retry_delay(attempts, self._rng)
                updates.append(values)
            repo.update_deliveries(session, updates)
            repo.release(session, released)
            self._update_endpoints(session, succeeded, failed, gone, now=now)

    def _update_endpoints(
        self,
        session: Session,
        succeeded: set[uuid.UUID],
        failed: dict[uuid.UUID, Result],
        gone: set[uuid.UUID],
        *,
        now: datetime,
    ) -> None:
        for endpoint in repo.lock_endpoints(session, succeeded | failed.keys()):
            if endpoint.id in succeeded:
                endpoint.failing_since = None
                continue
            endpoint.failing_since = endpoint.failing_since or failed[endpoint.id].attempted_at
            reason = None
            if endpoint.id in gone:
                reason = "the endpoint answered 410 Gone"
            elif now - endpoint.failing_since >= self.disable_after:
                reason = (
                    f"every attempt failed since {endpoint.failing_since.isoformat()} "
                    f"(last: {failed[endpoint.id].error})"
                )
            if reason is None or not endpoint.enabled:
                continue
            endpoint.enabled = False
            endpoint.disabled_reason = reason[:500]
            endpoint.updated_at = now
            hub_service.publish(
                session,
                AlertFired(
                    alert_id=uuid.uuid4(),
                    rule="webhook.endpoint_disabled",
                    severity="warning",
                    message=f"Webhook endpoint {endpoint.url} was disabled: {reason}",
                ),
                account_id=None,
                now=now,
            )
            log.warning("webhook.endpoint_disabled", endpoint=str(endpoint.id), reason=reason)


@dataclass(frozen=True)
class Probe:
    status_code: int | None
    latency_ms: float
    response: str | None
    error: str | None
    webhook_id: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def probe(
    url: str,
    secrets: tuple[str, ...],
    *,
    now: datetime,
    allow_private: bool,
    timeout: float = 15.0,
) -> Probe:
    """Send one signed `webhook.test` message to `url` right now (`tenure webhooks test`).

    DestinationRefused when the URL is not one Tenure may send to."""
    from tenure.kit.netguard import check_destination

    check_destination(url, allow_private=allow_private)
    msg_id = f"msg_test_{uuid.uuid4().hex}"
    body = orjson.dumps(
        {
            "type": "webhook.test",
            "timestamp": now.isoformat(),
            "data": {"message": "test from tenure webhooks test"},
        }
    )
    headers = signing.headers(secrets, msg_id, int(now.timestamp()), body)
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return Probe(
            None,
            (time.perf_counter() - started) * 1000,
            None,
            f"{type(exc).__name__}: {exc}"[:MAX_ERROR],
            msg_id,
        )
    return Probe(
        response.status_code,
        (time.perf_counter() - started) * 1000,
        response.text[:RESPONSE_KEEP],
        None,
        msg_id,
    )
