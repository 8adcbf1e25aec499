"""Event hub: publish -> webhook delivery throughput, and ingest -> live feed (SSE) latency.

Throughput: N `event.ingested` events for a few hundred accounts go through the outbox to one
webhook endpoint, sent by one worker (`Worker(settings, periodic=False)`, the dispatch loop
and the huey consumer in this process) to a local receiver. The receiver is a minimal asyncio
HTTP/1.1 keep-alive server in its own process (a 200 and two bytes per request), so it is not
what is measured. Two runs, each on a fresh database:

- backlog: every event is published first (`publish_many`, a few transactions), then the
  worker starts; timed until the receiver has counted N requests.
- steady: the worker runs while another process publishes at a fixed offered rate (small
  transactions, like an API under load); reports the delivered rate and the lag from
  publication to arrival at the receiver.

Latency: the app (`create_app`, no worker) served by uvicorn in a subprocess; an SSE client
subscribed to `/api/v1/live?types=event.ingested`; one small `POST /v1/batch` at a time, each
for another account; latency = SSE event received - just before the POST was sent.

Prints one JSON object. A run is void (exit 1) if a delivery is missing or an SSE event never
arrives. `--profile` profiles the worker during the backlog drain and prints the top functions
to stderr: `cprofile` (default) instruments the dispatch thread; `py-spy` samples the whole
process (every busy thread, database waits included).

    .venv/bin/python benchmarks/hub.py [--events 20000] [--accounts 500] [--steady-rate 2000]
        [--batches 300] [--only throughput|latency] [--profile [cprofile|py-spy]]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import json
import multiprocessing
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from sqlalchemy import Engine, create_engine, func, make_url, select, text

import tenure.models  # noqa: F401  (every mapper, for the ORM calls below)
from tenure.accounts.models import Account
from tenure.auth import service as auth_service
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.hub import service as hub_service
from tenure.hub.events import DomainEvent, EventIngested
from tenure.kit.actor import Actor
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.models import WebhookDelivery, WebhookStatus
from tenure.webhooks.schemas import EndpointCreate

TARGET_EVENTS_PER_S = 2_000
TARGET_P99_MS = 250
PG_EXAMPLE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROFILE_TOP = 25
PYSPY_OPTIONS = ("--format", "raw", "--nolineno", "--threads", "--rate", "100")
SECRET = "benchmark-" + "x" * 40
LIBRARY = {"name": "analytics-python", "version": "2.4.0"}
FEATURES = ["Gallery Shared", "Invoice Sent", "Contract Signed", "Photos Uploaded"]


def log(message: str) -> None:
    print(f"[hub bench] {message}", file=sys.stderr, flush=True)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- databases -----------------------------------------------------------------------------

ROLES = ("backlog", "steady", "latency")


@dataclass
class Databases:
    """One fresh database per run (SQLite files, or databases on a PostgreSQL server)."""

    kind: str
    urls: dict[str, str]
    admin: Engine | None = None
    names: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, base_url: str | None, tmp: Path) -> Databases:
        if base_url is None:
            for role in ROLES:
                (tmp / role).mkdir(parents=True, exist_ok=True)
            return cls("sqlite", {r: f"sqlite:///{tmp / r / 'hub.db'}" for r in ROLES})
        base = make_url(Settings(database_url=base_url).database_url)
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        names = {r: f"bench_hub_{os.getpid()}_{r}" for r in ROLES}
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls = {
            r: base.set(database=n).render_as_string(hide_password=False) for r, n in names.items()
        }
        return cls("postgresql", urls, admin, list(names.values()))

    def drop(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()

    def engine_version(self) -> str:
        if self.kind == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        engine = make_engine(next(iter(self.urls.values())))
        with engine.connect() as conn:
            version = str(conn.scalar(text("SHOW server_version")))
        engine.dispose()
        return f"PostgreSQL {version}"


def settings_for(url: str, data_dir: Path) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True)
    return Settings(
        env="test",
        database_url=url,
        data_dir=data_dir,
        secret_key="x" * 40,
        allow_private_destinations=True,
        worker_poll_seconds=0.05,
        log_level="WARNING",
    )


# --- the webhook receiver (its own process) ------------------------------------------------


class _Receiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive: parse Content-Length, answer 200 `ok`. `GET /stats` answers the
    counts and the lag (arrival - the event's `timestamp`) as JSON."""

    def __init__(self, state: _ReceiverState) -> None:
        self.state = state
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            hook_id = b""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"webhook-id":
                    hook_id = value.strip()
            total = end + 4 + length
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            del self.buffer[:total]
            assert self.transport is not None
            if head.startswith(b"GET /stats"):
                answer = orjson.dumps(self.state.stats())
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(answer)).encode()
                    + b"\r\n\r\n"
                    + answer
                )
                continue
            self.state.received(hook_id, body)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
            )


