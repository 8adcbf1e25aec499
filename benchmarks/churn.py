"""Churn prediction: model quality and training time on the simulator, the portfolio
prediction and one account through the API.

Quality: a simulated business (`tenure.sim.loader.load`, default 20,000 accounts x 24
months, seed 7, ending 2026-11-01) is bulk-loaded, then `service.train_model` runs on it as
the CLI does (60-day horizon, 14-day grace, threshold 0.25): monthly point-in-time
snapshots, LightGBM on an out-of-time split, the logistic-regression and health-score
baselines evaluated on the same validation snapshots. Printed side by side: ROC AUC, PR
AUC, precision and recall at the threshold, top-decile lift, Brier score; LightGBM's
calibration table; the split; the top feature importances (gain share); the ROC AUC of each
feature alone on the validation rows (the dataset `train_model` built, captured on the
way: no extra work inside the timing); and each target of the issue, met or not. The
training transaction is rolled back: the simulated database stays as loaded, the model's
row is kept as JSON next to it (`--keep`) for the speed part.

Speed: the model is copied (every column of its row) into the 100,000-account synthetic
portfolio of benchmarks/health.py (`synthesise`) and activated there, with the seasonal
baseline stored as the daily health rescore keeps it; `service.predict`
of the whole portfolio runs twice, each in one committed transaction (the first announces
every account's new risk level, the second, the same day, replaces the predictions and
announces nothing). "model step" = predict + explain + write (what the model adds to the
health read path), "features" = reading the data and computing the health frame, "end to
end" = the wall clock including the commit. Then one account:
POST /api/v1/accounts/{id}/churn/predict through the ASGI stack (TestClient, API key with
the write scope), and `service.predict_account` in-process, each committed.

Prints one JSON object. `--profile train|predict` prints cProfile's top entries to stderr
(train: a second `train_model` after the timed one; predict: a third portfolio prediction).
With `--database-url` (a PostgreSQL server) fresh databases are created on that server and
dropped at the end (`--keep` keeps them, named after their parameters).

    .venv/bin/python benchmarks/churn.py [--only quality|speed] [--accounts 20000]
        [--months 24] [--seed 7] [--portfolio 100000] [--days 400] [--requests 200]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--profile train|predict] [--keep DIR]

`--keep DIR` keeps the simulated database (SQLite: `churn_sim_<accounts>_<months>_<seed>.db`
in DIR, ~20 GB for 20,000 x 24) and the trained model's row, and shares the speed portfolio
with `benchmarks/health.py --keep DIR` (built once, ~9 min and 11 GB; each run predicts on a
fresh copy of it). `--only speed` uses the model kept by an earlier quality run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

import health as health_bench  # benchmarks/health.py: the synthetic portfolio, helpers
from tenure.app import create_app
from tenure.auth import service as auth_service
from tenure.churn import service
from tenure.churn.dataset import BEFORE, Dataset
from tenure.churn.metrics import roc_auc
from tenure.churn.models import ChurnModel
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.health import service as health_service
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.actor import Actor
from tenure.logging import configure_logging
from tenure.sim import SimConfig
from tenure.sim.loader import load

TARGETS = {
    "roc_auc_lightgbm": 0.80,
    "lightgbm_minus_logistic": 0.02,
    "lift_top_decile": 3.0,
    "training_seconds": 120.0,
    "predict_100k_seconds": 3.0,
    "api_p50_ms": 20.0,
}
MODEL_COLUMNS = (
    "version", "status", "created_at", "created_by", "activated_at", "model_text",
    "model_sha256", "features", "codes", "calibration", "params", "metrics", "training",
    "fingerprint", "reference", "drift", "note",
)  # fmt: skip
FIGURES = ("roc_auc", "pr_auc", "precision", "recall", "flagged", "lift_top_decile", "brier")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def print_profile(profiler: cProfile.Profile, title: str) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    print(f"=== cProfile: {title} ===\n{out.getvalue()}", file=sys.stderr)


# --- quality and training -------------------------------------------------------------------


def _sim_database(
    args: argparse.Namespace, dbs: health_bench.Databases, config: SimConfig
) -> tuple[str, dict[str, Any]]:
    """The simulated database and its load figures: loaded now, or kept from an earlier run."""
    name = f"churn_sim_{config.accounts}_{config.months}_{config.seed}"
    meta: Path | None = None
    if args.keep:
        keep = Path(args.keep)
        keep.mkdir(parents=True, exist_ok=True)
        meta = keep / f"{name}{'' if args.database_url is None else '_pg'}.json"
        if args.database_url is None:
            url = f"sqlite:///{keep / (name + '.db')}"
        else:
            base = make_url(Settings(database_url=args.database_url).database_url)
            url = base.set(database=f"bench_{name}").render_as_string(hide_password=False)
        if meta.exists():
            engine = make_engine(url)
            upgrade(engine)  # kept before a newer migration
            engine.dispose()
            return url, {**json.loads(meta.read_text()), "kept": True}
        if args.database_url is None:
            for suffix in (".db", ".db-wal", ".db-shm"):
                (keep / (name + suffix)).unlink(missing_ok=True)
        else:
            admin = create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "bench_{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "bench_{name}"'))
            admin.dispose()
    else:
        url = dbs.new("churn_sim")
    engine = make_engine(url)
    upgrade(engine)
    load_before = load_average()
    started = time.perf_counter()
    stats = load(engine, config, now=config.end_at, show_progress=sys.stderr.isatty())
    figures = {
        "load_seconds": round(time.perf_counter() - started, 1),
        "load_average_before_load": load_before,
        "events": stats.events,
        "usage_rows": stats.usage_rows,
        "subscription_changes": stats.subscription_changes,
        "support_interactions": stats.support_interactions,
        "survey_responses": stats.survey_responses,
    }
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:  # statistics, and everything in the file itself (nothing left in a WAL)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        with engine.connect() as conn:  # a connection of its own, or "table is locked"
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    if meta is not None:
        meta.write_text(json.dumps(figures))
    return url, {**figures, "kept": False}


def _model_row(model: ChurnModel) -> dict[str, Any]:
    """Every column of the model's row, JSON-ready (datetimes as ISO text)."""
    out: dict[str, Any] = {}
    for column in MODEL_COLUMNS:
        value = getattr(model, column)
        out[column] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _side_by_side(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        figure: {
            name: metrics[name].get(figure)
            for name in ("lightgbm", "logistic_regression", "health_score")
            if name in metrics
        }
        for figure in FIGURES
    }


