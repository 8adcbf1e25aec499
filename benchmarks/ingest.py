"""Events per second through the tracking API (`POST /v1/batch`), end to end.

A real uvicorn server (one worker, in its own process, started the way `tenure serve` starts
it) on a fresh migrated database; N client threads post pre-serialised Segment batches of
track/page calls for a few hundred accounts (pre-created by `group` and `identify` calls).
The floor is the same number of event rows inserted into a second fresh database with a plain
DB-API executemany, 500 rows a transaction: the cost of only storing them. Prints one JSON
object; the run is void (exit 1) if a request fails or the events table is not exactly what
was sent. `--profile` samples the server during the timed run with py-spy (`wall`: every busy
thread, database waits included; `gil`: Python only), or with cProfile when py-spy is not
installed, and prints the top functions to stderr.

    .venv/bin/python benchmarks/ingest.py [--events 200000] [--clients 4] [--batch 500]
        [--accounts 300] [--spread-days 30] [--profile [wall|gil]]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import json
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, Table, create_engine, func, insert, make_url, select, text

import tenure.models  # noqa: F401  (every mapper, for the ORM calls below)
from tenure.accounts.models import Account, Contact
from tenure.auth import service as auth_service
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.ingest.models import Event
from tenure.kit.actor import Actor

TARGET_EVENTS_PER_S_SQLITE = 20_000
TARGET_RATIO_TO_FLOOR = 0.30
USERS_PER_ACCOUNT = 5
FEATURES = [
    "Gallery Created",
    "Gallery Shared",
    "Photos Uploaded",
    "Client Proofing Opened",
    "Invoice Sent",
    "Invoice Paid",
    "Contract Signed",
    "Booking Confirmed",
    "Calendar Synced",
    "Questionnaire Sent",
    "Workflow Automated",
    "Email Template Edited",
    "Payment Plan Created",
    "Lead Captured",
    "Report Exported",
]
PAGES = ["/dashboard", "/galleries", "/clients", "/invoices", "/calendar", "/settings"]
CATEGORIES = ["photographer", "venue", "florist", "planner", "caterer", "dj_band"]
TIMEZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    None,
]
LIBRARY = {"name": "analytics-python", "version": "2.4.0"}
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROFILE_TOP = 25
SAMPLER_OPTIONS = ("--format", "raw", "--nolineno", "--rate", "100")


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def log(message: str) -> None:
    print(f"[ingest bench] {message}", file=sys.stderr, flush=True)


# --- databases -----------------------------------------------------------------------------


@dataclass
class Databases:
    """The fresh databases of one run (the served one and the floor's) and their cleanup."""

    kind: str
    served: str
    floor: str
    admin: Engine | None = None
    names: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, base_url: str | None, tmp: Path) -> Databases:
        if base_url is None:
            return cls("sqlite", f"sqlite:///{tmp / 'ingest.db'}", f"sqlite:///{tmp / 'floor.db'}")
        base = make_url(Settings(database_url=base_url).database_url)
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        names = [f"bench_ingest_{os.getpid()}", f"bench_ingest_{os.getpid()}_floor"]
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        served, floor = (base.set(database=n).render_as_string(hide_password=False) for n in names)
        return cls("postgresql", served, floor, admin, names)

    def drop(self) -> None:
        if self.admin is None:
            return
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def migrate_with_key(url: str) -> str:
    """Migrate a fresh database and create an API key with the `ingest` scope."""
    engine = make_engine(url)
    upgrade(engine)
    with make_session_factory(engine)() as session, session.begin():
        key = auth_service.create_api_key(
            session,
            name="ingest benchmark",
            scopes=["ingest"],
            actor=Actor.system("benchmark"),
            now=datetime.now(UTC),
        ).key
    engine.dispose()
    return key


# --- workload ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One timed event as sent, for the floor's rows."""

    message_id: str
    user_id: str
    group_id: str
    type: str
    name: str
    properties: dict[str, Any]
    context: dict[str, Any]
    timestamp: datetime


@dataclass
class Workload:
    setup: list[bytes]  # group and identify calls creating the accounts and their users
    warmup: bytes
    timed: list[bytes]
    events: list[Sent]
    sent_at: datetime
    setup_messages: int
    warmup_messages: int


