"""Product usage: Segment track events per contact-day, vectorised per account.

Expected activity of an account on a day is the product of its size, the wedding season of
its category and hemisphere, the weekday habits of its category, its latent health, its
onboarding phase and any wind-down before a churn, with day-level noise. Each contact then
is active or not that day, and an active contact-day is a login followed by a few feature
events drawn from the features the account has adopted so far.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from tenure.sim import catalog
from tenure.sim.calendar import SECONDS_PER_DAY, Calendar
from tenure.sim.identity import Identity
from tenure.sim.lifecycle import Lifecycle
from tenure.sim.records import EventBlock, PropertyBuilder

EVENT_NAMES: tuple[str, ...] = (catalog.LOGIN, *catalog.FEATURES)
N_FEATURES = len(catalog.FEATURES)
_CODE = {name: k for k, name in enumerate(EVENT_NAMES)}
_MONEY_CODES = [
    _CODE[name] for name in ("invoice_sent", "payment_received", "contract_signed", "proposal_sent")
]

# Chance scale of a contact being active on a day of expected activity 1.
ACTIVE_RATE = 0.7
# Mean number of feature events after the login on an active day, for a fully adopted account.
EVENTS_PER_SESSION = 3.4
VACATION_WEEK_PROBABILITY = 0.035
# Activity elasticity to latent health.
HEALTH_SLOPE = 0.5

# Typical booking value per category in US cents: invoices are instalments of it.
BOOKING_USD_CENTS: dict[str, int] = {
    "photographer": 350_000,
    "videographer": 300_000,
    "venue": 1_200_000,
    "caterer": 900_000,
    "florist": 250_000,
    "planner": 400_000,
    "dj_band": 150_000,
    "baker": 60_000,
    "hair_makeup": 80_000,
    "stationer": 50_000,
    "officiant": 50_000,
    "rentals": 200_000,
}

_INQUIRY = np.asarray([name in catalog.INQUIRY_FEATURES for name in catalog.FEATURES])
_DELIVERY = np.asarray([name in catalog.DELIVERY_FEATURES for name in catalog.FEATURES])
_PLATFORM_CDF = np.cumsum(catalog.LOGIN_PLATFORM_WEIGHTS) / sum(catalog.LOGIN_PLATFORM_WEIGHTS)


def _feature_weights(category: str) -> npt.NDArray[np.float64]:
    weights = []
    for name in catalog.FEATURES:
        factors = catalog.FEATURE_CATEGORY_FACTOR.get(name, {})
        weights.append(catalog.FEATURE_WEIGHTS[name] * factors.get(category, factors.get("_", 1.0)))
    return np.asarray(weights, dtype=np.float64)


_WEIGHTS = {category: _feature_weights(category) for category in catalog.CATEGORIES}


def _day(epoch: int, days: int) -> str:
    return (datetime.fromtimestamp(epoch, UTC) + timedelta(days=days)).date().isoformat()


def _login(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"platform": catalog.LOGIN_PLATFORMS[option]}


def _client(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"source": catalog.LEAD_SOURCES[option], "wedding_date": _day(epoch, value)}


def _money(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"amount_cents": value, "currency": currency}


def _form(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"form": catalog.FORM_KINDS[option]}


def _meeting(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"kind": catalog.MEETING_KINDS[option]}


def _gallery(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"items": value, "media": "video" if option else "photo"}


def _review(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"rating": value}


def _integration(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"integration": catalog.INTEGRATIONS[option]}


def _calendar(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"provider": catalog.CALENDARS[option]}


def _invite(value: int, option: int, epoch: int, currency: str) -> dict[str, Any]:
    return {"role": "admin" if option else "staff"}


_BUILDER_BY_NAME: dict[str, PropertyBuilder] = {
    "login": _login,
    "client_added": _client,
    "invoice_sent": _money,
    "payment_received": _money,
    "proposal_sent": _money,
    "contract_signed": _money,
    "form_created": _form,
    "form_submitted": _form,
    "meeting_booked": _meeting,
    "gallery_delivered": _gallery,
    "review_received": _review,
    "integration_connected": _integration,
    "calendar_connected": _calendar,
    "team_member_invited": _invite,
}
BUILDERS: tuple[PropertyBuilder | None, ...] = tuple(
    _BUILDER_BY_NAME.get(name) for name in EVENT_NAMES
)
# How many options a name's categorical property has (1 = none).
_OPTIONS = np.asarray(
    [
        {
            "client_added": len(catalog.LEAD_SOURCES),
            "form_created": len(catalog.FORM_KINDS),
            "form_submitted": len(catalog.FORM_KINDS),
            "meeting_booked": len(catalog.MEETING_KINDS),
            "integration_connected": len(catalog.INTEGRATIONS),
            "calendar_connected": len(catalog.CALENDARS),
            "team_member_invited": 2,
        }.get(name, 1)
        for name in EVENT_NAMES
    ],
    dtype=np.int64,
)


def daily_intensity(
    identity: Identity, life: Lifecycle, cal: Calendar, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Expected activity of the account per day (0 when not subscribed)."""
    n = cal.n_days
    tenure = life.tenure
    onboarding = tenure < life.onboarding_days
    if life.onboarding_completed:
        phase = np.where(onboarding, 1.25, 1.0)
    else:
        phase = np.where(tenure < 14, 1.15, 0.75)
    first_monday = int((7 - cal.weekday[0]) % 7)
    weeks = (np.arange(n) - first_monday) // 7 + 1
    vacation_weeks = rng.random(int(weeks.max()) + 1) < VACATION_WEEK_PROBABILITY
    vacation = np.where(vacation_weeks[weeks], 0.15, 1.0)
    noise = rng.lognormal(0.0, 0.3, size=n)
    intensity = (
        identity.level
        * cal.season(identity.hemisphere, identity.category)
        * cal.weekday_factor(identity.category)
        * cal.holiday_factor
        * np.exp(HEALTH_SLOPE * life.health)
        * phase
        * life.wind
        * vacation
        * noise
    )
    return np.where(life.subscribed, intensity, 0.0)