def _single_feature_auc(ds: Dataset, valid: np.ndarray) -> dict[str, Any]:
    """ROC AUC of each feature alone on the validation rows, oriented (max(auc, 1 - auc),
    with the sign saying which way risk goes); missing values at the median."""
    y = ds.y[valid]
    out: dict[str, Any] = {}
    for j, name in enumerate(ds.features):
        column = ds.X[valid, j].astype(np.float64)
        present = np.isfinite(column)
        if not present.any():
            continue
        filled = np.where(present, column, float(np.median(column[present])))
        value = roc_auc(y, filled)
        if not np.isfinite(value):
            continue
        out[name] = {
            "auc": round(max(value, 1.0 - value), 4),
            "higher_is_riskier": bool(value >= 0.5),
            "missing_share": round(float(1.0 - present.mean()), 4),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["auc"]))


def quality(args: argparse.Namespace, dbs: health_bench.Databases) -> dict[str, Any]:
    config = SimConfig(accounts=args.accounts, months=args.months, seed=args.seed)
    now = config.end_at
    url, loaded = _sim_database(args, dbs, config)
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    # The dataset train_model builds, captured on its way (no extra work in the timing).
    captured: list[Dataset] = []
    original = service.build_dataset

    def capture(*a: Any, **kw: Any) -> Dataset:
        ds = original(*a, **kw)
        captured.append(ds)
        return ds

    service.build_dataset = capture  # type: ignore[assignment]
    progress: list[tuple[float, int]] = []
    started_at = [0.0]

    def on_snapshot(done: int, total: int) -> None:
        progress.append((time.perf_counter() - started_at[0], done))
        if sys.stderr.isatty():
            print(f"\rsnapshot {done}/{total}", end="", file=sys.stderr)

    try:
        with sessions() as session:
            load_before = load_average()
            started_at[0] = time.perf_counter()
            report = service.train_model(
                session, now=now, actor=Actor.cli(), progress=on_snapshot, promote="always"
            )
            total = time.perf_counter() - started_at[0]
            model = report.model
            row = _model_row(model)
            session.rollback()  # the simulated database stays as loaded
        if args.profile == "train":
            with sessions() as session:
                profiler = cProfile.Profile()
                profiler.enable()
                service.train_model(session, now=now, actor=Actor.cli(), promote="always")
                profiler.disable()
                session.rollback()
            print_profile(profiler, "train_model (second run)")
    finally:
        service.build_dataset = original  # type: ignore[assignment]
    engine.dispose()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.keep:
        suffix = "" if args.database_url is None else "_pg"
        name = f"churn_model_{config.accounts}_{config.months}_{config.seed}{suffix}.json"
        (Path(args.keep) / name).write_text(json.dumps(row))
    args.model_row = row

    metrics = row["metrics"]
    lgbm, lr = metrics["lightgbm"], metrics["logistic_regression"]
    health = metrics.get("health_score", {})
    seconds = {k: round(v, 1) for k, v in report.seconds.items()}
    per_snapshot = np.diff([0.0] + [t for t, _ in progress]).tolist()
    checks = {
        "roc_auc_lightgbm >= 0.80": _check(lgbm["roc_auc"], TARGETS["roc_auc_lightgbm"], ">="),
        "lightgbm - logistic >= 0.02": _check(
            _sub(lgbm["roc_auc"], lr["roc_auc"]), TARGETS["lightgbm_minus_logistic"], ">="
        ),
        "lightgbm > health score": _check(lgbm["roc_auc"], health.get("roc_auc"), ">"),
        "lift_top_decile >= 3": _check(lgbm["lift_top_decile"], TARGETS["lift_top_decile"], ">="),
        "training < 120 s": _check(round(total, 1), TARGETS["training_seconds"], "<"),
    }
    single = {}
    if captured:
        ds = captured[0]
        valid = _valid_mask(ds, row["training"]["validation"])
        single = _single_feature_auc(ds, valid)
    return {
        "accounts": config.accounts,
        "months": config.months,
        "seed": config.seed,
        "now": now.isoformat(),
        "database": loaded,
        "load_average_before_training": load_before,
        "training_seconds": round(total, 1),
        "training_split_seconds": seconds,
        "dataset_seconds_per_snapshot": [round(x, 2) for x in per_snapshot],
        "dataset_rows": None if not captured else captured[0].n,
        "dataset_features": None if not captured else len(captured[0].features),
        "rounds": row["params"].get("rounds"),
        "models": _side_by_side(metrics),
        "lightgbm_minus_logistic_auc": _sub(lgbm["roc_auc"], lr["roc_auc"]),
        "lightgbm_minus_health_auc": _sub(lgbm["roc_auc"], health.get("roc_auc")),
        "calibration_lightgbm": lgbm["calibration"],
        "calibration_params": row["calibration"],
        "split": {k: row["training"][k] for k in ("train", "calibration", "validation")},
        "split_accounts": row["training"]["accounts"],
        "importance_top10": dict(list(metrics["importance"].items())[:10]),
        "single_feature_auc_valid_top15": dict(list(single.items())[:15]),
        "single_feature_auc_valid_all": single,
        "targets": checks,
    }


