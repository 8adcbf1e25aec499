"""Every query of the health domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tenure.health.baseline import Baseline, Figure
from tenure.health.models import HealthOverride, HealthScore, ScorecardVersion, SeasonalBaseline


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
    rows = session.scalars(
        select(SeasonalBaseline).where(SeasonalBaseline.learned_on == learned_on)
    )
    return Baseline(
        learned_on,
        {
            (r.category, r.hemisphere, r.month, r.signal): Figure(r.expected, r.accounts, r.source)
            for r in rows
        },
    )


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


def scores_on(session: Session, ids: Sequence[uuid.UUID], *, day: date) -> dict[uuid.UUID, float]:
    """Scores of that day (for the 7- and 30-day deltas)."""
    query = select(HealthScore.account_id, HealthScore.score).where(
        HealthScore.scored_on == day, HealthScore.score.is_not(None)
    )
    if len(ids) <= 5000:
        query = query.where(HealthScore.account_id.in_(list(ids)))
    wanted = set(ids)
    return {a: float(s) for a, s in session.execute(query) if a in wanted and s is not None}


def upsert_scores(session: Session, rows: list[dict[str, Any]]) -> None:
    """One row per account and day: a later computation the same day replaces it."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(HealthScore)
    columns = [c for c in rows[0] if c not in ("account_id", "scored_on")]
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "scored_on"],
        set_={c: statement.excluded[c] for c in columns},
    )
    for start in range(0, len(rows), 5000):
        session.execute(statement, rows[start : start + 5000])


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