def simulate_events(
    identity: Identity, life: Lifecycle, cal: Calendar, rng: np.random.Generator
) -> tuple[EventBlock, list[int | None]]:
    """The account's track events and the last-seen epoch of each contact."""
    n = cal.n_days
    intensity = daily_intensity(identity, life, cal, rng)
    contacts = identity.contacts
    n_contacts = len(contacts)
    shares = np.asarray([c.share for c in contacts])
    joined = np.arange(n)[None, :] >= np.asarray([c.join_day for c in contacts])[:, None]
    rate = ACTIVE_RATE * intensity[None, :] * shares[:, None] * joined
    active = rng.random((n_contacts, n)) < -np.expm1(-rate)
    cell_contact, cell_day = np.nonzero(active)

    # Adopted features: onboarding unlocks them from the top of the list; low health narrows.
    progress = np.clip(life.tenure / life.onboarding_days, 0.0, 1.0)
    if not life.onboarding_completed:
        progress = progress * life.plateau
    narrowing = np.clip(0.8 + 0.25 * life.health, 0.35, 1.0)
    adopted = catalog.CORE_FEATURES + (N_FEATURES - catalog.CORE_FEATURES) * progress * narrowing
    breadth = adopted / N_FEATURES

    a = intensity[cell_day]
    mean_extra = EVENTS_PER_SESSION * np.clip(a, 0.3, 2.0) ** 0.75 * (0.4 + 0.6 * breadth[cell_day])
    counts = 1 + rng.poisson(mean_extra)
    total = int(counts.sum())
    e_cell = np.repeat(np.arange(cell_day.shape[0]), counts)
    first_of_cell = np.cumsum(counts) - counts
    position = np.arange(total) - np.repeat(first_of_cell, counts)
    e_day = cell_day[e_cell]
    e_contact = cell_contact[e_cell]

    # Sessions start in the morning, the afternoon or the evening; events follow minutes apart.
    slot = rng.choice(3, size=cell_day.shape[0], p=(0.42, 0.36, 0.22))
    slot_start = np.asarray([8.5, 13.0, 19.0])[slot] * 3600
    slot_width = np.asarray([3.5, 4.5, 3.5])[slot] * 3600
    session_start = slot_start + rng.random(cell_day.shape[0]) * slot_width
    gaps = rng.exponential(200.0, size=total)
    gaps[position == 0] = 0.0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first_of_cell], counts)
    local_seconds = np.minimum(session_start[e_cell] + elapsed, SECONDS_PER_DAY - 1)
    epoch = cal.local_to_epoch(identity.timezone, e_day, local_seconds)

    # Feature events: weighted draw among adopted features, with the calendar's boosts.
    order = np.argsort(np.arange(N_FEATURES) + rng.normal(0.0, 1.5, N_FEATURES), kind="stable")
    order = np.concatenate(
        (np.arange(catalog.CORE_FEATURES), order[order >= catalog.CORE_FEATURES])
    )
    rank = np.empty(N_FEATURES, dtype=np.int64)
    rank[order] = np.arange(N_FEATURES)
    base = _WEIGHTS[identity.category]
    peak = cal.peak[identity.hemisphere]
    feature_events = np.flatnonzero(position > 0)
    f_day = e_day[feature_events]
    weights = base[None, :] * (rank[None, :] < adopted[f_day][:, None])
    weights = weights * np.where(
        cal.engagement[f_day][:, None] & _INQUIRY[None, :], catalog.INQUIRY_BOOST, 1.0
    )
    weights = weights * np.where(
        peak[f_day][:, None] & _DELIVERY[None, :], catalog.DELIVERY_BOOST, 1.0
    )
    cumulative = np.cumsum(weights, axis=1)
    target = rng.random(feature_events.shape[0]) * cumulative[:, -1]
    picked = (cumulative < target[:, None]).sum(axis=1)
    codes = np.zeros(total, dtype=np.int16)
    codes[feature_events] = 1 + np.minimum(picked, N_FEATURES - 1)

    values, options = _properties(identity, life, codes, e_day, rng)

    keep = (epoch >= cal.start_epoch) & (epoch < cal.end_epoch)
    sort = np.argsort(epoch[keep], kind="stable")
    epoch = epoch[keep][sort]
    codes = codes[keep][sort]
    e_contact = e_contact[keep][sort]
    values = values[keep][sort]
    options = options[keep][sort]

    last_seen: list[int | None] = [None] * n_contacts
    if epoch.size:
        latest = np.full(n_contacts, -1, dtype=np.int64)
        np.maximum.at(latest, e_contact, epoch)
        last_seen = [int(v) if v >= 0 else None for v in latest]

    block = EventBlock(
        account_index=identity.index,
        group_id=identity.external_id,
        currency=identity.currency,
        user_ids=tuple(c.external_id for c in contacts),
        names=EVENT_NAMES,
        timestamps=epoch.astype(np.int64),
        name_codes=codes,
        contact_index=e_contact.astype(np.int16),
        values=values,
        options=options,
        builders=BUILDERS,
    )
    return block, last_seen


