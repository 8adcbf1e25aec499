"""Fixtures: a fresh migrated database per test on SQLite and (when configured) PostgreSQL,
a fixed clock, an app, HTTP clients logged in as an admin or holding an API key.

PostgreSQL and Redis come from TENURE_TEST_DATABASE_URL / TENURE_TEST_REDIS_URL. On a laptop
without them those tests skip with the reason; with CI=true a missing service fails the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session

import tenure.models  # noqa: F401
from tenure.app import create_app
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import Base, make_engine, make_session_factory, upgrade
from tests.factories.auth import make_api_key, make_user

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_URL = os.environ.get("TENURE_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TENURE_TEST_REDIS_URL")
ADMIN_PASSWORD = "correct horse battery staple"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def missing_service(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI requires this service: {reason}", pytrace=False)
    pytest.skip(reason)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test worker, migrated once, emptied after every test."""
    if not PG_URL:
        missing_service(
            "PostgreSQL tests need TENURE_TEST_DATABASE_URL (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    base = make_url(Settings(database_url=PG_URL).database_url)
    # The pid keeps two test runs on one server (two checkouts, CI and a laptop) apart.
    name = f"tenure_test_{_worker()}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing_service(
            f"PostgreSQL at {base.render_as_string(hide_password=True)} "
            f"is not usable: {str(exc).splitlines()[0]}"
        )
    url = base.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_postgres(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """The URL of a fresh, migrated, empty database."""
    if request.param == "sqlite":
        path = tmp_path / "tenure.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database")
    yield url
    cleanup = make_engine(url)
    try:
        upgrade(cleanup)  # a test may have downgraded the schema
        _empty_postgres(cleanup)
    finally:
        cleanup.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data; commit what the app must see."""
    with make_session_factory(engine)() as session:
        yield session


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="test",
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        redis_url=None,
        # Test receivers listen on loopback.
        allow_private_destinations=True,
    )


@pytest.fixture
def app(settings: Settings, clock: FixedClock, engine: Engine) -> FastAPI:
    return create_app(settings, clock=clock, engine=engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin(db: Session, clock: FixedClock) -> dict[str, str]:
    user = make_user(
        db, email="admin@example.com", role="admin", password=ADMIN_PASSWORD, now=clock.now()
    )
    db.commit()
    return {"email": user.email, "password": ADMIN_PASSWORD, "id": str(user.id)}


def login(client: TestClient, email: str, password: str) -> None:
    response = client.post("/api/v1/session", json={"email": email, "password": password})
    assert response.status_code == 200, response.text


@pytest.fixture
def admin_client(client: TestClient, admin: dict[str, str]) -> TestClient:
    login(client, admin["email"], admin["password"])
    return client


@pytest.fixture
def key_client(app: FastAPI, db: Session, clock: FixedClock) -> Iterator[Callable[..., TestClient]]:
    """Factory: a client authenticated with a fresh API key holding the given scopes."""
    clients: list[TestClient] = []

    def make(*scopes: str) -> TestClient:
        key = make_api_key(db, scopes=list(scopes), now=clock.now())
        db.commit()
        c = TestClient(app, headers={"Authorization": f"Bearer {key}"})
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        missing_service("Redis tests need TENURE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_service(f"Redis at {REDIS_URL} is not reachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def churn_sqlite_template(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """A SQLite file holding the simulated business of tests/factories/churn.py, model v1
    trained and active."""
    from tests.factories import churn

    path = tmp_path_factory.mktemp("churn") / "churn.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    churn.build(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def churn_pg_template(pg_database: str) -> Iterator[str]:
    """The same business in a PostgreSQL database used as a template for each test's copy."""
    from tests.factories import churn

    url = make_url(pg_database)
    name = f"{url.database}_churn"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    template_url = url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(template_url)
    upgrade(engine)
    churn.build(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_copies = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def simulated_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh copy of the simulated business (model v1 active). A module uses it with
    `database_url = simulated_database_url`-style override: see tests/churn/conftest.py."""
    if request.param == "sqlite":
        path = tmp_path / "tenure.db"
        shutil.copy(request.getfixturevalue("churn_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template: str = request.getfixturevalue("churn_pg_template")
    url = make_url(request.getfixturevalue("pg_database"))
    name = f"{template}_{next(_copies)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
