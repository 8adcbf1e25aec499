"""Every SQL query of the churn domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.kit.bulk import bulk_insert

CHUNK = 5000


def next_version(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(ChurnModel.version), 0))) or 0) + 1


def models(session: Session) -> list[ChurnModel]:
    return list(session.scalars(select(ChurnModel).order_by(ChurnModel.version.desc())))


def by_version(session: Session, version: int) -> ChurnModel | None:
    return session.scalar(select(ChurnModel).where(ChurnModel.version == version))


def by_id(session: Session, model_id: uuid.UUID) -> ChurnModel | None:
    return session.get(ChurnModel, model_id)


def active(session: Session) -> ChurnModel | None:
    return session.scalar(select(ChurnModel).where(ChurnModel.status == "active"))


def retire_active(session: Session, *, except_id: uuid.UUID) -> None:
    session.execute(
        update(ChurnModel)
        .where(ChurnModel.status == "active", ChurnModel.id != except_id)
        .values(status="retired")
    )


def replace_predictions(
    session: Session, rows: Sequence[dict[str, Any]], *, as_of: datetime, everyone: bool
) -> None:
    """Insert predictions, dropping any earlier one of the same account at the same as_of
    (a rerun of the same day's prediction replaces it); `everyone`: the rows are the whole
    portfolio, so every prediction at that as_of goes."""
    if everyone:
        session.execute(delete(ChurnPrediction).where(ChurnPrediction.as_of == as_of))
    ids = [] if everyone else [r["account_id"] for r in rows]
    for start in range(0, len(ids), CHUNK):
        session.execute(
            delete(ChurnPrediction).where(
                ChurnPrediction.as_of == as_of,
                ChurnPrediction.account_id.in_(ids[start : start + CHUNK]),
            )
        )
    if rows:
        # Driver-level (executemany; COPY on PostgreSQL): no ORM bookkeeping per row.
        bulk_insert(session, ChurnPrediction, {name: [r[name] for r in rows] for name in rows[0]})


def latest_prediction(session: Session, account_id: uuid.UUID) -> ChurnPrediction | None:
    return session.scalar(
        select(ChurnPrediction)
        .where(ChurnPrediction.account_id == account_id)
        .order_by(ChurnPrediction.as_of.desc())
        .limit(1)
    )


def prediction_history(
    session: Session, account_id: uuid.UUID, *, limit: int
) -> list[ChurnPrediction]:
    return list(
        session.scalars(
            select(ChurnPrediction)
            .where(ChurnPrediction.account_id == account_id)
            .order_by(ChurnPrediction.as_of.desc())
            .limit(limit)
        )
    )


def pending(
    session: Session, *, as_of_before: datetime
) -> list[tuple[uuid.UUID, uuid.UUID, Any, int]]:
    """(id, account, as_of, horizon days) of predictions without an outcome made before."""
    rows = session.execute(
        select(
            ChurnPrediction.id,
            ChurnPrediction.account_id,
            ChurnPrediction.as_of,
            ChurnPrediction.horizon_days,
        ).where(ChurnPrediction.outcome.is_(None), ChurnPrediction.as_of <= as_of_before)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in rows]


def set_outcomes(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """rows: {"id", "outcome", "outcome_at"}."""
    for start in range(0, len(rows), CHUNK):
        session.execute(update(ChurnPrediction), list(rows[start : start + CHUNK]))


def matured(session: Session, model_id: uuid.UUID) -> list[tuple[float, int]]:
    """(probability, outcome) of this model's predictions whose outcome is known."""
    rows = session.execute(
        select(ChurnPrediction.probability, ChurnPrediction.outcome).where(
            ChurnPrediction.model_id == model_id, ChurnPrediction.outcome.is_not(None)
        )
    )
    return [(float(r[0]), int(r[1] or 0)) for r in rows]


def counts_by_model(session: Session) -> dict[uuid.UUID, tuple[int, int]]:
    """model id -> (predictions, of which matured)."""
    rows = session.execute(
        select(
            ChurnPrediction.model_id,
            func.count(),
            func.count(ChurnPrediction.outcome),
        ).group_by(ChurnPrediction.model_id)
    )
    return {r[0]: (int(r[1] or 0), int(r[2] or 0)) for r in rows}