def _body(batch: list[dict[str, Any]], sent_at: datetime) -> bytes:
    return json.dumps({"batch": batch, "sentAt": iso(sent_at)}).encode()


def build_workload(
    accounts: int, events: int, batch: int, seed: int, spread_days: float = 30
) -> Workload:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    account_ids = [f"acc_{i:05d}" for i in range(accounts)]
    users = {a: [f"{a}_user_{k}" for k in range(USERS_PER_ACCOUNT)] for a in account_ids}
    setup: list[dict[str, Any]] = []
    for i, account in enumerate(account_ids):
        zone = rng.choice(TIMEZONES)
        traits: dict[str, Any] = {
            "name": f"Studio {i}",
            "plan": rng.choice(["starter", "professional", "scale"]),
            "mrr": rng.choice([29, 79, 199]),
            "category": rng.choice(CATEGORIES),
            "country": rng.choice(["US", "GB", "DE", "AU"]),
        }
        if zone:
            traits["timezone"] = zone
        setup.append(
            {
                "type": "group",
                "messageId": f"setup-group-{i}",
                "userId": users[account][0],
                "groupId": account,
                "traits": traits,
                "timestamp": iso(now - timedelta(days=60)),
            }
        )
        for k, user in enumerate(users[account]):
            setup.append(
                {
                    "type": "identify",
                    "messageId": f"setup-identify-{i}-{k}",
                    "userId": user,
                    "traits": {"email": f"{user}@example.com", "name": f"User {k} of {i}"},
                    "context": {"groupId": account, "library": LIBRARY},
                    "timestamp": iso(now - timedelta(days=60)),
                }
            )

    def event(prefix: str, i: int) -> tuple[dict[str, Any], Sent]:
        account = rng.choice(account_ids)
        user = rng.choice(users[account])
        at = now - timedelta(seconds=rng.uniform(0, spread_days * 86400))
        context = {"groupId": account, "library": LIBRARY}
        message_id = f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        if rng.random() < 0.1:
            path = rng.choice(PAGES)
            properties: dict[str, Any] = {"path": path, "title": path.strip("/").title()}
            msg: dict[str, Any] = {"type": "page", "name": path, "messageId": message_id}
            kind, name = "page", path
        else:
            name = rng.choice(FEATURES)
            properties = {
                "source": rng.choice(["web", "ios", "android"]),
                "duration_ms": rng.randint(50, 5000),
                "items": rng.randint(1, 40),
            }
            msg = {"type": "track", "event": name, "messageId": message_id}
            kind = "track"
        msg.update(userId=user, properties=properties, context=context, timestamp=iso(at))
        return msg, Sent(message_id, user, account, kind, name, properties, context, at)

    warmup = [event("warm", i)[0] for i in range(batch)]
    timed: list[bytes] = []
    sent: list[Sent] = []
    for start in range(0, events, batch):
        pairs = [event("ev", i) for i in range(start, min(start + batch, events))]
        timed.append(_body([m for m, _ in pairs], now))
        sent.extend(s for _, s in pairs)
    return Workload(
        setup=[_body(setup[s : s + batch], now) for s in range(0, len(setup), batch)],
        warmup=_body(warmup, now),
        timed=timed,
        events=sent,
        sent_at=now,
        setup_messages=len(setup),
        warmup_messages=len(warmup),
    )


# --- server --------------------------------------------------------------------------------


def serve(port: int, cprofile_out: str | None) -> None:
    """The server process: what `tenure serve` runs, settings from TENURE_* variables."""
    import uvicorn

    from tenure.app import create_app
    from tenure.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    profiles: list[cProfile.Profile] = []
    if cprofile_out:
        profiles = _profile_worker_threads()
        main = cProfile.Profile()
        profiles.append(main)
        main.enable()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    if cprofile_out:
        main.disable()
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(cprofile_out)


