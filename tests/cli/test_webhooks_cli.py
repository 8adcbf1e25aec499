"""tenure webhooks ..., tenure hooks ... and tenure hub ...: what an operator types."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from tenure.cli import app
from tenure.clock import SystemClock
from tenure.db import make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.dispatcher import Dispatcher
from tenure.hub.events import AlertFired
from tenure.webhooks.sender import WebhookSender
from tenure.worker.runtime import build_dispatcher, load_jobs
from tests.receivers import run_async

runner = CliRunner()
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Tenure = Callable[..., Result]


def command(database_url: str, tmp_path: Path) -> Tenure:
    """Runs `tenure ARGS...`; keyword args are TENURE_ settings."""

    def run(*args: str, **settings: str) -> Result:
        env = {
            "TENURE_DATABASE_URL": database_url,
            "TENURE_DATA_DIR": str(tmp_path / "data"),
            # Test receivers listen on loopback.
            "TENURE_ALLOW_PRIVATE_DESTINATIONS": "true",
            "COLUMNS": "250",  # tables as wide as they need
        }
        env.update({f"TENURE_{k.upper()}": v for k, v in settings.items()})
        return runner.invoke(app, list(args), env=env, prog_name="tenure")

    return run


@pytest.fixture
def tenure(database_url: str, tmp_path: Path) -> Tenure:
    """`tenure` against a database initialised with `tenure init`."""
    run = command(database_url, tmp_path)
    init = run("init")
    assert init.exit_code == 0, init.output
    return run


@pytest.fixture
def offline(tmp_path: Path) -> Tenure:
    """`tenure` with no database at all (the URL names a file that does not exist)."""
    return command(f"sqlite:///{tmp_path / 'absent' / 'tenure.db'}", tmp_path)


def one_error_line(result: Result) -> str:
    """The single `error: ...` line of a command that failed with exit code 2."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


class Receiver:
    """Answers every POST with `status` and records (headers, body)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                payload = b"thanks" if receiver.status < 400 else b"broken"
                self.send_response(receiver.status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/tenure"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def verifies(headers: dict[str, str], body: bytes, secret: str) -> bool:
    """Standard Webhooks signature check, written independently of tenure.webhooks.signing."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def create(tenure: Tenure, url: str, *args: str) -> tuple[str, str]:
    """(endpoint id, signing secret) of a new endpoint."""
    result = tenure("webhooks", "create", url, *args)
    assert result.exit_code == 0, result.output
    endpoint_id = result.stdout.split("Created endpoint ")[1].split()[0]
    secret = result.stdout.split("Signing secret: ")[1].split()[0]
    return endpoint_id, secret


class TestCreateAndList:
    def test_create_prints_the_id_and_secret_and_list_shows_it(
        self, tenure: Tenure, receiver: Receiver
    ) -> None:
        endpoint_id, secret = create(
            tenure, receiver.url, "--event", "alert.fired", "--description", "ops"
        )
        assert uuid.UUID(endpoint_id)
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) >= 24
        listed = tenure("webhooks", "list")
        assert listed.exit_code == 0
        row = next(line for line in listed.stdout.splitlines() if endpoint_id in line)
        assert receiver.url in row and "alert.fired" in row and "yes" in row and "ops" in row
        assert secret not in listed.stdout

    def test_not_an_http_url_is_one_line_and_exit_2(self, tenure: Tenure) -> None:
        line = one_error_line(tenure("webhooks", "create", "ftp://x"))
        assert "ftp://x" in line and "http" in line
        assert tenure("webhooks", "list").stdout.count("ftp://") == 0

    def test_private_url_is_refused_unless_allowed(self, tenure: Tenure) -> None:
        line = one_error_line(
            tenure(
                "webhooks",
                "create",
                "http://127.0.0.1:8080/hook",
                allow_private_destinations="false",
            )
        )
        assert "loopback" in line and "TENURE_ALLOW_PRIVATE_DESTINATIONS" in line

    def test_unknown_event_type_is_refused(self, tenure: Tenure, receiver: Receiver) -> None:
        line = one_error_line(tenure("webhooks", "create", receiver.url, "--event", "nope"))
        assert "nope" in line