class _ReceiverState:
    def __init__(self, count: Any) -> None:
        self.count = count  # shared with the parent, which polls it
        self.ids: set[bytes] = set()
        self.lags_ms: list[float] = []
        self.first: float | None = None
        self.last: float | None = None

    def received(self, hook_id: bytes, body: bytes) -> None:
        now = time.time()
        self.first = self.first or now
        self.last = now
        self.ids.add(hook_id)
        start = body.find(b'"timestamp":"')
        if start >= 0:
            start += 13
            occurred = datetime.fromisoformat(body[start : body.find(b'"', start)].decode())
            self.lags_ms.append((now - occurred.timestamp()) * 1000)
        self.count.value += 1

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.count.value,
            "distinct": len(self.ids),
            "first": self.first,
            "last": self.last,
            "lag_ms": percentiles(self.lags_ms),
        }


def _receiver_main(port: int, count: Any, ready: Any) -> None:
    async def main() -> None:
        state = _ReceiverState(count)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Receiver(state), "127.0.0.1", port, backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@dataclass
class Receiver:
    process: multiprocessing.process.BaseProcess
    port: int
    count: Any

    @classmethod
    def start(cls) -> Receiver:
        ctx = multiprocessing.get_context("spawn")
        port = free_port()
        count = ctx.RawValue("q", 0)
        ready = ctx.Event()
        process = ctx.Process(target=_receiver_main, args=(port, count, ready), daemon=True)
        process.start()
        if not ready.wait(30):
            process.kill()
            raise SystemExit("the webhook receiver did not start")
        return cls(process, port, count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/stats", timeout=10).json())

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)


# --- throughput ----------------------------------------------------------------------------


def prepare(url: str, receiver_url: str) -> None:
    """Migrate a fresh database and register the receiver as the one webhook endpoint."""
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        webhooks_service.create_endpoint(
            session,
            EndpointCreate(url=receiver_url, description="hub benchmark receiver"),
            actor=Actor.system("benchmark"),
            now=datetime.now(UTC),
            allow_private=True,
        )
    engine.dispose()


def make_events(accounts: list[uuid.UUID], n: int, seed: int) -> list[tuple[DomainEvent, Any]]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    events: list[tuple[DomainEvent, Any]] = []
    for _ in range(n):
        account = rng.choice(accounts)
        first = now - timedelta(seconds=rng.uniform(60, 3600))
        event = EventIngested(
            account_id=account, events=rng.randint(1, 50), first_at=first, last_at=now
        )
        events.append((event, account))
    return events


