"""Shape, determinism and hygiene of the simulated records."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from datetime import UTC

import pytest
from sqlalchemy import inspect as sa_inspect

from tenure.accounts.models import Account, Contact, SubscriptionChange
from tenure.ingest.models import Event
from tenure.sim import (
    AccountBundle,
    AccountRecord,
    ContactRecord,
    EventRecord,
    SimConfig,
    SubscriptionRecord,
    SupportRecord,
    SurveyRecord,
    generate,
)
from tenure.sim.catalog import CATEGORIES, COUNTRIES
from tenure.support.models import SupportInteraction, SurveyResponse

CONFIG = SimConfig(accounts=300, months=12, seed=1)
# Words of the hidden state that must never reach product records or files.
HIDDEN = {"hazard", "latent", "health", "fit", "price_sensitivity", "foreseeable", "wind_down"}


@pytest.fixture(scope="module")
def bundles() -> list[AccountBundle]:
    return list(generate(CONFIG))


def _columns(model: type) -> set[str]:
    return {c.key for c in sa_inspect(model).columns}


def _fields(record: type) -> set[str]:
    return {f.name for f in dataclasses.fields(record)}


class TestRecordsFitTheTables:
    @pytest.mark.parametrize(
        ("record", "model", "references"),
        [
            (AccountRecord, Account, {"parent_external_id"}),
            (ContactRecord, Contact, {"account_external_id"}),
            (SubscriptionRecord, SubscriptionChange, {"account_external_id"}),
            (SupportRecord, SupportInteraction, {"account_external_id", "contact_external_id"}),
            (SurveyRecord, SurveyResponse, {"account_external_id", "contact_external_id"}),
            (EventRecord, Event, set()),
        ],
    )
    def test_every_field_is_a_column_or_an_external_reference(
        self, record: type, model: type, references: set[str]
    ) -> None:
        assert _fields(record) - references <= _columns(model)


class TestDeterminism:
    def test_same_seed_same_records(self, bundles: list[AccountBundle]) -> None:
        again = list(generate(CONFIG))
        assert [_flat(b) for b in again] == [_flat(b) for b in bundles]

    def test_an_account_does_not_depend_on_the_shard(self, bundles: list[AccountBundle]) -> None:
        shard = list(generate(CONFIG, indexes=range(120, 180)))
        assert [_flat(b) for b in shard] == [_flat(b) for b in bundles[120:180]]

    def test_different_seed_different_records(self, bundles: list[AccountBundle]) -> None:
        other = list(generate(dataclasses.replace(CONFIG, seed=2), indexes=range(20)))
        assert [b.account.name for b in other] != [b.account.name for b in bundles[:20]]
        assert [len(b.events) for b in other] != [len(b.events) for b in bundles[:20]]


def _flat(bundle: AccountBundle) -> tuple[object, ...]:
    return (
        bundle.account,
        bundle.contacts,
        list(bundle.events),
        bundle.subscriptions,
        bundle.support,
        bundle.surveys,
        bundle.truth,
    )


class TestAccounts:
    def test_identity_is_plausible(self, bundles: list[AccountBundle]) -> None:
        currencies = {c.code: c.currency for c in COUNTRIES}
        hemispheres = {c.code: c.hemisphere for c in COUNTRIES}
        ids = [b.account.external_id for b in bundles]
        assert len(set(ids)) == len(ids) and ids[122] == "acc_000123"
        for b in bundles:
            a = b.account
            assert a.category in CATEGORIES
            assert a.plan in ("starter", "professional", "scale")
            assert a.currency == currencies[a.country]
            assert a.hemisphere == hemispheres[a.country]
            assert a.status in ("trial", "active", "churned")
            assert (a.status == "churned") == (a.churned_at is not None)
            assert a.signup_at.tzinfo == UTC and a.signup_at < CONFIG.end_at
            assert a.mrr_cents >= 0 and (a.mrr_cents > 0) == (a.status == "active")
        assert {b.account.hemisphere for b in bundles} == {"north", "south"}
        assert len({b.account.category for b in bundles}) == len(CATEGORIES)
        stock = sum(b.account.signup_at < CONFIG.start_at for b in bundles)
        assert 0.3 * len(bundles) < stock < 0.8 * len(bundles)

    def test_venue_groups_have_a_parent_before_their_venues(
        self, bundles: list[AccountBundle]
    ) -> None:
        seen: set[str] = set()
        children = Counter[str]()
        for b in bundles:
            parent = b.account.parent_external_id
            if parent is not None:
                assert parent in seen and b.account.category == "venue"
                children[parent] += 1
            seen.add(b.account.external_id)
        assert children and all(2 <= n <= 6 for n in children.values())
        names = {b.account.external_id: b.account.name for b in bundles}
        for parent in children:
            assert names[parent].split()[0] in {
                names[b.account.external_id].split()[0]
                for b in bundles
                if b.account.parent_external_id == parent
            }

    def test_mrr_follows_the_subscription_history(self, bundles: list[AccountBundle]) -> None:
        for b in bundles:
            if not b.subscriptions:
                assert b.account.status == "trial"
                continue
            assert b.subscriptions[0].kind == "new"
            for before, after in zip(b.subscriptions, b.subscriptions[1:], strict=False):
                assert before.occurred_at <= after.occurred_at
                assert after.mrr_before_cents == before.mrr_after_cents
            assert b.subscriptions[-1].mrr_after_cents == b.account.mrr_cents
            churns = [s for s in b.subscriptions if s.kind == "churn"]
            assert all(s.reason for s in churns)
            if b.account.status == "churned":
                assert churns[-1].occurred_at == b.account.churned_at


class TestContacts:
    def test_people_are_plausible(self, bundles: list[AccountBundle]) -> None:
        e164 = re.compile(r"^\+[1-9]\d{7,14}$")
        sms = emails = 0
        total = 0
        for b in bundles:
            assert 1 <= len(b.contacts) <= 6
            assert b.contacts[0].role == "owner"
            assert {c.role for c in b.contacts[1:]} <= {"admin", "staff"}
            domains = {c.email.split("@")[1] for c in b.contacts}
            assert len(domains) == 1
            assert len({c.email for c in b.contacts}) == len(b.contacts)
            for c in b.contacts:
                assert c.external_id.startswith("usr_")
                assert e164.match(c.phone), c.phone
                assert c.timezone == b.account.timezone
                assert set(c.consents) == {"email", "sms", "in_app"}
                sms += c.consents["sms"]
                emails += c.consents["email"]
                total += 1
        assert sms < emails and 0.1 * total < sms < 0.5 * total


class TestEvents:
    def test_events_are_segment_tracks_in_the_period(self, bundles: list[AccountBundle]) -> None:
        message_ids: set[str] = set()
        for b in bundles[:60]:
            users = {c.external_id for c in b.contacts}
            last = None
            for e in b.events:
                assert e.type == "track" and e.group_external_id == b.account.external_id
                assert e.user_external_id in users
                assert e.timestamp.tzinfo == UTC
                assert CONFIG.start_at <= e.timestamp < CONFIG.end_at
                assert last is None or last <= e.timestamp
                last = e.timestamp
                message_ids.add(e.message_id)
        assert len(message_ids) == sum(len(b.events) for b in bundles[:60])

    def test_volume_per_active_contact_day(self, bundles: list[AccountBundle]) -> None:
        per_day: list[int] = []
        for b in bundles:
            key = b.events.contact_index.astype("int64") * 1_000_000 + b.events.timestamps // 86400
            per_day.extend(Counter(key.tolist()).values())
        mean = sum(per_day) / len(per_day)
        assert 2.0 <= mean <= 10.0
        events_per_account_month = sum(per_day) / len(bundles) / CONFIG.months
        # 2,000 accounts x 18 months should land in the millions, not tens of millions.
        assert 30 <= events_per_account_month <= 140


class TestHiddenTruth:
    def test_truth_matches_the_records(self, bundles: list[AccountBundle]) -> None:
        for b in bundles:
            churns = [s.occurred_at for s in b.subscriptions if s.kind == "churn"]
            assert churns == [c.churned_at for c in b.truth.churns]
            assert len(b.truth.health) == len(b.truth.hazard) == len(b.truth.month_starts)
            assert all(0.0 <= h <= 1.0 for h in b.truth.hazard)

    def test_no_hidden_field_in_records(self, bundles: list[AccountBundle]) -> None:
        for record in (AccountRecord, ContactRecord, EventRecord, SupportRecord, SurveyRecord):
            assert not any(word in name for name in _fields(record) for word in HIDDEN)
        for b in bundles:
            keys = set(b.account.traits) | {k for c in b.contacts for k in c.traits}
            keys |= {k for e in list(b.events)[:50] for k in e.properties}
            assert not any(word in key for key in keys for word in HIDDEN)