def _valid_mask(ds: Dataset, validation: dict[str, Any]) -> np.ndarray:
    lo = datetime.fromisoformat(validation["from"])
    hi = datetime.fromisoformat(validation["to"])
    at = np.array([lo <= s <= hi for s in ds.snapshots], dtype=bool)
    return at & ds.matured


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def _check(value: float | None, target: float | None, op: str) -> dict[str, Any]:
    if value is None or target is None:
        return {"value": value, "target": target, "met": None}
    met = {">=": value >= target, ">": value > target, "<": value < target}[op]
    return {"value": value, "target": target, "met": bool(met)}


# --- speed ----------------------------------------------------------------------------------


def _kept_model(args: argparse.Namespace) -> dict[str, Any]:
    row = getattr(args, "model_row", None)
    if row is not None:
        return row  # type: ignore[no-any-return]
    if not args.keep:
        raise SystemExit("--only speed needs the model of an earlier quality run: use --keep DIR")
    suffix = "" if args.database_url is None else "_pg"
    path = Path(args.keep) / f"churn_model_{args.accounts}_{args.months}_{args.seed}{suffix}.json"
    if not path.exists():
        raise SystemExit(f"no kept model at {path}: run --only quality --keep {args.keep} first")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def install_model(url: str, row: dict[str, Any], now: datetime) -> int:
    """Insert the model's row (all columns) into the portfolio's database, active."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        values = dict(row)
        for column in ("created_at", "activated_at"):
            if values[column] is not None:
                values[column] = datetime.fromisoformat(values[column])
        values["version"] = (
            session.scalar(select(ChurnModel.version).order_by(ChurnModel.version.desc())) or 0
        ) + 1
        model = ChurnModel(id=uuid.uuid4(), **{**values, "status": "candidate"})
        session.add(model)
        session.flush()
        service.activate(session, model.version, actor=Actor.cli(), now=now)
        version = model.version
    engine.dispose()
    return version


def store_baseline(url: str, now: datetime) -> float:
    """Keep the seasonal baseline as of the prediction, as the daily health rescore does in
    production (without one from the past week, every prediction learns it again)."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    with sessions() as session, session.begin():
        health_service.learn_baseline(
            session, as_of=service.snapshot_of(now) - BEFORE, catalogue=load_catalogue()
        )
    engine.dispose()
    return time.perf_counter() - started


