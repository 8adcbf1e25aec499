"""Builds the SignalFrame of many accounts as of one time, from the other domains' data.

Every figure is computed by the database (grouped aggregates over the rollups, tickets,
surveys and subscription changes) and only per-account results cross into Python; nothing
after `as_of` is read, so a backfill for last March sees what was known last March.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select
from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.health.baseline import FLAT_MONTH, Baseline, window_month
from tenure.health.engine import FLAT
from tenure.health.signals import Floats, SignalFrame
from tenure.ingest import service as ingest_service
from tenure.ingest.catalogue import MetricCatalogue
from tenure.kit.keys import key_of
from tenure.support import service as support_service

HALF_LIFE_DAYS = 90.0
AGING_DAYS = 10
SEEN_CAP_DAYS = 365


@dataclass
class AccountInfo:
    """What segment rules, roll-ups and explanations need about each frame row."""

    categories: list[str | None]
    plans: list[str | None]
    statuses: list[str]
    hemispheres: list[str]
    tenure_days: Floats
    parent_ids: list[uuid.UUID | None]
    mrr_base: Floats
    # MRR in the account's own currency (minor units).
    mrr_local: Floats
    previous_score: Floats
    previous_risk: list[str | None]
    previous_as_of: list[datetime | None]


def _day_number(value: date) -> int:
    return value.toordinal()


def load_frame(
    session: Session,
    *,
    as_of: datetime,
    catalogue: MetricCatalogue,
    baseline: Baseline,
    account_ids: Collection[uuid.UUID] | None = None,
) -> tuple[SignalFrame, AccountInfo]:
    """Signals of the accounts alive at `as_of` (all of them, or those among `account_ids`)."""
    rows = accounts_service.health_frame(session, as_of=as_of, account_ids=account_ids)
    ids = [r[0] for r in rows]
    n = len(ids)
    # Other domains' rows come back keyed by the id's text (no UUID per row): row lookup.
    key = key_of(session)
    index = {key(account_id): i for i, account_id in enumerate(ids)}
    subset = ids if account_ids is not None else None
    # The whole portfolio is read through a subquery of its ids: no ids bound.
    among: list[uuid.UUID] | Select[Any] = (
        ids if account_ids is not None else accounts_service.alive_ids(as_of)
    )
    day = as_of.astimezone(UTC).date()
    as_of_epoch = as_of.timestamp()

    info = AccountInfo(
        categories=[r[1] for r in rows],
        plans=[r[2] for r in rows],
        statuses=[r[3] for r in rows],
        hemispheres=[r[4] for r in rows],
        tenure_days=np.array([(as_of_epoch - r[5].timestamp()) / 86400.0 for r in rows]),
        parent_ids=[r[7] for r in rows],
        mrr_base=np.array([float(r[8] or 0) for r in rows]),
        mrr_local=np.array([float(r[9] or 0) for r in rows]),
        previous_score=np.array([np.nan if r[10] is None else float(r[10]) for r in rows]),
        previous_risk=[r[11] for r in rows],
        previous_as_of=[r[12] for r in rows],
    )

    def zeros() -> Floats:
        return np.zeros(n)

    def nans() -> Floats:
        return np.full(n, np.nan)

    # Usage: 90 days of usage_days (one row per account and active day), by primary key.
    active_30, active_prev, sessions_30, breadth_30, breadth_90 = (zeros() for _ in range(5))
    last_day = np.full(n, -1, dtype=np.int64)
    for account_id, a30, aprev, s30, f30, f90, last in ingest_service.usage_signals(
        session, day=day, account_ids=among, n_features=len(catalogue.key_features)
    ):
        i = index.get(account_id)
        if i is None:
            continue
        active_30[i], active_prev[i], sessions_30[i] = a30 or 0, aprev or 0, s30 or 0
        breadth_30[i], breadth_90[i] = f30 or 0, f90 or 0
        if last is not None:
            last_day[i] = _day_number(last if isinstance(last, date) else date.fromisoformat(last))

    # Last year's same window.
    sessions_last_year = zeros()
    for account_id, count in ingest_service.sessions_between(
        session,
        start=day - timedelta(days=395),
        end=day - timedelta(days=365),
        account_ids=among,
    ):
        i = index.get(account_id)
        if i is not None:
            sessions_last_year[i] = count

    # Recency beyond the 90-day window.
    quiet = [ids[i] for i in np.flatnonzero(last_day < 0).tolist()]
    if quiet:
        for account_id, last in ingest_service.last_active_days(
            session,
            since=day - timedelta(days=SEEN_CAP_DAYS),
            until=day - timedelta(days=90),
            account_ids=quiet,
        ):
            i = index.get(account_id)
            if i is not None and last_day[i] < 0:
                last_day[i] = _day_number(
                    last if isinstance(last, date) else date.fromisoformat(last)
                )
    today = _day_number(day)
    never = np.minimum(np.floor(info.tenure_days), SEEN_CAP_DAYS)
    days_since_seen = np.where(
        last_day >= 0, np.minimum(today - last_day, SEEN_CAP_DAYS), never
    ).astype(np.float64)

    # Support.
    open_tickets, aging, escalated = zeros(), zeros(), zeros()
    sentiment = nans()
    for (
        account_id,
        n_open,
        n_aging,
        n_escalated,
        mean_sentiment,
    ) in support_service.health_aggregates(
        session,
        as_of=as_of,
        aging_before=as_of - timedelta(days=AGING_DAYS),
        sentiment_since=as_of - timedelta(days=90),
        account_ids=subset,
    ):
        i = index.get(account_id)
        if i is None:
            continue
        open_tickets[i], aging[i], escalated[i] = n_open or 0, n_aging or 0, n_escalated or 0
        if mean_sentiment is not None:
            sentiment[i] = float(mean_sentiment)

    # Surveys, weighted by recency: columns and numpy, in the order of the answers (oldest
    # first), so every sum adds the same floats in the same order as one loop would.
    answers = support_service.survey_columns(
        session, since=as_of - timedelta(days=365), until=as_of, account_ids=subset
    )
    rows_at = np.array([index.get(k, -1) for k in answers.keys], dtype=np.intp)
    kinds = np.array(answers.kinds, dtype=object)
    answer_scores = np.array(answers.scores, dtype=np.float64)
    halves = ((as_of_epoch - answers.seconds) / 86400.0 / HALF_LIFE_DAYS).tolist()
    weights = np.array([0.5**h for h in halves], dtype=np.float64)  # Python's pow, as before
    weight_sum: dict[str, Any] = {}
    score_sum: dict[str, Any] = {}
    for kind in ("nps", "csat"):
        mine = (rows_at >= 0) & (kinds == kind)
        at, w = rows_at[mine], weights[mine]
        # bincount adds in array order from 0.0: the same sums as `+=` row by row.
        weight_sum[kind] = np.bincount(at, weights=w, minlength=n)
        score_sum[kind] = np.bincount(at, weights=w * answer_scores[mine], minlength=n)
    latest_nps, latest_nps_day = nans(), nans()
    nps_rows = np.flatnonzero((rows_at >= 0) & (kinds == "nps"))
    if nps_rows.size:
        # The last answer of each account wins (answers come oldest first).
        backwards = rows_at[nps_rows][::-1]
        accounts_hit, first_back = np.unique(backwards, return_index=True)
        newest = nps_rows[nps_rows.size - 1 - first_back]
        latest_nps[accounts_hit] = answer_scores[newest]
        latest_nps_day[accounts_hit] = answers.days[newest]
    with np.errstate(divide="ignore", invalid="ignore"):
        nps = np.where(weight_sum["nps"] > 0, score_sum["nps"] / weight_sum["nps"], np.nan)
        csat = np.where(weight_sum["csat"] > 0, score_sum["csat"] / weight_sum["csat"], np.nan)

    # Billing.
    mrr_delta, mrr_start = zeros(), nans()
    failed, downgrades = zeros(), zeros()
    row_of = {account_id: i for i, account_id in enumerate(ids)}
    for account_id, kind, before, after, _ in accounts_service.subscription_changes_between(
        session, since=as_of - timedelta(days=90), until=as_of, account_ids=subset
    ):
        i = row_of.get(account_id)
        if i is None:
            continue
        if kind == "failed_payment":
            failed[i] += 1
            continue
        if np.isnan(mrr_start[i]):
            mrr_start[i] = before
        mrr_delta[i] += after - before
        if kind == "contraction":
            downgrades[i] += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        mrr_change = np.where(
            np.isnan(mrr_start), 0.0, mrr_delta / np.maximum(np.nan_to_num(mrr_start), 1.0)
        )
    mrr_change = np.clip(mrr_change, -1.0, 5.0)

    # Expectations: the window's month and the 30 days before, and the whole-year figure.
    months_now = np.full(n, window_month(as_of), dtype=np.int64)
    months_prev = np.full(n, window_month(as_of, 45), dtype=np.int64)
    flat = np.full(n, FLAT_MONTH, dtype=np.int64)
    # A 12-day-old account cannot have been active 30 days: expect pro rata.
    part = np.clip(info.tenure_days / 30.0, 0.0, 1.0)
    expected: dict[str, Floats] = {}
    for signal in ("active_days", "sessions"):
        expected[signal] = part * baseline.expected(
            info.categories, info.hemispheres, months_now, signal
        )
        expected[signal + FLAT] = part * baseline.expected(
            info.categories, info.hemispheres, flat, signal
        )
    expected_prev = baseline.expected(info.categories, info.hemispheres, months_prev, "active_days")

    young = info.tenure_days < 60
    trend_flat = np.where(young, np.nan, (active_30 + 1.0) / (active_prev + 1.0))
    season = (expected_prev + 1.0) / (expected["active_days"] / np.maximum(part, 1e-9) + 1.0)
    trend_seasonal = trend_flat * season
    vs_last_year = np.where(
        (info.tenure_days >= 395) & (sessions_last_year > 0),
        sessions_30 / np.maximum(sessions_last_year, 1.0),
        np.nan,
    )

    # The season ahead: how often peers cancelled in the next two calendar months.
    ahead = np.zeros(n)
    for days in (15, 45):
        month = np.full(n, (as_of + timedelta(days=days)).month, dtype=np.int64)
        ahead += baseline.expected(info.categories, info.hemispheres, month, "churn_rate")

    values: dict[str, Floats] = {
        "active_days_30": active_30,
        "sessions_30": sessions_30,
        "activity_trend": trend_seasonal,
        "activity_trend" + FLAT: trend_flat,
        "sessions_vs_last_year": vs_last_year,
        "feature_breadth_30": breadth_30,
        "feature_breadth_90": breadth_90,
        "nps": nps,
        "csat": csat,
        "support_sentiment": sentiment,
        "open_tickets": open_tickets,
        "aging_tickets": aging,
        "escalated_tickets": escalated,
        "mrr_change_90": mrr_change,
        "failed_payments_90": failed,
        "downgrades_90": downgrades,
        "days_since_seen": days_since_seen,
        "season_ahead_churn": ahead,
        # Without the seasonal baseline there is no season ahead to speak of.
        "season_ahead_churn" + FLAT: nans(),
    }
    extras: dict[str, Floats] = {
        "latest_nps": latest_nps,
        "latest_nps_day": latest_nps_day,
        "key_features": np.full(n, float(len(catalogue.key_features))),
        "window_month": months_now.astype(np.float64),
    }
    return SignalFrame(ids, values, expected, extras), info


def lifecycle(info: AccountInfo) -> npt.NDArray[np.str_]:
    """trial / onboarding (first 90 days) / established, per frame row."""
    stage = np.where(info.tenure_days < 90, "onboarding", "established")
    trial = np.array([s == "trial" for s in info.statuses], dtype=bool)
    return np.where(trial, "trial", stage)
