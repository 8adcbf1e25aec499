"""Every query of the support domain."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenure.kit.bulk import bulk_insert
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
    """Per account: tickets open at `as_of`, of which opened before `aging_before`, of which
    escalated; mean sentiment and count of interactions opened since `sentiment_since`."""
    si = SupportInteraction
    open_then = (si.opened_at < as_of) & (si.resolved_at.is_(None) | (si.resolved_at >= as_of))
    recent = (si.opened_at >= sentiment_since) & (si.opened_at < as_of)
    query = select(
        si.account_id,
        func.sum(case((open_then, 1), else_=0)),
        func.sum(case((open_then & (si.opened_at < aging_before), 1), else_=0)),
        func.sum(case((open_then & si.escalated, 1), else_=0)),
        func.avg(case((recent, si.sentiment), else_=None)),
    ).where(si.opened_at < as_of, (si.resolved_at.is_(None)) | (si.resolved_at >= sentiment_since))
    if account_ids is not None:
        query = query.where(si.account_id.in_(list(account_ids)))
    return [tuple(row) for row in session.execute(query.group_by(si.account_id))]


def survey_answers(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    account_ids: Collection[uuid.UUID] | None,
) -> list[tuple[uuid.UUID, str, int, datetime]]:
    """(account, kind, score, responded_at) of answers in [since, until), oldest first."""
    sr = SurveyResponse
    query = (
        select(sr.account_id, sr.kind, sr.score, sr.responded_at)
        .where(sr.responded_at >= since, sr.responded_at < until)
        .order_by(sr.responded_at)
    )
    if account_ids is not None:
        query = query.where(sr.account_id.in_(list(account_ids)))
    return [(a, k, int(s), at) for a, k, s, at in session.execute(query)]
