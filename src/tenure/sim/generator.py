"""The simulator's entry point: one `AccountBundle` at a time, deterministic per seed.

Every account draws from its own random streams, seeded by (seed, account index, purpose),
so an account is the same whether it is generated alone, in a shard or in a full run, and
changing one aspect (say, a treatment that moves a churn date) does not reshuffle the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np

from tenure.sim import catalog
from tenure.sim.activity import simulate_events
from tenure.sim.calendar import Calendar
from tenure.sim.identity import Identity, build_identity, join_epoch
from tenure.sim.lifecycle import Lifecycle, simulate_lifecycle
from tenure.sim.records import (
    AccountBundle,
    AccountRecord,
    AccountTruth,
    ChurnTruth,
    ContactRecord,
    SimConfig,
    utc_from_epoch,
)
from tenure.sim.tickets import outage_days, simulate_support, simulate_surveys

_IDENTITY, _LATENT, _CHURN, _BILLING, _EVENTS, _SUPPORT, _SURVEYS = range(7)


class Simulation:
    """Shared, read-only state of a run; `account(i)` simulates one account."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.calendar = Calendar(config)
        self.outages = outage_days(config.seed, self.calendar)

    def _rng(self, index: int, purpose: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, 0, index, purpose])

    def account(self, index: int) -> AccountBundle:
        config = self.config
        cal = self.calendar
        if not 0 <= index < config.accounts:
            raise ValueError(f"account index must be in 0..{config.accounts - 1}, got {index}")
        identity = build_identity(
            config.seed, index, cal, config.months, self._rng(index, _IDENTITY)
        )
        life = simulate_lifecycle(
            identity,
            cal,
            latent_rng=self._rng(index, _LATENT),
            churn_rng=self._rng(index, _CHURN),
            billing_rng=self._rng(index, _BILLING),
            treatment_effect=config.treatment_effect,
            treated_on=config.treated.get(identity.external_id),
        )
        events, last_seen = simulate_events(identity, life, cal, self._rng(index, _EVENTS))
        support = simulate_support(identity, life, cal, self.outages, self._rng(index, _SUPPORT))
        surveys = simulate_surveys(identity, life, cal, support, self._rng(index, _SURVEYS))
        contacts = [
            ContactRecord(
                external_id=spec.external_id,
                account_external_id=identity.external_id,
                email=spec.email,
                name=spec.name,
                phone=spec.phone,
                role=spec.role,
                timezone=identity.timezone,
                consents=dict(spec.consents),
                traits=dict(spec.traits),
                created_at=utc_from_epoch(join_epoch(identity, spec)),
                last_seen_at=utc_from_epoch(seen) if seen is not None else None,
            )
            for spec, seen in zip(identity.contacts, last_seen, strict=True)
        ]
        return AccountBundle(
            index=index,
            account=_account_record(identity, life),
            contacts=contacts,
            events=events,
            subscriptions=life.subscriptions,
            support=support,
            surveys=surveys,
            truth=_truth(identity, life, cal),
        )


def _account_record(identity: Identity, life: Lifecycle) -> AccountRecord:
    churned = life.status == "churned"
    last = life.churns[-1] if churned else None
    return AccountRecord(
        external_id=identity.external_id,
        name=identity.name,
        category=identity.category,
        plan=life.plan,
        mrr_cents=life.mrr_cents,
        currency=identity.currency,
        country=identity.country.code,
        hemisphere=identity.hemisphere,
        timezone=identity.timezone,
        signup_at=utc_from_epoch(identity.signup_epoch),
        status=life.status,
        churned_at=utc_from_epoch(last.epoch) if last else None,
        churn_reason=last.cause if last else None,
        parent_external_id=identity.parent_external_id,
        tags=list(identity.tags),
        traits=dict(identity.traits),
    )


def _truth(identity: Identity, life: Lifecycle, cal: Calendar) -> AccountTruth:
    starts = cal.month_start_days
    return AccountTruth(
        external_id=identity.external_id,
        fit=life.fit,
        price_sensitivity=life.price_sensitivity,
        onboarding_days=life.onboarding_days,
        onboarding_completed=life.onboarding_completed,
        treated_on=life.treated_on,
        month_starts=list(cal.month_start_dates),
        health=[float(v) for v in life.health[starts]],
        hazard=[float(v) for v in life.monthly_hazard[starts]],
        churns=[
            ChurnTruth(
                churned_at=utc_from_epoch(c.epoch),
                cause=c.cause,
                foreseeable=c.cause not in catalog.UNFORESEEABLE_CAUSES,
                wind_down_days=c.wind_down_days,
                reactivated_at=(
                    utc_from_epoch(c.reactivation_epoch)
                    if c.reactivation_epoch is not None
                    else None
                ),
            )
            for c in life.churns
        ],
    )


def _maybe_utc(epoch: int | None) -> datetime | None:
    return utc_from_epoch(epoch) if epoch is not None else None


def generate(config: SimConfig, indexes: range | None = None) -> Iterator[AccountBundle]:
    """Yield one bundle per account, in index order; `indexes` selects a shard of the run.

    A venue group's parent always comes before its child venues.
    """
    sim = Simulation(config)
    for index in indexes if indexes is not None else range(config.accounts):
        yield sim.account(index)
