"""How fast `tenure import events` loads a large CSV, and how much memory it needs.

Creates ~2,000 accounts through the accounts service, writes a CSV of N events for them
(time-ordered, as warehouse exports are), then times the function `tenure import events`
runs, in-process. Prints one JSON object. `--reimport` also times importing the same file
again (every row a duplicate); `--profile` prints the top functions (cProfile) to stderr.

    .venv/bin/python benchmarks/csv_import.py [--rows 1000000] [--accounts 2000]
        [--database-url URL] [--reimport] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import platform
import pstats
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tenure.accounts import bulk
from tenure.accounts.schemas import AccountUpsert
from tenure.cli.common import load_settings
from tenure.cli.imports import import_file
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.ingest.csvimport import ImportReport
from tenure.kit.actor import Actor

EVENTS = (
    "login",
    "gallery_upload",
    "gallery_share",
    "invoice_sent",
    "contract_signed",
    "booking_created",
    "message_sent",
    "calendar_sync",
    "questionnaire_sent",
    "payment_received",
    "report_viewed",
    "settings_changed",
)
TIMEZONES = ("America/New_York", "Europe/London", "Australia/Sydney", "Europe/Berlin", None)


def create_accounts(url: str, count: int, now: datetime) -> None:
    engine = make_engine(url)
    rows = [
        AccountUpsert(
            external_id=f"acc_{i:05d}",
            name=f"Account {i}",
            plan="professional",
            mrr_cents=7900,
            timezone=TIMEZONES[i % len(TIMEZONES)],
        )
        for i in range(count)
    ]
    with make_session_factory(engine)() as session, session.begin():
        for start in range(0, count, 2000):
            bulk.upsert_accounts(
                session, rows[start : start + 2000], actor=Actor.cli("benchmark"), now=now
            )
    engine.dispose()


def write_events(path: Path, rows: int, accounts: int, now: datetime, seed: int) -> None:
    """Time-ordered events over 180 days, ~10 users per account, a third with properties."""
    rnd = random.Random(seed)
    start = now - timedelta(days=181)
    step = 180 * 86400 / rows
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["account_id", "user_id", "event", "timestamp", "properties"])
        for i in range(rows):
            account = rnd.randrange(accounts)
            at = start + timedelta(seconds=i * step + rnd.random())
            props = f'{{"count":{rnd.randrange(1, 50)}}}' if rnd.random() < 0.33 else ""
            writer.writerow(
                [
                    f"acc_{account:05d}",
                    f"usr_{account:05d}_{rnd.randrange(10)}",
                    EVENTS[rnd.randrange(len(EVENTS))],
                    at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    props,
                ]
            )


def timed_import(url: str, path: Path, profile: bool) -> tuple[ImportReport, float]:
    settings = load_settings(url)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    report = import_file(settings, "events", path, partial=False, show_progress=False)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue(), file=sys.stderr)
    return report, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: temp SQLite)"
    )
    parser.add_argument("--reimport", action="store_true", help="also time a second import")
    parser.add_argument("--profile", action="store_true", help="cProfile the (first) import")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="tenure-csv-bench-"))
    try:
        url = args.database_url or f"sqlite:///{directory}/bench.db"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        now = datetime.now(UTC)
        create_accounts(url, args.accounts, now)
        path = directory / "events.csv"
        write_events(path, args.rows, args.accounts, now, args.seed)

        report, seconds = timed_import(url, path, args.profile)
        result: dict[str, Any] = {
            "benchmark": "csv_import_events",
            "database": "sqlite" if url.startswith("sqlite") else "postgresql",
            "accounts": args.accounts,
            "rows": report.rows,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "seconds": round(seconds, 2),
            "rows_per_s": round(report.rows / seconds),
            "stored": report.stored,
            "duplicates": report.duplicates,
            "status": report.status,
        }
        if args.reimport:
            again, again_seconds = timed_import(url, path, False)
            result["reimport_seconds"] = round(again_seconds, 2)
            result["reimport_stored"] = again.stored
            result["reimport_duplicates"] = again.duplicates
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        result["python"] = platform.python_version()
        print(json.dumps(result))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
