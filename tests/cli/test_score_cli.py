"""tenure score ...: rescoring from the command line, backfills and scorecard files.

The CLI runs on the system clock, so the data is placed relative to the real today.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tenure.accounts.models import Account
from tenure.cli import app
from tenure.health import service as health_service
from tenure.ingest import service as ingest_service
from tenure.ingest.rollup import ALL_EVENTS
from tests.factories.accounts import make_account

runner = CliRunner()
SHIPPED = files("tenure.health").joinpath("scorecard_wedding.toml").read_text()


def run(args: list[str], database_url: str, tmp_path: Path) -> Result:
    env = {"TENURE_DATABASE_URL": database_url, "TENURE_DATA_DIR": str(tmp_path / "data")}
    return runner.invoke(app, args, env=env, prog_name="tenure")


def one_error_line(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert text in lines[0]


@pytest.fixture
def accounts(db: Session) -> dict[str, uuid.UUID]:
    now = datetime.now(UTC)
    signup = now - timedelta(days=400)
    busy = make_account(db, now=signup, signup_at=signup, external_id="busy", name="Busy Blooms")
    quiet = make_account(db, now=signup, signup_at=signup, external_id="quiet")
    days = [now.date() - timedelta(days=i) for i in range(60)]
    ingest_service.bulk_insert_usage(
        db,
        {
            "account_id": [busy.id] * len(days) * 2,
            "day": days * 2,
            "metric": [ALL_EVENTS] * len(days) + ["login"] * len(days),
            "count": [5] * len(days) * 2,
        },
    )
    db.commit()
    return {"busy": busy.id, "quiet": quiet.id}


class TestRescore:
    def test_the_portfolio_with_a_summary(
        self, database_url: str, tmp_path: Path, db: Session, accounts: dict[str, uuid.UUID]
    ) -> None:
        result = run(["score"], database_url, tmp_path)
        assert result.exit_code == 0, result.output
        assert re.search(r"Scored 2 of 2 accounts as of .* in [\d.]+ s", result.output)
        for label in ("Critical (critical)", "High risk (high)", "Medium (medium)", "Healthy"):
            assert label in result.output
        levels = []
        for account_id in accounts.values():
            latest = health_service.latest(db, account_id)
            assert latest is not None and latest.score is not None
            account = db.get(Account, account_id)
            assert account is not None
            levels.append(account.health_risk)
        assert all(level in ("critical", "high", "medium", "low") for level in levels)

    def test_one_account_explained(
        self, database_url: str, tmp_path: Path, db: Session, accounts: dict[str, uuid.UUID]
    ) -> None:
        result = run(["score", "--account", "quiet"], database_url, tmp_path)
        assert result.exit_code == 0, result.output
        assert "(quiet): score" in result.output and "scorecard wedding-default v1" in result.output
        assert "Components" in result.output and "engagement" in result.output
        assert "satisfaction" in result.output and "no data" in result.output
        assert "Risk factors" in result.output and "active_days_30" in result.output
        assert health_service.latest(db, accounts["quiet"]) is not None
        assert health_service.latest(db, accounts["busy"]) is None

    def test_unknown_account(self, database_url: str, tmp_path: Path) -> None:
        result = run(["score", "--account", "nobody"], database_url, tmp_path)
        one_error_line(result, "no account with external id 'nobody'")

    def test_help_names_every_way(self, tmp_path: Path) -> None:
        result = run(["score", "--help"], f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
        assert result.exit_code == 0
        for text in ("--account", "--backfill", "--from", "--to", "--every", "23:59:59 UTC"):
            assert text in result.output
        assert "scorecard" in result.output


class TestBackfill:
    def test_recomputes_each_day_of_the_period(
        self, database_url: str, tmp_path: Path, db: Session, accounts: dict[str, uuid.UUID]
    ) -> None:
        today = datetime.now(UTC).date()
        start, end = today - timedelta(days=12), today - timedelta(days=8)
        result = run(
            ["score", "--backfill", "--from", str(start), "--to", str(end), "--every", "2"],
            database_url,
            tmp_path,
        )
        assert result.exit_code == 0, result.output
        assert f"Backfilled 3 days from {start} to {end}: 6 scores" in result.output
        rows = health_service.history(
            db,
            accounts["busy"],
            since=datetime.combine(start, datetime.min.time(), tzinfo=UTC),
            until=datetime.combine(today, datetime.min.time(), tzinfo=UTC),
        )
        assert [r.scored_on for r in rows] == [start, start + timedelta(days=2), end]
        assert all((r.as_of.hour, r.as_of.minute, r.as_of.second) == (23, 59, 59) for r in rows)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--from", "2026-03-31", "--to", "2026-01-01"], "--from 2026-03-31 is after --to"),
            (["--from", "2026-01-01", "--to", "31/03/2026"], "--to '31/03/2026' is not an ISO"),
            (["--from", "January", "--to", "2026-03-31"], "--from 'January' is not an ISO date"),
            (["--from", "2026-01-01"], "--backfill needs --from and --to"),
            (["--from", "2026-01-01", "--to", "2999-01-01"], "is in the future"),
        ],
    )
    def test_bad_periods_exit_2_with_one_line(
        self, args: list[str], message: str, database_url: str, tmp_path: Path
    ) -> None:
        one_error_line(run(["score", "--backfill", *args], database_url, tmp_path), message)

    def test_a_period_without_backfill_is_refused(self, database_url: str, tmp_path: Path) -> None:
        result = run(
            ["score", "--from", "2026-01-01", "--to", "2026-01-02"], database_url, tmp_path
        )
        one_error_line(result, "--from and --to go with --backfill")


class TestScorecardFiles:
    def test_a_valid_import_saves_version_2(
        self, database_url: str, tmp_path: Path, db: Session
    ) -> None:
        exported = run(["score", "scorecard", "export", "wedding-default"], database_url, tmp_path)
        assert exported.exit_code == 0, exported.output
        file = tmp_path / "card.toml"
        file.write_text(exported.stdout.replace("weight = 20.0", "weight = 25.0", 1))
        result = run(["score", "scorecard", "import", str(file)], database_url, tmp_path)
        assert result.exit_code == 0, result.output
        assert "Saved scorecard wedding-default version 2" in result.output
        v2, v1 = health_service.scorecard_versions(db, "wedding-default")
        assert (v2.version, v2.active, v1.active) == (2, True, False)
        assert v2.definition["components"][1]["weight"] == 25
        # The export held everything: only the edited weight differs.
        v2.definition["components"][1]["weight"] = 20.0
        assert v2.definition == v1.definition
        listed = run(["score", "scorecard", "list"], database_url, tmp_path)
        assert listed.exit_code == 0 and "wedding-default" in listed.output
        assert re.search(r"wedding-default\s+│\s+2\s+│", listed.output)

    def test_an_invalid_file_lists_every_path_and_saves_nothing(
        self, database_url: str, tmp_path: Path, db: Session
    ) -> None:
        bad = SHIPPED.replace('signal = "sessions_30"', 'signal = "logins"')
        bad = re.sub(r"(?m)^weight = 20$", "weight = -5", bad)
        bad = re.sub(r"(?m)^min = 25$", "min = 0", bad)
        file = tmp_path / "bad.toml"
        file.write_text(bad)
        result = run(["score", "scorecard", "import", str(file)], database_url, tmp_path)
        assert result.exit_code == 2
        assert "is not a valid scorecard (3 errors)" in result.output
        for path in ("components[0].signals[1].signal:", "components[1].weight:", "risk_bands:"):
            assert f"  {path}" in result.output
        assert "unknown signal 'logins'" in result.output
        assert "Traceback" not in result.output
        assert health_service.active_cards(db) and [
            r.version for r in health_service.scorecard_versions(db, "wedding-default")
        ] == [1]

    @pytest.mark.parametrize(
        ("content", "message"),
        [('key = "x"\nname = ', "is not valid TOML"), (None, "cannot read")],
    )
    def test_unreadable_files_are_one_line(
        self, content: str | None, message: str, database_url: str, tmp_path: Path
    ) -> None:
        file = tmp_path / "card.toml"
        if content is not None:
            file.write_text(content)
        result = run(["score", "scorecard", "import", str(file)], database_url, tmp_path)
        one_error_line(result, message)

    def test_export_as_json_and_unknown_keys(self, database_url: str, tmp_path: Path) -> None:
        result = run(
            ["score", "scorecard", "export", "wedding-default", "--json"], database_url, tmp_path
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["key"] == "wedding-default" and data["default"] is True
        one_error_line(
            run(["score", "scorecard", "export", "nope"], database_url, tmp_path),
            "no scorecard 'nope'",
        )
        one_error_line(
            run(
                ["score", "scorecard", "export", "wedding-default", "--version", "7"],
                database_url,
                tmp_path,
            ),
            "has no version 7",
        )