def _profile_worker_threads() -> list[cProfile.Profile]:
    """cProfile sees only its own thread: profile the ingest work done in the thread pool."""
    from tenure.ingest import tracking

    profiles: list[cProfile.Profile] = []
    local = threading.local()
    original = tracking._store

    def profiled(*args: Any, **kwargs: Any) -> int:
        profile = getattr(local, "profile", None)
        if profile is None:
            profile = local.profile = cProfile.Profile()
            profiles.append(profile)
        profile.enable()
        try:
            return original(*args, **kwargs)
        finally:
            profile.disable()

    tracking._store = profiled
    return profiles


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    cprofile_out: Path | None

    @classmethod
    def start(cls, url: str, tmp: Path, cprofile_out: Path | None) -> Server:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            **os.environ,
            "TENURE_DATABASE_URL": url,
            "TENURE_INGEST_RATE_LIMIT": "1000000/second",
            "TENURE_SECRET_KEY": "benchmark-" + "x" * 40,
            "TENURE_DATA_DIR": str(tmp),
            "TENURE_LOG_LEVEL": "WARNING",
            "TENURE_ENV": "development",
        }
        command = [sys.executable, __file__, "--serve", str(port)]
        if cprofile_out is not None:
            command += ["--cprofile-out", str(cprofile_out)]
        log_path = tmp / "server.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        server = cls(process, f"http://127.0.0.1:{port}", log_path, cprofile_out)
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
            self.process.send_signal(signal.SIGINT)  # graceful: cProfile stats get written
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- load ----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    seconds: float
    latencies_ms: list[float]
    failures: list[str]


