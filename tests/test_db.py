from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.db import Base, downgrade, make_engine, migration_status, upgrade
from tests.factories.accounts import make_account

NOW = datetime(2026, 3, 1, 8, tzinfo=UTC)


class TestMigrations:
    def test_schema_from_migrations_matches_the_models(self, engine: Engine) -> None:
        tables = set(inspect(engine).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        for name in (
            "accounts",
            "contacts",
            "subscription_changes",
            "events",
            "usage_daily",
            "support_interactions",
            "survey_responses",
            "staff_users",
            "sessions",
            "api_keys",
            "audit_log",
        ):
            assert name in tables

    def test_upgrade_is_idempotent_and_reversible(self, engine: Engine) -> None:
        upgrade(engine)
        current, head = migration_status(engine)
        assert current == head
        downgrade(engine, "base")
        assert "accounts" not in inspect(engine).get_table_names()
        assert migration_status(engine)[0] is None
        upgrade(engine)
        assert migration_status(engine)[0] == head


class TestTypes:
    def test_datetimes_come_back_aware_utc(self, db: Session) -> None:
        signup = datetime(2026, 2, 1, 10, tzinfo=timezone(timedelta(hours=-5)))
        account = make_account(db, now=NOW, signup_at=signup)
        db.commit()
        db.expunge_all()
        loaded = db.scalar(select(Account).where(Account.id == account.id))
        assert loaded is not None
        assert loaded.signup_at == signup
        assert loaded.signup_at.tzinfo == UTC
        assert loaded.signup_at.hour == 15

    def test_naive_datetimes_are_refused(self, db: Session) -> None:
        with pytest.raises(Exception, match="naive datetime"):
            make_account(db, now=datetime(2026, 1, 1))
            db.flush()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_foreign_keys_are_enforced(db: Session) -> None:
    import uuid

    from tenure.accounts.models import Contact

    db.add(Contact(external_id="u1", account_id=uuid.uuid4(), created_at=NOW, updated_at=NOW))
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        db.flush()


def test_migrations_and_models_agree(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