class TestSendTest:
    def test_signed_with_the_endpoint_secret_and_exit_0_on_200(
        self, tenure: Tenure, receiver: Receiver
    ) -> None:
        _, secret = create(tenure, receiver.url)
        result = tenure("webhooks", "test", receiver.url)
        assert result.exit_code == 0, result.output
        assert "OK HTTP 200" in result.stdout
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verifies(headers, body, secret)
        assert not verifies(headers, body, "whsec_" + base64.b64encode(b"x" * 24).decode())
        assert headers["webhook-id"] in result.stdout
        assert json.loads(body)["type"] == "webhook.test"

    def test_a_url_without_endpoint_is_signed_with_the_secret_it_prints(
        self, tenure: Tenure, receiver: Receiver
    ) -> None:
        result = tenure("webhooks", "test", receiver.url)
        assert result.exit_code == 0, result.output
        secret = result.stdout.split("signed with ")[1].split()[0]
        headers, body = receiver.requests[0]
        assert verifies(headers, body, secret)

    def test_given_secret(self, tenure: Tenure, receiver: Receiver) -> None:
        secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
        result = tenure("webhooks", "test", receiver.url, "--secret", secret)
        assert result.exit_code == 0, result.output
        headers, body = receiver.requests[0]
        assert verifies(headers, body, secret)
        assert "error: " in one_error_line(
            tenure("webhooks", "test", receiver.url, "--secret", "hunter2")
        )

    def test_exit_1_when_the_receiver_fails(self, tenure: Tenure) -> None:
        with Receiver(status=500) as failing:
            create(tenure, failing.url)
            result = tenure("webhooks", "test", failing.url)
        assert result.exit_code == 1
        assert "FAILED HTTP 500" in result.stdout and "broken" in result.stdout
        assert len(failing.requests) == 1

    def test_exit_1_when_nothing_listens(self, tenure: Tenure) -> None:
        with Receiver() as gone:
            url = gone.url
        result = tenure("webhooks", "test", url)
        assert result.exit_code == 1
        assert "FAILED" in result.stdout

    def test_private_url_is_refused_unless_allowed(
        self, tenure: Tenure, receiver: Receiver
    ) -> None:
        result = tenure("webhooks", "test", receiver.url, allow_private_destinations="false")
        assert "TENURE_ALLOW_PRIVATE_DESTINATIONS" in one_error_line(result)
        assert receiver.requests == []


class TestManage:
    def row(self, tenure: Tenure, endpoint_id: str) -> str | None:
        listed = tenure("webhooks", "list")
        assert listed.exit_code == 0
        return next((line for line in listed.stdout.splitlines() if endpoint_id in line), None)

    def test_disable_enable_rotate_delete(self, tenure: Tenure, receiver: Receiver) -> None:
        endpoint_id, secret = create(tenure, receiver.url)

        disabled = tenure("webhooks", "disable", endpoint_id)
        assert disabled.exit_code == 0 and "disabled" in disabled.stdout
        assert "no: disabled" in (self.row(tenure, endpoint_id) or "")
        enabled = tenure("webhooks", "enable", endpoint_id)
        assert enabled.exit_code == 0 and "enabled" in enabled.stdout
        assert "yes" in (self.row(tenure, endpoint_id) or "")

        rotated = tenure("webhooks", "rotate-secret", endpoint_id)
        assert rotated.exit_code == 0, rotated.output
        new_secret = rotated.stdout.split("New signing secret: ")[1].split()[0]
        assert new_secret.startswith("whsec_") and new_secret != secret
        assert tenure("webhooks", "test", receiver.url).exit_code == 0
        headers, body = receiver.requests[-1]
        assert verifies(headers, body, new_secret)

        deleted = tenure("webhooks", "delete", endpoint_id)
        assert deleted.exit_code == 0 and endpoint_id in deleted.stdout
        assert self.row(tenure, endpoint_id) is None
        assert "no webhook endpoint" in one_error_line(tenure("webhooks", "delete", endpoint_id))

    @pytest.mark.parametrize("command", ["disable", "enable", "delete", "rotate-secret"])
    def test_unknown_or_malformed_id_is_exit_2(self, tenure: Tenure, command: str) -> None:
        assert "is not an id" in one_error_line(tenure("webhooks", command, "nope"))
        assert "no webhook endpoint" in one_error_line(
            tenure("webhooks", command, str(uuid.uuid4()))
        )


