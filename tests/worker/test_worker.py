"""The worker end to end: events published and committed reach a real HTTP receiver, from an
in-process worker and from `tenure worker` processes, including one killed mid-delivery;
periodic jobs stay single across workers; Redis-backed huey."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from huey import RedisExpireHuey
from huey.signals import SIGNAL_COMPLETE, SIGNAL_EXECUTING
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from tenure.auth import service as auth_service
from tenure.auth.models import UserSession
from tenure.clock import SystemClock
from tenure.config import Settings
from tenure.db import make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.events import AlertFired
from tenure.kit.actor import Actor
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.schemas import EndpointCreate
from tenure.worker.jobs import JobContext
from tenure.worker.runtime import Worker, build_huey, load_jobs
from tests.conftest import NOW
from tests.factories.auth import make_user

WAIT = 60.0  # generous bound on every wait: a hang fails instead of blocking the run
WORKER_THREADS = ("tenure-dispatch", "Scheduler", "Worker-")


# A webhook receiver on loopback.


@dataclass(frozen=True)
class Hit:
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)["data"]
        return data

    @property
    def alert_id(self) -> str:
        return str(self.data["alert_id"])


class Receiver:
    """Records every request as it arrives and answers 200, after `delay` seconds; once it
    has seen `hold_after` requests it holds the next ones until `release()`."""

    def __init__(self, *, delay: float = 0.0, hold_after: int | None = None) -> None:
        self.delay = delay
        self.hold_after = hold_after
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver._hits.append(
                        Hit(
                            self.headers.get("webhook-id", ""),
                            self.headers.get("webhook-timestamp", ""),
                            self.headers.get("webhook-signature", ""),
                            body,
                        )
                    )
                    held = receiver.hold_after is not None and len(receiver._hits) > (
                        receiver.hold_after
                    )
                if held:
                    receiver._released.wait(WAIT)
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(200)
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender is gone (killed worker)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the sender opens up to 64 connections at once

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def hits(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def seen(self) -> set[str]:
        return {hit.alert_id for hit in self.hits()}

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


@dataclass
class WorkerProcess:
    """A `tenure worker` process and its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def check_alive(self, waiting_for: str) -> None:
        if self.proc.poll() is not None:
            pytest.fail(
                f"worker {self.name} exited with {self.proc.returncode} while waiting for "
                f"{waiting_for}:\n{self.log.read_text(errors='replace')[-3000:]}"
            )

    def has_started(self) -> bool:
        return b"worker.started" in self.log.read_bytes()


def wait_for(
    condition: Callable[[], bool], what: str, *, workers: tuple[WorkerProcess, ...] = ()
) -> None:
    """Poll until `condition` holds; fail after WAIT seconds or if a worker process died."""
    deadline = time.monotonic() + WAIT
    while not condition():
        for worker in workers:
            worker.check_alive(what)
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT:.0f} s waiting for {what}")
        time.sleep(0.02)


def verifies(hit: Hit, secret: str) -> bool:
    """Standard Webhooks signature check, written independently of tenure.webhooks.signing."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{hit.webhook_id}.{hit.timestamp}.".encode() + hit.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in hit.signature.split())


# Arranging data.


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def create_endpoint(sessions: sessionmaker[Session], url: str) -> tuple[uuid.UUID, str]:
    with sessions() as session, session.begin():
        endpoint = webhooks_service.create_endpoint(
            session,
            EndpointCreate(url=url),
            actor=Actor.system("tests"),
            now=datetime.now(UTC),
            allow_private=True,
        )
        return endpoint.id, endpoint.secret


@dataclass(frozen=True)
class Published:
    alert_id: str
    account_id: uuid.UUID | None


def publish(
    sessions: sessionmaker[Session], count: int, accounts: list[uuid.UUID | None]
) -> list[Published]:
    """`count` events spread over `accounts` (None: no account), committed in one transaction."""
    published = []
    with sessions() as session, session.begin():
        for i in range(count):
            account = accounts[i % len(accounts)]
            event = AlertFired(
                alert_id=uuid.uuid4(),
                rule="tests.worker",
                severity="info",
                message=f"event {i}",
                account_id=account,
            )
            hub_service.publish(session, event, account_id=account, now=datetime.now(UTC))
            published.append(Published(str(event.alert_id), account))
    return published


def delivered(sessions: sessionmaker[Session], endpoint_id: uuid.UUID) -> dict[str, int]:
    with sessions() as session:
        return webhooks_service.status_counts(session, endpoint_id)


def assert_in_order_per_account(published: list[Published], hits: list[Hit]) -> None:
    """Within one account, events first arrive in the order they were published."""
    first_arrival: dict[str, int] = {}
    for position, hit in enumerate(hits):
        first_arrival.setdefault(hit.alert_id, position)
    by_account: dict[uuid.UUID, list[str]] = {}
    for p in published:
        if p.account_id is not None:
            by_account.setdefault(p.account_id, []).append(p.alert_id)
    for account, alert_ids in by_account.items():
        arrivals = [first_arrival[a] for a in alert_ids]
        assert arrivals == sorted(arrivals), f"events of account {account} arrived out of order"


ACCOUNTS: list[uuid.UUID | None] = [uuid.uuid4() for _ in range(4)] + [None]


# `tenure worker` processes.


@pytest.fixture
def spawn(database_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `tenure worker` processes on the test database; killed at the end of the test."""
    workers: list[WorkerProcess] = []

    def start(name: str, **settings: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
        env.update(
            TENURE_ENV="test",
            TENURE_DATABASE_URL=database_url,
            TENURE_DATA_DIR=str(tmp_path / "data"),
            TENURE_SECRET_KEY="test-secret-key-that-is-long-enough-0123456789",
            TENURE_ALLOW_PRIVATE_DESTINATIONS="true",
            TENURE_WORKER_POLL_SECONDS="0.05",
        )
        env.update({f"TENURE_{k.upper()}": v for k, v in settings.items()})
        log = tmp_path / f"worker-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tenure", "worker"],
                cwd=tmp_path,  # no stray .env file
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        workers.append(WorkerProcess(name, proc, log))
        return workers[-1]

    yield start
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(WAIT)


