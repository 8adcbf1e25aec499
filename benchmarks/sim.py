"""How fast the simulator generates a business, and how much memory it needs.

Prints one JSON object. By default the bundles are generated and consumed (events stay in
their columnar block); `--records` also turns every event into an `EventRecord`, as a
row-by-row consumer would; `--files` writes the import files to a temporary directory.

    .venv/bin/python benchmarks/sim.py [--accounts 2000] [--months 18] [--seed 7]
                                       [--records | --files | --load [--database-url URL]]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tenure.db import make_engine, upgrade
from tenure.sim import SimConfig, generate
from tenure.sim.files import write_files
from tenure.sim.loader import load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=7)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--records", action="store_true", help="materialise every EventRecord")
    mode.add_argument("--files", action="store_true", help="write the files to a temp dir")
    mode.add_argument("--load", action="store_true", help="bulk-load into a fresh database")
    parser.add_argument(
        "--database-url", default=None, help="with --load: an empty database (default: temp SQLite)"
    )
    args = parser.parse_args()
    try:
        config = SimConfig(accounts=args.accounts, months=args.months, seed=args.seed)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")

    counts = {"contacts": 0, "events": 0, "subscriptions": 0, "support": 0, "surveys": 0}
    churned = 0
    files_mb = None
    started = time.perf_counter()
    load_stats = None
    db_mb = None
    if args.load:
        directory = tempfile.mkdtemp(prefix="tenure-load-")
        url = args.database_url or f"sqlite:///{directory}/sim.db"
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        load_stats = load(engine, config, now=config.end_at, show_progress=sys.stderr.isatty())
        counts = {
            "contacts": load_stats.contacts,
            "events": load_stats.events,
            "subscriptions": load_stats.subscription_changes,
            "support": load_stats.support_interactions,
            "surveys": load_stats.survey_responses,
        }
        churned = load_stats.churned
        if url.startswith("sqlite"):
            db_mb = round(sum(p.stat().st_size for p in Path(directory).iterdir()) / 2**20, 1)
            shutil.rmtree(directory)
        engine.dispose()
    elif args.files:
        with tempfile.TemporaryDirectory(prefix="tenure-sim-") as directory:
            summary = write_files(config, directory)
            files_mb = round(sum(p.stat().st_size for p in Path(directory).iterdir()) / 2**20, 1)
        counts = {key: getattr(summary, key) for key in counts}
    else:
        for bundle in generate(config):
            counts["contacts"] += len(bundle.contacts)
            counts["subscriptions"] += len(bundle.subscriptions)
            counts["support"] += len(bundle.support)
            counts["surveys"] += len(bundle.surveys)
            churned += bundle.account.status == "churned"
            if args.records:
                counts["events"] += sum(1 for _ in bundle.events)
            else:
                counts["events"] += len(bundle.events)
    seconds = time.perf_counter() - started

    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss / 2**20 if sys.platform == "darwin" else rss / 2**10
    result = {
        "benchmark": "sim",
        "mode": "load"
        if args.load
        else "files"
        if args.files
        else ("records" if args.records else "iterate"),
        "accounts": config.accounts,
        "months": config.months,
        "seed": config.seed,
        **counts,
        "churned_at_end": churned if not args.files else None,
        "seconds": round(seconds, 2),
        "accounts_per_s": round(config.accounts / seconds, 1),
        "events_per_s": round(counts["events"] / seconds),
        "peak_rss_mb": round(rss_mb, 1),
        "files_mb": files_mb,
        "usage_rows": load_stats.usage_rows if load_stats else None,
        "database": (args.database_url or "sqlite").split(":")[0] if args.load else None,
        "database_mb": db_mb,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