class TestDeliveriesAndReplay:
    def test_replay_sends_a_delivery_again(
        self, tenure: Tenure, receiver: Receiver, engine: Engine
    ) -> None:
        endpoint_id, _ = create(tenure, receiver.url)
        sessions = make_session_factory(engine)
        with sessions() as session, session.begin():
            hub_service.publish(
                session,
                AlertFired(alert_id=uuid.uuid4(), rule="tests", severity="info", message="x"),
                account_id=None,
                now=datetime.now(UTC),
            )
        deliver(sessions)
        assert len(receiver.requests) == 1

        listed = tenure("webhooks", "deliveries", endpoint_id)
        assert listed.exit_code == 0, listed.output
        row = next(line for line in listed.stdout.splitlines() if "alert.fired" in line)
        assert "delivered" in row and "200" in row
        delivery_id = UUID.findall(row)[0]

        replayed = tenure("webhooks", "replay", delivery_id)
        assert replayed.exit_code == 0, replayed.output
        assert "Queued 1 delivery again" in replayed.stdout
        pending = tenure("webhooks", "deliveries", endpoint_id, "--status", "pending")
        assert delivery_id in pending.stdout
        assert "still pending" in one_error_line(tenure("webhooks", "replay", delivery_id))

        deliver(sessions)
        assert len(receiver.requests) == 2
        first, again = receiver.requests
        # The same message again: same webhook-id, same body.
        assert first[0]["webhook-id"] == again[0]["webhook-id"] and first[1] == again[1]

    def test_replay_of_a_bad_id_is_exit_2(self, tenure: Tenure) -> None:
        assert "is not an id" in one_error_line(tenure("webhooks", "replay", "bad-id"))
        assert "no webhook delivery" in one_error_line(
            tenure("webhooks", "replay", str(uuid.uuid4()))
        )

    def test_range_replay_needs_a_known_endpoint_and_aware_times(
        self, tenure: Tenure, receiver: Receiver
    ) -> None:
        endpoint_id, _ = create(tenure, receiver.url)
        since = "2026-01-01T00:00:00+00:00"
        ok = tenure("webhooks", "replay", endpoint_id, "--since", since)
        assert ok.exit_code == 0 and "Queued 0 deliveries again" in ok.stdout
        assert "time zone" in one_error_line(
            tenure("webhooks", "replay", endpoint_id, "--since", "2026-01-01T00:00:00")
        )
        assert "no webhook endpoint" in one_error_line(
            tenure("webhooks", "replay", str(uuid.uuid4()), "--since", since)
        )


def deliver(sessions: sessionmaker[Session]) -> None:
    """One round of what the worker does: fan out, then send."""
    build_dispatcher().dispatch_once(sessions, now=datetime.now(UTC))
    sender = WebhookSender(sessions, clock=SystemClock(), allow_private=True)

    async def send() -> None:
        async with sender.client() as client:
            await sender.run_once(client)

    run_async(send())


class TestHooks:
    def test_create_list_delete(self, tenure: Tenure) -> None:
        created = tenure("hooks", "create", "billing", "--account-path", "data.customer")
        assert created.exit_code == 0, created.output
        path = re.search(r"/api/v1/hooks/(\S+)", created.stdout)
        assert path is not None and path.group(1).startswith("th_")
        listed = tenure("hooks", "list")
        row = next(line for line in listed.stdout.splitlines() if "billing" in line)
        assert "data.customer" in row and path.group(1) not in listed.stdout
        assert "already exists" in one_error_line(tenure("hooks", "create", "billing"))

        hook_id = UUID.findall(row)[0]
        deleted = tenure("hooks", "delete", hook_id)
        assert deleted.exit_code == 0, deleted.output
        assert "billing" not in tenure("hooks", "list").stdout
        assert "no incoming hook" in one_error_line(tenure("hooks", "delete", hook_id))

    @pytest.mark.parametrize(
        "args", [["Bad Name"], ["billing", "--account-path", "data..customer"]]
    )
    def test_invalid_names_and_paths_are_exit_2(self, tenure: Tenure, args: list[str]) -> None:
        one_error_line(tenure("hooks", "create", *args))
        assert "th_" not in tenure("hooks", "list").stdout


