"""How fast the Accounts list answers on a 100,000-account portfolio.

Prints one JSON object: median milliseconds per request of the dashboard page and the API,
for the default page, a name search, combined filters, a sort by MRR and a deep page.

    .venv/bin/python benchmarks/accounts_list.py [--accounts 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from tenure.accounts.models import Account
from tenure.app import create_app
from tenure.auth import service as auth_service
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory, upgrade
from tenure.kit.actor import Actor

CATEGORIES = [
    "photographer",
    "videographer",
    "venue",
    "caterer",
    "florist",
    "planner",
    "dj_band",
    "baker",
    "hair_makeup",
    "stationer",
    "officiant",
    "rentals",
]
WORDS = [
    "Golden",
    "Bloom",
    "Harbour",
    "Velvet",
    "Willow",
    "Silver",
    "Rose",
    "Lakeside",
    "Ivory",
    "Meadow",
    "Northern",
    "Coastal",
    "Petal",
    "Lens",
    "Oak",
    "Summit",
]
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    rows = []
    for i in range(n):
        name = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(CATEGORIES).title()} {i}"
        rows.append(
            {
                "id": uuid.uuid4(),
                "external_id": f"acc_{i:07d}",
                "name": name,
                "name_lower": name.lower(),
                "category": rng.choice(CATEGORIES),
                "plan": rng.choice(["starter", "professional", "scale"]),
                "mrr_cents": rng.choice([2900, 7900, 19900]) + rng.randint(0, 5000),
                "currency": "USD",
                "country": "US",
                "hemisphere": "north",
                "signup_at": NOW - timedelta(days=rng.randint(0, 1500)),
                "status": rng.choices(["active", "trial", "churned"], [0.8, 0.05, 0.15])[0],
                "tags": [],
                "traits": {},
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Account), rows[start : start + 5000])
    with make_session_factory(engine)() as db, db.begin():
        auth_service.create_user(
            db,
            email="bench@example.com",
            password="benchmark-password",
            role="admin",
            actor=Actor.system(),
            now=NOW,
        )
    engine.dispose()


def median_ms(client: TestClient, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    started = time.perf_counter()
    seed(url, args.accounts)
    seed_s = time.perf_counter() - started
    settings = Settings(env="test", database_url=url, data_dir=tmp, secret_key="x" * 40)
    app = create_app(settings, clock=FixedClock(NOW))
    with TestClient(app) as client:
        client.post(
            "/api/v1/session", json={"email": "bench@example.com", "password": "benchmark-password"}
        )
        deep = "/api/v1/accounts?limit=50"
        for _ in range(40):  # walk 40 pages forward to get a cursor 2,000 rows in
            deep = "/api/v1/accounts?limit=50&cursor=" + client.get(deep).json()["next_cursor"]
        cases = {
            "page_default": "/accounts",
            "page_search": "/accounts?q=golden+willow",
            "page_filters": "/accounts?category=florist&plan=scale&status=active",
            "page_sort_mrr_desc": "/accounts?sort=mrr&order=desc",
            "api_default": "/api/v1/accounts?limit=50",
            "api_search": "/api/v1/accounts?q=golden&limit=50",
            "api_deep_page": deep,
        }
        figures = {name: median_ms(client, path, args.repeat) for name, path in cases.items()}
    print(
        json.dumps(
            {
                "benchmark": "accounts_list",
                "accounts": args.accounts,
                "database": url.split(":")[0],
                "seed_seconds": round(seed_s, 1),
                "median_ms": figures,
                "machine": f"{platform.machine()} {platform.python_version()}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
