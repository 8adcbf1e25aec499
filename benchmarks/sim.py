"""How fast the simulator generates a business, and how much memory it needs.

Prints one JSON object. By default the bundles are generated and consumed (events stay in
their columnar block); `--records` also turns every event into an `EventRecord`, as a
row-by-row consumer would; `--files` writes the import files to a temporary directory.

    .venv/bin/python benchmarks/sim.py [--accounts 2000] [--months 18] [--seed 7]
                                       [--records | --files]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from tenure.sim import SimConfig, generate
from tenure.sim.files import write_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--months", type=int, default=18)
    parser.add_argument("--seed", type=int, default=7)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--records", action="store_true", help="materialise every EventRecord")
    mode.add_argument("--files", action="store_true", help="write the files to a temp dir")
    args = parser.parse_args()
    try:
        config = SimConfig(accounts=args.accounts, months=args.months, seed=args.seed)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")

    counts = {"contacts": 0, "events": 0, "subscriptions": 0, "support": 0, "surveys": 0}
    churned = 0
    files_mb = None
    started = time.perf_counter()
    if args.files:
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
        "mode": "files" if args.files else ("records" if args.records else "iterate"),
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
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
