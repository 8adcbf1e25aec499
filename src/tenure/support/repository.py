"""Every query of the support domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from tenure.kit.bulk import bulk_insert
from tenure.support.models import SupportInteraction, SurveyResponse


def insert_interactions(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, SupportInteraction, columns)


def insert_surveys(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    return bulk_insert(session, SurveyResponse, columns)
