"""Support interactions and survey answers, drawn from the account's latent state."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tenure.sim import catalog, texts
from tenure.sim.calendar import SECONDS_PER_DAY, Calendar
from tenure.sim.identity import Identity
from tenure.sim.lifecycle import Lifecycle
from tenure.sim.records import SupportRecord, SurveyRecord, utc_from_epoch

# Tickets per account-month for a settled account at health 0.
TICKETS_PER_MONTH = 0.45
OUTAGE_TICKET_PROBABILITY = 0.06
NPS_EVERY_DAYS = 90

_PLAN_TICKETS = {"starter": 0.8, "professional": 1.0, "scale": 1.4}


def _mix(weights: dict[str, float]) -> npt.NDArray[np.float64]:
    vector = np.asarray([weights.get(t, 0.0) for t in catalog.SUPPORT_TYPES], dtype=np.float64)
    return np.asarray(vector / vector.sum(), dtype=np.float64)


_SETTLED = _mix(catalog.SUPPORT_MIX_SETTLED)
_ONBOARDING = _mix(catalog.SUPPORT_MIX_ONBOARDING)
_UNHAPPY = _mix(catalog.SUPPORT_MIX_UNHAPPY)
_CHANNEL_P = np.asarray(catalog.SUPPORT_CHANNEL_WEIGHTS) / sum(catalog.SUPPORT_CHANNEL_WEIGHTS)


def outage_days(seed: int, cal: Calendar) -> frozenset[int]:
    """Days the whole product had an incident: shared by every account of a run."""
    rng = np.random.default_rng([seed, 2])
    count = max(1, cal.n_days // 180)
    return frozenset(int(d) for d in rng.integers(0, cal.n_days, size=count))


def simulate_support(
    identity: Identity,
    life: Lifecycle,
    cal: Calendar,
    outages: frozenset[int],
    rng: np.random.Generator,
) -> list[SupportRecord]:
    n = cal.n_days
    health = life.health
    onboarding = (life.tenure >= 0) & (life.tenure < life.onboarding_days)
    season = cal.season(identity.hemisphere, identity.category)
    rate = (
        TICKETS_PER_MONTH
        / 30.4
        * _PLAN_TICKETS[identity.plan]
        * (1.0 + 1.8 * onboarding)
        * np.exp(-0.45 * health)
        * np.sqrt(season)
    )
    rate = np.where(life.subscribed, rate, 0.0)
    counts = rng.poisson(rate)
    opened: list[tuple[int, str | None]] = [(int(d), None) for d in np.repeat(np.arange(n), counts)]
    for day in life.shock_days:
        if rng.random() < 0.6:
            opened.append((min(day + int(rng.integers(0, 5)), n - 1), "shock"))
    for day in sorted(outages):
        if life.subscribed[day] and rng.random() < OUTAGE_TICKET_PROBABILITY:
            opened.append((day, "outage"))
    for churn in life.churns:
        if rng.random() < 0.3:
            opened.append((max(churn.day - int(rng.integers(0, 10)), 0), "cancellation_request"))
        if churn.cause != "business_closed" and rng.random() < 0.12:
            opened.append((min(churn.day + int(rng.integers(0, 7)), n - 1), "refund"))
    opened.sort(key=lambda item: item[0])

    records: list[SupportRecord] = []
    end_epoch = cal.end_epoch
    for day, forced in opened:
        h = float(health[day])
        if forced in ("outage", "cancellation_request", "refund"):
            kind = forced
        elif forced == "shock":
            kind = "complaint" if rng.random() < 0.5 else "bug"
        else:
            unhappy = 1.0 / (1.0 + np.exp(1.2 * h + 1.4))
            if onboarding[day] and rng.random() < 0.7:
                mix = _ONBOARDING
            elif rng.random() < unhappy:
                mix = _UNHAPPY
            else:
                mix = _SETTLED
            kind = catalog.SUPPORT_TYPES[int(rng.choice(len(catalog.SUPPORT_TYPES), p=mix))]
        channel = catalog.SUPPORT_CHANNELS[int(rng.choice(len(_CHANNEL_P), p=_CHANNEL_P))]
        priority_p = np.asarray(catalog.TYPE_PRIORITY.get(kind, catalog.DEFAULT_PRIORITY))
        priority = catalog.PRIORITIES[int(rng.choice(4, p=priority_p / priority_p.sum()))]
        sentiment = float(
            np.clip(
                0.2 + 0.3 * h + catalog.TYPE_SENTIMENT.get(kind, 0.0) + rng.normal(0.0, 0.3),
                -1.0,
                1.0,
            )
        )
        escalated = bool(
            rng.random() < 0.04 + 0.15 * (priority in ("high", "urgent")) + 0.1 * (sentiment < -0.4)
        )
        seconds = int(rng.integers(8 * 3600, 20 * 3600))
        opened_epoch = int(
            cal.local_to_epoch(identity.timezone, np.asarray([day]), np.asarray([seconds]))[0]
        )
        hours = catalog.RESOLUTION_HOURS[channel] * rng.lognormal(0.0, 0.9)
        if escalated:
            hours *= 3.0
        # Unhappy accounts are also the ones whose problems linger.
        if h < -0.5 and rng.random() < 0.25:
            hours *= 10.0
        resolved_epoch = opened_epoch + int(hours * 3600)
        present = [c for c in identity.contacts if c.join_day <= day] or identity.contacts[:1]
        contact = present[0 if rng.random() < 0.6 else int(rng.integers(len(present)))]
        if not cal.start_epoch <= opened_epoch < end_epoch:
            continue
        follow_up = None
        if resolved_epoch >= end_epoch:
            status = "open" if rng.random() < 0.5 else "pending"
            resolved_at = None
            outcome = None
            assignee = None if status == "open" and rng.random() < 0.5 else _agent(rng)
            follow_up = utc_from_epoch(opened_epoch + int(rng.integers(2, 6)) * SECONDS_PER_DAY)
        else:
            status = "closed" if resolved_epoch < end_epoch - 7 * SECONDS_PER_DAY else "resolved"
            resolved_at = utc_from_epoch(resolved_epoch)
            outcomes = catalog.TYPE_OUTCOMES[kind]
            outcome = outcomes[int(rng.integers(len(outcomes)))]
            if kind == "cancellation_request":
                churned = any(0 <= c.day - day <= 14 for c in life.churns)
                outcome = (
                    "cancelled"
                    if churned
                    else ("retained", "retained_with_discount")[int(rng.integers(2))]
                )
            assignee = _agent(rng)
            if escalated:
                follow_up = utc_from_epoch(
                    resolved_epoch + int(rng.integers(2, 8)) * SECONDS_PER_DAY
                )
        subjects = texts.SUBJECTS[kind]
        records.append(
            SupportRecord(
                external_id=f"tkt_{identity.index + 1:06d}_{len(records) + 1:03d}",
                account_external_id=identity.external_id,
                contact_external_id=contact.external_id,
                type=kind,
                channel=channel,
                status=status,
                priority=priority,
                sentiment=round(sentiment, 2),
                outcome=outcome,
                escalated=escalated,
                subject=subjects[int(rng.integers(len(subjects)))],
                assignee=assignee,
                opened_at=utc_from_epoch(opened_epoch),
                resolved_at=resolved_at,
                follow_up_at=follow_up,
            )
        )
    return records


def _agent(rng: np.random.Generator) -> str:
    return texts.SUPPORT_AGENTS[int(rng.integers(len(texts.SUPPORT_AGENTS)))]


def simulate_surveys(
    identity: Identity,
    life: Lifecycle,
    cal: Calendar,
    support: list[SupportRecord],
    rng: np.random.Generator,
) -> list[SurveyRecord]:
    n = cal.n_days
    records: list[tuple[int, str, str, int, str | None]] = []
    # NPS goes to owners and admins every quarter, from a per-account phase.
    phase = int(rng.integers(0, NPS_EVERY_DAYS))
    first = max(identity.signup_day + 30, 0)
    first += (phase - first) % NPS_EVERY_DAYS
    respondents = [c for c in identity.contacts if c.role in ("owner", "admin")][:2]
    for day in range(first, n, NPS_EVERY_DAYS):
        if not life.subscribed[day]:
            continue
        h = float(life.health[day])
        for contact in respondents:
            if contact.join_day > day:
                continue
            if rng.random() >= np.clip(0.3 + 0.08 * h, 0.05, 0.6):
                continue
            score = int(np.clip(np.round(7.3 + 2.0 * h + rng.normal(0.0, 1.8)), 0, 10))
            band = "promoter" if score >= 9 else ("passive" if score >= 7 else "detractor")
            comment = None
            if rng.random() < (0.5 if band == "detractor" else 0.3):
                pool = texts.NPS_COMMENTS[band]
                comment = pool[int(rng.integers(len(pool)))]
            delay = int(rng.integers(0, 5 * SECONDS_PER_DAY))
            epoch = cal.start_epoch + day * SECONDS_PER_DAY + 8 * 3600 + delay
            if epoch < cal.end_epoch:
                records.append((epoch, "nps", contact.external_id, score, comment))
    # CSAT after a resolved ticket.
    for ticket in support:
        if ticket.resolved_at is None or rng.random() >= 0.4:
            continue
        epoch = int(ticket.resolved_at.timestamp()) + int(rng.integers(600, 2 * SECONDS_PER_DAY))
        if epoch >= cal.end_epoch:
            continue
        sentiment = ticket.sentiment or 0.0
        score = int(np.clip(np.round(3.4 + 1.6 * sentiment + rng.normal(0.0, 0.7)), 1, 5))
        comment = None
        if rng.random() < 0.25:
            pool = texts.CSAT_COMMENTS["good" if score >= 4 else "bad"]
            comment = pool[int(rng.integers(len(pool)))]
        records.append((epoch, "csat", ticket.contact_external_id or "", score, comment))
    records.sort(key=lambda r: r[0])
    return [
        SurveyRecord(
            external_id=f"srv_{identity.index + 1:06d}_{k + 1:03d}",
            account_external_id=identity.external_id,
            contact_external_id=contact_id or None,
            kind=kind,
            score=score,
            comment=comment,
            responded_at=utc_from_epoch(epoch),
        )
        for k, (epoch, kind, contact_id, score, comment) in enumerate(records)
    ]
