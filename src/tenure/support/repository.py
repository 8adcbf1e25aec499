"""Every query of the support domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
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