def publish(url: str, events: list[tuple[DomainEvent, Any]], per_transaction: int) -> float:
    """Publish in transactions of `per_transaction` events; returns the seconds taken."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    for start in range(0, len(events), per_transaction):
        with sessions() as session, session.begin():
            hub_service.publish_many(
                session, events[start : start + per_transaction], now=datetime.now(UTC)
            )
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def _steady_publisher(
    url: str, accounts: list[str], n: int, rate: float, per_transaction: int, seed: int, out: Any
) -> None:
    """A separate process publishing `n` events at `rate` per second (wall clock)."""
    events = make_events([uuid.UUID(a) for a in accounts], n, seed)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    interval = per_transaction / rate
    behind = 0
    started = time.time()
    for i, start in enumerate(range(0, n, per_transaction)):
        due = started + i * interval
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        else:
            behind += 1
        with sessions() as session, session.begin():
            hub_service.publish_many(
                session, events[start : start + per_transaction], now=datetime.now(UTC)
            )
    out.put({"started": started, "finished": time.time(), "late_transactions": behind})
    engine.dispose()


@dataclass
class Phases:
    """Wall time of the dispatch loop's parts, measured by wrapping the worker's methods.

    `sender_http_and_signing` is a sender round less its claim and record transactions: the
    destination check, bodies, signatures and the HTTP requests themselves."""

    fan_out: float = 0.0
    dispatch_once: float = 0.0
    sender_claim: float = 0.0
    sender_record: float = 0.0
    sender_round: float = 0.0
    rounds_with_sends: int = 0

    def report(self, seconds: float) -> dict[str, Any]:
        http = self.sender_round - self.sender_claim - self.sender_record
        parts = {
            "dispatch_once_fan_out": self.fan_out,
            "dispatch_once_other": self.dispatch_once - self.fan_out,
            "sender_claim": self.sender_claim,
            "sender_http_and_signing": http,
            "sender_record": self.sender_record,
        }
        parts["other"] = seconds - self.dispatch_once - self.sender_round
        return {
            "seconds": {k: round(v, 2) for k, v in parts.items()},
            "share": {k: round(v / seconds, 3) for k, v in parts.items()},
            "sender_rounds_with_sends": self.rounds_with_sends,
        }


def instrument(worker: Any) -> Phases:
    phases = Phases()

    def timed(owner: Any, name: str, slot: str) -> None:
        original = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(phases, slot, getattr(phases, slot) + time.perf_counter() - started)

        setattr(owner, name, wrapper)  # an instance attribute: the worker calls self.<name>

    timed(worker.dispatcher, "_fan_out", "fan_out")
    timed(worker.dispatcher, "dispatch_once", "dispatch_once")
    timed(worker.sender, "_claim", "sender_claim")
    timed(worker.sender, "_record", "sender_record")
    run_once = worker.sender.run_once

    async def round_(client: aiohttp.ClientSession) -> int:
        started = time.perf_counter()
        try:
            sent = int(await run_once(client))
        finally:
            phases.sender_round += time.perf_counter() - started
        phases.rounds_with_sends += 1 if sent else 0
        return sent

    worker.sender.run_once = round_
    return phases


def count_delivered(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        delivered = conn.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == WebhookStatus.delivered.value)
        )
    engine.dispose()
    return int(delivered or 0)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


class Profiler:
    """cProfile of the dispatch thread, or py-spy sampling the process (the dispatch thread's
    samples are kept: the others are this script's polling and idle pools)."""

    def __init__(self, mode: str | None, tmp: Path) -> None:
        self.mode = mode
        self.tmp = tmp
        self.thread: int | None = None
        self.profile = cProfile.Profile() if mode == "cprofile" else None
        self.sampler: subprocess.Popen[bytes] | None = None
        self.raw = tmp / "pyspy.raw"

    def wrap_worker(self, worker: Any) -> None:
        if self.profile is None:
            return
        profile, original = self.profile, worker._run_loop

        def run_loop() -> None:
            profile.enable()
            try:
                original()
            finally:
                profile.disable()

        worker._run_loop = run_loop  # start_dispatch runs self._run_loop in the thread

    def start(self) -> None:
        if self.mode != "py-spy":
            return
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if exe is None:
            raise SystemExit("py-spy is not installed (pip install py-spy), or use --profile")
        log_path = self.tmp / "pyspy.log"
        with log_path.open("wb") as out:
            self.sampler = subprocess.Popen(
                [exe, "record", "-p", str(os.getpid()), "-o", str(self.raw), *PYSPY_OPTIONS],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if not wait_for(lambda: "Sampling" in log_path.read_text(errors="replace"), 10):
            raise SystemExit(f"py-spy did not start:\n{log_path.read_text()}")

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.send_signal(signal.SIGINT)
            self.sampler.wait(60)

    def print_top(self) -> None:
        out = sys.stderr
        if self.profile is not None:
            for order in ("cumulative", "tottime"):
                print(f"\n== worker dispatch thread (cProfile) by {order} ==", file=out)
                stats = pstats.Stats(self.profile, stream=out)
                stats.sort_stats(order).print_stats(PROFILE_TOP)
        if self.mode == "py-spy" and self.raw.exists():
            own: Counter[str] = Counter()
            cumulative: Counter[str] = Counter()
            ours: Counter[str] = Counter()
            total = 0
            thread = f"thread ({self.thread})" if self.thread is not None else ""
            for line in self.raw.read_text().splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack or not stack.startswith(thread):
                    continue
                count, frames = int(count_text), stack.split(";")[1:]
                total += count
                own[frames[-1]] += count
                for frame in set(frames):
                    cumulative[frame] += count
                tenure = [f for f in frames if " (tenure/" in f]
                ours[tenure[-1] if tenure else "(outside tenure: event loop)"] += count
            print(f"\n== dispatch thread, backlog drain (py-spy, {total} samples) ==", file=out)
            sections = (
                ("cumulative", cumulative),
                ("own", own),
                ("innermost tenure function (self + libraries it calls)", ours),
            )
            for title, counter in sections:
                print(f"\n-- top {PROFILE_TOP} by {title} --", file=out)
                for frame, count in counter.most_common(PROFILE_TOP):
                    print(f"{count:7d} {100 * count / max(total, 1):5.1f}%  {frame}", file=out)


def tune(worker: Any, concurrency: int | None) -> None:
    """`--sender-concurrency`: the sender's in-flight request limit (its default is 64)."""
    if concurrency is not None:
        worker.sender.concurrency = concurrency


def run_worker_until(
    settings: Settings,
    url: str,
    receiver: Receiver,
    n: int,
    timeout: float,
    profiler: Profiler,
    concurrency: int | None,
) -> tuple[Any, Phases, float, float, float, bool]:
    """Start one worker, wait for the receiver to count `n`; returns (worker, phases,
    seconds to n received, seconds to n recorded, cpu seconds, complete)."""
    from tenure.worker.runtime import Worker

    engine = make_engine(url)
    worker = Worker(settings, engine=engine, periodic=False)
    tune(worker, concurrency)
    phases = instrument(worker)
    profiler.wrap_worker(worker)
    profiler.start()
    cpu = time.process_time()
    started = time.perf_counter()
    worker.start()
    profiler.thread = worker._thread.native_id if worker._thread is not None else None
    complete = wait_for(lambda: receiver.count.value >= n, timeout)
    received = time.perf_counter() - started
    wait_for(lambda: worker.stats.sent >= n, 30)
    recorded = time.perf_counter() - started
    cpu = time.process_time() - cpu
    profiler.stop()
    worker.stop()
    engine.dispose()
    return worker, phases, received, recorded, cpu, complete


def backlog_run(
    args: argparse.Namespace, url: str, tmp: Path, accounts: list[uuid.UUID], profiler: Profiler
) -> dict[str, Any]:
    receiver = Receiver.start()
    try:
        prepare(url, receiver.url)
        events = make_events(accounts, args.events, args.seed)
        published = publish(url, events, args.publish_batch)
        log(f"backlog: {args.events} events published in {published:.1f} s; worker starts")
        timeout = max(300.0, args.events / 50)
        worker, phases, received, recorded, cpu, complete = run_worker_until(
            settings_for(url, tmp / "backlog"),
            url,
            receiver,
            args.events,
            timeout,
            profiler,
            args.sender_concurrency,
        )
        stats = receiver.stats()
    finally:
        receiver.stop()
    delivered = count_delivered(url)
    result = {
        "events": args.events,
        "accounts": args.accounts,
        "publish_seconds": round(published, 2),
        "publish_events_per_s": round(args.events / published),
        "seconds": round(received, 2),
        "events_per_s": round(args.events / received),
        "seconds_until_recorded": round(recorded, 2),
        "received": stats["requests"],
        "distinct_received": stats["distinct"],
        "delivered_in_db": delivered,
        "worker_rounds": worker.stats.rounds,
        "worker_errors": worker.stats.errors,
        "worker_cpu_s": round(cpu, 1),
        # Load-independent: the process's CPU per event, and the rate one free core allows.
        "cpu_ms_per_event": round(1000 * cpu / args.events, 2),
        "events_per_s_per_cpu_core": round(args.events / cpu),
        "sender_concurrency": worker.sender.concurrency,
        "breakdown": phases.report(recorded),
        "meets_target": args.events / received >= TARGET_EVENTS_PER_S,
    }
    if not complete or stats["distinct"] < args.events or delivered < args.events:
        print(json.dumps(result, indent=2))
        raise SystemExit(f"VOID: backlog run incomplete after {received:.0f} s")
    return result


def steady_run(
    args: argparse.Namespace, url: str, tmp: Path, accounts: list[uuid.UUID]
) -> dict[str, Any]:
    from tenure.worker.runtime import Worker

    receiver = Receiver.start()
    try:
        prepare(url, receiver.url)
        engine = make_engine(url)
        worker = Worker(settings_for(url, tmp / "steady"), engine=engine, periodic=False)
        tune(worker, args.sender_concurrency)
        phases = instrument(worker)
        worker.start()
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        publisher = ctx.Process(
            target=_steady_publisher,
            args=(
                url,
                [str(a) for a in accounts],
                args.events,
                args.steady_rate,
                args.steady_batch,
                args.seed + 1,
                out,
            ),
        )
        started = time.perf_counter()
        publisher.start()
        offered_seconds = args.events / args.steady_rate
        complete = wait_for(
            lambda: receiver.count.value >= args.events, max(300.0, offered_seconds * 10)
        )
        seconds = time.perf_counter() - started
        wait_for(lambda: worker.stats.sent >= args.events, 30)
        pub = out.get(timeout=60)
        publisher.join(30)
        worker.stop()
        engine.dispose()
        stats = receiver.stats()
    finally:
        receiver.stop()
    delivered = count_delivered(url)
    publish_seconds = pub["finished"] - pub["started"]
    delivery_seconds = stats["last"] - pub["started"]
    result = {
        "events": args.events,
        "offered_events_per_s": args.steady_rate,
        "events_per_transaction": args.steady_batch,
        "sender_concurrency": worker.sender.concurrency,
        "published_events_per_s": round(args.events / publish_seconds),
        "late_publish_transactions": pub["late_transactions"],
        "delivered_events_per_s": round(args.events / delivery_seconds),
        "drain_after_last_publish_s": round(stats["last"] - pub["finished"], 2),
        "lag_ms": stats["lag_ms"],
        "received": stats["requests"],
        "distinct_received": stats["distinct"],
        "delivered_in_db": delivered,
        "worker_rounds": worker.stats.rounds,
        "worker_errors": worker.stats.errors,
        "breakdown": phases.report(seconds),
        # Kept up: delivered as fast as offered, the backlog never growing past ~1 s.
        "keeps_up": delivery_seconds <= publish_seconds + 1.0,
    }
    if not complete or stats["distinct"] < args.events or delivered < args.events:
        print(json.dumps(result, indent=2))
        raise SystemExit(f"VOID: steady run incomplete after {seconds:.0f} s")
    return result


# --- latency -------------------------------------------------------------------------------


def serve(port: int) -> None:
    """The server process: the app without a worker, settings from TENURE_* variables."""
    import uvicorn

    from tenure.app import create_app
    from tenure.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings, with_worker=False),
        host="127.0.0.1",
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @classmethod
    def start(cls, url: str, tmp: Path) -> Server:
        port = free_port()
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "TENURE_DATABASE_URL": url,
            "TENURE_INGEST_RATE_LIMIT": "1000000/second",
            "TENURE_SECRET_KEY": SECRET,
            "TENURE_DATA_DIR": str(tmp),
            "TENURE_LOG_LEVEL": "WARNING",
            "TENURE_ENV": "development",
        }
        log_path = tmp / "server.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = cls(process, f"http://127.0.0.1:{port}", log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"server exited at start:\n{server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                    return server
            time.sleep(0.1)
        server.stop()
        raise SystemExit(f"server did not answer /healthz in 60 s:\n{server.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class LiveClient(threading.Thread):
    """Reads `/api/v1/live` and notes when each account's first `event.ingested` arrives."""

    def __init__(self, base_url: str, key: str) -> None:
        super().__init__(name="sse-client", daemon=True)
        self.base_url = base_url
        self.key = key
        self.arrivals: dict[str, float] = {}
        self.changed = threading.Condition()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.stopping = False
        self._response: httpx.Response | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        timeout = httpx.Timeout(10, read=None)
        try:
            with (
                httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout) as http,
                http.stream("GET", "/api/v1/live", params={"types": "event.ingested"}) as response,
            ):
                self._response = response
                response.raise_for_status()
                kind = None
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        at = time.perf_counter()
                        if kind == "ready":
                            self.ready.set()
                        elif kind == "event.ingested":
                            account = orjson.loads(line[5:])["account_id"]
                            with self.changed:
                                self.arrivals.setdefault(account, at)
                                self.changed.notify_all()
                    elif not line:
                        kind = None
        except BaseException as exc:
            if not self.stopping:
                self.error = exc
        finally:
            self.ready.set()

    def wait_for(self, account: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: account in self.arrivals, timeout)
            return self.arrivals.get(account)

    def stop(self) -> None:
        self.stopping = True
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        self.join(5)


