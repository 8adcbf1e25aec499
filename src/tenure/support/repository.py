"""Every query of the support domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Select, String, case, func, select, type_coerce
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenure.kit.bulk import bulk_insert
from tenure.kit.keys import key_text
from tenure.support.models import SupportInteraction, SurveyResponse


def insert_interactions(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, SupportInteraction, columns)


def insert_surveys(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, SurveyResponse, columns)


def try_insert(session: Session, row: SupportInteraction | SurveyResponse) -> bool:
    """Insert one row in a savepoint; False when a unique constraint (external_id) refused it."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def _count(session: Session, query: Select[Any], id_column: Any) -> int:
    sub = query.with_only_columns(id_column).subquery()
    return session.scalar(select(func.count()).select_from(sub)) or 0


# ---------------------------------------------------------------------------------------------
# Support interactions


@dataclass(frozen=True)
class InteractionFilters:
    account_id: uuid.UUID | None = None
    status: str | None = None
    type: str | None = None
    channel: str | None = None
    priority: str | None = None
    escalated: bool | None = None
    opened_after: datetime | None = None  # inclusive
    opened_before: datetime | None = None  # exclusive


def interactions_filtered(filters: InteractionFilters) -> Select[SupportInteraction]:
    query = select(SupportInteraction)
    if filters.account_id is not None:
        query = query.where(SupportInteraction.account_id == filters.account_id)
    if filters.status is not None:
        query = query.where(SupportInteraction.status == filters.status)
    if filters.type is not None:
        query = query.where(SupportInteraction.type == filters.type)
    if filters.channel is not None:
        query = query.where(SupportInteraction.channel == filters.channel)
    if filters.priority is not None:
        query = query.where(SupportInteraction.priority == filters.priority)
    if filters.escalated is not None:
        query = query.where(SupportInteraction.escalated == filters.escalated)
    if filters.opened_after is not None:
        query = query.where(SupportInteraction.opened_at >= filters.opened_after)
    if filters.opened_before is not None:
        query = query.where(SupportInteraction.opened_at < filters.opened_before)
    return query


def count_interactions(session: Session, filters: InteractionFilters) -> int:
    return _count(session, interactions_filtered(filters), SupportInteraction.id)


def interaction_by_id(session: Session, interaction_id: uuid.UUID) -> SupportInteraction | None:
    return session.get(SupportInteraction, interaction_id)


def interaction_by_external_id(session: Session, external_id: str) -> SupportInteraction | None:
    return session.scalar(
        select(SupportInteraction).where(SupportInteraction.external_id == external_id)
    )


# ---------------------------------------------------------------------------------------------
# Survey responses


@dataclass(frozen=True)
class SurveyFilters:
    account_id: uuid.UUID | None = None
    kind: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def surveys_filtered(filters: SurveyFilters) -> Select[SurveyResponse]:
    query = select(SurveyResponse)
    if filters.account_id is not None:
        query = query.where(SurveyResponse.account_id == filters.account_id)
    if filters.kind is not None:
        query = query.where(SurveyResponse.kind == filters.kind)
    if filters.since is not None:
        query = query.where(SurveyResponse.responded_at >= filters.since)
    if filters.until is not None:
        query = query.where(SurveyResponse.responded_at < filters.until)
    return query


def count_surveys(session: Session, filters: SurveyFilters) -> int:
    return _count(session, surveys_filtered(filters), SurveyResponse.id)


def survey_by_id(session: Session, response_id: uuid.UUID) -> SurveyResponse | None:
    return session.get(SurveyResponse, response_id)


def survey_by_external_id(session: Session, external_id: str) -> SurveyResponse | None:
    return session.scalar(select(SurveyResponse).where(SurveyResponse.external_id == external_id))


