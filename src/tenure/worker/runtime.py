"""The worker: a dispatch loop (outbox -> subscribers and webhooks) plus a huey consumer
for periodic and queued jobs.

`tenure worker` runs it as its own process (several may run against one database: the
dispatcher and the webhook sender are safe to run concurrently, and each periodic job
holds a huey lock while it runs). `tenure serve --with-worker` and `tenure demo` run it in
the API process. huey keeps its queue in SQLite (`TENURE_DATA_DIR/huey.db`) by default
and in Redis when `TENURE_REDIS_URL` is set.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisExpireHuey, SqliteHuey, crontab
from huey.consumer import Consumer
from huey.exceptions import TaskLockedException
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tenure.clock import Clock, SystemClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory
from tenure.hub.dispatcher import Dispatcher
from tenure.hub.live import LiveFeed, RedisLiveFeed
from tenure.logging import get_logger
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.sender import WebhookSender
from tenure.worker.jobs import (
    JobContext,
    PeriodicJob,
    Tick,
    parse_cron,
    registered,
    schedule,
    ticks,
)

try:
    import fcntl
except ImportError:  # Windows: huey's lock alone
    fcntl = None  # type: ignore[assignment]

log = get_logger("tenure.worker")

# Modules whose import declares periodic jobs and hub subscriptions.
JOB_MODULES = (
    "tenure.auth.tasks",
    "tenure.hub.tasks",
    "tenure.webhooks.tasks",
    "tenure.health.tasks",
    "tenure.churn.tasks",
)
# A periodic job's lock outlives a crashed worker for at most this long (Redis); on
# SQLite, locks are cleared when a consumer starts.
LOCK_TTL = timedelta(hours=1)


def load_jobs() -> dict[str, PeriodicJob]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return registered()


def build_dispatcher() -> Dispatcher:
    """The dispatcher with every in-process subscriber and the webhook fan-out."""
    dispatcher = Dispatcher()
    dispatcher.on_fan_out(webhooks_service.fan_out)
    for module in JOB_MODULES:
        subscribe = getattr(importlib.import_module(module), "subscribe", None)
        if subscribe is not None:
            subscribe(dispatcher)
    return dispatcher


def build_huey(settings: Settings, ctx: JobContext, *, immediate: bool = False) -> Huey:
    """A huey instance with every periodic job registered on its effective schedule."""
    huey: Huey
    if settings.redis_url:
        huey = RedisExpireHuey("tenure", url=settings.redis_url, immediate=immediate)
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(
            "tenure", filename=str(settings.data_dir / "huey.db"), immediate=immediate
        )
    jobs = load_jobs()
    ttl = int(LOCK_TTL.total_seconds()) if settings.redis_url else None
    locks = None if settings.redis_url or fcntl is None else settings.data_dir / "locks"
    if locks is not None:
        locks.mkdir(parents=True, exist_ok=True)
    for name, expression in schedule(settings).items():
        if expression is None:
            continue
        minute, hour, day, month, weekday = parse_cron(expression, name)
        guard = locks / f"{name}.lock" if locks is not None else None
        _register(huey, jobs[name], crontab(minute, hour, day, month, weekday), ctx, ttl, guard)
    return huey


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive flock on `path`, or TaskLockedException when another process holds it.

    On SQLite a consumer flushes huey's locks when it starts (a crashed worker's lock would
    stay forever), which would let a worker started while another runs a job run it too.
    The OS drops an flock when its holder dies, so it needs no flushing; the workers that
    share huey.db are on one machine, where it holds.
    """
    if path is None or fcntl is None:
        yield
        return
    with path.open("a") as handle:  # closing it releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TaskLockedException(f"unable to acquire lock {path.stem}") from None
        yield


def _register(
    huey: Huey, job: PeriodicJob, when: Any, ctx: JobContext, ttl: int | None, guard: Path | None
) -> None:
    lock = huey.lock_task(job.name, ttl=ttl) if ttl else huey.lock_task(job.name)

    def run() -> None:
        try:
            with _file_lock(guard), lock:
                result = job.run(ctx)
        except TaskLockedException:
            log.info("job.skipped_locked", job=job.name)
            return
        log.info("job.done", job=job.name, result=result)

    huey.periodic_task(when, name=job.name)(run)


