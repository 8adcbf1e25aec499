"""Support interactions and surveys: recorded one by one (API, sync by external id) or in bulk."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, InvalidInput, NotFound
from tenure.kit.pagination import Page, paginate
from tenure.support import repository as repo
from tenure.support.models import SupportInteraction, SurveyResponse
from tenure.support.repository import InteractionFilters, SurveyColumns, SurveyFilters
from tenure.support.schemas import (
    STATUSES,
    SupportInteractionCreate,
    SupportInteractionUpdate,
    SupportInteractionUpsert,
    SurveyResponseCreate,
    SurveyResponseUpsert,
)

__all__ = ["InteractionFilters", "SurveyColumns", "SurveyFilters"]

MAX_PAGE = 200
# Where a ticket may go from each status; staying in the same status is always allowed.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"pending", "resolved", "closed"}),
    "pending": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset({"open"}),
}
DONE = frozenset({"resolved", "closed"})


class InvalidTransition(InvalidInput):
    title = "Invalid status transition"
    type_slug = "invalid-transition"


def _invalid(field: str, message: str) -> InvalidInput:
    """A 422 naming the body field, in the same `errors` shape as request validation."""
    return InvalidInput(
        f"{field}: {message}",
        field=field,
        errors=[{"field": f"body.{field}", "message": message, "type": "value_error"}],
    )


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")


def check_transition(current: str, target: str) -> None:
    """Refuse a status change the ticket lifecycle does not allow."""
    allowed = TRANSITIONS.get(current, frozenset(STATUSES))
    if target == current or target in allowed:
        return
    message = f"cannot go from {current} to {target}; from {current} it may go to " + ", ".join(
        s for s in STATUSES if s in allowed
    )
    raise InvalidTransition(
        f"status: {message}",
        field="status",
        errors=[{"field": "body.status", "message": message, "type": "invalid_transition"}],
        **{"from": current, "to": target},
    )


# ---------------------------------------------------------------------------------------------
# References to accounts and contacts (resolved through the accounts service)


def _resolve_account(
    session: Session, account_id: uuid.UUID | None, account_external_id: str | None
) -> uuid.UUID:
    if account_external_id is not None:
        account = accounts_service.get_account_by_external_id(session, account_external_id)
        if account is None:
            raise _invalid(
                "account_external_id", f"no account with external_id '{account_external_id}'"
            )
        if account_id is not None and account.id != account_id:
            raise _invalid("account_external_id", "names another account than account_id")
        return account.id
    if account_id is None:
        raise _invalid("account_id", "give account_id or account_external_id")
    try:
        accounts_service.get_account(session, account_id)
    except NotFound:
        raise _invalid("account_id", f"no account with id {account_id}") from None
    return account_id


def _resolve_contact(
    session: Session,
    account_id: uuid.UUID,
    contact_id: uuid.UUID | None,
    contact_external_id: str | None,
) -> uuid.UUID | None:
    if contact_id is None and contact_external_id is None:
        return None
    field = "contact_id"
    contact = None
    if contact_id is not None:
        contact = accounts_service.get_contact_by_id(session, contact_id)
        if contact is None:
            raise _invalid("contact_id", f"no contact with id {contact_id}")
    if contact_external_id is not None:
        field = "contact_external_id"
        by_external = accounts_service.get_contact_by_external_id(session, contact_external_id)
        if by_external is None:
            raise _invalid(field, f"no contact with external_id '{contact_external_id}'")
        if contact is not None and contact.id != by_external.id:
            raise _invalid(field, "names another contact than contact_id")
        contact = by_external
    assert contact is not None
    # A contact not yet linked to any account (identified, never grouped) is accepted.
    if contact.account_id is not None and contact.account_id != account_id:
        raise _invalid(field, "the contact belongs to another account")
    return contact.id


def _references(
    session: Session,
    row: SupportInteraction | SurveyResponse | None,
    given: Mapping[str, Any],
) -> dict[str, Any]:
    """account_id and contact_id to store, from the references given (all of them on create)."""
    if row is None or "account_id" in given or "account_external_id" in given:
        account_id = _resolve_account(
            session, given.get("account_id"), given.get("account_external_id")
        )
    else:
        account_id = row.account_id
    if row is None or "contact_id" in given or "contact_external_id" in given:
        contact_id = _resolve_contact(
            session, account_id, given.get("contact_id"), given.get("contact_external_id")
        )
    else:
        contact_id = row.contact_id
        if contact_id is not None and account_id != row.account_id:
            # Moving the row to another account: its contact must still fit.
            contact = accounts_service.get_contact_by_id(session, contact_id)
            if contact is not None and contact.account_id not in (None, account_id):
                raise _invalid(
                    "contact_id",
                    "the stored contact belongs to another account; give a contact or null",
                )
    return {"account_id": account_id, "contact_id": contact_id}


def _apply(
    session: Session,
    row: SupportInteraction | SurveyResponse,
    values: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
    target_type: str,
) -> None:
    """Write the values that differ; one audit entry lists them, before and after."""
    diff: dict[str, Any] = {}
    for field, value in values.items():
        old = getattr(row, field)
        if old != value:
            diff[field] = {"from": _jsonable(old), "to": _jsonable(value)}
            setattr(row, field, value)
    if diff:
        auth_service.audit(
            session,
            actor,
            f"{target_type}.update",
            now=now,
            target_type=target_type,
            target_id=row.id,
            details={"external_id": row.external_id, "changes": diff},
        )
        accounts_service.request_rescore(session, [row.account_id], now=now)


def _insert(
    session: Session,
    row: SupportInteraction | SurveyResponse,
    *,
    actor: Actor,
    now: datetime,
    target_type: str,
) -> bool:
    """Insert and audit; False when the external id was taken meanwhile."""
    if not repo.try_insert(session, row):
        return False
    auth_service.audit(
        session,
        actor,
        f"{target_type}.create",
        now=now,
        target_type=target_type,
        target_id=row.id,
        details={"external_id": row.external_id, "account_id": str(row.account_id)},
    )
    accounts_service.request_rescore(session, [row.account_id], now=now)
    return True


# ---------------------------------------------------------------------------------------------
# Support interactions

_INTERACTION_FIELDS = (
    "type",
    "channel",
    "priority",
    "sentiment",
    "outcome",
    "escalated",
    "subject",
    "assignee",
    "follow_up_at",
)
INTERACTION = "support_interaction"


def _interaction_values(
    session: Session, row: SupportInteraction | None, given: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    """The columns to store from the fields given (every field on create, the ones sent after).

    A null `opened_at` or `resolved_at` means "not given": the server keeps or derives it.
    """
    values: dict[str, Any] = {f: _utc(given[f]) for f in _INTERACTION_FIELDS if f in given}
    values.update(_references(session, row, given))

    old_status = row.status if row is not None else None
    status: str = given.get("status") or old_status or "open"
    if old_status is not None:
        check_transition(old_status, status)

    opened_given: datetime | None = _utc(given.get("opened_at"))
    opened_at = opened_given or (row.opened_at if row is not None else now)
    resolved_given: datetime | None = _utc(given.get("resolved_at"))
    resolved_at: datetime | None
    if status in DONE:
        if resolved_given is not None:
            resolved_at = resolved_given
        elif row is not None and old_status in DONE and row.resolved_at is not None:
            resolved_at = row.resolved_at  # resolved -> closed keeps the resolution time
        else:
            # Entering resolved/closed now; never before the ticket was opened.
            resolved_at = max(now, opened_at)
    else:
        if resolved_given is not None:
            raise _invalid(
                "resolved_at", f"only a resolved or closed interaction has one (status is {status})"
            )
        resolved_at = None  # open/pending, or reopened: no resolution time
    if resolved_at is not None and resolved_at < opened_at:
        if resolved_given is not None:
            raise _invalid("resolved_at", "is before opened_at")
        raise _invalid("opened_at", "is after resolved_at")
    values.update(status=status, opened_at=opened_at, resolved_at=resolved_at)
    return values


def list_interactions(
    session: Session,
    filters: InteractionFilters,
    *,
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[SupportInteraction]:
    """One page of interactions matching the filters, by opened_at (newest first by default)."""
    _check_limit(limit)
    return paginate(
        session,
        repo.interactions_filtered(filters),
        sort_column=SupportInteraction.opened_at,
        id_column=SupportInteraction.id,
        descending=descending,
        cursor=cursor,
        limit=limit,
    )


def count_interactions(session: Session, filters: InteractionFilters) -> int:
    return repo.count_interactions(session, filters)


def get_interaction(session: Session, interaction_id: uuid.UUID) -> SupportInteraction:
    row = repo.interaction_by_id(session, interaction_id)
    if row is None:
        raise NotFound(f"no support interaction with id {interaction_id}")
    return row


def get_interaction_by_external_id(session: Session, external_id: str) -> SupportInteraction:
    row = repo.interaction_by_external_id(session, external_id)
    if row is None:
        raise NotFound(f"no support interaction with external_id {external_id}")
    return row


def _new_interaction(
    session: Session,
    external_id: str | None,
    given: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
) -> SupportInteraction | None:
    values = _interaction_values(session, None, given, now=now)
    row = SupportInteraction(external_id=external_id, created_at=now, **values)
    return row if _insert(session, row, actor=actor, now=now, target_type=INTERACTION) else None


def create_interaction(
    session: Session, data: SupportInteractionCreate, *, actor: Actor, now: datetime
) -> SupportInteraction:
    """Record an interaction; external ids are unique (PUT by external id to sync instead)."""
    taken = Conflict(f"a support interaction with external_id {data.external_id} already exists")
    if data.external_id is not None and repo.interaction_by_external_id(session, data.external_id):
        raise taken
    given = data.model_dump(exclude={"external_id"})
    row = _new_interaction(session, data.external_id, given, actor=actor, now=now)
    if row is None:
        raise taken
    return row


def update_interaction(
    session: Session,
    interaction_id: uuid.UUID,
    data: SupportInteractionUpdate,
    *,
    actor: Actor,
    now: datetime,
) -> SupportInteraction:
    """Apply the fields given; a status change must follow the lifecycle (see TRANSITIONS)."""
    row = get_interaction(session, interaction_id)
    values = _interaction_values(session, row, data.model_dump(exclude_unset=True), now=now)
    _apply(session, row, values, actor=actor, now=now, target_type=INTERACTION)
    return row


def upsert_interaction(
    session: Session,
    external_id: str,
    data: SupportInteractionUpsert,
    *,
    actor: Actor,
    now: datetime,
) -> tuple[SupportInteraction, bool]:
    """Create the interaction with this external id, or update it with the fields given.

    Returns the row and whether it was created; sending the same body twice changes nothing.
    """
    row = repo.interaction_by_external_id(session, external_id)
    if row is None:
        created = _new_interaction(session, external_id, data.model_dump(), actor=actor, now=now)
        if created is not None:
            return created, True
        # Another request inserted it between our read and our insert: update that one.
        row = repo.interaction_by_external_id(session, external_id)
        if row is None:
            raise Conflict(f"support interaction {external_id} could not be stored; retry")
    values = _interaction_values(session, row, data.model_dump(exclude_unset=True), now=now)
    _apply(session, row, values, actor=actor, now=now, target_type=INTERACTION)
    return row, False


# ---------------------------------------------------------------------------------------------
# Survey responses

SURVEY = "survey_response"


def _survey_values(
    session: Session, row: SurveyResponse | None, given: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {f: given[f] for f in ("kind", "score", "comment") if f in given}
    values.update(_references(session, row, given))
    responded_given: datetime | None = _utc(given.get("responded_at"))
    values["responded_at"] = responded_given or (row.responded_at if row is not None else now)
    return values


def list_surveys(
    session: Session,
    filters: SurveyFilters,
    *,
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[SurveyResponse]:
    """One page of survey responses matching the filters, by responded_at (newest first)."""
    _check_limit(limit)
    return paginate(
        session,
        repo.surveys_filtered(filters),
        sort_column=SurveyResponse.responded_at,
        id_column=SurveyResponse.id,
        descending=descending,
        cursor=cursor,
        limit=limit,
    )


def count_surveys(session: Session, filters: SurveyFilters) -> int:
    return repo.count_surveys(session, filters)


def get_survey(session: Session, response_id: uuid.UUID) -> SurveyResponse:
    row = repo.survey_by_id(session, response_id)
    if row is None:
        raise NotFound(f"no survey response with id {response_id}")
    return row


def get_survey_by_external_id(session: Session, external_id: str) -> SurveyResponse:
    row = repo.survey_by_external_id(session, external_id)
    if row is None:
        raise NotFound(f"no survey response with external_id {external_id}")
    return row


def _new_survey(
    session: Session,
    external_id: str | None,
    given: Mapping[str, Any],
    *,
    actor: Actor,
    now: datetime,
) -> SurveyResponse | None:
    values = _survey_values(session, None, given, now=now)
    row = SurveyResponse(external_id=external_id, created_at=now, **values)
    return row if _insert(session, row, actor=actor, now=now, target_type=SURVEY) else None


def create_survey(
    session: Session, data: SurveyResponseCreate, *, actor: Actor, now: datetime
) -> SurveyResponse:
    """Record a survey answer (NPS 0-10, CSAT 1-5, CES 1-7); external ids are unique."""
    taken = Conflict(f"a survey response with external_id {data.external_id} already exists")
    if data.external_id is not None and repo.survey_by_external_id(session, data.external_id):
        raise taken
    given = data.model_dump(exclude={"external_id"})
    row = _new_survey(session, data.external_id, given, actor=actor, now=now)
    if row is None:
        raise taken
    return row


def upsert_survey(
    session: Session,
    external_id: str,
    data: SurveyResponseUpsert,
    *,
    actor: Actor,
    now: datetime,
) -> tuple[SurveyResponse, bool]:
    """Create the survey response with this external id, or update it with the fields given."""
    row = repo.survey_by_external_id(session, external_id)
    if row is None:
        created = _new_survey(session, external_id, data.model_dump(), actor=actor, now=now)
        if created is not None:
            return created, True
        row = repo.survey_by_external_id(session, external_id)
        if row is None:
            raise Conflict(f"survey response {external_id} could not be stored; retry")
    values = _survey_values(session, row, data.model_dump(exclude_unset=True), now=now)
    _apply(session, row, values, actor=actor, now=now, target_type=SURVEY)
    return row, False


# ---------------------------------------------------------------------------------------------
# Bulk loads


def bulk_insert_interactions(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert support interactions given as columns (bulk loads)."""
    return repo.insert_interactions(session, columns)