def _basic(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def latency_run(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        key = auth_service.create_api_key(
            session,
            name="hub benchmark",
            scopes=["read", "ingest"],
            actor=Actor.system("benchmark"),
            now=datetime.now(UTC),
        ).key
    warmup = 10
    externals = [f"acc_{i:04d}" for i in range(args.batches + warmup)]
    now = datetime.now(UTC)
    setup = [
        {
            "type": "group",
            "messageId": f"setup-{ext}",
            "userId": f"{ext}_user",
            "groupId": ext,
            "traits": {"name": f"Studio {ext}", "plan": "professional", "mrr": 79},
            "timestamp": iso(now - timedelta(days=30)),
        }
        for ext in externals
    ]

    def batch_for(ext: str) -> bytes:
        return orjson.dumps(
            {
                "batch": [
                    {
                        "type": "track",
                        "event": FEATURES[k % len(FEATURES)],
                        "userId": f"{ext}_user",
                        "properties": {"items": k + 1},
                        "context": {"groupId": ext, "library": LIBRARY},
                        "messageId": f"{ext}-{k}-{uuid.uuid4()}",
                        "timestamp": iso(now - timedelta(seconds=k)),
                    }
                    for k in range(args.batch_events)
                ],
                "sentAt": iso(now),
            }
        )

    bodies = {ext: batch_for(ext) for ext in externals}
    server = Server.start(url, tmp / "latency")
    client: LiveClient | None = None
    try:
        with httpx.Client(base_url=server.base_url, headers=_basic(key), timeout=30) as http:
            for start in range(0, len(setup), 500):
                response = http.post(
                    "/v1/batch", content=orjson.dumps({"batch": setup[start : start + 500]})
                )
                if response.status_code != 200:
                    raise SystemExit(f"setup batch failed: {response.status_code} {response.text}")
            with engine.connect() as conn:
                ids = {
                    ext: str(account_id)
                    for ext, account_id in conn.execute(select(Account.external_id, Account.id))
                }
            client = LiveClient(server.base_url, key)
            client.start()
            if not client.ready.wait(30) or client.error is not None:
                raise SystemExit(f"the SSE client did not connect: {client.error!r}")
            latencies: list[float] = []
            responses: list[float] = []
            missing: list[str] = []
            log(f"latency: {args.batches} batches of {args.batch_events} events, one at a time")
            for i, ext in enumerate(externals):
                sent = time.perf_counter()
                response = http.post("/v1/batch", content=bodies[ext])
                answered = time.perf_counter()
                if response.status_code != 200:
                    raise SystemExit(f"ingest failed: {response.status_code} {response.text}")
                arrived = client.wait_for(ids[ext], 5.0)
                if i >= warmup:
                    responses.append((answered - sent) * 1000)
                    if arrived is None:
                        missing.append(ext)
                    else:
                        latencies.append((arrived - sent) * 1000)
                time.sleep(args.pause)
    finally:
        if client is not None:
            client.stop()
        server.stop()
        engine.dispose()
    lat = percentiles(latencies)
    result = {
        "batches": args.batches,
        "events_per_batch": args.batch_events,
        "warmup_batches_excluded": warmup,
        "pause_ms": round(args.pause * 1000),
        "sse_latency_ms": lat,
        "post_response_ms": percentiles(responses),
        "missing": len(missing),
        "meets_target": lat["p99"] is not None and lat["p99"] < TARGET_P99_MS and not missing,
    }
    if missing:
        print(json.dumps(result, indent=2))
        raise SystemExit(f"VOID: {len(missing)} SSE event(s) never arrived (first: {missing[0]})")
    return result


# --- main ----------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    dbs = Databases.create(args.database_url, tmp)
    profiler = Profiler(args.profile, tmp)
    result: dict[str, Any] = {
        "benchmark": "hub",
        "database": dbs.kind,
        "engine": dbs.engine_version(),
        "targets": {
            "publish_to_webhook_events_per_s": TARGET_EVENTS_PER_S,
            "ingest_to_sse_p99_ms": TARGET_P99_MS,
        },
    }
    load_before = os.getloadavg()
    rng = random.Random(args.seed)
    accounts = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(args.accounts)]
    try:
        if args.only in (None, "throughput"):
            throughput: dict[str, Any] = {
                "backlog": backlog_run(args, dbs.urls["backlog"], tmp, accounts, profiler)
            }
            log(f"backlog: {throughput['backlog']['events_per_s']:,} events/s")
            if args.steady_rate > 0:
                throughput["steady"] = steady_run(args, dbs.urls["steady"], tmp, accounts)
                log(f"steady: {throughput['steady']['delivered_events_per_s']:,} events/s")
            result["throughput"] = throughput
        if args.only in (None, "latency"):
            result["latency"] = latency_run(args, dbs.urls["latency"], tmp)
            log(f"latency: p99 {result['latency']['sse_latency_ms']['p99']} ms")
    finally:
        dbs.drop()
    profiler.print_top()
    result.update(
        profiled=args.profile,
        # Other processes on the machine skew every figure: the 1-minute load, before and after.
        load_average=[round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        python=platform.python_version(),
        machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per throughput run")
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument(
        "--publish-batch", type=int, default=1000, help="events per transaction (backlog)"
    )
    parser.add_argument(
        "--steady-rate", type=float, default=2000, help="offered events/s (0: no steady run)"
    )
    parser.add_argument(
        "--steady-batch", type=int, default=20, help="events per transaction (steady)"
    )
    parser.add_argument(
        "--sender-concurrency",
        type=int,
        default=None,
        help="override the webhook sender's in-flight limit (default: the sender's own, 64)",
    )
    parser.add_argument("--batches", type=int, default=300, help="ingest batches (latency)")
    parser.add_argument("--batch-events", type=int, default=5, help="events per ingest batch")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between batches")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", choices=["throughput", "latency"], default=None)
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"PostgreSQL server to create the fresh databases on (e.g. {PG_EXAMPLE}); "
        "default: SQLite files in a temporary directory",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="cprofile",
        choices=["cprofile", "py-spy"],
        default=None,
        help="profile the worker during the backlog drain; top functions to stderr",
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.database_url and not args.database_url.startswith(("postgres", "postgresql")):
        parser.error("--database-url is for PostgreSQL; SQLite is the default")
    if min(args.events, args.accounts, args.publish_batch, args.steady_batch) < 1:
        parser.error("--events, --accounts, --publish-batch and --steady-batch must be positive")
    if min(args.batches, args.batch_events) < 1:
        parser.error("--batches and --batch-events must be positive")
    tmp = Path(tempfile.mkdtemp(prefix="tenure-bench-hub-"))
    try:
        print(json.dumps(run(args, tmp), indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
