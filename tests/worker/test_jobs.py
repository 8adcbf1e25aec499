"""Periodic jobs: their schedules (defaults, TENURE_SCHEDULES, "off"), the lock that keeps
two workers from running one job at once, and what each job deletes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from huey import Huey
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tenure.auth import service as auth_service
from tenure.auth.models import UserSession
from tenure.auth.tasks import prune_sessions
from tenure.clock import FixedClock
from tenure.config import Settings
from tenure.db import make_engine, make_session_factory
from tenure.hub import service as hub_service
from tenure.hub.dispatcher import Dispatcher, Handler
from tenure.hub.events import AlertFired, DomainEvent
from tenure.hub.models import Outbox
from tenure.hub.tasks import prune_outbox
from tenure.kit.actor import Actor
from tenure.kit.errors import ConfigurationError
from tenure.webhooks import service as webhooks_service
from tenure.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookStatus
from tenure.webhooks.schemas import EndpointCreate
from tenure.webhooks.sender import WebhookSender
from tenure.webhooks.tasks import prune_log
from tenure.worker.jobs import JobContext, parse_cron, schedule
from tenure.worker.runtime import build_dispatcher, build_huey, load_jobs
from tests.conftest import NOW
from tests.factories.auth import make_user
from tests.receivers import Receiver, run_async

DEFAULTS = {
    "auth.prune_sessions": "17 * * * *",
    "hub.prune_outbox": "40 3 * * *",
    "webhooks.prune_log": "50 3 * * *",
}
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=1)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def ctx(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> JobContext:
    return JobContext(settings, engine, sessions, clock)


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Settings for tests that need no database (schedules)."""
    return Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        data_dir=tmp_path / "data",
        redis_url=None,
        schedules={},
    )


@pytest.fixture
def bare_ctx(bare_settings: Settings, clock: FixedClock) -> JobContext:
    engine = make_engine(bare_settings.database_url)  # never connects
    return JobContext(bare_settings, engine, make_session_factory(engine), clock)


def with_schedules(settings: Settings, schedules: dict[str, str]) -> Settings:
    return settings.model_copy(update={"schedules": schedules})


def firing_times(huey: Huey) -> dict[str, list[str]]:
    """Job name -> the times of day ("HH:MM") its periodic task fires, over one day."""
    fired: dict[str, list[str]] = {}
    day = datetime(2026, 6, 15)  # huey compares naive UTC times
    for minute in range(24 * 60):
        at = day + timedelta(minutes=minute)
        for task in huey.read_periodic(at):
            fired.setdefault(task.name, []).append(f"{at:%H:%M}")
    return fired


def run_periodic(huey: Huey, name: str) -> None:
    """Run the periodic task `name` of this huey as its consumer would."""
    day = datetime(2026, 6, 15)
    for minute in range(24 * 60):
        for task in huey.read_periodic(day + timedelta(minutes=minute)):
            if task.name == name:
                huey.execute(task)
                return
    raise AssertionError(f"{name} is not a periodic task of this huey")