def schedule_rows(stdout: str) -> dict[str, str]:
    """Job name -> its row in `tenure hub schedule`."""
    return {job: line for line in stdout.splitlines() for job in load_jobs() if f" {job} " in line}


class TestHub:
    def test_dead_prints_a_table(self, tenure: Tenure) -> None:
        result = tenure("hub", "dead")
        assert result.exit_code == 0, result.output
        assert "subscriber" in result.stdout and "last error" in result.stdout

    def test_dead_lists_a_dead_delivery_and_replay_revives_it(
        self, tenure: Tenure, engine: Engine
    ) -> None:
        def broken(_session: Session, _event: Any, _outbox_id: int) -> None:
            raise RuntimeError("the CRM is down")

        sessions = make_session_factory(engine)
        with sessions() as session, session.begin():
            outbox_id = hub_service.publish(
                session,
                AlertFired(alert_id=uuid.uuid4(), rule="tests", severity="info", message="x"),
                account_id=None,
                now=datetime.now(UTC),
            )
        dispatcher = Dispatcher(max_attempts=1)
        dispatcher.subscribe("tests.crm", [AlertFired], broken)
        dispatcher.dispatch_once(sessions, now=datetime.now(UTC))

        dead = tenure("hub", "dead")
        row = next(line for line in dead.stdout.splitlines() if "tests.crm" in line)
        assert str(outbox_id) in row and "the CRM is down" in row
        replayed = tenure("hub", "replay", str(outbox_id), "tests.crm")
        assert replayed.exit_code == 0, replayed.output
        assert "tests.crm" not in tenure("hub", "dead").stdout
        assert "not dead" in one_error_line(tenure("hub", "replay", str(outbox_id), "tests.crm"))

    def test_replay_of_an_unknown_delivery_is_exit_2(self, tenure: Tenure) -> None:
        line = one_error_line(tenure("hub", "replay", "999", "nobody"))
        assert "no delivery" in line and "999" in line and "nobody" in line

    def test_schedule_lists_the_jobs_and_reflects_overrides(self, offline: Tenure) -> None:
        default = offline("hub", "schedule")
        assert default.exit_code == 0, default.output
        rows = schedule_rows(default.stdout)
        assert set(rows) == set(load_jobs())  # every job, with what it does
        assert "17 * * * *" in rows["auth.prune_sessions"]
        assert "40 3 * * *" in rows["hub.prune_outbox"]
        assert "50 3 * * *" in rows["webhooks.prune_log"]

        overridden = offline(
            "hub",
            "schedule",
            schedules=json.dumps({"auth.prune_sessions": "0 4 * * *", "hub.prune_outbox": "off"}),
        )
        assert overridden.exit_code == 0, overridden.output
        rows = schedule_rows(overridden.stdout)
        assert "0 4 * * *" in rows["auth.prune_sessions"]
        assert "│ off" in rows["hub.prune_outbox"]
        assert "50 3 * * *" in rows["webhooks.prune_log"]

    @pytest.mark.parametrize(
        ("schedules", "named"),
        [
            ({"hub.prune_outbox": "0 25 * * *"}, "hub.prune_outbox"),
            ({"webhooks.prune_log": "nightly"}, "webhooks.prune_log"),
            ({"hub.prune_everything": "0 3 * * *"}, "hub.prune_everything"),
        ],
    )
    def test_invalid_schedule_is_exit_2_naming_the_job(
        self, offline: Tenure, schedules: dict[str, str], named: str
    ) -> None:
        line = one_error_line(offline("hub", "schedule", schedules=json.dumps(schedules)))
        assert named in line
