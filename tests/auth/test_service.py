from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tenure.auth import service
from tenure.auth.models import ApiKey, AuditEntry, StaffUser
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, Unauthorized
from tests.factories.auth import make_user

NOW = datetime(2026, 5, 1, 9, tzinfo=UTC)


class TestUsers:
    def test_password_is_stored_as_argon2_hash(self, db: Session) -> None:
        user = make_user(db, now=NOW, password="s3cret-but-long")
        assert user.password_hash.startswith("$argon2id$")
        assert "s3cret-but-long" not in user.password_hash

    def test_emails_are_unique_case_insensitively(self, db: Session) -> None:
        make_user(db, now=NOW, email="Ann@Example.com")
        with pytest.raises(Conflict):
            make_user(db, now=NOW, email="ann@example.COM")

    @pytest.mark.parametrize(
        ("field", "kwargs"),
        [
            ("email", {"email": "not-an-email"}),
            ("role", {"role": "owner"}),
            ("password", {"password": "short"}),
        ],
    )
    def test_bad_user_input_names_the_field(
        self, db: Session, field: str, kwargs: dict[str, str]
    ) -> None:
        with pytest.raises(InvalidInput) as info:
            make_user(db, now=NOW, **kwargs)
        assert info.value.extra["field"] == field

    def test_authenticate_gives_one_message_for_every_failure(self, db: Session) -> None:
        user = make_user(db, now=NOW, email="a@example.com", password="right password")
        messages = set()
        for email, password in [
            ("a@example.com", "wrong password"),
            ("nobody@example.com", "right password"),
        ]:
            with pytest.raises(Unauthorized) as info:
                service.authenticate(db, email, password, now=NOW)
            messages.add(info.value.detail)
        service.set_user_active(db, user, False, actor=Actor.system(), now=NOW)
        with pytest.raises(Unauthorized) as info:
            service.authenticate(db, "a@example.com", "right password", now=NOW)
        messages.add(info.value.detail)
        assert messages == {service.LOGIN_FAILED}

    def test_sessions_expire_and_end_when_user_is_disabled(self, db: Session) -> None:
        user = make_user(db, now=NOW)
        started = service.start_session(db, user, now=NOW, max_age=timedelta(hours=1))
        assert service.resolve_session(db, started.token, now=NOW + timedelta(minutes=30)) == user
        assert service.resolve_session(db, started.token, now=NOW + timedelta(hours=2)) is None
        again = service.start_session(db, user, now=NOW, max_age=timedelta(hours=1))
        service.set_user_active(db, user, False, actor=Actor.system(), now=NOW)
        assert service.resolve_session(db, again.token, now=NOW) is None


class TestApiKeys:
    def test_key_is_shown_once_and_stored_hashed(self, db: Session) -> None:
        created = service.create_api_key(
            db, name="segment", scopes=["ingest"], actor=Actor.system(), now=NOW
        )
        assert created.key.startswith(created.record.prefix)
        stored = db.scalars(select(ApiKey)).one()
        assert created.key not in (stored.key_hash, stored.prefix)
        actor = service.authenticate_api_key(db, created.key, now=NOW)
        assert actor.kind == "api_key" and actor.scopes == {"ingest"}

    def test_revoked_and_unknown_keys_are_refused(self, db: Session) -> None:
        created = service.create_api_key(
            db, name="k", scopes=["read"], actor=Actor.system(), now=NOW
        )
        service.revoke_api_key(db, created.record, actor=Actor.system(), now=NOW)
        for key in (created.key, "tn_unknown", ""):
            with pytest.raises(Unauthorized):
                service.authenticate_api_key(db, key, now=NOW)

    def test_unknown_scope_is_refused(self, db: Session) -> None:
        with pytest.raises(InvalidInput, match="unknown scope 'everything'"):
            service.create_api_key(
                db, name="k", scopes=["everything"], actor=Actor.system(), now=NOW
            )


def test_every_write_is_audited(db: Session) -> None:
    admin = make_user(db, now=NOW, email="root@example.com", role="admin")
    actor = service.actor_for_user(admin, ip="10.0.0.1")
    key = service.create_api_key(db, name="ci", scopes=["read"], actor=actor, now=NOW)
    service.revoke_api_key(db, key.record, actor=actor, now=NOW)
    user = db.scalars(select(StaffUser).where(StaffUser.email == "root@example.com")).one()
    entries = db.scalars(select(AuditEntry).order_by(AuditEntry.action)).all()
    actions = [(e.action, e.actor_label) for e in entries]
    assert ("api_key.create", "root@example.com") in actions
    assert ("api_key.revoke", "root@example.com") in actions
    assert ("user.create", "tests") in actions
    revoke = next(e for e in entries if e.action == "api_key.revoke")
    assert revoke.ip == "10.0.0.1" and revoke.actor_id == str(user.id)