def timed_predict(url: str, now: datetime, profile: bool) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    profiler = cProfile.Profile() if profile else None
    before = load_average()
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    with sessions() as session, session.begin():
        result = service.predict(session, now=now)
        commit = time.perf_counter()
    commit_seconds = time.perf_counter() - commit
    if profiler is not None:
        profiler.disable()
    total = time.perf_counter() - started
    engine.dispose()
    if profiler is not None:
        print_profile(profiler, "service.predict of the portfolio (third run)")
    split = result.seconds
    model_step = sum(split.get(k, 0.0) for k in ("predict", "explain", "write"))
    return {
        "load_average_before": before,
        "end_to_end_seconds": round(total, 2),
        "model_step_seconds": round(model_step, 2),
        "split": {k: round(v, 2) for k, v in split.items()},
        "commit": round(commit_seconds, 2),
        "accounts": result.accounts,
        "flagged": result.flagged,
        "announced": result.announced,
        "drift_flagged": result.drift_flagged,
    }


def _route_exists(app: Any, path: str, method: str) -> bool:
    # From the OpenAPI document: included routers are not flattened into app.routes.
    return method.lower() in app.openapi().get("paths", {}).get(path, {})


def one_account(url: str, tmp: Path, now: datetime, requests: int, seed: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions() as session, session.begin():
        key = auth_service.create_api_key(
            session, name="churn benchmark", scopes=["write"], actor=Actor.system(), now=now
        ).key
        alive = [
            a
            for (a,) in session.execute(
                text("SELECT DISTINCT account_id FROM churn_predictions ORDER BY account_id")
            )
        ]
    rng = np.random.default_rng(seed)
    picks = [alive[int(i)] for i in rng.integers(0, len(alive), requests)]
    out: dict[str, Any] = {}
    settings = Settings(
        env="test", database_url=url, data_dir=tmp, secret_key="x" * 40, log_level="WARNING"
    )
    configure_logging("WARNING")
    app = create_app(settings, clock=FixedClock(now))
    route = "/api/v1/accounts/{account_id}/churn/predict"
    out["api_route_exists"] = _route_exists(app, route, "POST")
    if out["api_route_exists"]:
        headers = {"Authorization": f"Bearer {key}"}
        times: list[float] = []
        with TestClient(app) as client:
            for account_id in picks[:10]:  # warm-up: connections, model cache, imports
                response = client.post(
                    f"/api/v1/accounts/{health_bench._hex(account_id)}/churn/predict",
                    headers=headers,
                )
                assert response.status_code == 200, (response.status_code, response.text[:300])
            out["load_average_before_api"] = load_average()
            for account_id in picks:
                path = f"/api/v1/accounts/{health_bench._hex(account_id)}/churn/predict"
                started = time.perf_counter()
                response = client.post(path, headers=headers)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (response.status_code, response.text[:300])
        out.update(
            {
                "api_requests": len(times),
                "api_p50_ms": health_bench.percentile(times, 50),
                "api_p95_ms": health_bench.percentile(times, 95),
                "api_max_ms": round(max(times), 1),
            }
        )
    in_process: list[float] = []
    parts: dict[str, list[float]] = {}
    out["load_average_before_in_process"] = load_average()
    for account_id in picks:
        started = time.perf_counter()
        with sessions() as session, session.begin():
            service.predict_account(session, health_bench._uuid(account_id), now=now)
        in_process.append((time.perf_counter() - started) * 1000)
    # The split of one call (predict_account's own figures are not returned: predict again).
    for account_id in picks[:50]:
        with sessions() as session, session.begin():
            result = service.predict(session, now=now, account_ids=[health_bench._uuid(account_id)])
        for k, v in result.seconds.items():
            parts.setdefault(k, []).append(v * 1000)
    engine.dispose()
    out.update(
        {
            "in_process_runs": len(in_process),
            "in_process_p50_ms": health_bench.percentile(in_process, 50),
            "in_process_p95_ms": health_bench.percentile(in_process, 95),
            "in_process_split_p50_ms": {
                k: health_bench.percentile(v, 50) for k, v in parts.items()
            },
        }
    )
    return out


def speed(args: argparse.Namespace, dbs: health_bench.Databases) -> dict[str, Any]:
    row = _kept_model(args)
    now = health_bench.NOW
    if args.keep and args.database_url is None:
        name = f"speed_{args.portfolio}_{args.days}_{args.seed}"
        db, meta = Path(args.keep) / f"{name}.db", Path(args.keep) / f"{name}.json"
        if db.exists() and not meta.exists():
            # health.py's _kept_portfolio would delete it and start again.
            raise SystemExit(
                f"{db} exists without {meta.name}: being built by benchmarks/health.py? "
                "wait for it, or delete it"
            )
    if args.keep:
        url, portfolio, build_seconds = health_bench._kept_portfolio(args, dbs)
    else:
        url = dbs.new("speed")
        started = time.perf_counter()
        portfolio = health_bench.synthesise(url, args.portfolio, args.days, args.seed)
        build_seconds = time.perf_counter() - started
    version = install_model(url, row, now)
    baseline_seconds = store_baseline(url, now)
    first = timed_predict(url, now, False)
    second = timed_predict(url, now, False)
    if args.profile == "predict":
        timed_predict(url, now, True)
    best = min(first, second, key=lambda r: r["end_to_end_seconds"])
    result: dict[str, Any] = {
        "accounts": args.portfolio,
        "alive": portfolio.alive,
        "days": args.days,
        "build_seconds": round(build_seconds, 1),
        "model_version": version,
        "baseline_stored_seconds": round(baseline_seconds, 1),
        "model_trained_on": f"{args.accounts} x {args.months} simulated, seed {args.seed}",
        "predict_first": first,
        "predict_second": second,
        "targets": {
            "predict 100k model step < 3 s": _check(
                best["model_step_seconds"], TARGETS["predict_100k_seconds"], "<"
            ),
            "predict 100k end to end < 3 s": _check(
                best["end_to_end_seconds"], TARGETS["predict_100k_seconds"], "<"
            ),
        },
    }
    account = one_account(url, dbs.tmp, now, args.requests, args.seed)
    result["one_account"] = account
    key = "api_p50_ms" if "api_p50_ms" in account else "in_process_p50_ms"
    result["targets"][f"one account p50 < 20 ms ({key})"] = _check(
        account[key], TARGETS["api_p50_ms"], "<"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("quality", "speed"), default=None)
    parser.add_argument("--accounts", type=int, default=20_000, help="quality: simulated accounts")
    parser.add_argument("--months", type=int, default=24, help="quality: simulated months")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--portfolio", type=int, default=100_000, help="speed: accounts")
    parser.add_argument("--days", type=int, default=400, help="speed: days of usage history")
    parser.add_argument("--requests", type=int, default=200, help="one account: requests")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server (default: SQLite)")
    parser.add_argument(
        "--profile",
        choices=("train", "predict"),
        default=None,
        help="cProfile a second train_model or a third portfolio prediction (after the timed "
        "ones) and print its top entries to stderr",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="keep the simulated database and the trained model in DIR; share the speed "
        "portfolio with benchmarks/health.py --keep DIR",
    )
    args = parser.parse_args()

    revision = health_bench._revision()
    dbs = health_bench.Databases(
        args.database_url, Path(tempfile.mkdtemp(prefix="tenure-churn-bench-"))
    )
    result: dict[str, Any] = {
        "benchmark": "churn",
        "database": "sqlite" if args.database_url is None else "postgresql",
    }
    try:
        if args.only in (None, "quality"):
            result["quality"] = quality(args, dbs)
        if args.only in (None, "speed"):
            result["speed"] = speed(args, dbs)
    finally:
        dbs.drop()
    result["revision"] = revision
    result["load_average"] = load_average()
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
