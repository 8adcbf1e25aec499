"""Health scores: validity on the simulator, the portfolio rescore against its floor, one
account through the API.

Validity: a simulated business (`tenure.sim.loader.load`, default 5,000 accounts x 24 months,
seed 7) is scored at monthly snapshots (00:00 UTC on the start's day of each month, from the
third month after the start of data to 60 days before its end) with `service.compute`, storing
nothing; the baseline is learned per snapshot from the history before it (`store=False`).
Label: a `churn` subscription change within 60 days after the snapshot. ROC AUC of
(100 - score), pooled over snapshots and the mean of per-snapshot AUCs, for the default
scorecard and the same scorecard with `seasonal = false`.

Speed: a synthetic portfolio (default 100,000 accounts) written straight through the bulk
services with numpy: 400 days of daily rollups (the last 100 at the simulator's density:
`$events`, `$active_users`, `login`, `$page`, key-feature events; the 300 before `$events` and
`login` only, what the baseline and "vs last year" read), tickets, surveys and subscription
changes. Times `service.rescore` of every account in one committed transaction, twice (the
first learns and stores the baseline), next to the floor: reading the window's rollup rows
into Python (`SELECT account_id, day, metric, count FROM usage_daily WHERE day in the 90
days`, plain DB-API, in primary-key order; the same for `usage_days`, one row per account
and active day, when the schema has it). Then one account: GET
/api/v1/accounts/{id}/health through the ASGI stack (TestClient, API key with the read
scope) and a one-account `service.rescore`.

Prints one JSON object. `--profile first` prints cProfile's top entries of the first full
rescore to stderr (its timing then includes the profiler's overhead); `--profile steady`
profiles a third rescore after the two timed ones. With `--database-url` (a PostgreSQL
server) fresh databases are created on that server and dropped at the end.

    .venv/bin/python benchmarks/health.py [--only validity|speed] [--accounts 5000]
        [--months 24] [--seed 7] [--portfolio 100000] [--days 400] [--requests 200]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--profile first|steady] [--keep DIR]

`--keep DIR` builds the speed portfolio once (11 GB of SQLite for 100,000 accounts, ~9 min)
and keeps it; later runs time a fresh copy of it (the build time reported is the kept one's).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from tenure.accounts import service as accounts_service
from tenure.app import create_app
from tenure.auth import service as auth_service
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.health import service
from tenure.health.scorecard import default_scorecard
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.actor import Actor
from tenure.logging import configure_logging
from tenure.sim import SimConfig
from tenure.sim.catalog import CATEGORIES, CATEGORY_WEIGHTS
from tenure.sim.loader import load
from tenure.support import service as support_service

DAY = timedelta(days=1)
HORIZON = timedelta(days=60)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW_DAYS = 90  # the rollup window the score reads (usage_signals)
FULL_DAYS = 100  # days of full-density usage in the synthetic portfolio
Floats = npt.NDArray[np.float64]


# --- databases ------------------------------------------------------------------------------


@dataclass
class Databases:
    """Fresh databases of one run (temporary SQLite files, or databases on a PostgreSQL
    server) and their cleanup."""

    base: str | None
    tmp: Path
    admin: Engine | None = None
    names: list[str] = field(default_factory=list)

    def new(self, name: str, *, template: str | None = None) -> str:
        if self.base is None:
            return f"sqlite:///{self.tmp / (name + '.db')}"
        url = make_url(Settings(database_url=self.base).database_url)
        if self.admin is None:
            self.admin = create_engine(url, isolation_level="AUTOCOMMIT")
        db = f"bench_health_{name}_{os.getpid()}"
        copy = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"{copy}'))
        self.names.append(db)
        return url.set(database=db).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self.admin is not None:
            with self.admin.connect() as conn:
                for db in self.names:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            self.admin.dispose()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- validity -------------------------------------------------------------------------------


def auc(risk: Floats, label: npt.NDArray[np.bool_]) -> float | None:
    """ROC AUC as the Mann-Whitney statistic, ties given their average rank."""
    n = risk.size
    positives = int(label.sum())
    negatives = n - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(risk, kind="mergesort")
    _, inverse, counts = np.unique(risk[order], return_inverse=True, return_counts=True)
    average = np.bincount(inverse, weights=np.arange(1, n + 1)) / counts
    ranks = np.empty(n)
    ranks[order] = average[inverse]
    return float((ranks[label].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, day.day)


def snapshots(config: SimConfig) -> list[datetime]:
    """00:00 UTC on the start's day of each month, from 3 months after the start of data to
    60 days before its end."""
    out = []
    k = 3
    while True:
        d = _add_months(config.start, k)
        at = datetime(d.year, d.month, d.day, tzinfo=UTC)
        if at + HORIZON > config.end_at:
            return out
        out.append(at)
        k += 1


def validity(args: argparse.Namespace, dbs: Databases) -> dict[str, Any]:
    config = SimConfig(accounts=args.accounts, months=args.months, seed=args.seed)
    url = dbs.new("validity")
    engine = make_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    stats = load(engine, config, now=config.end_at, show_progress=sys.stderr.isatty())
    load_seconds = time.perf_counter() - started

    seasonal = default_scorecard()
    variants = {
        "seasonal": service.Card(seasonal.key, 0, seasonal),
        "non_seasonal": service.Card(
            seasonal.key, 0, seasonal.model_copy(update={"seasonal": False})
        ),
    }
    catalogue = load_catalogue()
    sessions = make_session_factory(engine)
    with sessions() as session:
        churns = [
            (account_id, at)
            for account_id, kind, _, _, at in accounts_service.subscription_changes_between(
                session, since=config.start_at, until=config.end_at + HORIZON
            )
            if kind == "churn"
        ]
    pooled: dict[str, list[Floats]] = {k: [] for k in variants}
    labels: list[npt.NDArray[np.bool_]] = []
    per_snapshot: list[dict[str, Any]] = []
    timings = {"baseline": 0.0, "read": 0.0, "score": 0.0}
    started = time.perf_counter()
    for as_of in snapshots(config):
        churned = {a for a, at in churns if as_of <= at < as_of + HORIZON}
        row: dict[str, Any] = {"as_of": as_of.date().isoformat()}
        # Read-only: nothing is written, and the session is rolled back anyway.
        with sessions() as session:
            clock = time.perf_counter()
            baseline = service.learn_baseline(
                session, as_of=as_of, catalogue=catalogue, store=False
            )
            timings["baseline"] += time.perf_counter() - clock
            label = None
            for name, card in variants.items():
                spent: dict[str, float] = {}
                scored = service.compute(
                    session,
                    as_of=as_of,
                    cards=[card],
                    catalogue=catalogue,
                    baseline=baseline,
                    timings=spent,
                )
                timings["read"] += spent["read"]
                timings["score"] += spent["score"]
                keep = ~np.isnan(scored.score)
                ids = [a for a, k in zip(scored.frame.account_ids, keep.tolist(), strict=True) if k]
                this = np.array([a in churned for a in ids], dtype=bool)
                if label is None:
                    label = this
                    labels.append(label)
                    row["n"] = int(label.size)
                    row["positives"] = int(label.sum())
                    row["unscored"] = int((~keep).sum())
                assert np.array_equal(label, this), "both scorecards score the same accounts"
                risk = 100.0 - scored.score[keep]
                pooled[name].append(risk)
                value = auc(risk, label)
                row[f"auc_{name}"] = None if value is None else round(value, 4)
            session.rollback()
        per_snapshot.append(row)
        print(json.dumps(row), file=sys.stderr)
    scoring_seconds = time.perf_counter() - started
    engine.dispose()

    all_labels = np.concatenate(labels)
    result: dict[str, Any] = {}
    for name in variants:
        risk = np.concatenate(pooled[name])
        values = [r[f"auc_{name}"] for r in per_snapshot if r[f"auc_{name}"] is not None]
        pooled_auc = auc(risk, all_labels)
        result[name] = {
            "auc_pooled": None if pooled_auc is None else round(pooled_auc, 4),
            "auc_mean_per_snapshot": round(float(np.mean(values)), 4) if values else None,
            "auc_min_per_snapshot": round(min(values), 4) if values else None,
            "auc_max_per_snapshot": round(max(values), 4) if values else None,
        }
    return {
        "accounts": config.accounts,
        "months": config.months,
        "seed": config.seed,
        "events": stats.events,
        "usage_rows": stats.usage_rows,
        "load_seconds": round(load_seconds, 1),
        "snapshots": len(per_snapshot),
        "first_snapshot": per_snapshot[0]["as_of"] if per_snapshot else None,
        "last_snapshot": per_snapshot[-1]["as_of"] if per_snapshot else None,
        "examples": int(all_labels.size),
        "positives": int(all_labels.sum()),
        **result,
        "seasonal_minus_non_seasonal": {
            "pooled": _diff(result, "auc_pooled"),
            "mean_per_snapshot": _diff(result, "auc_mean_per_snapshot"),
            "snapshots_seasonal_higher": sum(
                1
                for r in per_snapshot
                if r["auc_seasonal"] is not None
                and r["auc_non_seasonal"] is not None
                and r["auc_seasonal"] > r["auc_non_seasonal"]
            ),
        },
        "scoring_seconds": round(scoring_seconds, 1),
        "scoring_split_seconds": {k: round(v, 1) for k, v in timings.items()},
        "per_snapshot": per_snapshot,
    }


def _diff(result: dict[str, Any], key: str) -> float | None:
    a, b = result["seasonal"][key], result["non_seasonal"][key]
    return None if a is None or b is None else round(a - b, 4)


# --- the synthetic portfolio ----------------------------------------------------------------

COUNTRIES = (  # (country, currency, hemisphere, timezone, share)
    ("US", "USD", "north", "America/New_York", 0.45),
    ("GB", "GBP", "north", "Europe/London", 0.15),
    ("CA", "USD", "north", "America/Toronto", 0.07),
    ("DE", "EUR", "north", "Europe/Berlin", 0.08),
    ("AU", "AUD", "south", "Australia/Sydney", 0.15),
    ("NZ", "NZD", "south", "Pacific/Auckland", 0.05),
    ("ZA", "USD", "south", "Africa/Johannesburg", 0.05),
)
PLANS = (("starter", 2900, 0.45), ("professional", 7900, 0.41), ("scale", 19900, 0.14))
# Wedding-season shape (northern months, index 0 = January); the south is six months out.
SEASON = np.array([0.55, 0.65, 0.8, 0.95, 1.1, 1.2, 1.2, 1.2, 1.15, 1.05, 0.8, 0.6])


def _feature_events() -> tuple[list[str], Floats]:
    names = [e for f in load_catalogue().key_features for e in f.events]
    # A few features are used much more than others (as in the simulator).
    weights = np.linspace(3.0, 0.3, len(names))
    return names, weights / weights.sum()


@dataclass
class Portfolio:
    ids: list[uuid.UUID]
    alive: int  # accounts not churned at NOW
    usage_rows: int = 0
    support: int = 0
    surveys: int = 0
    changes: int = 0


def synthesise(url: str, n: int, days: int, seed: int) -> Portfolio:
    """Write `n` accounts with `days` of usage up to NOW (see the module docstring)."""
    rng = np.random.default_rng(seed)
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    # Sorted ids: rollup rows arrive in primary-key order, as a day's ingestion appends them.
    ids = sorted(uuid.UUID(int=int(x), version=4) for x in _random_128(rng, n))
    country = rng.choice(len(COUNTRIES), n, p=[c[4] for c in COUNTRIES])
    plan = rng.choice(len(PLANS), n, p=[p[2] for p in PLANS])
    category = rng.choice(len(CATEGORIES), n, p=np.array(CATEGORY_WEIGHTS) / sum(CATEGORY_WEIGHTS))
    # 85% signed up before the data starts; the rest during it, more recently more often.
    age = np.where(rng.random(n) < 0.85, rng.uniform(days + 1, 2500, n), rng.uniform(1, days, n))
    signup = np.floor(age).astype(np.int64)  # days before NOW
    churned = (rng.random(n) < 0.08) & (signup > 30)
    churn_day = np.where(churned, np.floor(rng.uniform(0, np.minimum(signup, days) - 1)), -1)
    activity = rng.beta(3.0, 2.0, n)  # share of days active at season 1 (mean ~0.6)
    events_rate = rng.gamma(2.0, 3.5, n)  # events per active day beyond the first
    breadth = rng.uniform(1.0, 5.0, n)  # key-feature events per active day
    # Venue groups: 1% of venues are parents of 2-6 other venues.
    parent_of: dict[int, int] = {}
    venues = np.flatnonzero(category == CATEGORIES.index("venue")).tolist()
    rng.shuffle(venues)
    groups = max(1, len(venues) // 100)
    cursor = groups
    for g in range(groups):
        size = int(rng.integers(2, 7))
        for child in venues[cursor : cursor + size]:
            parent_of[child] = venues[g]
        cursor += size
    parents_first = sorted(range(n), key=lambda i: (i in parent_of, i))
    portfolio = Portfolio(ids, int((~churned).sum()))
    features, feature_p = _feature_events()
    chunk = 1000
    with sessions() as session, session.begin():
        for start in range(0, n, 10_000):
            rows = parents_first[start : start + 10_000]
            accounts_service.bulk_insert_accounts(
                session,
                _account_columns(rows, ids, country, plan, category, signup, churn_day, parent_of),
            )
    for start in range(0, n, chunk):
        rows = list(range(start, min(n, start + chunk)))
        with sessions() as session, session.begin():
            usage = _usage_columns(
                rng, rows, ids, country, signup, churn_day, activity, events_rate, breadth,
                features, feature_p, days,
            )  # fmt: skip
            portfolio.usage_rows += ingest_service.bulk_insert_usage(session, usage)
            portfolio.support += support_service.bulk_insert_interactions(
                session, _support_columns(rng, rows, ids, signup, churn_day, days)
            )
            portfolio.surveys += support_service.bulk_insert_surveys(
                session, _survey_columns(rng, rows, ids, signup, churn_day, activity, days)
            )
            portfolio.changes += accounts_service.bulk_insert_subscription_changes(
                session, _change_columns(rng, rows, ids, plan, country, signup, churn_day, days)
            )
        if sys.stderr.isatty():
            print(f"\r{start + len(rows):,} accounts", end="", file=sys.stderr)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    # Fresh statistics, as a database that has been running for a while would have.
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:  # committed: SQLite keeps sqlite_stat1 in the file
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return portfolio


def _random_128(rng: np.random.Generator, n: int) -> Iterator[int]:
    hi = rng.integers(0, 2**63, n, dtype=np.int64).tolist()
    lo = rng.integers(0, 2**63, n, dtype=np.int64).tolist()
    return ((h << 65) | (lo_ << 1) for h, lo_ in zip(hi, lo, strict=True))


def _columns(*names: str) -> dict[str, list[Any]]:
    return {name: [] for name in names}


def _at(days_before: float) -> datetime:
    return NOW - timedelta(days=float(days_before))


def _account_columns(
    rows: list[int],
    ids: list[uuid.UUID],
    country: npt.NDArray[np.int64],
    plan: npt.NDArray[np.int64],
    category: npt.NDArray[np.int64],
    signup: npt.NDArray[np.int64],
    churn_day: Floats,
    parent_of: dict[int, int],
) -> dict[str, list[Any]]:
    cols = _columns(
        "id",
        "external_id",
        "name",
        "category",
        "plan",
        "mrr_cents",
        "currency",
        "country",
        "hemisphere",
        "timezone",
        "signup_at",
        "status",
        "churned_at",
        "churn_reason",
        "parent_id",
        "tags",
        "traits",
        "created_at",
        "updated_at",
    )
    for i in rows:
        c = COUNTRIES[int(country[i])]
        p = PLANS[int(plan[i])]
        gone = churn_day[i] >= 0
        signed = _at(signup[i])
        cols["id"].append(ids[i])
        cols["external_id"].append(f"acc_{i:07d}")
        cols["name"].append(f"{CATEGORIES[int(category[i])].title()} {i}")
        cols["category"].append(CATEGORIES[int(category[i])])
        cols["plan"].append(p[0])
        cols["mrr_cents"].append(0 if gone or signup[i] < 14 else p[1])
        cols["currency"].append(c[1])
        cols["country"].append(c[0])
        cols["hemisphere"].append(c[2])
        cols["timezone"].append(c[3])
        cols["signup_at"].append(signed)
        cols["status"].append("churned" if gone else "trial" if signup[i] < 14 else "active")
        cols["churned_at"].append(_at(churn_day[i]) if gone else None)
        cols["churn_reason"].append("switched_competitor" if gone else None)
        cols["parent_id"].append(ids[parent_of[i]] if i in parent_of else None)
        cols["tags"].append([])
        cols["traits"].append({})
        cols["created_at"].append(signed)
        cols["updated_at"].append(NOW)
    return cols


def _usage_columns(
    rng: np.random.Generator,
    rows: list[int],
    ids: list[uuid.UUID],
    country: npt.NDArray[np.int64],
    signup: npt.NDArray[np.int64],
    churn_day: Floats,
    activity: Floats,
    events_rate: Floats,
    breadth: Floats,
    features: list[str],
    feature_p: Floats,
    days: int,
) -> dict[str, list[Any]]:
    """usage_daily rows of some accounts, in primary-key order (account, day, metric)."""
    r = np.array(rows)
    k = r.size
    back = np.arange(days, 0, -1)  # days before NOW, oldest first (day NOW-1 is the last)
    day_of = [NOW.date() - timedelta(days=int(b)) for b in back.tolist()]
    south = np.array([COUNTRIES[int(c)][2] == "south" for c in country[r]])
    month = np.array([d.month - 1 for d in day_of])
    season = np.where(south[:, None], SEASON[(month[None, :] + 6) % 12], SEASON[month][None, :])
    alive = (back[None, :] <= signup[r][:, None]) & (back[None, :] > churn_day[r][:, None])
    active = alive & (rng.random((k, days)) < np.clip(activity[r][:, None] * season, 0, 0.97))
    acc, d = np.nonzero(active)  # row-major: by account, then day
    m = acc.size
    full = back[d] <= FULL_DAYS
    n_events = 1 + rng.poisson(events_rate[r][acc] * season[acc, d])
    metric_names = ["$active_users", "$events", "$page", "login", *features]
    # Metric codes in name order, so (account, day, code) is primary-key order.
    order = {name: code for code, name in enumerate(sorted(metric_names))}
    feature_codes = np.array([order[f] for f in features])
    out_acc: list[npt.NDArray[np.int64]] = []
    out_day: list[npt.NDArray[np.int64]] = []
    out_metric: list[npt.NDArray[np.int64]] = []
    out_count: list[npt.NDArray[np.int64]] = []

    def emit(mask: npt.NDArray[np.bool_], code: int, count: npt.NDArray[np.int64]) -> None:
        out_acc.append(acc[mask])
        out_day.append(d[mask])
        out_metric.append(np.full(int(mask.sum()), code))
        out_count.append(count[mask])

    everywhere = np.ones(m, dtype=bool)
    emit(everywhere, order["$events"], n_events)
    emit(everywhere, order["login"], 1 + rng.poisson(0.6, m))
    emit(full, order["$active_users"], 1 + rng.poisson(0.4, m))
    emit(full & (rng.random(m) < 0.3), order["$page"], 1 + rng.poisson(3.0, m))
    # Key-feature events: a few distinct ones per active day (full-density days only).
    n_feat = np.minimum(rng.poisson(breadth[r][acc]), 8)
    for slot in range(8):
        has = full & (n_feat > slot)
        picks = rng.choice(feature_codes, m, p=feature_p)
        out_acc.append(acc[has])
        out_day.append(d[has])
        out_metric.append(picks[has])
        out_count.append(1 + rng.poisson(1.0, int(has.sum())))
    acc_all = np.concatenate(out_acc)
    day_all = np.concatenate(out_day)
    metric_all = np.concatenate(out_metric)
    count_all = np.concatenate(out_count)
    # Drop repeated picks of the same feature on a day, then primary-key order.
    key = (acc_all.astype(np.int64) * (days + 1) + day_all) * len(metric_names) + metric_all
    key, first = np.unique(key, return_index=True)
    names_sorted = sorted(metric_names)
    return {
        "account_id": [ids[rows[a]] for a in acc_all[first].tolist()],
        "day": [day_of[x] for x in day_all[first].tolist()],
        "metric": [names_sorted[x] for x in metric_all[first].tolist()],
        "count": count_all[first].tolist(),
    }


TICKET_TYPES = ("how_to", "bug", "billing", "feature_request", "integration_issue", "other")


def _support_columns(
    rng: np.random.Generator,
    rows: list[int],
    ids: list[uuid.UUID],
    signup: npt.NDArray[np.int64],
    churn_day: Floats,
    days: int,
) -> dict[str, list[Any]]:
    cols = _columns(
        "id",
        "external_id",
        "account_id",
        "type",
        "channel",
        "status",
        "priority",
        "sentiment",
        "escalated",
        "opened_at",
        "resolved_at",
        "created_at",
    )
    for i in rows:
        first = min(int(signup[i]), days)
        last = max(float(churn_day[i]), 0.0)
        if first <= last:
            continue
        for _ in range(int(rng.poisson(4.5 * (first - last) / 365))):
            opened = float(rng.uniform(last, first))
            took = float(rng.exponential(3.0))
            resolved = opened - took
            still_open = resolved <= 0 and churn_day[i] < 0
            cols["id"].append(uuid.uuid4())
            cols["external_id"].append(None)
            cols["account_id"].append(ids[i])
            cols["type"].append(TICKET_TYPES[int(rng.integers(len(TICKET_TYPES)))])
            cols["channel"].append("email")
            cols["status"].append("open" if still_open else "resolved")
            cols["priority"].append("normal")
            cols["sentiment"].append(round(float(np.clip(rng.normal(0.1, 0.4), -1, 1)), 2))
            cols["escalated"].append(bool(rng.random() < 0.05))
            cols["opened_at"].append(_at(opened))
            cols["resolved_at"].append(None if still_open else _at(max(resolved, last)))
            cols["created_at"].append(_at(opened))
    return cols


def _survey_columns(
    rng: np.random.Generator,
    rows: list[int],
    ids: list[uuid.UUID],
    signup: npt.NDArray[np.int64],
    churn_day: Floats,
    activity: Floats,
    days: int,
) -> dict[str, list[Any]]:
    cols = _columns(
        "id", "external_id", "account_id", "kind", "score", "responded_at", "created_at"
    )
    for i in rows:
        first = min(int(signup[i]), days)
        last = max(float(churn_day[i]), 0.0)
        if first <= last:
            continue
        span = (first - last) / 365
        for kind, rate in (("nps", 1.4), ("csat", 1.4)):
            for _ in range(int(rng.poisson(rate * span))):
                at = _at(float(rng.uniform(last, first)))
                if kind == "nps":
                    score = int(np.clip(round(rng.normal(5 + 4 * activity[i], 1.8)), 0, 10))
                else:
                    score = int(np.clip(round(rng.normal(3 + 1.5 * activity[i], 0.8)), 1, 5))
                cols["id"].append(uuid.uuid4())
                cols["external_id"].append(None)
                cols["account_id"].append(ids[i])
                cols["kind"].append(kind)
                cols["score"].append(score)
                cols["responded_at"].append(at)
                cols["created_at"].append(at)
    return cols


def _change_columns(
    rng: np.random.Generator,
    rows: list[int],
    ids: list[uuid.UUID],
    plan: npt.NDArray[np.int64],
    country: npt.NDArray[np.int64],
    signup: npt.NDArray[np.int64],
    churn_day: Floats,
    days: int,
) -> dict[str, list[Any]]:
    cols = _columns(
        "id",
        "account_id",
        "kind",
        "mrr_before_cents",
        "mrr_after_cents",
        "currency",
        "plan",
        "occurred_at",
        "created_at",
    )

    def add(i: int, kind: str, before: int, after: int, days_before: float) -> None:
        at = _at(days_before)
        cols["id"].append(uuid.uuid4())
        cols["account_id"].append(ids[i])
        cols["kind"].append(kind)
        cols["mrr_before_cents"].append(before)
        cols["mrr_after_cents"].append(after)
        cols["currency"].append(COUNTRIES[int(country[i])][1])
        cols["plan"].append(PLANS[int(plan[i])][0])
        cols["occurred_at"].append(at)
        cols["created_at"].append(at)

    for i in rows:
        price = PLANS[int(plan[i])][1]
        converted = float(signup[i]) - 14
        if converted <= 0:
            continue  # still in trial
        if converted < days:
            add(i, "new", 0, price, converted)
        first = min(converted, days)
        last = max(float(churn_day[i]), 0.0)
        if first <= last:
            continue
        span = (first - last) / 365
        for kind, rate, factor in (
            ("expansion", 0.12, 1.3),
            ("contraction", 0.08, 0.7),
            ("failed_payment", 0.15, 1.0),
        ):
            for _ in range(int(rng.poisson(rate * span))):
                after = price if kind == "failed_payment" else int(price * factor)
                add(i, kind, price, after, float(rng.uniform(last, first)))
        if churn_day[i] >= 0:
            add(i, "churn", price, 0, float(churn_day[i]))
    return cols


# --- speed ----------------------------------------------------------------------------------


FLOOR_COLUMNS = {
    "usage_daily": "account_id, day, metric, count",
    # One row per account and active day, when the schema has it (what the score reads).
    "usage_days": "account_id, day, events, sessions, features",
}


def floor_read(url: str, now: datetime, table: str) -> tuple[float, int] | None:
    """Seconds to read the window's rows of a rollup table into Python lists (plain DB-API,
    no conversion), or None if the table does not exist.

    Read in primary-key order, 5,000 accounts a query, as the scoring queries do: a plain
    `WHERE day ...` is slower (usage_daily has no index on day: a full scan; usage_days's
    day index costs a random row lookup per row)."""
    engine = make_engine(url)
    day = now.date()
    since = day - timedelta(days=WINDOW_DAYS)
    postgres = url.startswith("postgresql")
    if not inspect(engine).has_table(table):
        engine.dispose()
        return None
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT id FROM accounts ORDER BY id")
        ids = [row[0] for row in cursor.fetchall()]
        mark = "%s" if postgres else "?"
        bounds = (since, day) if postgres else (since.isoformat(), day.isoformat())
        n = 0
        started = time.perf_counter()
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            marks = ", ".join([mark] * len(chunk))
            cursor.execute(
                f"SELECT {FLOOR_COLUMNS[table]} FROM {table} "
                f"WHERE account_id IN ({marks}) AND day > {mark} AND day <= {mark}",
                (*chunk, *bounds),
            )
            rows = cursor.fetchall()
            columns = [list(c) for c in zip(*rows, strict=True)]
            counts = np.array(columns[-1] if columns else [], dtype=np.int64)
            n += counts.size
        seconds = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
        engine.dispose()
    return seconds, n


def timed_rescore(url: str, now: datetime, profile: bool) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    with sessions() as session, session.begin():
        result = service.rescore(session, as_of=now, now=now)
        commit = time.perf_counter()
    commit_seconds = time.perf_counter() - commit
    if profiler is not None:
        profiler.disable()
    total = time.perf_counter() - started
    engine.dispose()
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue(), file=sys.stderr)
    return {
        "seconds": round(total, 2),
        "split": {k: round(v, 2) for k, v in result.seconds.items()},
        "commit": round(commit_seconds, 2),
        "accounts": result.accounts,
        "scored": result.scored,
        "announced": result.announced,
    }


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def one_account(url: str, tmp: Path, now: datetime, requests: int, seed: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        key = auth_service.create_api_key(
            session, name="health benchmark", scopes=["read"], actor=Actor.system(), now=now
        ).key
        scored = [
            a
            for (a,) in session.execute(
                text("SELECT id FROM accounts WHERE health_score IS NOT NULL")
            )
        ]
    rng = np.random.default_rng(seed)
    picks = [scored[int(i)] for i in rng.integers(0, len(scored), requests)]
    settings = Settings(
        env="test", database_url=url, data_dir=tmp, secret_key="x" * 40, log_level="WARNING"
    )
    configure_logging("WARNING")  # no request log lines on stderr
    app = create_app(settings, clock=FixedClock(now))
    headers = {"Authorization": f"Bearer {key}"}
    times: list[float] = []
    with TestClient(app) as client:
        for account_id in picks[:10]:  # warm-up: connections, caches, first-call imports
            client.get(f"/api/v1/accounts/{_hex(account_id)}/health", headers=headers)
        for account_id in picks:
            path = f"/api/v1/accounts/{_hex(account_id)}/health"
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (response.status_code, response.text[:300])
    rescore_ms: list[float] = []
    for account_id in picks[: min(50, len(picks))]:
        started = time.perf_counter()
        with sessions() as session, session.begin():
            result = service.rescore(session, as_of=now, now=now, account_ids=[_uuid(account_id)])
        rescore_ms.append((time.perf_counter() - started) * 1000)
        assert result.accounts >= 1
    engine.dispose()
    return {
        "api_requests": len(times),
        "api_p50_ms": percentile(times, 50),
        "api_p95_ms": percentile(times, 95),
        "rescore_one_runs": len(rescore_ms),
        "rescore_one_p50_ms": percentile(rescore_ms, 50),
        "rescore_one_p95_ms": percentile(rescore_ms, 95),
    }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _hex(value: Any) -> str:
    return str(_uuid(value))


def _kept_portfolio(args: argparse.Namespace, dbs: Databases) -> tuple[str, Portfolio, float]:
    """`--keep DIR`: the portfolio is built once into a kept database (a file in DIR on
    SQLite, a database on the server named after the portfolio's parameters, its figures
    in DIR) and each run works on a fresh copy of it, so every run starts untouched."""
    keep = Path(args.keep)
    keep.mkdir(parents=True, exist_ok=True)
    name = f"speed_{args.portfolio}_{args.days}_{args.seed}"
    meta = keep / f"{name}{'' if args.database_url is None else '_pg'}.json"
    if args.database_url is None:
        kept_url = f"sqlite:///{keep / (name + '.db')}"
    else:
        base = make_url(Settings(database_url=args.database_url).database_url)
        kept_url = base.set(database=f"bench_health_{name}").render_as_string(hide_password=False)
    if not meta.exists():
        if args.database_url is None:
            (keep / (name + ".db")).unlink(missing_ok=True)
        else:
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "bench_health_{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "bench_health_{name}"'))
            admin.dispose()
        started = time.perf_counter()
        built = synthesise(kept_url, args.portfolio, args.days, args.seed)
        figures = {
            "alive": built.alive,
            "usage_rows": built.usage_rows,
            "support": built.support,
            "surveys": built.surveys,
            "changes": built.changes,
            "build_seconds": round(time.perf_counter() - started, 1),
        }
        meta.write_text(json.dumps(figures))
    figures = json.loads(meta.read_text())
    portfolio = Portfolio(
        [],
        figures["alive"],
        figures["usage_rows"],
        figures["support"],
        figures["surveys"],
        figures["changes"],
    )
    if args.database_url is None:
        url = dbs.new("speed")
        kept = make_engine(kept_url)
        with kept.connect() as conn:  # everything in the file itself, nothing left in a WAL
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        kept.dispose()
        shutil.copyfile(keep / (name + ".db"), make_url(url).database or "")
    else:
        url = dbs.new("speed", template=f"bench_health_{name}")
    engine = make_engine(url)
    upgrade(engine)  # a kept database built before a newer migration
    engine.dispose()
    return url, portfolio, float(figures["build_seconds"])


def speed(args: argparse.Namespace, dbs: Databases) -> dict[str, Any]:
    if args.keep:
        url, portfolio, build_seconds = _kept_portfolio(args, dbs)
    else:
        url = dbs.new("speed")
        started = time.perf_counter()
        portfolio = synthesise(url, args.portfolio, args.days, args.seed)
        build_seconds = time.perf_counter() - started
    floors: dict[str, list[tuple[float, int]]] = {t: [] for t in FLOOR_COLUMNS}

    def measure_floors() -> None:
        for table in FLOOR_COLUMNS:
            figure = floor_read(url, NOW, table)
            if figure is not None:
                floors[table].append(figure)

    load_before = [round(x, 2) for x in os.getloadavg()]
    measure_floors()
    first = timed_rescore(url, NOW, args.profile == "first")
    measure_floors()
    second = timed_rescore(url, NOW, False)
    if args.profile == "steady":  # a third run, so the two timed runs carry no overhead
        timed_rescore(url, NOW, True)
    result: dict[str, Any] = {
        "accounts": args.portfolio,
        "alive": portfolio.alive,
        "days": args.days,
        "usage_rows": portfolio.usage_rows,
        "support_interactions": portfolio.support,
        "survey_responses": portfolio.surveys,
        "subscription_changes": portfolio.changes,
        "build_seconds": round(build_seconds, 1),
        "profiled": args.profile,
        "load_average_before_timing": load_before,
        "rescore_first": first,
        "rescore_second": second,
    }
    for table, runs in floors.items():
        if not runs:
            continue
        floor = min(seconds for seconds, _ in runs)
        result[f"floor_{table}"] = {
            "rows": runs[0][1],
            "seconds": round(floor, 2),
            "runs": [round(seconds, 2) for seconds, _ in runs],
            "ratio_first": round(first["seconds"] / floor, 2),
            "ratio_second": round(second["seconds"] / floor, 2),
        }
    result.update(one_account(url, dbs.tmp, NOW, args.requests, args.seed))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("validity", "speed"), default=None)
    parser.add_argument("--accounts", type=int, default=5000, help="validity: simulated accounts")
    parser.add_argument("--months", type=int, default=24, help="validity: simulated months")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--portfolio", type=int, default=100_000, help="speed: accounts")
    parser.add_argument("--days", type=int, default=400, help="speed: days of usage history")
    parser.add_argument("--requests", type=int, default=200, help="API requests for one account")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (default: SQLite)")
    parser.add_argument(
        "--profile",
        choices=("first", "steady"),
        default=None,
        help="cProfile the first full rescore (its timing then includes the profiler's "
        "overhead) or a third one after the two timed runs (baseline stored)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="speed: build the portfolio once and keep it (SQLite: a file in DIR; PostgreSQL: "
        "a database on the server, its figures in DIR); later runs with the same --portfolio, "
        "--days and --seed work on a fresh copy of it",
    )
    args = parser.parse_args()

    revision = _revision()  # before the run: the code measured is the code imported now
    dbs = Databases(args.database_url, Path(tempfile.mkdtemp(prefix="tenure-health-bench-")))
    result: dict[str, Any] = {
        "benchmark": "health",
        "database": "sqlite" if args.database_url is None else "postgresql",
    }
    try:
        if args.only in (None, "validity"):
            result["validity"] = validity(args, dbs)
        if args.only in (None, "speed"):
            result["speed"] = speed(args, dbs)
    finally:
        dbs.drop()
    result["revision"] = revision
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["cpus"] = os.cpu_count()
    result["python"] = platform.python_version()
    result["machine"] = platform.machine()
    print(json.dumps(result))


def _revision() -> str | None:
    """The commit measured, '+dirty' when the working tree had changes."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        root = Path(__file__).resolve().parent.parent
        head = subprocess.run(
            [git, "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "-C", str(root), "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


if __name__ == "__main__":
    main()