def _headers(key: str) -> dict[str, str]:
    token = base64.b64encode(f"{key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def post_all(base_url: str, key: str, bodies: list[bytes], clients: int) -> LoadResult:
    """Post every body once from `clients` threads; time from the first request sent to the
    last response received. Stops at the first failure."""
    lock = threading.Lock()
    queue = iter(bodies)
    latencies: list[float] = []
    failures: list[str] = []
    finished: list[float] = []
    ready = threading.Barrier(clients + 1)
    go = threading.Event()

    def next_body() -> bytes | None:
        with lock:
            return None if failures else next(queue, None)

    def client() -> None:
        with httpx.Client(base_url=base_url, headers=_headers(key), timeout=300) as http:
            http.get("/healthz")  # connect before the clock starts
            ready.wait()
            go.wait()
            mine: list[float] = []
            last = time.perf_counter()
            while (body := next_body()) is not None:
                sent = time.perf_counter()
                try:
                    response = http.post("/v1/batch", content=body)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    break
                last = time.perf_counter()
                mine.append((last - sent) * 1000)
                if response.status_code != 200:
                    with lock:
                        failures.append(f"{response.status_code}: {response.text[:300]}")
                    break
        with lock:
            latencies.extend(mine)
            finished.append(last)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    return LoadResult(max(finished) - started, latencies, failures)


def cpu_seconds(pid: int) -> tuple[float, float] | None:
    """User and system CPU seconds of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


# --- profiling -----------------------------------------------------------------------------


@dataclass
class Sampler:
    """py-spy attached to the server for the timed run only."""

    process: subprocess.Popen[bytes]
    output: Path
    log_path: Path

    @classmethod
    def attach(cls, pid: int, tmp: Path, executable: str, gil: bool) -> Sampler:
        output, log_path = tmp / "profile.raw", tmp / "py-spy.log"
        with log_path.open("wb") as out:
            process = subprocess.Popen(
                [executable, "record", "-p", str(pid), "-o", str(output), *SAMPLER_OPTIONS]
                + (["--gil"] if gil else []),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while "Sampling" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"py-spy did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        return cls(process, output, log_path)

    def finish(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        if not self.output.exists():
            raise SystemExit(f"py-spy wrote nothing:\n{self.log_path.read_text()}")


def print_pyspy_top(raw: Path, gil: bool) -> None:
    """Top functions of py-spy's collapsed stacks: by cumulative samples, by own samples, and
    by innermost Tenure function (its own time plus the library and driver code it calls)."""
    own: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            cumulative[frame] += count
        ours = [f for f in frames if " (tenure/" in f]
        project[ours[-1] if ours else "(outside tenure: server, event loop, thread pool)"] += count
    out = sys.stderr
    what = "samples of a thread holding the GIL" if gil else "samples of busy threads"
    print(f"\n== server profile during the timed run (py-spy, 100 Hz, {total} {what}) ==", file=out)
    sections = (
        ("cumulative", cumulative),
        ("own (self)", own),
        ("innermost tenure function (self + libraries it calls)", project),
    )
    for title, counter in sections:
        print(f"\n-- top {PROFILE_TOP} by {title} --", file=out)
        for frame, count in counter.most_common(PROFILE_TOP):
            print(f"{count:7d} {100 * count / max(total, 1):5.1f}%  {frame}", file=out)


def print_cprofile_top(path: Path) -> None:
    for order in ("cumulative", "tottime"):
        print(f"\n== server profile (cProfile, whole server life) by {order} ==", file=sys.stderr)
        pstats.Stats(str(path), stream=sys.stderr).sort_stats(order).print_stats(PROFILE_TOP)


# --- floor and checks ----------------------------------------------------------------------


def check_stored(url: str, expected_total: int, expected_timed: int) -> None:
    """The benchmark is void unless every event sent is stored, and attributed."""
    engine = make_engine(url)
    timed = Event.message_id.like("ev-%")
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(Event))
        stored = conn.scalar(select(func.count()).select_from(Event).where(timed))
        orphans = conn.scalar(
            select(func.count()).select_from(Event).where(timed, Event.account_id.is_(None))
        )
    engine.dispose()
    if (total, stored, orphans) != (expected_total, expected_timed, 0):
        raise SystemExit(
            f"VOID: events table holds {total} rows ({stored} timed, {orphans} without an "
            f"account); expected {expected_total} ({expected_timed} timed, 0 without)"
        )


def _copy_people(source_url: str, floor_url: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Copy accounts and contacts into the floor database (the events' foreign keys need
    them); returns the events' source and the ids by external id."""
    source, target = make_engine(source_url), make_engine(floor_url)
    tables: list[Table] = [Account.__table__, Contact.__table__]  # type: ignore[list-item]
    with source.connect() as conn:
        rows = {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}
        event_source = conn.scalar(select(Event.source).limit(1))
    with target.begin() as conn:
        for table in tables:
            conn.execute(insert(table), rows[table.name])
    source.dispose()
    target.dispose()
    accounts = {r["external_id"]: r["id"] for r in rows["accounts"]}
    contacts = {r["external_id"]: r["id"] for r in rows["contacts"]}
    return str(event_source), accounts, contacts


FLOOR_COLUMNS = (
    "source, message_id, account_id, contact_id, user_external_id, anonymous_id, "
    "group_external_id, type, name, properties, context, timestamp, sent_at, received_at, flags"
)


def floor_rate(kind: str, source_url: str, floor_url: str, events: list[Sent], batch: int) -> float:
    """Events per second of a plain executemany into the real `events` table, `batch` rows a
    transaction, values already in the driver's form (what the ORM types would bind)."""
    source, accounts, contacts = _copy_people(source_url, floor_url)
    now = datetime.now(UTC)
    sqlite = kind == "sqlite"

    def ident(value: uuid.UUID) -> Any:
        return value.hex if sqlite else value

    def when(value: datetime) -> Any:
        return value.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else value

    rows = [
        (
            source,
            e.message_id,
            ident(accounts[e.group_id]),
            ident(contacts[e.user_id]),
            e.user_id,
            None,
            e.group_id,
            e.type,
            e.name,
            json.dumps(e.properties),
            json.dumps(e.context),
            when(e.timestamp),
            when(now),
            when(now),
            "[]",
        )
        for e in events
    ]
    chunks = [rows[s : s + batch] for s in range(0, len(rows), batch)]
    ph = "?" if sqlite else "%s"
    sql = f"INSERT INTO events ({FLOOR_COLUMNS}) VALUES ({', '.join([ph] * 15)})"
    if sqlite:
        conn = sqlite3.connect(make_url(floor_url).database or "", isolation_level=None)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for chunk in chunks:
            conn.execute("BEGIN")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
    else:
        dsn = make_url(floor_url).set(drivername="postgresql")
        with psycopg.connect(dsn.render_as_string(hide_password=False)) as pg:
            started = time.perf_counter()
            for chunk in chunks:
                with pg.cursor() as cursor:
                    cursor.executemany(sql, chunk)
                pg.commit()
            seconds = time.perf_counter() - started
            stored = pg.execute("SELECT count(*) FROM events").fetchone()[0]  # type: ignore[index]
    if stored != len(events):
        raise SystemExit(f"floor stored {stored} rows, expected {len(events)}")
    return len(events) / seconds


# --- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    pyspy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    sampler: Sampler | None = None
    dbs = Databases.create(args.database_url, tmp)
    try:
        started = time.perf_counter()
        key = migrate_with_key(dbs.served)
        migrate_with_key(dbs.floor)
        work = build_workload(args.accounts, args.events, args.batch, args.seed, args.spread_days)
        log(f"{dbs.kind}: workload of {args.events} events built; starting the server")
        cprofile_out = tmp / "server.pstats" if args.profile and pyspy is None else None
        with running(Server.start(dbs.served, tmp, cprofile_out)) as server:
            for body in [*work.setup, work.warmup]:
                response = httpx.post(
                    server.base_url + "/v1/batch", content=body, headers=_headers(key), timeout=300
                )
                if response.status_code != 200:
                    raise SystemExit(f"setup batch failed: {response.status_code} {response.text}")
            setup_s = time.perf_counter() - started
            if args.profile and pyspy:
                sampler = Sampler.attach(server.process.pid, tmp, pyspy, args.profile == "gil")
            log(f"setup done in {setup_s:.1f} s; posting {len(work.timed)} batches")
            cpu_before = cpu_seconds(server.process.pid)
            result = post_all(server.base_url, key, work.timed, args.clients)
            cpu_after = cpu_seconds(server.process.pid)
            if sampler is not None:
                sampler.finish()
            if result.failures:
                log(f"server log (tail):\n{server.log_tail()}")
        if result.failures:
            raise SystemExit(
                f"ABORTED: {len(result.failures)} failed request(s); first: {result.failures[0]}"
            )
        total = work.setup_messages + work.warmup_messages + args.events
        check_stored(dbs.served, total, args.events)
        log(f"HTTP run: {args.events / result.seconds:,.0f} events/s; measuring the floor")
        floor = floor_rate(dbs.kind, dbs.served, dbs.floor, work.events, args.batch)
    finally:
        dbs.drop()
    if sampler is not None:
        print_pyspy_top(sampler.output, args.profile == "gil")
    elif cprofile_out is not None:
        print_cprofile_top(cprofile_out)
    rate = args.events / result.seconds
    ratio = rate / floor
    target_rate = TARGET_EVENTS_PER_S_SQLITE if dbs.kind == "sqlite" else None
    return {
        "benchmark": "ingest",
        "database": dbs.kind,
        "clients": args.clients,
        "batch": args.batch,
        "events": args.events,
        "accounts": args.accounts,
        "spread_days": args.spread_days,
        "requests": len(result.latencies_ms),
        "failures": len(result.failures),
        "seconds": round(result.seconds, 2),
        "events_per_s": round(rate),
        "floor_events_per_s": round(floor),
        "ratio_to_floor": round(ratio, 3),
        "target": {"events_per_s": target_rate, "ratio_to_floor": TARGET_RATIO_TO_FLOOR},
        "meets_target": ratio >= TARGET_RATIO_TO_FLOOR
        and (target_rate is None or rate >= target_rate),
        "latency_ms": {
            "p50": percentile(result.latencies_ms, 0.50),
            "p95": percentile(result.latencies_ms, 0.95),
        },
        "server_cpu_s": None
        if cpu_before is None or cpu_after is None
        else {
            "user": round(cpu_after[0] - cpu_before[0], 1),
            "system": round(cpu_after[1] - cpu_before[1], 1),
        },
        "profiled": (f"py-spy {args.profile}" if pyspy else "cProfile") if args.profile else None,
        "setup_seconds": round(setup_s, 1),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--spread-days",
        type=float,
        default=30,
        help="event timestamps spread over this many past days (0: live traffic, all now)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"PostgreSQL server to create the fresh databases on (e.g. {PG_DEFAULT}); "
        "default: SQLite files in a temporary directory",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="wall",
        choices=["wall", "gil"],
        default=None,
        help="profile the server, top functions to stderr: 'wall' (default) samples every "
        "busy thread, waits on the database included; 'gil' only Python running (py-spy)",
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cprofile-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.cprofile_out)
        return
    if args.database_url and not args.database_url.startswith(("postgres", "postgresql")):
        parser.error("--database-url is for PostgreSQL; SQLite is the default")
    if min(args.events, args.clients, args.batch, args.accounts) < 1:
        parser.error("--events, --clients, --batch and --accounts must be positive")
    tmp = Path(tempfile.mkdtemp(prefix="tenure-bench-ingest-"))
    try:
        print(json.dumps(run(args, tmp), indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
