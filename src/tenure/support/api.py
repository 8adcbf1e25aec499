"""Routes: /api/v1/support/interactions and /api/v1/surveys/responses."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime

from tenure.auth.dependencies import Reader, Writer
from tenure.deps import DB, State
from tenure.support import service
from tenure.support.schemas import (
    Channel,
    InteractionStatus,
    InteractionType,
    Order,
    Priority,
    SupportInteractionCreate,
    SupportInteractionPage,
    SupportInteractionRead,
    SupportInteractionUpdate,
    SupportInteractionUpsert,
    SurveyKind,
    SurveyResponseCreate,
    SurveyResponsePage,
    SurveyResponseRead,
    SurveyResponseUpsert,
)

ExternalId = Annotated[str, Path(min_length=1, max_length=255)]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]
UPSERT_RESPONSES: dict[int | str, dict[str, str]] = {
    200: {"description": "Updated (or unchanged)"},
    201: {"description": "Created"},
}

interactions = APIRouter(prefix="/api/v1/support/interactions", tags=["support"])
surveys = APIRouter(prefix="/api/v1/surveys/responses", tags=["surveys"])


@interactions.get(
    "", response_model=SupportInteractionPage, summary="List support interactions (cursor)"
)
def list_interactions(
    db: DB,
    _: Reader,
    account_id: uuid.UUID | None = None,
    status: InteractionStatus | None = None,
    type: InteractionType | None = None,
    channel: Channel | None = None,
    priority: Priority | None = None,
    escalated: bool | None = None,
    opened_after: Annotated[
        AwareDatetime | None, Query(description="Opened at or after (inclusive)")
    ] = None,
    opened_before: Annotated[
        AwareDatetime | None, Query(description="Opened before (exclusive)")
    ] = None,
    order: Order = "desc",
    cursor: str | None = None,
    limit: Limit = 50,
) -> SupportInteractionPage:
    filters = service.InteractionFilters(
        account_id=account_id,
        status=status,
        type=type,
        channel=channel,
        priority=priority,
        escalated=escalated,
        opened_after=opened_after,
        opened_before=opened_before,
    )
    page = service.list_interactions(
        db, filters, descending=order == "desc", cursor=cursor, limit=limit
    )
    return SupportInteractionPage(
        items=[SupportInteractionRead.model_validate(i) for i in page.items],
        total=service.count_interactions(db, filters),
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


@interactions.post("", response_model=SupportInteractionRead, status_code=201)
def create_interaction(
    body: SupportInteractionCreate, db: DB, state: State, actor: Writer
) -> SupportInteractionRead:
    row = service.create_interaction(db, body, actor=actor, now=state.clock.now())
    return SupportInteractionRead.model_validate(row)


@interactions.get("/by-external-id/{external_id}", response_model=SupportInteractionRead)
def get_interaction_by_external_id(
    external_id: ExternalId, db: DB, _: Reader
) -> SupportInteractionRead:
    row = service.get_interaction_by_external_id(db, external_id)
    return SupportInteractionRead.model_validate(row)


@interactions.put(
    "/by-external-id/{external_id}",
    response_model=SupportInteractionRead,
    responses=UPSERT_RESPONSES,
    summary="Create or update the interaction with this external id (idempotent sync)",
)
def upsert_interaction(
    external_id: ExternalId,
    body: SupportInteractionUpsert,
    db: DB,
    state: State,
    actor: Writer,
    response: Response,
) -> SupportInteractionRead:
    row, created = service.upsert_interaction(
        db, external_id, body, actor=actor, now=state.clock.now()
    )
    response.status_code = 201 if created else 200
    return SupportInteractionRead.model_validate(row)


@interactions.get("/{interaction_id}", response_model=SupportInteractionRead)
def get_interaction(interaction_id: uuid.UUID, db: DB, _: Reader) -> SupportInteractionRead:
    return SupportInteractionRead.model_validate(service.get_interaction(db, interaction_id))


@interactions.patch("/{interaction_id}", response_model=SupportInteractionRead)
def update_interaction(
    interaction_id: uuid.UUID, body: SupportInteractionUpdate, db: DB, state: State, actor: Writer
) -> SupportInteractionRead:
    row = service.update_interaction(db, interaction_id, body, actor=actor, now=state.clock.now())
    return SupportInteractionRead.model_validate(row)


@surveys.get("", response_model=SurveyResponsePage, summary="List survey responses (cursor)")
def list_surveys(
    db: DB,
    _: Reader,
    account_id: uuid.UUID | None = None,
    kind: SurveyKind | None = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Responded at or after (inclusive)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="Responded before (exclusive)")
    ] = None,
    order: Order = "desc",
    cursor: str | None = None,
    limit: Limit = 50,
) -> SurveyResponsePage:
    filters = service.SurveyFilters(account_id=account_id, kind=kind, since=since, until=until)
    page = service.list_surveys(db, filters, descending=order == "desc", cursor=cursor, limit=limit)
    return SurveyResponsePage(
        items=[SurveyResponseRead.model_validate(r) for r in page.items],
        total=service.count_surveys(db, filters),
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
    )


@surveys.post("", response_model=SurveyResponseRead, status_code=201)
def create_survey(
    body: SurveyResponseCreate, db: DB, state: State, actor: Writer
) -> SurveyResponseRead:
    row = service.create_survey(db, body, actor=actor, now=state.clock.now())
    return SurveyResponseRead.model_validate(row)


@surveys.get("/by-external-id/{external_id}", response_model=SurveyResponseRead)
def get_survey_by_external_id(external_id: ExternalId, db: DB, _: Reader) -> SurveyResponseRead:
    return SurveyResponseRead.model_validate(service.get_survey_by_external_id(db, external_id))


@surveys.put(
    "/by-external-id/{external_id}",
    response_model=SurveyResponseRead,
    responses=UPSERT_RESPONSES,
    summary="Create or update the survey response with this external id (idempotent sync)",
)
def upsert_survey(
    external_id: ExternalId,
    body: SurveyResponseUpsert,
    db: DB,
    state: State,
    actor: Writer,
    response: Response,
) -> SurveyResponseRead:
    row, created = service.upsert_survey(db, external_id, body, actor=actor, now=state.clock.now())
    response.status_code = 201 if created else 200
    return SurveyResponseRead.model_validate(row)


@surveys.get("/{response_id}", response_model=SurveyResponseRead)
def get_survey(response_id: uuid.UUID, db: DB, _: Reader) -> SurveyResponseRead:
    return SurveyResponseRead.model_validate(service.get_survey(db, response_id))


router = APIRouter()
router.include_router(interactions)
router.include_router(surveys)
