"""CSV import: reading, header mapping, all-or-nothing and --partial, every kind, API and CLI."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tenure.accounts.models import Account, Contact, SubscriptionChange
from tenure.cli.imports import app as import_app
from tenure.db import make_session_factory
from tenure.ingest.csvimport import ImportRejected, ImportReport, import_csv
from tenure.ingest.csvimport.columns import (
    SPECS,
    map_header,
    parse_list,
    parse_major,
    parse_time,
    trait_value,
)
from tenure.ingest.csvimport.reader import ImportFailed, open_csv, sniff_delimiter
from tenure.ingest.models import Event, UsageDaily
from tenure.ingest.rollup import ALL_EVENTS
from tenure.kit.actor import Actor
from tenure.support.models import SupportInteraction, SurveyResponse
from tests.conftest import NOW

ACTOR = Actor.cli("tenure import")
PROBLEM = "application/problem+json"


def run(
    engine: Engine, kind: str, text: str | bytes, *, partial: bool = False, chunk_rows: int = 0
) -> ImportReport:
    """One import in its own transaction, as the CLI and the API run it."""
    data = text.encode() if isinstance(text, str) else text
    with make_session_factory(engine)() as session:
        try:
            with session.begin():
                return import_csv(
                    session,
                    kind,
                    io.BytesIO(data),
                    actor=ACTOR,
                    now=NOW,
                    partial=partial,
                    chunk_rows=chunk_rows or None,
                )
        except ImportRejected as exc:
            return exc.report


def count(db: Session, model: type[Any]) -> int:
    db.rollback()  # see what other sessions committed
    return db.scalar(select(func.count()).select_from(model)) or 0


def account(db: Session, external_id: str) -> Account:
    db.rollback()
    found = db.scalar(select(Account).where(Account.external_id == external_id))
    assert found is not None, external_id
    return found


def issues(report: ImportReport) -> list[tuple[int, str | None]]:
    return [(e.line, e.column) for e in report.errors]


ACCOUNTS = (
    "external_id,name,mrr,currency,country\n"
    "a1,Bloom Florals,79.90,GBP,GB\n"
    "a2,Lens & Light,129,USD,US\n"
    "a3,Harbour Venue,299,AUD,AU\n"
)


# ---------------------------------------------------------------------------------------------
# Pure parts: no database


class TestReading:
    @pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
    def test_sniffs_the_delimiter(self, delimiter: str) -> None:
        sample = delimiter.join(["id", "name", "properties"]) + "\n"
        sample += delimiter.join(["1", '"Smith, Jones"', '"{""a"": 1, ""b"": 2}"']) + "\n"
        assert sniff_delimiter(sample, complete=True) == delimiter

    def test_one_column_falls_back_to_comma(self) -> None:
        assert sniff_delimiter("external_id\na1\na2\n", complete=True) == ","

    def test_bom_is_dropped_and_lines_count_from_the_header(self) -> None:
        data = '\ufeffid;name\n1;"two\nlines"\n\n2;plain\n'.encode()
        with open_csv(io.BytesIO(data)) as source:
            assert source.header == ["id", "name"] and source.delimiter == ";"
            assert list(source.rows) == [(2, ["1", "two\nlines"]), (5, ["2", "plain"])]

    def test_not_utf8_is_one_clear_error(self) -> None:
        with (
            pytest.raises(ImportFailed, match="not UTF-8"),
            open_csv(io.BytesIO(b"id\n\xe9t\xe9\n")),
        ):
            pass

    def test_empty_file(self) -> None:
        with pytest.raises(ImportFailed, match="empty"), open_csv(io.BytesIO(b"\n\n")):
            pass

    def test_header_aliases_ignore_case_spaces_underscores_dashes(self) -> None:
        mapped = map_header(
            SPECS["accounts"], ["Account ID", "COMPANY", "mrr", "Signup-Date", "Seats"]
        )
        assert mapped.index == {"external_id": 0, "name": 1, "mrr_cents": 2, "signup_at": 3}
        assert [c.field for c in mapped.columns] == [
            "external_id",
            "name",
            "mrr_cents",
            "signup_at",
            None,  # a trait
        ]
        assert not mapped.errors and not mapped.missing

    def test_header_problems(self) -> None:
        events = map_header(SPECS["events"], ["group_id", "userId", "name", "ts", "browser"])
        assert events.errors == [("browser", "unknown column for events")]
        assert not events.missing
        twice = map_header(SPECS["accounts"], ["id", "account_id", "mrr", "mrr_cents"])
        assert [column for column, _ in twice.errors] == ["account_id", "mrr_cents"]
        assert map_header(SPECS["events"], ["account_id", "event"]).missing == ["timestamp"]

    def test_cells(self) -> None:
        assert parse_time("2026-03-01T10:00:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
        assert parse_time("2026-03-01T12:00:00+02:00") == datetime(2026, 3, 1, 10, tzinfo=UTC)
        assert parse_time("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
        assert parse_time("1772359200") == datetime(2026, 3, 1, 10, tzinfo=UTC)
        assert parse_time("1772359200000") == datetime(2026, 3, 1, 10, tzinfo=UTC)
        with pytest.raises(ValueError, match="not an ISO-8601"):
            parse_time("yesterday")
        assert parse_major("79.90") == 7990 and parse_major("129") == 12900
        for bad in ("79,90", "12.345", "lots"):
            with pytest.raises(ValueError):
                parse_major(bad)
        assert parse_list("vip; early|beta") == ["vip", "early", "beta"]
        assert parse_list('["a", "b c"]') == ["a", "b c"]
        assert [trait_value(v) for v in ("12", "0042", "1.5", "true", "x")] == [
            12,
            "0042",
            1.5,
            True,
            "x",
        ]


# ---------------------------------------------------------------------------------------------
# Accounts and contacts


class TestAccounts:
    def test_bom_semicolons_aliases_and_unknown_columns_as_traits(
        self, engine: Engine, db: Session
    ) -> None:
        text = (
            "\ufeffAccount ID;Company;MRR;Currency;Tags;Signup Date;Seats;Referral Source\n"
            "v_1;Lakeside Barn;199.50;GBP;vip|venue;2025-04-01;12;podcast\n"
        )
        report = run(engine, "accounts", text.encode())
        assert report.status == "imported" and report.created == 1, report.errors
        barn = account(db, "v_1")
        assert (barn.name, barn.mrr_cents, barn.currency) == ("Lakeside Barn", 19950, "GBP")
        assert barn.tags == ["vip", "venue"]
        assert barn.signup_at == datetime(2025, 4, 1, tzinfo=UTC)
        assert barn.traits == {"Seats": 12, "Referral Source": "podcast"}

    def test_quoted_newlines_keep_line_numbers_right(self, engine: Engine, db: Session) -> None:
        text = (
            "external_id,name,currency\n"
            'a1,"Bloom\nFlorals",GBP\n'  # lines 2-3
            "a2,Lens,usd\n"  # line 4
        )
        report = run(engine, "accounts", text, partial=True)
        assert issues(report) == [(4, "currency")]
        assert account(db, "a1").name == "Bloom\nFlorals"

    def test_reimport_changes_nothing(self, engine: Engine) -> None:
        first = run(engine, "accounts", ACCOUNTS)
        assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
        again = run(engine, "accounts", ACCOUNTS)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
        assert again.status == "imported" and again.ok

    def test_all_or_nothing_reports_every_bad_row(self, engine: Engine, db: Session) -> None:
        text = ACCOUNTS + "a4,Bad Money,lots,USD,US\na5,Bad Country,10,USD,usa\n"
        report = run(engine, "accounts", text)
        assert report.status == "rejected"
        assert issues(report) == [(5, "mrr"), (6, "country")]
        assert "not an amount" in report.errors[0].reason
        assert (report.rows, report.valid, report.rejected, report.created) == (5, 3, 2, 0)
        assert count(db, Account) == 0

    def test_partial_imports_the_good_rows(self, engine: Engine, db: Session) -> None:
        text = ACCOUNTS + "a4,Bad Money,lots,USD,US\na5,Bad Country,10,USD,usa\n"
        report = run(engine, "accounts", text, partial=True)
        assert report.status == "partial" and report.created == 3 and report.rejected == 2
        assert count(db, Account) == 3

    def test_a_refused_row_in_a_chunk_lets_the_others_land(
        self, engine: Engine, db: Session
    ) -> None:
        # The service refuses a5 (a parent that exists nowhere); chunks of 2 rows.
        text = (
            "external_id,name,parent_id\n"
            "a1,One,\na2,Two,\na3,Three,a1\na4,Four,\na5,Five,nowhere\na6,Six,\na7,Seven,a6\n"
        )
        strict = run(engine, "accounts", text, chunk_rows=2)
        assert strict.status == "rejected" and issues(strict) == [(6, "parent_id")]
        assert count(db, Account) == 0
        report = run(engine, "accounts", text, partial=True, chunk_rows=2)
        assert report.created == 6 and issues(report) == [(6, "parent_id")]
        assert account(db, "a7").parent_id == account(db, "a6").id

    def test_updates_before_a_refused_row_are_counted_and_kept(
        self, engine: Engine, db: Session
    ) -> None:
        run(engine, "accounts", ACCOUNTS)
        text = "id,name,parent_id\na1,Bloom & Co,\na9,Orphan,nowhere\na2,Lens Studio,\n"
        report = run(engine, "accounts", text, partial=True)
        assert (report.created, report.updated, report.unchanged) == (0, 2, 0)
        assert issues(report) == [(3, "parent_id")]
        assert account(db, "a1").name == "Bloom & Co"
        assert account(db, "a2").name == "Lens Studio"

    def test_children_may_come_before_their_parents(self, engine: Engine, db: Session) -> None:
        text = "external_id,name,parent_external_id\nv1,Barn,grp\nv2,Hall,grp\ngrp,Group,\n"
        report = run(engine, "accounts", text, chunk_rows=2)
        assert report.ok and report.created == 3, report.errors
        assert account(db, "v1").parent_id == account(db, "grp").id

    def test_a_file_repeating_an_id_is_refused(self, engine: Engine) -> None:
        report = run(engine, "accounts", "id,name\na1,One\na1,Again\n")
        assert issues(report) == [(3, "id")] and "line 2" in report.errors[0].reason

    def test_contacts_unknown_account_mapped_to_its_line(self, engine: Engine, db: Session) -> None:
        run(engine, "accounts", ACCOUNTS)
        text = (
            "User ID,Account ID,Email,Consents,Plan Interest\n"
            'u1,a1,ann@bloom.example,"{""email"": true}",high\n'
            "u2,zzz,bob@nowhere.example,,\n"
            "u3,a2,cy@lens.example,,\n"
        )
        report = run(engine, "contacts", text, partial=True)
        assert issues(report) == [(3, "Account ID")]
        assert "zzz does not exist" in report.errors[0].reason
        assert report.created == 2
        db.rollback()
        ann = db.scalar(select(Contact).where(Contact.external_id == "u1"))
        assert ann is not None and ann.consents == {"email": True}
        assert ann.traits == {"Plan Interest": "high"}


# ---------------------------------------------------------------------------------------------
# Subscriptions, support, surveys


class TestOtherKinds:
    def test_every_kind_twice_changes_nothing_the_second_time(
        self, engine: Engine, db: Session
    ) -> None:
        files = {
            "accounts": ACCOUNTS,
            "contacts": "id,account_id,name\nu1,a1,Ann\nu2,a2,Bob\n",
            # No external ids: the account, kind and time identify a change.
            "subscriptions": (
                "account_id,type,mrr_before,mrr_after,currency,date\n"
                "a1,new,0,79.90,GBP,2025-01-01\n"
                "a1,expansion,79.90,129,GBP,2025-06-01T00:00:00Z\n"
            ),
            "support": (
                "ticket_id,account_id,user_id,type,channel,status,escalated,opened_at\n"
                "t1,a1,u1,bug,email,open,yes,2026-05-01T09:00:00Z\n"
                "t2,a2,,billing,chat,resolved,no,2026-05-02T09:00:00Z\n"
            ),
            "surveys": (
                "account,contact_id,survey,score,comment,submitted_at\n"
                "a1,u1,nps,9,Lovely,2026-05-03T10:00:00Z\n"
                "a2,,csat,4,,1777802400\n"
            ),
        }
        for kind, text in files.items():
            first = run(engine, kind, text)
            assert first.ok and first.created == first.rows, (kind, first.errors)
        for kind, text in files.items():
            again = run(engine, kind, text)
            assert (again.created, again.updated, again.unchanged) == (0, 0, again.rows), kind
        assert count(db, SubscriptionChange) == 2
        assert count(db, SupportInteraction) == 2 and count(db, SurveyResponse) == 2
        changed = files["support"].replace("bug,email,open", "bug,email,pending")
        assert run(engine, "support", changed).updated == 1

    def test_rows_without_ids_that_look_the_same_are_refused(self, engine: Engine) -> None:
        run(engine, "accounts", ACCOUNTS)
        text = (
            "account_id,kind,mrr_after,occurred_at\n"
            "a1,new,79,2025-01-01\na1,new,99,2025-01-01T00:00:00Z\n"
        )
        report = run(engine, "subscriptions", text)
        assert issues(report) == [(3, "external_id")]
        assert report.errors[0].reason.startswith("repeats line 2: no external_id")

    def test_surveys_and_support_errors(self, engine: Engine, db: Session) -> None:
        run(engine, "accounts", ACCOUNTS)
        surveys = (
            "id,account_id,kind,score,responded_at\n"
            "s1,a1,nps,11,2026-05-03\n"
            "s2,a1,csat,0,2026-05-03\n"
            "s3,zzz,ces,5,2026-05-03\n"
            "s4,a1,ces,7,2026-05-03\n"
        )
        report = run(engine, "surveys", surveys, partial=True)
        assert issues(report) == [(2, "score"), (3, "score"), (4, "account_id")]
        assert "between 0 and 10" in report.errors[0].reason
        assert "no account with external_id 'zzz'" in report.errors[2].reason
        assert report.created == 1 and count(db, SurveyResponse) == 1
        support = "account_id,type,channel\na1,bug,email\n"
        refused = run(engine, "support", support)
        assert refused.status == "rejected"
        assert [e.column for e in refused.errors] == ["external_id or opened_at"]


# ---------------------------------------------------------------------------------------------
# Events


EVENTS = (
    "group_id,userId,name,time,props\n"
    "a1,u1,login,2026-06-10T09:00:00,\n"  # naive: UTC
    'a1,u2,gallery_upload,1781082000000,"{""photos"": 12}"\n'  # epoch ms: 2026-06-10 09:00
    "a2,u3,login,1781082000,\n"  # epoch s
    "a1,u1,login,2026-06-11T08:00:00Z,\n"
)


class TestEvents:
    def test_events_land_in_usage_daily_and_dedup_on_reimport(
        self, engine: Engine, db: Session
    ) -> None:
        run(engine, "accounts", ACCOUNTS)
        first = run(engine, "events", EVENTS)
        assert first.ok and (first.stored, first.duplicates) == (4, 0), first.errors
        again = run(engine, "events", EVENTS)
        assert (again.stored, again.duplicates) == (0, 4)
        assert count(db, Event) == 4
        a1 = account(db, "a1")
        usage = {
            (row.day, row.metric): row.count
            for row in db.scalars(select(UsageDaily).where(UsageDaily.account_id == a1.id))
        }
        june_10 = date(2026, 6, 10)
        assert usage[(june_10, ALL_EVENTS)] == 2 and usage[(june_10, "gallery_upload")] == 1
        assert usage[(date(2026, 6, 11), "login")] == 1
        upload = db.scalar(select(Event).where(Event.name == "gallery_upload"))
        assert upload is not None and upload.properties == {"photos": 12}
        assert upload.source == "import" and upload.message_id.startswith("csv-")

    def test_message_ids_from_the_file_are_used(self, engine: Engine, db: Session) -> None:
        text = "message_id,account_id,event,timestamp\nm1,a1,login,2026-06-10\n"
        assert run(engine, "events", text).stored == 1
        assert run(engine, "events", text).duplicates == 1
        db.rollback()
        assert db.scalar(select(Event.message_id)) == "m1"

    def test_unknown_column_is_one_error_not_one_per_row(self, engine: Engine, db: Session) -> None:
        text = EVENTS.replace("props\n", "props,browser\n").replace("\n", ",x\n")
        text = text.replace("props,browser,x\n", "props,browser\n")
        strict = run(engine, "events", text)
        assert strict.status == "rejected" and issues(strict) == [(1, "browser")]
        assert strict.header_errors == 1 and strict.rejected == 0
        assert count(db, Event) == 0
        partial = run(engine, "events", text, partial=True)
        assert partial.status == "partial" and partial.stored == 4 and partial.error_count == 1

    def test_bad_rows(self, engine: Engine) -> None:
        future = (NOW + timedelta(days=2)).isoformat()
        text = (
            "account_id,user_id,event,timestamp,properties\n"
            ",,login,2026-06-10,\n"
            "a1,u1,,2026-06-10,\n"
            "a1,u1,login,soon,\n"
            f"a1,u1,login,{future},\n"
            "a1,u1,login,2026-06-10,[1]\n"
            "a1,u1,login,2026-06-10\n"
        )
        report = run(engine, "events", text)
        assert issues(report) == [
            (2, "account_id"),
            (3, "event"),
            (4, "timestamp"),
            (5, "timestamp"),
            (6, "properties"),
            (7, None),
        ]
        assert "in the future" in report.errors[3].reason
        assert "4 fields where the header has 5" in report.errors[5].reason

    def test_errors_are_all_counted_but_the_list_is_capped(self, engine: Engine) -> None:
        text = "account_id,event,timestamp\n" + "a1,login,never\n" * 1200
        report = run(engine, "events", text)
        assert (report.rejected, report.error_count, len(report.errors)) == (1200, 1200, 1000)
        assert report.errors[-1].line == 1001

    def test_a_missing_required_column_is_reported_once(self, engine: Engine) -> None:
        report = run(engine, "events", "account_id,event\na1,login\na2,login\n")
        assert report.status == "rejected" and issues(report) == [(1, "timestamp")]
        assert (report.rows, report.rejected) == (2, 2)


# ---------------------------------------------------------------------------------------------
# API


class TestApi:
    @pytest.fixture
    def api(self, key_client: Callable[..., TestClient]) -> TestClient:
        return key_client("read", "write")

    def test_upload_returns_the_report(self, api: TestClient, db: Session) -> None:
        response = api.post(
            "/api/v1/imports/accounts", content=ACCOUNTS, headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "imported" and body["created"] == 3 and body["errors"] == []
        zipped = gzip.compress(ACCOUNTS.encode())
        again = api.post(
            "/api/v1/imports/accounts",
            content=zipped,
            headers={"Content-Type": "text/csv; charset=utf-8", "Content-Encoding": "gzip"},
        )
        assert again.status_code == 200 and again.json()["unchanged"] == 3
        assert count(db, Account) == 3

    def test_bad_rows_are_422_with_the_report_and_nothing_stored(
        self, api: TestClient, db: Session
    ) -> None:
        text = ACCOUNTS + "a4,Bad Money,lots,USD,US\n"
        response = api.post(
            "/api/v1/imports/accounts", content=text, headers={"Content-Type": "text/csv"}
        )
        assert response.status_code == 422
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["detail"].startswith("Nothing imported: 1 of 4 rows are invalid")
        assert problem["report"]["errors"] == [
            {"line": 5, "column": "mrr", "reason": "'lots' is not an amount"}
        ]
        assert count(db, Account) == 0
        partial = api.post(
            "/api/v1/imports/accounts?partial=true",
            content=text,
            headers={"Content-Type": "text/csv"},
        )
        assert partial.status_code == 200 and partial.json()["status"] == "partial"
        assert count(db, Account) == 3

    def test_refusals(self, api: TestClient, key_client: Callable[..., TestClient]) -> None:
        as_json = api.post(
            "/api/v1/imports/accounts", content="{}", headers={"Content-Type": "application/json"}
        )
        assert as_json.status_code == 415 and "text/csv" in as_json.json()["detail"]
        latin1 = api.post(
            "/api/v1/imports/accounts",
            content="id,name\na1,Caf\xe9\n".encode("latin-1"),
            headers={"Content-Type": "text/csv"},
        )
        assert latin1.status_code == 422 and "not UTF-8" in latin1.json()["detail"]
        assert api.post("/api/v1/imports/planets", content="id\n").status_code == 422
        reader = key_client("read")
        forbidden = reader.post(
            "/api/v1/imports/accounts", content=ACCOUNTS, headers={"Content-Type": "text/csv"}
        )
        assert forbidden.status_code == 403


# ---------------------------------------------------------------------------------------------
# CLI


class TestCli:
    @pytest.fixture
    def invoke(self, database_url: str, tmp_path: Path) -> Callable[..., Any]:
        runner = CliRunner()
        env = {"TENURE_DATABASE_URL": database_url, "TENURE_DATA_DIR": str(tmp_path / "data")}

        def invoke(*args: str) -> Any:
            return runner.invoke(import_app, list(args), env=env, prog_name="tenure import")

        return invoke

    def test_exit_codes_and_report(self, invoke: Callable[..., Any], tmp_path: Path) -> None:
        good = tmp_path / "accounts.csv"
        good.write_text(ACCOUNTS, encoding="utf-8")
        ok = invoke("accounts", str(good))
        assert ok.exit_code == 0, ok.output
        assert "Imported 3 accounts: 3 created, 0 updated, 0 unchanged" in ok.output
        bad = tmp_path / "bad.csv"
        bad.write_text(ACCOUNTS + "a4,Bad Money,lots,USD,US\n", encoding="utf-8")
        rejected = invoke("accounts", str(bad))
        assert rejected.exit_code == 2
        assert "Nothing imported: 1 of 4 rows are invalid" in rejected.output
        assert "--partial" in rejected.output and "not an amount" in rejected.output
        partial = invoke("accounts", str(bad), "--partial")
        assert partial.exit_code == 2
        assert "Imported 3 of 4 accounts" in partial.output

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["planets", "x.csv"], "unknown kind 'planets'"),
            (["accounts", "missing.csv"], "no such file"),
            (["accounts", "latin1.csv"], "not UTF-8"),
        ],
    )
    def test_one_line_errors(
        self,
        invoke: Callable[..., Any],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        args: list[str],
        message: str,
    ) -> None:
        (tmp_path / "latin1.csv").write_bytes("id,name\na1,Caf\xe9\n".encode("latin-1"))
        monkeypatch.chdir(tmp_path)
        result = invoke(*args)
        assert result.exit_code == 2
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