def health_aggregates(
    session: Session,
    *,
    as_of: datetime,
    aging_before: datetime,
    sentiment_since: datetime,
    account_ids: Collection[uuid.UUID] | None,
) -> list[tuple[Any, ...]]:
    """Per account (id as text, `kit.keys`): tickets open at `as_of`, of which opened before
    `aging_before`, of which escalated; mean sentiment of interactions opened since
    `sentiment_since`."""
    si = SupportInteraction
    open_then = (si.opened_at < as_of) & (si.resolved_at.is_(None) | (si.resolved_at >= as_of))
    recent = (si.opened_at >= sentiment_since) & (si.opened_at < as_of)
    query = select(
        key_text(si.account_id),
        func.sum(case((open_then, 1), else_=0)),
        func.sum(case((open_then & (si.opened_at < aging_before), 1), else_=0)),
        func.sum(case((open_then & si.escalated, 1), else_=0)),
        func.avg(case((recent, si.sentiment), else_=None)),
    ).where(si.opened_at < as_of, (si.resolved_at.is_(None)) | (si.resolved_at >= sentiment_since))
    if account_ids is not None:
        query = query.where(si.account_id.in_(list(account_ids)))
    return [tuple(row) for row in session.execute(query.group_by(si.account_id))]


@dataclass
class SurveyColumns:
    """Survey answers as columns, oldest first: account id as text (`kit.keys`), kind,
    score, the answer's time in seconds since the epoch (`datetime.timestamp()`) and its UTC
    day (`date.toordinal()`)."""

    keys: list[str]
    kinds: list[str]
    scores: list[int]
    seconds: npt.NDArray[np.float64]
    days: npt.NDArray[np.int64]


def survey_columns(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    account_ids: Collection[uuid.UUID] | None,
) -> SurveyColumns:
    """Answers in [since, until), oldest first, without a Python object per row beyond
    the id's text."""
    sr = SurveyResponse
    sqlite = session.get_bind().dialect.name == "sqlite"
    # SQLite keeps the time as ISO text (UTC): numpy parses it, no datetime per row.
    at = type_coerce(sr.responded_at, String) if sqlite else sr.responded_at
    query = (
        select(key_text(sr.account_id), sr.kind, sr.score, at)
        .where(sr.responded_at >= since, sr.responded_at < until)
        .order_by(sr.responded_at)
    )
    if account_ids is not None:
        query = query.where(sr.account_id.in_(list(account_ids)))
    rows = session.execute(query).all()
    if not rows:
        return SurveyColumns([], [], [], np.zeros(0), np.zeros(0, dtype=np.int64))
    keys, kinds, scores, times = (list(c) for c in zip(*rows, strict=True))
    if sqlite:
        # Integer microseconds / 1e6: the same float as datetime.timestamp().
        micros = np.array(times, dtype="datetime64[us]").astype(np.int64)
        seconds = micros.astype(np.float64) / 1e6
        days = micros // 86_400_000_000 + EPOCH_ORDINAL
    else:
        seconds = np.array([t.timestamp() for t in times], dtype=np.float64)
        days = np.array([t.astimezone(UTC).date().toordinal() for t in times], dtype=np.int64)
    return SurveyColumns(keys, kinds, [int(s) for s in scores], seconds, days)


EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def ticket_counts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    negative_below: float,
    account_ids: Collection[uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, str, int, int]]:
    """(account, type, tickets, of which negative) opened in [since, until)."""
    negative = func.sum(case((SupportInteraction.sentiment < negative_below, 1), else_=0))
    query = (
        select(
            SupportInteraction.account_id,
            SupportInteraction.type,
            func.count(),
            negative,
        )
        .where(SupportInteraction.opened_at >= since, SupportInteraction.opened_at < until)
        .group_by(SupportInteraction.account_id, SupportInteraction.type)
    )
    if account_ids is not None:
        ids = list(account_ids)
        out: list[tuple[uuid.UUID, str, int, int]] = []
        for start in range(0, len(ids), 5000):
            chunk = query.where(SupportInteraction.account_id.in_(ids[start : start + 5000]))
            out.extend((r[0], r[1], int(r[2]), int(r[3] or 0)) for r in session.execute(chunk))
        return out
    return [(r[0], r[1], int(r[2]), int(r[3] or 0)) for r in session.execute(query)]
