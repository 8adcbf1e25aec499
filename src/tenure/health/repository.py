"""Every query of the health domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from tenure.health.baseline import Baseline, Figure
from tenure.health.models import HealthOverride, HealthScore, ScorecardVersion, SeasonalBaseline
from tenure.kit.bulk import merge_rows
from tenure.kit.keys import key_text


def add(session: Session, row: Any) -> None:
    session.add(row)
    session.flush()


def active_scorecards(session: Session) -> list[ScorecardVersion]:
    return list(
        session.scalars(
            select(ScorecardVersion)
            .where(ScorecardVersion.active.is_(True))
            .order_by(ScorecardVersion.key)
        )
    )


def latest_version(session: Session, key: str) -> int:
    return int(
        session.scalar(
            select(func.max(ScorecardVersion.version)).where(ScorecardVersion.key == key)
        )
        or 0
    )


def deactivate(session: Session, key: str) -> None:
    session.execute(
        update(ScorecardVersion)
        .where(ScorecardVersion.key == key)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )


def versions(session: Session, key: str) -> list[ScorecardVersion]:
    return list(
        session.scalars(
            select(ScorecardVersion)
            .where(ScorecardVersion.key == key)
            .order_by(ScorecardVersion.version.desc())
        )
    )


def baseline(session: Session, *, on_or_before: date, since: date) -> Baseline | None:
    learned_on = session.scalar(
        select(func.max(SeasonalBaseline.learned_on)).where(
            SeasonalBaseline.learned_on <= on_or_before, SeasonalBaseline.learned_on >= since
        )
    )
    if learned_on is None:
        return None
    b = SeasonalBaseline
    # Read on every rescore and prediction, one account's included: a baseline whose rows
    # are the same as last time (same database, day, count and sums) is reused, not rebuilt
    # (~860 figures: 3 ms of a one-account call).
    stamp = session.execute(
        select(func.count(), func.sum(b.expected), func.sum(b.accounts)).where(
            b.learned_on == learned_on
        )
    ).one()
    key = (
        session.get_bind().engine.url.render_as_string(hide_password=True),
        learned_on,
        int(stamp[0] or 0),
        float(stamp[1] or 0.0),
        int(stamp[2] or 0),
    )
    cached = _BASELINES.get(key)
    if cached is not None:
        return cached
    rows = session.execute(
        select(b.category, b.hemisphere, b.month, b.signal, b.expected, b.accounts, b.source).where(
            b.learned_on == learned_on
        )
    )
    learned = Baseline(
        learned_on,
        {
            (category, hemisphere, month, signal): Figure(expected, accounts, source)
            for category, hemisphere, month, signal, expected, accounts, source in rows
        },
    )
    if len(_BASELINES) >= 16:
        _BASELINES.clear()
    _BASELINES[key] = learned
    return learned


_BASELINES: dict[tuple[str, date, int, float, int], Baseline] = {}


def store_baseline(session: Session, learned: Baseline) -> None:
    session.execute(
        delete(SeasonalBaseline).where(SeasonalBaseline.learned_on == learned.learned_on)
    )
    rows = [
        {
            "learned_on": learned.learned_on,
            "category": category,
            "hemisphere": hemisphere,
            "month": month,
            "signal": signal,
            "expected": figure.expected,
            "accounts": figure.accounts,
            "source": figure.source,
        }
        for (category, hemisphere, month, signal), figure in learned.figures.items()
    ]
    if rows:
        session.execute(insert(SeasonalBaseline), rows)


def scores_on(session: Session, ids: Sequence[uuid.UUID], *, day: date) -> dict[str, float]:
    """Scores of that day (for the 7- and 30-day deltas), by account id as text
    (`kit.keys`); more than 5,000 ids: the whole day is read, no ids bound."""
    query = select(key_text(HealthScore.account_id), HealthScore.score).where(
        HealthScore.scored_on == day, HealthScore.score.is_not(None)
    )
    if len(ids) <= 5000:
        query = query.where(HealthScore.account_id.in_(list(ids)))
    return {a: float(s) for a, s in session.execute(query) if s is not None}


def upsert_scores(session: Session, columns: Mapping[str, Sequence[Any]]) -> None:
    """One row per account and day: a later computation the same day replaces it. Rows
    given as columns, written in one driver-level statement (`kit.bulk`)."""
    if not columns or not len(next(iter(columns.values()))):
        return
    names = [c for c in columns if c not in ("account_id", "scored_on")]
    merge_rows(
        session,
        HealthScore,
        columns,
        ["account_id", "scored_on"],
        ", ".join(f'"{c}" = excluded."{c}"' for c in names),
    )


def latest_score(session: Session, account_id: uuid.UUID) -> HealthScore | None:
    return session.scalar(
        select(HealthScore)
        .where(HealthScore.account_id == account_id)
        .order_by(HealthScore.scored_on.desc())
        .limit(1)
    )


def history(
    session: Session, account_id: uuid.UUID, *, since: date, until: date
) -> list[HealthScore]:
    return list(
        session.scalars(
            select(HealthScore)
            .where(
                HealthScore.account_id == account_id,
                HealthScore.scored_on >= since,
                HealthScore.scored_on <= until,
            )
            .order_by(HealthScore.scored_on)
        )
    )


def active_overrides(
    session: Session, ids: Sequence[uuid.UUID], *, at: datetime
) -> list[HealthOverride]:
    if not ids:
        return []
    query = (
        select(HealthOverride)
        .where(
            HealthOverride.removed_at.is_(None),
            HealthOverride.created_at <= at,
            HealthOverride.expires_at > at,
        )
        .order_by(HealthOverride.created_at)
    )
    if len(ids) <= 5000:
        query = query.where(HealthOverride.account_id.in_(list(ids)))
    wanted = set(ids)
    return [o for o in session.scalars(query) if o.account_id in wanted]


def lapsed_overrides(session: Session, *, now: datetime) -> list[uuid.UUID]:
    """Accounts whose override expired and was not processed yet; marks them processed."""
    rows = list(
        session.scalars(
            select(HealthOverride).where(
                HealthOverride.removed_at.is_(None), HealthOverride.expires_at <= now
            )
        )
    )
    for row in rows:
        row.removed_at = row.expires_at
    session.flush()
    return sorted({r.account_id for r in rows})


def overrides_of(session: Session, account_id: uuid.UUID) -> list[HealthOverride]:
    return list(
        session.scalars(
            select(HealthOverride)
            .where(HealthOverride.account_id == account_id)
            .order_by(HealthOverride.created_at.desc())
        )
    )