class TestInProcessWorker:
    def test_delivers_committed_events_signed_and_in_order_then_stops(
        self, settings: Settings, engine: Engine, sessions: sessionmaker[Session]
    ) -> None:
        settings = settings.model_copy(update={"worker_poll_seconds": 0.05})
        with Receiver() as receiver:
            endpoint_id, secret = create_endpoint(sessions, receiver.url)
            worker = Worker(settings, engine=engine)
            worker.start()
            try:
                published = publish(sessions, 20, ACCOUNTS)
                # Published later, in a second transaction, while the worker runs.
                published += publish(sessions, 20, ACCOUNTS)
                # Rolled back: never sent.
                with sessions() as session:
                    hub_service.publish(
                        session,
                        AlertFired(
                            alert_id=uuid.uuid4(), rule="tests", severity="info", message="no"
                        ),
                        account_id=None,
                        now=datetime.now(UTC),
                    )
                    session.rollback()
                expected = {p.alert_id for p in published}
                wait_for(lambda: receiver.seen() >= expected, "every event")
                wait_for(
                    lambda: delivered(sessions, endpoint_id) == {"delivered": 40},
                    "deliveries recorded",
                )
            finally:
                stopper = threading.Thread(target=worker.stop)
                stopper.start()
                stopper.join(WAIT)
            assert not stopper.is_alive(), "Worker.stop() did not return"
            hits = receiver.hits()
        assert {h.alert_id for h in hits} == expected
        assert len(hits) == 40  # each once: nothing else, nothing twice
        assert all(verifies(h, secret) for h in hits)
        assert all(h.webhook_id.startswith("msg_") for h in hits)
        assert_in_order_per_account(published, hits)
        left = [t.name for t in threading.enumerate() if t.name.startswith(WORKER_THREADS)]
        assert left == [], f"threads still running after stop(): {left}"


class TestCrash:
    def test_a_killed_worker_loses_no_event(
        self,
        spawn: Callable[..., WorkerProcess],
        sessions: sessionmaker[Session],
    ) -> None:
        total = 300
        # Slow, and holding every request after the 100th: the kill lands mid-delivery.
        with Receiver(delay=0.02, hold_after=100) as receiver:
            endpoint_id, secret = create_endpoint(sessions, receiver.url)
            published = publish(sessions, total, ACCOUNTS)
            expected = {p.alert_id for p in published}

            first = spawn("first", webhook_lease_seconds="2")
            wait_for(lambda: len(receiver.hits()) > 100, "the first deliveries", workers=(first,))
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(WAIT)
            before_kill = receiver.seen()
            assert 0 < len(before_kill) < total
            receiver.release()

            second = spawn("second", webhook_lease_seconds="2")
            wait_for(lambda: receiver.seen() == expected, "every event", workers=(second,))
            wait_for(
                lambda: delivered(sessions, endpoint_id) == {"delivered": total},
                "every delivery recorded",
                workers=(second,),
            )
            hits = receiver.hits()

        arrivals = Counter(h.alert_id for h in hits)
        assert set(arrivals) == expected  # none lost
        assert len(arrivals) == total
        # Sent twice only if the first worker had sent it without recording the answer.
        assert {a for a, n in arrivals.items() if n > 1} <= before_kill
        # A resent event keeps its webhook-id: receivers can drop the duplicate.
        ids: dict[str, set[str]] = {}
        for h in hits:
            ids.setdefault(h.alert_id, set()).add(h.webhook_id)
        assert all(len(v) == 1 for v in ids.values())
        assert all(verifies(h, secret) for h in hits)


