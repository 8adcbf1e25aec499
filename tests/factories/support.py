from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tenure.accounts.models import Account
from tenure.kit.actor import Actor
from tenure.support import service as support_service
from tenure.support.models import SupportInteraction, SurveyResponse
from tenure.support.schemas import SupportInteractionCreate, SurveyResponseCreate


def make_interaction(
    session: Session, account: Account, *, now: datetime, **fields: Any
) -> SupportInteraction:
    data: dict[str, Any] = {"account_id": account.id, "type": "how_to", "channel": "email"}
    data.update(fields)
    return support_service.create_interaction(
        session, SupportInteractionCreate(**data), actor=Actor.system("tests"), now=now
    )


def make_survey(
    session: Session, account: Account, *, now: datetime, **fields: Any
) -> SurveyResponse:
    data: dict[str, Any] = {"account_id": account.id, "kind": "nps", "score": 9}
    data.update(fields)
    return support_service.create_survey(
        session, SurveyResponseCreate(**data), actor=Actor.system("tests"), now=now
    )