class TestSchedule:
    def test_registered_jobs_have_valid_default_crons(
        self, bare_settings: Settings, bare_ctx: JobContext
    ) -> None:
        jobs = load_jobs()
        assert {name: jobs[name].cron for name in DEFAULTS} == DEFAULTS
        for name, job in jobs.items():
            assert len(parse_cron(job.cron, name)) == 5
            assert job.doc, f"{name} has no description for 'tenure hub schedule'"
        assert schedule(bare_settings) == {name: job.cron for name, job in jobs.items()}
        fired = firing_times(build_huey(bare_settings, bare_ctx))
        assert fired["auth.prune_sessions"] == [f"{h:02}:17" for h in range(24)]
        assert fired["hub.prune_outbox"] == ["03:40"]
        assert fired["webhooks.prune_log"] == ["03:50"]

    def test_override_from_the_environment_takes_effect(
        self, bare_settings: Settings, bare_ctx: JobContext, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TENURE_SCHEDULES", json.dumps({"auth.prune_sessions": "0 4 * * *"}))
        from_env = Settings(_env_file=None).schedules
        overridden = with_schedules(bare_settings, from_env)
        effective = schedule(overridden)
        assert effective["auth.prune_sessions"] == "0 4 * * *"
        assert effective["hub.prune_outbox"] == DEFAULTS["hub.prune_outbox"]
        fired = firing_times(build_huey(overridden, bare_ctx))
        assert fired["auth.prune_sessions"] == ["04:00"]
        assert fired["hub.prune_outbox"] == ["03:40"]

    @pytest.mark.parametrize("off", ["off", "OFF", " off "])
    def test_off_removes_the_job_from_the_periodic_tasks(
        self, bare_settings: Settings, bare_ctx: JobContext, off: str
    ) -> None:
        switched = with_schedules(bare_settings, {"hub.prune_outbox": off})
        assert schedule(switched)["hub.prune_outbox"] is None
        fired = firing_times(build_huey(switched, bare_ctx))
        assert "hub.prune_outbox" not in fired
        assert fired["auth.prune_sessions"] and fired["webhooks.prune_log"] == ["03:50"]

    @pytest.mark.parametrize(
        "expression", ["61 * * * *", "0 25 * * *", "* * *", "daily", "* * * * * *", ""]
    )
    def test_invalid_cron_is_a_configuration_error_naming_the_job(
        self, bare_settings: Settings, bare_ctx: JobContext, expression: str
    ) -> None:
        bad = with_schedules(bare_settings, {"webhooks.prune_log": expression})
        with pytest.raises(ConfigurationError, match=r"webhooks\.prune_log"):
            schedule(bad)
        # A worker refuses to start rather than run on a schedule nobody asked for.
        with pytest.raises(ConfigurationError, match=r"webhooks\.prune_log"):
            build_huey(bad, bare_ctx)

    def test_unknown_job_is_a_configuration_error_naming_it(
        self, bare_settings: Settings, bare_ctx: JobContext
    ) -> None:
        bad = with_schedules(bare_settings, {"auth.prune_everything": "0 3 * * *"})
        with pytest.raises(ConfigurationError, match=r"auth\.prune_everything") as caught:
            schedule(bad)
        assert "auth.prune_sessions" in caught.value.detail  # the known ones are listed
        with pytest.raises(ConfigurationError, match=r"auth\.prune_everything"):
            build_huey(bad, bare_ctx)


def add_sessions(db: Session) -> tuple[uuid.UUID, uuid.UUID]:
    """(an expired dashboard session, a live one)."""
    user = make_user(db, now=OLD)
    expired = auth_service.start_session(
        db, user, now=NOW - timedelta(days=8), max_age=timedelta(days=7)
    )
    live = auth_service.start_session(
        db, user, now=NOW - timedelta(hours=1), max_age=timedelta(days=7)
    )
    db.commit()
    return expired.record.id, live.record.id


def session_ids(sessions: sessionmaker[Session]) -> set[uuid.UUID]:
    with sessions() as session:
        return set(session.scalars(select(UserSession.id)))


class TestLock:
    def test_a_job_locked_by_another_worker_is_skipped_until_released(
        self,
        settings: Settings,
        ctx: JobContext,
        db: Session,
        sessions: sessionmaker[Session],
    ) -> None:
        expired, live = add_sessions(db)
        ours = build_huey(settings, ctx)
        theirs = build_huey(settings, ctx)  # another worker on the same huey.db
        with theirs.lock_task("auth.prune_sessions"):
            run_periodic(ours, "auth.prune_sessions")
            assert session_ids(sessions) == {expired, live}
        run_periodic(ours, "auth.prune_sessions")
        assert session_ids(sessions) == {live}

    def test_a_lock_on_one_job_does_not_hold_back_another(
        self,
        settings: Settings,
        ctx: JobContext,
        db: Session,
        sessions: sessionmaker[Session],
    ) -> None:
        _, live = add_sessions(db)
        ours = build_huey(settings, ctx)
        theirs = build_huey(settings, ctx)
        with theirs.lock_task("hub.prune_outbox"):
            run_periodic(ours, "auth.prune_sessions")
        assert session_ids(sessions) == {live}

    def test_the_lock_is_released_when_the_job_fails(
        self,
        settings: Settings,
        ctx: JobContext,
        db: Session,
        sessions: sessionmaker[Session],
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        expired, live = add_sessions(db)
        unreachable = make_engine(f"sqlite:///{tmp_path / 'missing' / 'tenure.db'}")
        broken = JobContext(settings, unreachable, make_session_factory(unreachable), clock)
        huey = build_huey(settings, broken)
        run_periodic(huey, "auth.prune_sessions")  # fails: the database is unreachable
        assert session_ids(sessions) == {expired, live}
        assert not huey.is_locked("auth.prune_sessions")
        run_periodic(build_huey(settings, ctx), "auth.prune_sessions")
        assert session_ids(sessions) == {live}


class TestPruneSessions:
    def test_deletes_only_expired_sessions_and_is_idempotent(
        self, ctx: JobContext, db: Session, sessions: sessionmaker[Session]
    ) -> None:
        expired, live = add_sessions(db)
        assert session_ids(sessions) == {expired, live}
        assert prune_sessions(ctx) == 1
        assert session_ids(sessions) == {live}
        assert prune_sessions(ctx) == 0
        assert session_ids(sessions) == {live}


def alert(message: str) -> AlertFired:
    return AlertFired(alert_id=uuid.uuid4(), rule="tests.prune", severity="info", message=message)


def publish(sessions: sessionmaker[Session], event: DomainEvent, *, now: datetime) -> int:
    with sessions() as session, session.begin():
        return hub_service.publish(session, event, account_id=None, now=now)


def outbox_ids(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as session:
        return set(session.scalars(select(Outbox.id)))


class TestPruneOutbox:
    def test_deletes_old_handled_rows_and_keeps_pending_dead_unfanned_and_recent(
        self, ctx: JobContext, sessions: sessionmaker[Session]
    ) -> None:
        def handler(failing: set[str]) -> Handler:
            def handle(_session: Session, event: DomainEvent, _outbox_id: int) -> None:
                assert isinstance(event, AlertFired)
                if event.message in failing:
                    raise RuntimeError(f"cannot handle {event.message}")

            return handle

        # One attempt only: a failure is dead at once.
        first = Dispatcher(max_attempts=1)
        first.subscribe("tests.sub", [AlertFired], handler({"dead"}))
        done = publish(sessions, alert("done"), now=OLD)
        dead = publish(sessions, alert("dead"), now=OLD)
        recent = publish(sessions, alert("recent"), now=RECENT)
        first.dispatch_once(sessions, now=RECENT)
        # Several attempts: a failure waits for its retry (pending).
        pending = publish(sessions, alert("pending"), now=OLD)
        second = Dispatcher(max_attempts=5)
        second.subscribe("tests.sub", [AlertFired], handler({"pending"}))
        second.dispatch_once(sessions, now=RECENT)
        # Handled by every subscriber there is: none. Fanned out: so it can go.
        nobody = Dispatcher()
        unsubscribed = publish(sessions, alert("unsubscribed"), now=OLD)
        nobody.dispatch_once(sessions, now=RECENT)
        # Never fanned out (no dispatcher ran since): must not be lost.
        unfanned = publish(sessions, alert("unfanned"), now=OLD)

        with sessions() as session:
            assert [d.status for d in hub_service.deliveries(session, done)] == ["done"]
            assert [d.status for d in hub_service.deliveries(session, dead)] == ["dead"]
            assert [d.status for d in hub_service.deliveries(session, pending)] == ["pending"]

        assert prune_outbox(ctx) == 2
        assert outbox_ids(sessions) == {dead, pending, recent, unfanned}
        assert done not in outbox_ids(sessions) and unsubscribed not in outbox_ids(sessions)
        with sessions() as session:
            assert [d.outbox_id for d in hub_service.list_dead(session)] == [dead]
        assert prune_outbox(ctx) == 0
        assert outbox_ids(sessions) == {dead, pending, recent, unfanned}


class TestPruneLog:
    def test_deletes_old_finished_deliveries_with_their_attempts_and_keeps_pending(
        self, ctx: JobContext, sessions: sessionmaker[Session]
    ) -> None:
        # /ok answers 200 (delivered), /gone 410 (failed at once), /down 500 (retried).
        answers = {"/ok": 200, "/gone": 410, "/down": 500}
        receiver = Receiver(lambda path: (answers[path], ""))
        endpoints: dict[str, uuid.UUID] = {}
        with sessions() as session, session.begin():
            for path in ("ok", "gone", "down"):
                endpoints[path] = webhooks_service.create_endpoint(
                    session,
                    EndpointCreate(url=f"{receiver.url}/{path}"),
                    actor=Actor.system("tests"),
                    now=OLD,
                    allow_private=True,
                ).id
        dispatcher = build_dispatcher()

        def deliver(at: datetime) -> None:
            dispatcher.dispatch_once(sessions, now=at)
            sender = WebhookSender(sessions, clock=FixedClock(at), allow_private=True)

            async def send() -> None:
                async with sender.client() as client:
                    await sender.run_once(client)

            run_async(send())

        old = publish(sessions, alert("old"), now=OLD)
        deliver(OLD)
        recent = publish(sessions, alert("recent"), now=RECENT)
        deliver(RECENT)

        def deliveries() -> dict[tuple[int, str], str]:
            names = {v: k for k, v in endpoints.items()}
            with sessions() as session:
                return {
                    (d.outbox_id, names[d.endpoint_id]): d.status
                    for d in session.scalars(select(WebhookDelivery))
                    if d.outbox_id in (old, recent)
                }

        def attempts() -> set[uuid.UUID]:
            with sessions() as session:
                return set(session.scalars(select(WebhookAttempt.delivery_id)))

        before = deliveries()
        assert before[(old, "ok")] == WebhookStatus.delivered
        assert before[(old, "gone")] == WebhookStatus.failed
        assert before[(old, "down")] == WebhookStatus.pending
        assert before[(recent, "ok")] == WebhookStatus.delivered
        with sessions() as session:
            old_finished = {
                d.id
                for d in session.scalars(select(WebhookDelivery))
                if d.outbox_id == old and d.status != WebhookStatus.pending
            }
        assert len(old_finished) == 2 and old_finished <= attempts()

        assert prune_log(ctx) == 2
        after = deliveries()
        assert (old, "ok") not in after and (old, "gone") not in after
        assert after[(old, "down")] == WebhookStatus.pending
        assert after[(recent, "ok")] == WebhookStatus.delivered
        assert {k: v for k, v in before.items() if k in after} == after
        assert not old_finished & attempts()
        assert prune_log(ctx) == 0
        assert deliveries() == after