def _ints(rng: np.random.Generator, low: int, high: int, size: int) -> npt.NDArray[np.int64]:
    return np.asarray(rng.integers(low, high, size=size), dtype=np.int64)


def _properties(
    identity: Identity,
    life: Lifecycle,
    codes: npt.NDArray[np.int16],
    days: npt.NDArray[np.int64],
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int16]]:
    total = int(codes.shape[0])
    u = rng.random(size=total)
    options = np.minimum((u * _OPTIONS[codes]).astype(np.int64), _OPTIONS[codes] - 1)
    logins = codes == 0
    options[logins] = np.searchsorted(_PLATFORM_CDF, u[logins], side="right")
    values = np.zeros(total, dtype=np.int64)

    fx = catalog.PRICES[identity.currency][1] / catalog.PRICES["USD"][1]
    booking = BOOKING_USD_CENTS[identity.category] * fx
    money = np.isin(codes, _MONEY_CODES)
    share = rng.choice((0.25, 0.5, 1.0), size=total)
    share[codes == _CODE["contract_signed"]] = 1.0
    share[codes == _CODE["proposal_sent"]] = 1.0
    amount = booking * share * rng.lognormal(0.0, 0.35, size=total)
    values[money] = (np.round(amount[money] / 100.0) * 100).astype(np.int64)

    clients = codes == _CODE["client_added"]
    values[clients] = _ints(rng, 60, 600, total)[clients]

    galleries = codes == _CODE["gallery_delivered"]
    video = identity.category == "videographer"
    options[galleries] = 1 if video else 0
    values[galleries] = (
        _ints(rng, 3, 12, total)[galleries] if video else _ints(rng, 150, 900, total)[galleries]
    )

    reviews = codes == _CODE["review_received"]
    h = life.health[days]
    stars = 3.4 + 1.3 * np.tanh(0.8 * h + 0.6) + rng.normal(0.0, 0.7, size=total)
    values[reviews] = np.clip(np.round(stars), 1, 5).astype(np.int64)[reviews]
    return values, options.astype(np.int16)