class TestTwoWorkers:
    def test_two_worker_processes_deliver_each_event_exactly_once(
        self, spawn: Callable[..., WorkerProcess], sessions: sessionmaker[Session]
    ) -> None:
        with Receiver(delay=0.005) as receiver:
            endpoint_id, _ = create_endpoint(sessions, receiver.url)
            workers = (spawn("a"), spawn("b"))
            for worker in workers:
                wait_for(worker.has_started, f"worker {worker.name} to start", workers=workers)
            published: list[Published] = []
            for _ in range(10):
                published += publish(sessions, 20, ACCOUNTS)
                time.sleep(0.05)  # spread the batches over several rounds of both workers
            expected = {p.alert_id for p in published}
            wait_for(lambda: receiver.seen() == expected, "every event", workers=workers)
            wait_for(
                lambda: delivered(sessions, endpoint_id) == {"delivered": len(published)},
                "every delivery recorded",
                workers=workers,
            )
            hits = receiver.hits()
            # SIGTERM (docker stop, systemd) stops a worker cleanly.
            for worker in workers:
                worker.proc.send_signal(signal.SIGTERM)
            for worker in workers:
                assert worker.proc.wait(WAIT) == 0, worker.log.read_text()

        assert len(hits) == len(expected)
        assert {h.alert_id for h in hits} == expected
        assert len({h.webhook_id for h in hits}) == len(hits)
        assert_in_order_per_account(published, hits)


# Periodic jobs across workers.


def add_expired_session(db: Session) -> uuid.UUID:
    user = make_user(db, now=NOW - timedelta(days=30), email=f"{uuid.uuid4().hex}@example.com")
    started = auth_service.start_session(
        db, user, now=datetime.now(UTC) - timedelta(days=8), max_age=timedelta(days=7)
    )
    db.commit()
    return started.record.id


def session_exists(sessions: sessionmaker[Session], session_id: uuid.UUID) -> bool:
    with sessions() as session:
        return (
            session.scalar(select(UserSession.id).where(UserSession.id == session_id)) is not None
        )


class WriteBlock:
    """Holds the sessions table against writers (a job's DELETE waits) until released."""

    def __init__(self, engine: Engine) -> None:
        self._conn: Connection | None = None
        self._engine = engine

    def __enter__(self) -> WriteBlock:
        if self._engine.dialect.name == "sqlite":
            # BEGIN IMMEDIATE: the write lock of the whole file (busy_timeout is 10 s).
            self._conn = self._engine.connect().execution_options(sqlite_begin="IMMEDIATE")
            self._conn.begin()
        else:
            self._conn = self._engine.connect()
            self._conn.begin()
            try:
                table = UserSession.__tablename__
                self._conn.execute(text(f'LOCK TABLE "{table}" IN EXCLUSIVE MODE'))
            except Exception:
                self.release()
                raise
        return self

    def release(self) -> None:
        if self._conn is not None:
            self._conn.rollback()
            self._conn.close()
            self._conn = None

    def __exit__(self, *exc: object) -> None:
        self.release()