class _QuietConsumer(Consumer):  # type: ignore[misc]
    """A consumer that can run in a thread of another program (no signal handlers)."""

    def _set_signal_handlers(self) -> None:
        pass


@dataclass
class WorkerStats:
    rounds: int = 0
    dispatched: int = 0
    sent: int = 0
    errors: int = 0


class Worker:
    """Dispatch loop + huey consumer."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        sessions: sessionmaker[Session] | None = None,
        clock: Clock | None = None,
        periodic: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self.sessions = sessions or make_session_factory(self.engine)
        if sessions is None:
            self.live: LiveFeed = (
                RedisLiveFeed(settings.redis_url) if settings.redis_url else LiveFeed()
            )
            self.live.attach(self.sessions)
        self.clock = clock or SystemClock()
        self.periodic = periodic
        self.ctx = JobContext(settings, self.engine, self.sessions, self.clock)
        self.huey = build_huey(settings, self.ctx)
        self.dispatcher = build_dispatcher()
        self.ticks: list[Tick] = list(ticks().values())
        self.sender = WebhookSender(
            self.sessions,
            clock=self.clock,
            allow_private=settings.allow_private_destinations,
            timeout=settings.webhook_timeout_seconds,
            lease=timedelta(seconds=settings.webhook_lease_seconds),
            disable_after=timedelta(hours=settings.webhook_disable_after_hours),
        )
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None

    # The dispatch loop.

    def _run_ticks(self, due_at: dict[str, float]) -> int:
        """Run the ticks whose time has come; returns how many ran."""
        ran = 0
        for tick in self.ticks:
            now = time.monotonic()
            if now < due_at.get(tick.name, 0.0):
                continue
            due_at[tick.name] = now + tick.seconds
            try:
                if tick.run(self.ctx):
                    ran += 1
            except Exception:
                self.stats.errors += 1
                log.exception("worker.tick_failed", tick=tick.name)
        return ran

    async def _loop(self) -> None:
        poll = self.settings.worker_poll_seconds
        due_at: dict[str, float] = {}
        async with self.sender.client() as client:
            while not self._stop.is_set():
                busy = self._run_ticks(due_at)
                try:
                    stats = self.dispatcher.dispatch_once(
                        self.sessions, now=self.clock.now(), limit=self.sender.batch
                    )
                    busy += stats.fanned_out + stats.delivered + stats.retried + stats.dead
                    self.stats.dispatched += stats.delivered
                    sent = await self.sender.run_once(client)
                    self.stats.sent += sent
                    busy += sent
                except Exception:
                    self.stats.errors += 1
                    log.exception("worker.round_failed")
                    busy = 0
                    await asyncio.sleep(min(5.0, poll * 10))
                self.stats.rounds += 1
                if not busy:
                    await asyncio.sleep(poll)

    def _run_loop(self) -> None:
        asyncio.run(self._loop())

    def start_dispatch(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_loop, name="tenure-dispatch", daemon=True)
        self._thread.start()

    def stop_dispatch(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    # In-process (serve --with-worker, demo).

    def start(self) -> None:
        """Run everything in background threads of this process."""
        self.start_dispatch()
        self._consumer = _QuietConsumer(
            self.huey,
            workers=2,
            worker_type="thread",
            periodic=self.periodic,
            flush_locks=not self.settings.redis_url,
        )
        self._consumer.start()
        log.info("worker.started", mode="in-process", periodic=self.periodic)

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.stop(graceful=True)
            self._consumer = None
        self.stop_dispatch()
        log.info("worker.stopped")

    # Own process (tenure worker).

    def run_forever(self, *, workers: int = 2) -> None:
        """Dispatch in a thread; the huey consumer owns the main thread and its signals."""
        self.start_dispatch()
        consumer = Consumer(
            self.huey,
            workers=workers,
            worker_type="thread",
            periodic=self.periodic,
            flush_locks=not self.settings.redis_url,
        )
        log.info("worker.started", mode="process", periodic=self.periodic, workers=workers)
        try:
            consumer.run()
        finally:
            self.stop_dispatch()
            log.info("worker.stopped")