def bulk_insert_surveys(session: Session, columns: Mapping[str, Sequence[Any]]) -> int:
    """Insert survey responses given as columns (bulk loads)."""
    return repo.insert_surveys(session, columns)


def health_aggregates(
    session: Session,
    *,
    as_of: datetime,
    aging_before: datetime,
    sentiment_since: datetime,
    account_ids: Collection[uuid.UUID] | None = None,
) -> list[tuple[Any, ...]]:
    """Support signals for health scoring: (account id as text (`kit.keys`), open, aging,
    escalated, mean sentiment) as of a time, for accounts with any relevant ticket."""
    return repo.health_aggregates(
        session,
        as_of=as_of,
        aging_before=aging_before,
        sentiment_since=sentiment_since,
        account_ids=account_ids,
    )


def survey_columns(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    account_ids: Collection[uuid.UUID] | None = None,
) -> SurveyColumns:
    """Survey answers in [since, until), oldest first, as columns (NPS/CSAT signals)."""
    return repo.survey_columns(session, since=since, until=until, account_ids=account_ids)


def ticket_counts(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    negative_below: float = -0.3,
    account_ids: Collection[uuid.UUID] | None = None,
) -> list[tuple[uuid.UUID, str, int, int]]:
    """(account, type, tickets, of which with sentiment below `negative_below`) opened in
    [since, until): churn features."""
    return repo.ticket_counts(
        session,
        since=since,
        until=until,
        negative_below=negative_below,
        account_ids=account_ids,
    )