class Signals:
    """huey signals of several workers' hueys, for one task name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self.seen: list[str] = []

    def watch(self, worker: Worker) -> None:
        @worker.huey.signal(SIGNAL_EXECUTING, SIGNAL_COMPLETE)
        def record(signal: str, task: Any, *args: Any) -> None:
            if task.name == self.name:
                with self._lock:
                    self.seen.append(signal)

    def count(self, signal: str) -> int:
        with self._lock:
            return self.seen.count(signal)


def all_off() -> dict[str, str]:
    return {name: "off" for name in load_jobs()}


def every_minute(settings: Settings) -> Settings:
    """auth.prune_sessions alone, every minute: huey enqueues it as its consumer starts."""
    return settings.model_copy(
        update={
            "worker_poll_seconds": 0.05,
            "schedules": {**all_off(), "auth.prune_sessions": "* * * * *"},
        }
    )


def stop_all(*workers: Worker) -> None:
    for worker in workers:
        stopper = threading.Thread(target=worker.stop)
        stopper.start()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "Worker.stop() did not return"


class TestPeriodicAcrossWorkers:
    def test_a_worker_started_while_another_runs_a_job_does_not_run_it_too(
        self, settings: Settings, engine: Engine, db: Session, sessions: sessionmaker[Session]
    ) -> None:
        settings = every_minute(settings)
        expired = add_expired_session(db)
        signals = Signals("auth.prune_sessions")
        first = Worker(settings, engine=engine)
        second = Worker(settings, engine=engine)  # same huey.db: another worker
        signals.watch(first)
        signals.watch(second)
        try:
            with WriteBlock(engine) as block:
                first.start()
                # The job is running (its DELETE waits behind the block).
                wait_for(lambda: signals.count(SIGNAL_EXECUTING) == 1, "the first run")
                second.start()  # also enqueues the job as it starts
                # The second run finishes while the first still waits: it skipped the job.
                wait_for(lambda: signals.count(SIGNAL_COMPLETE) == 1, "the second run")
                assert signals.count(SIGNAL_EXECUTING) == 2
                assert session_exists(sessions, expired)
                block.release()
                wait_for(lambda: signals.count(SIGNAL_COMPLETE) == 2, "the first run")
            assert not session_exists(sessions, expired)
        finally:
            stop_all(first, second)

    def test_a_lock_left_by_a_crashed_worker_is_cleared_when_a_worker_starts(
        self,
        settings: Settings,
        engine: Engine,
        db: Session,
        sessions: sessionmaker[Session],
    ) -> None:
        settings = every_minute(settings)
        expired = add_expired_session(db)
        ctx = JobContext(settings, engine, sessions, SystemClock())
        # A worker died holding the lock: nothing will ever release it.
        build_huey(settings, ctx).lock_task("auth.prune_sessions").acquire()
        signals = Signals("auth.prune_sessions")
        worker = Worker(settings, engine=engine)
        signals.watch(worker)
        try:
            worker.start()
            wait_for(lambda: signals.count(SIGNAL_COMPLETE) == 1, "the job")
        finally:
            stop_all(worker)
        assert not session_exists(sessions, expired)


class TestRedis:
    def test_redis_backed_huey_shares_job_locks_between_workers(
        self,
        settings: Settings,
        redis_url: str,
        engine: Engine,
        db: Session,
        sessions: sessionmaker[Session],
    ) -> None:
        settings = settings.model_copy(update={"redis_url": redis_url})
        expired = add_expired_session(db)
        ctx = JobContext(settings, engine, sessions, SystemClock())
        ours = build_huey(settings, ctx)
        theirs = build_huey(settings, ctx)  # another worker, on another machine
        assert isinstance(ours, RedisExpireHuey)
        assert not (settings.data_dir / "huey.db").exists()
        job = next(
            t
            for t in ours.read_periodic(datetime(2026, 6, 15, 0, 17))
            if t.name == ("auth.prune_sessions")
        )
        try:
            with theirs.lock_task("auth.prune_sessions"):
                assert ours.is_locked("auth.prune_sessions")
                ours.execute(job)
                assert session_exists(sessions, expired)
            ours.execute(job)
            assert not session_exists(sessions, expired)
        finally:
            theirs.flush_locks("auth.prune_sessions")

    def test_in_process_worker_on_redis_delivers_events(
        self,
        settings: Settings,
        redis_url: str,
        engine: Engine,
        sessions: sessionmaker[Session],
    ) -> None:
        settings = settings.model_copy(
            update={
                "redis_url": redis_url,
                "worker_poll_seconds": 0.05,
                # Periodic tasks off: the Redis queue is shared with other test runs.
                "schedules": all_off(),
            }
        )
        with Receiver() as receiver:
            endpoint_id, _ = create_endpoint(sessions, receiver.url)
            worker = Worker(settings, engine=engine, periodic=False)
            worker.start()
            try:
                expected = {p.alert_id for p in publish(sessions, 10, ACCOUNTS)}
                wait_for(lambda: receiver.seen() == expected, "every event")
                wait_for(
                    lambda: delivered(sessions, endpoint_id) == {"delivered": 10},
                    "deliveries recorded",
                )
            finally:
                stop_all(worker)


def run_worker_command(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`tenure worker` in its own process, for the cases where it must not start."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    return subprocess.run(
        [sys.executable, "-m", "tenure", "worker"],
        cwd=tmp_path,
        env={**base, "TENURE_ENV": "test", "TENURE_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


class TestWorkerCommand:
    def test_invalid_schedule_stops_the_worker_with_one_line(
        self, database_url: str, tmp_path: Path
    ) -> None:
        result = run_worker_command(
            {
                "TENURE_DATABASE_URL": database_url,
                "TENURE_SCHEDULES": json.dumps({"hub.prune_outbox": "0 25 * * *"}),
            },
            tmp_path,
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "hub.prune_outbox" in lines[0]

    def test_refuses_an_uninitialised_database(self, tmp_path: Path) -> None:
        result = run_worker_command(
            {"TENURE_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}, tmp_path
        )
        assert result.returncode == 2, result.stderr
        assert "run 'tenure init'" in result.stderr
        assert "Traceback" not in result.stderr
