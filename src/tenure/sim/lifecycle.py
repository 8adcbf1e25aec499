"""The hidden life of an account: latent health, churn hazard, churns, reactivations, billing.

The hazard is a function of the latent state (fit, health, price sensitivity, onboarding) and
never of observed activity, so a quiet off-season does not make anyone churn. Observables
(activity, tickets, surveys, payments) are drawn from the same latent state with noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np

from tenure.sim import catalog
from tenure.sim.calendar import DAYS_PER_MONTH, SECONDS_PER_DAY, BoolArray, Calendar, FloatArray
from tenure.sim.identity import Identity
from tenure.sim.records import SubscriptionRecord, utc_from_epoch

# Monthly base hazards of the churn causes at health 0 (tuned: see docs/simulator.md).
BASE_CLOSED = 0.0066
BASE_PRICE = 0.00825
BASE_COMPETITOR = 0.0066
BASE_MISSING = 0.0044
BASE_SUPPORT = 0.00275
BASE_PAYMENT = 0.00275
BASE_SEASONAL = 0.00935
MAX_MONTHLY_HAZARD = 0.6
MAX_CHURNS = 6
ANNUAL_TERM_DAYS = 365
# How much of health is the account's lasting fit, and how fast the rest drifts.
FIT_WEIGHT = 0.9
DRIFT_REVERSION = 0.2
DRIFT_STEP = 0.22
STALLED_PENALTY = 0.6
# Health -> hazard elasticity, scaled per cause below.
HAZARD_SLOPE = 1.5
# Share of foreseeable churners whose activity fades before they leave, and how.
WIND_DOWN_SHARE = 0.8
WIND_DOWN_MIN_DAYS = 30
WIND_DOWN_MAX_DAYS = 100
WIND_DOWN_FLOOR = 0.15
# Selection of the stock: how much better the fit of long-standing accounts is.
SURVIVOR_FIT_SHIFT = 0.85
SURVIVOR_DAYS = 240.0


@dataclass(frozen=True, slots=True)
class Churn:
    day: int
    epoch: int
    cause: str
    wind_down_days: int
    reactivation_day: int | None
    reactivation_epoch: int | None


@dataclass(slots=True)
class Lifecycle:
    fit: float
    price_sensitivity: float
    onboarding_days: int
    onboarding_completed: bool
    # Share of the non-core features a stalled account ever adopts.
    plateau: float
    health: FloatArray
    tenure: FloatArray
    subscribed: BoolArray
    wind: FloatArray
    monthly_hazard: FloatArray
    shock_days: list[int]
    churns: list[Churn]
    treated_on: date | None
    subscriptions: list[SubscriptionRecord] = field(default_factory=list)
    plan: str = "starter"
    mrr_cents: int = 0
    status: str = "active"


def _sigmoid(x: FloatArray | float) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(x))), dtype=np.float64)


def simulate_lifecycle(
    identity: Identity,
    cal: Calendar,
    *,
    latent_rng: np.random.Generator,
    churn_rng: np.random.Generator,
    billing_rng: np.random.Generator,
    treatment_effect: float,
    treated_on: date | None,
) -> Lifecycle:
    n = cal.n_days
    days = np.arange(n, dtype=np.float64)
    # Accounts already on the books at the start survived their early months: the longer
    # ago they signed up, the more the weak fits and stalled onboardings have left already.
    survivor = 1.0 - np.exp(min(identity.signup_day, 0) / SURVIVOR_DAYS)
    fit = float(latent_rng.normal(SURVIVOR_FIT_SHIFT * survivor, 1.0))
    price_sensitivity = float(latent_rng.beta(2.0, 5.0))
    onboarding_days = int(latent_rng.integers(30, 61))
    onboarding_completed = bool(latent_rng.random() < _sigmoid(0.9 + 0.9 * fit + 1.5 * survivor))
    plateau = float(latent_rng.uniform(0.2, 0.55))
    tenure = days - identity.signup_day
    stalled_now = (~np.asarray(onboarding_completed)) & (tenure > onboarding_days)

    # Lasting fit plus a slow mean-reverting monthly drift, interpolated to days.
    knots = cal.knot_days
    stalled_knots = stalled_now[np.minimum(knots, n - 1)]
    drift = np.empty(knots.shape[0], dtype=np.float64)
    stock = identity.signup_day < 0
    stationary = DRIFT_STEP / np.sqrt(1.0 - (1.0 - DRIFT_REVERSION) ** 2)
    # Survivors of the stock lean healthy; newcomers start with a honeymoon.
    start_value = latent_rng.normal(-0.1 if stock else 0.3, stationary)
    steps = latent_rng.normal(0.0, DRIFT_STEP, size=int(knots.shape[0]))
    signup_knot = int(np.searchsorted(knots, max(identity.signup_day, 0), side="right")) - 1
    drift[: signup_knot + 1] = start_value
    for k in range(signup_knot + 1, knots.shape[0]):
        drift[k] = (1.0 - DRIFT_REVERSION) * drift[k - 1] + steps[k]
    h_knots = FIT_WEIGHT * fit + drift - STALLED_PENALTY * stalled_knots
    health = np.interp(days, knots.astype(np.float64), h_knots)

    # Sharp setbacks (a bug in a busy week, a bad support experience) that fade over months.
    shock_days: list[int] = []
    shock_draws = latent_rng.random(size=len(cal.month_start_days))
    shock_sizes = latent_rng.uniform(0.7, 1.5, size=len(cal.month_start_days))
    shock_offsets = latent_rng.random(size=len(cal.month_start_days))
    peak = cal.peak[identity.hemisphere]
    for k, first in enumerate(cal.month_start_days):
        chance = 0.06 * (1.5 if peak[first] else 1.0)
        if shock_draws[k] < chance:
            length = int(knots[k + 1] - first)
            day = int(first + int(shock_offsets[k] * length))
            if day >= max(identity.signup_day, 0):
                shock_days.append(day)
                after = days >= day
                health[after] -= shock_sizes[k] * np.exp(-(days[after] - day) / 90.0)
    recent_shock = np.zeros(n, dtype=np.float64)
    for day in shock_days:
        recent_shock[day : day + 75] = 1.0

    # Cause-specific monthly hazards; the sum is the account's churn probability per month.
    ps = price_sensitivity / 0.286
    slope = HAZARD_SLOPE
    starter = identity.plan == "starter"
    stalled_factor = np.where(stalled_now, 2.2, 1.0)
    off_season_start = _season_end_window(cal, identity.hemisphere)
    seasonal_plan = {"starter": 1.5, "professional": 0.6}.get(identity.plan, 0.2)
    amplitude = catalog.SEASON_AMPLITUDE[identity.category]
    components = np.stack(
        [
            np.full(n, BASE_CLOSED * (1.3 if starter else 1.0)),
            BASE_PRICE * ps * np.exp(-1.0 * slope * health),
            BASE_COMPETITOR * np.exp(-1.2 * slope * health),
            BASE_MISSING * np.exp(-0.9 * slope * health) * stalled_factor,
            BASE_SUPPORT * np.exp(-1.0 * slope * health) * (1.0 + 3.0 * recent_shock),
            BASE_PAYMENT * ps * np.exp(-0.6 * slope * health),
            BASE_SEASONAL * ps * seasonal_plan * amplitude * off_season_start,
        ]
    )
    monthly = np.minimum(components.sum(axis=0), MAX_MONTHLY_HAZARD)
    if treated_on is not None and treatment_effect > 0:
        from_day = max(0, cal.day_of(treated_on))
        scale = np.ones(n)
        scale[from_day:] = 1.0 - treatment_effect
        monthly = monthly * scale
        components = components * scale
    daily = 1.0 - np.power(1.0 - monthly, 1.0 / DAYS_PER_MONTH)

    # Common random numbers: the same draws decide churn with and without a treatment, so a
    # treated run differs from an untreated one only where the hazard changed.
    u_churn = churn_rng.random(n)
    u_cause = churn_rng.random(n)
    u_cycle = churn_rng.random((MAX_CHURNS, 5))

    subscribed = np.zeros(n, dtype=np.bool_)
    wind = np.ones(n, dtype=np.float64)
    churns: list[Churn] = []
    cursor = max(identity.signup_day, 0)
    converted_from = max(identity.trial_end_day, 0)
    annual = identity.traits.get("billing_interval") == "annual"
    # Day the current paid term started (the conversion, later a reactivation).
    term_anchor = identity.trial_end_day
    while cursor < n:
        eligible_from = max(cursor, converted_from)
        hits = np.flatnonzero(u_churn[eligible_from:] < daily[eligible_from:])
        if hits.size == 0 or len(churns) == MAX_CHURNS:
            subscribed[cursor:] = True
            break
        decided = eligible_from + int(hits[0])
        # An annual subscription runs to the end of its paid term: a decision to leave
        # taken mid-term shows as a churn at the renewal, not on the day it was taken.
        day = _term_end(term_anchor, decided) if annual else decided
        if day >= n:
            subscribed[cursor:] = True
            break
        subscribed[cursor:day] = True
        weights = components[:, decided]
        cum = np.cumsum(weights)
        cause = catalog.CHURN_CAUSES[
            int(np.searchsorted(cum, u_cause[decided] * cum[-1], side="right"))
        ]
        draws = u_cycle[len(churns)]
        wind_days = 0
        if cause not in catalog.UNFORESEEABLE_CAUSES and draws[0] < WIND_DOWN_SHARE:
            wind_days = int(
                WIND_DOWN_MIN_DAYS + draws[1] * (WIND_DOWN_MAX_DAYS - WIND_DOWN_MIN_DAYS)
            )
            begin = max(cursor, day - wind_days)
            wind[begin:day] = np.linspace(1.0, WIND_DOWN_FLOOR, day - begin + 1)[:-1]
        hour = 9 * 3600 + int(draws[2] * 9 * 3600)
        epoch = int(cal.local_to_epoch(identity.timezone, np.asarray([day]), np.asarray([hour]))[0])
        react_day: int | None = None
        if draws[3] < catalog.REACTIVATION_PROBABILITY[cause]:
            if cause == "seasonal_pause":
                react_day = (
                    _next_peak_start(cal, identity.hemisphere, day) + int(draws[4] * 40) - 20
                )
            else:
                react_day = day + 30 + int(-np.log(1.0 - draws[4]) * 90)
            react_day = max(react_day, day + 14)
            if react_day >= n:
                react_day = None
        react_epoch = None
        if react_day is not None:
            react_epoch = int(
                cal.local_to_epoch(identity.timezone, np.asarray([react_day]), np.asarray([hour]))[
                    0
                ]
            )
        churns.append(Churn(day, epoch, cause, wind_days, react_day, react_epoch))
        if react_day is None:
            break
        # Coming back is a fresh start: the account re-engages for a while.
        after = days >= react_day
        health[after] += 0.6 * np.exp(-(days[after] - react_day) / 120.0)
        cursor = react_day
        converted_from = react_day
        term_anchor = react_day

    life = Lifecycle(
        fit=fit,
        price_sensitivity=price_sensitivity,
        onboarding_days=onboarding_days,
        onboarding_completed=onboarding_completed,
        plateau=plateau,
        health=health,
        tenure=tenure,
        subscribed=subscribed,
        wind=wind,
        monthly_hazard=monthly,
        shock_days=shock_days,
        churns=churns,
        treated_on=treated_on,
    )
    _bill(identity, cal, life, billing_rng)
    return life


def _term_end(anchor: int, day: int) -> int:
    """The first end of an annual term begun on `anchor` that is on or after `day`."""
    terms = max(1, -(-(day - anchor) // ANNUAL_TERM_DAYS))
    return anchor + terms * ANNUAL_TERM_DAYS


def _season_end_window(cal: Calendar, hemisphere: str) -> FloatArray:
    """1.0 in the first two months after the peak season ends, else 0."""
    last_peak = {"north": 10, "south": 4}[hemisphere]
    months = cal.month_of_day
    first = last_peak % 12 + 1
    second = first % 12 + 1
    return np.where((months == first) | (months == second), 1.0, 0.0)


def _next_peak_start(cal: Calendar, hemisphere: str, day: int) -> int:
    first_peak = {"north": 5, "south": 11}[hemisphere]
    later = np.flatnonzero(cal.month_of_day[day:] == first_peak)
    if later.size == 0:
        return cal.n_days
    return day + int(later[0])


def _bill(identity: Identity, cal: Calendar, life: Lifecycle, rng: np.random.Generator) -> None:
    """Subscription changes in time order, keeping plan and MRR consistent along the way."""
    n = cal.n_days
    plan = identity.plan
    records: list[SubscriptionRecord] = []
    mrr = 0

    def add(kind: str, epoch: int, before: int, after: int, reason: str | None) -> None:
        records.append(
            SubscriptionRecord(
                external_id="",
                account_external_id=identity.external_id,
                kind=kind,
                mrr_before_cents=before,
                mrr_after_cents=after,
                currency=identity.currency,
                plan=plan,
                reason=reason,
                occurred_at=utc_from_epoch(epoch),
            )
        )

    def billing_epoch(day: int) -> int:
        hour = int(rng.integers(2 * 3600, 7 * 3600))
        return int(cal.local_to_epoch(identity.timezone, np.asarray([day]), np.asarray([hour]))[0])

    trial_end = identity.trial_end_day
    if trial_end < n:
        mrr = identity.mrr_for(plan)
        epoch = identity.signup_epoch + 14 * SECONDS_PER_DAY
        add("new", epoch, 0, mrr, None)

    churn_by_day = {c.day: c for c in life.churns}
    react_by_day = {c.reactivation_day: c for c in life.churns if c.reactivation_day is not None}
    pre_churn: dict[int, list[str]] = {}
    for churn in life.churns:
        if churn.cause == "payment_failed":
            for _ in range(int(rng.integers(2, 4))):
                day = churn.day - int(rng.integers(1, 31))
                pre_churn.setdefault(day, []).append("failed_payment")
        elif churn.cause == "price" and rng.random() < 0.35:
            day = churn.day - int(rng.integers(20, 61))
            pre_churn.setdefault(day, []).append("contraction")
    # Nothing is billed before the subscription starts.
    pre_churn = {d: kinds for d, kinds in pre_churn.items() if d > max(trial_end, 0)}

    first_bill = max(trial_end, 0)
    # Billing runs on monthly anniversaries of the conversion, plus the days something happens.
    first_anniversary = trial_end + 30 if trial_end >= 0 else trial_end % 30
    anniversaries = set(range(first_anniversary, n, 30))
    agenda = sorted(
        {d for d in anniversaries | pre_churn.keys() | churn_by_day.keys() if d >= first_bill}
        | {d for d in react_by_day if d is not None}
    )
    peak = cal.peak[identity.hemisphere]
    for day in agenda:
        h = float(life.health[day])
        reactivation = react_by_day.get(day)
        if reactivation is not None and reactivation.reactivation_epoch is not None:
            if reactivation.cause == "price" and plan != "starter":
                plan = catalog.PLANS[catalog.PLANS.index(plan) - 1]
            mrr = identity.mrr_for(plan)
            reason = "seasonal_return" if reactivation.cause == "seasonal_pause" else "win_back"
            add("reactivation", reactivation.reactivation_epoch, 0, mrr, reason)
        churned = churn_by_day.get(day)
        if churned is not None:
            add("churn", churned.epoch, mrr, 0, churned.cause)
            mrr = 0
            continue
        if not life.subscribed[day] or mrr == 0:
            continue
        for kind in pre_churn.get(day, ()):
            if kind == "failed_payment":
                reason = str(rng.choice(catalog.FAILED_PAYMENT_REASONS))
                add("failed_payment", billing_epoch(day), mrr, mrr, reason)
            elif plan != "starter":
                plan = catalog.PLANS[catalog.PLANS.index(plan) - 1]
                new = identity.mrr_for(plan)
                add("contraction", billing_epoch(day), mrr, new, "price")
                mrr = new
        if day not in anniversaries:
            continue
        u = rng.random(3)
        ps = life.price_sensitivity
        if u[0] < 0.01 + 0.05 * ps * float(_sigmoid(-1.5 * h)):
            reason = str(rng.choice(catalog.FAILED_PAYMENT_REASONS))
            add("failed_payment", billing_epoch(day), mrr, mrr, reason)
        if plan != "scale" and u[1] < 0.012 * np.exp(0.6 * h) * (1.4 if peak[day] else 1.0):
            plan = catalog.PLANS[catalog.PLANS.index(plan) + 1]
            new = identity.mrr_for(plan)
            add("expansion", billing_epoch(day), mrr, new, "upgrade")
            mrr = new
        elif plan != "starter" and u[2] < 0.006 * np.exp(-0.7 * h) * (0.5 + 2 * ps) * (
            1.0 if peak[day] else 1.5
        ):
            plan = catalog.PLANS[catalog.PLANS.index(plan) - 1]
            new = identity.mrr_for(plan)
            add("contraction", billing_epoch(day), mrr, new, "downgrade")
            mrr = new

    records.sort(key=lambda r: r.occurred_at)
    for k, record in enumerate(records):
        record.external_id = f"sub_{identity.index + 1:06d}_{k + 1:03d}"
    life.subscriptions = records
    life.plan = plan
    life.mrr_cents = mrr
    if trial_end >= n:
        life.status = "trial"
    elif life.churns and life.churns[-1].reactivation_day is None:
        life.status = "churned"
    else:
        life.status = "active"
