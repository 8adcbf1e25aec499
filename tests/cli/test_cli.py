from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tenure.accounts.models import Account
from tenure.auth import service as auth_service
from tenure.cli import app
from tenure.db import make_engine, make_session_factory

runner = CliRunner()


def run(args: list[str], database_url: str, tmp_path: Path, input: str | None = None):  # type: ignore[no-untyped-def]
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_DATA_DIR": str(tmp_path / "data")}
    return runner.invoke(app, args, env=env, input=input, prog_name="tenure")


class TestInit:
    def test_creates_schema_and_admin_then_is_idempotent(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        first = run(["init", "--email", "Boss@Example.com"], url, tmp_path)
        assert first.exit_code == 0, first.output
        assert "Created admin boss@example.com" in first.output
        password = first.output.split("Password (shown once): ")[1].split()[0]
        assert len(password) >= 15
        second = run(["init", "--email", "boss@example.com"], url, tmp_path)
        assert second.exit_code == 0
        assert "already exists" in second.output and "Password" not in second.output
        users = run(["users", "list"], url, tmp_path)
        assert "boss@example.com" in users.output and "admin" in users.output

    def test_password_from_stdin(self, database_url: str, tmp_path: Path) -> None:
        result = run(
            ["init", "--email", "ops@example.com", "--password-stdin"],
            database_url,
            tmp_path,
            input="a very good password\n",
        )
        assert result.exit_code == 0, result.output
        assert "shown once" not in result.output

    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot reach database"),
            ("sqlite:////proc/tenure.db", "cannot reach database"),
            ("sqlite:////definitely/missing/dir/tenure.db", "does not exist"),
            ("mysql+nodriver://x/y", "invalid TENURE_DATABASE_URL"),
        ],
    )
    def test_unusable_database_is_one_line_and_exit_2(
        self, url: str, reason: str, tmp_path: Path
    ) -> None:
        result = run(["init"], url, tmp_path)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0]

    def test_real_process_prints_no_traceback(self, tmp_path: Path) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "tenure", "serve"],
            env={
                "TENURE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
                "TENURE_DATA_DIR": str(tmp_path),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert proc.stderr.strip().startswith("error: cannot reach database")

    def test_serve_refuses_an_uninitialised_database(self, tmp_path: Path) -> None:
        result = run(["serve"], f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
        assert result.exit_code == 2
        assert "run 'tenure init'" in result.output


class TestUsageErrors:
    @pytest.mark.parametrize(
        "args",
        [
            ["init", "--bogus"],
            ["serve", "--port", "seventy"],
            ["serve", "--port", "70000"],
            ["users", "create"],
            ["nonsense"],
        ],
    )
    def test_exit_2_with_usage(self, args: list[str], tmp_path: Path) -> None:
        result = run(args, f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
        assert result.exit_code == 2
        assert "Usage: tenure" in result.output

    def test_invalid_values_are_one_line(self, database_url: str, tmp_path: Path) -> None:
        for args in (
            ["users", "create", "--email", "x@example.com", "--role", "owner"],
            ["keys", "create", "--name", "k", "--scope", "root"],
            ["init", "--email", "not-an-email"],
        ):
            result = run(args, database_url, tmp_path)
            assert result.exit_code == 2, (args, result.output)
            assert (
                result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
            )


class TestUsersAndKeys:
    def test_user_lifecycle(self, database_url: str, tmp_path: Path) -> None:
        created = run(
            ["users", "create", "--email", "csm@example.com", "--role", "csm"],
            database_url,
            tmp_path,
        )
        assert created.exit_code == 0, created.output
        assert "Password (shown once)" in created.output
        duplicate = run(["users", "create", "--email", "CSM@example.com"], database_url, tmp_path)
        assert duplicate.exit_code == 2 and "already exists" in duplicate.output
        disabled = run(["users", "disable", "csm@example.com"], database_url, tmp_path)
        assert disabled.exit_code == 0
        listed = run(["users", "list"], database_url, tmp_path).output
        assert "csm@example.com" in listed and "no" in listed
        missing = run(["users", "disable", "ghost@example.com"], database_url, tmp_path)
        assert missing.exit_code == 2 and "no user" in missing.output

    def test_key_lifecycle(self, database_url: str, tmp_path: Path) -> None:
        created = run(
            ["keys", "create", "--name", "segment", "--scope", "ingest", "--scope", "read"],
            database_url,
            tmp_path,
        )
        assert created.exit_code == 0, created.output
        key = created.output.split("Key (shown once): ")[1].split()[0]
        prefix = key[:11]
        listed = run(["keys", "list"], database_url, tmp_path).output
        assert prefix in listed and key not in listed
        revoked = run(["keys", "revoke", prefix], database_url, tmp_path)
        assert revoked.exit_code == 0 and prefix in revoked.output
        unknown = run(["keys", "revoke", "tn_nothere"], database_url, tmp_path)
        assert unknown.exit_code == 2


class TestDemo:
    def test_refuses_to_overwrite_without_force(self, tmp_path: Path) -> None:
        db = tmp_path / "demo.db"
        db.write_bytes(b"precious")
        result = runner.invoke(app, ["demo", "--db", str(db), "--no-serve"])
        assert result.exit_code == 2 and "--force" in result.output
        assert db.read_bytes() == b"precious"

    def test_loads_a_simulated_portfolio_with_a_login(self, tmp_path: Path) -> None:
        db = tmp_path / "demo.db"
        result = runner.invoke(
            app,
            ["demo", "--db", str(db), "--no-serve", "--accounts", "25", "--months", "3"],
            env={"TENURE_DATA_DIR": str(tmp_path / "data")},
        )
        assert result.exit_code == 0, result.output
        assert "admin@tenure.demo" in result.output and "http://127.0.0.1:8000" in result.output
        assert "Loaded 25 accounts" in result.output
        password = result.output.split("password: ")[1].split()[0]
        engine = make_engine(f"sqlite:///{db}")
        with make_session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(Account)) == 25
            owned = session.scalar(
                select(func.count()).select_from(Account).where(Account.owner_id.is_not(None))
            )
            assert owned == 25  # every account has a CSM
            auth_service.authenticate(session, "admin@tenure.demo", password, now=datetime.now(UTC))
        engine.dispose()

    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            (["--accounts", "-5"], "accounts must be"),
            (["--accounts", "0"], "accounts must be"),
            (["--accounts", "50000000"], "accounts must be"),
            (["--months", "0"], "months must be"),
            (["--months", "1000"], "months must be"),
            (["--seed", "-1"], "seed must be"),
        ],
    )
    def test_bad_sizes_exit_2_and_touch_nothing(
        self, args: list[str], reason: str, tmp_path: Path
    ) -> None:
        db = tmp_path / "demo.db"
        db.write_bytes(b"precious")
        result = runner.invoke(app, ["demo", "--db", str(db), "--no-serve", "--force", *args])
        assert result.exit_code == 2
        assert result.output.startswith("error: ") and reason in result.output
        assert db.read_bytes() == b"precious"
