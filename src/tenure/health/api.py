"""Routes: account health (latest, history, rescore, overrides), the portfolio's
distribution, scorecards (CRUD and preview) and the signal catalogue, under /api/v1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response

from tenure.accounts import service as accounts_service
from tenure.auth.dependencies import Admin, Reader, Writer
from tenure.deps import DB, State
from tenure.health import service
from tenure.health.models import ScorecardVersion
from tenure.health.schemas import (
    DistributionRead,
    HealthHistory,
    HealthPoint,
    HealthRead,
    HistogramBin,
    LevelCount,
    OverrideCreate,
    OverrideRead,
    PreviewLevel,
    PreviewRead,
    ScorecardDetail,
    ScorecardRead,
    ScorecardVersionRead,
    SignalRead,
)
from tenure.health.scorecard import parse_scorecard
from tenure.health.signals import SIGNALS
from tenure.kit.errors import Conflict, InvalidInput, NotFound

router = APIRouter(prefix="/api/v1", tags=["health"])

HISTORY_DAYS = 90
ScorecardKey = Annotated[str, Path(min_length=1, max_length=64)]
Definition = Annotated[
    dict[str, Any],
    Body(description="A scorecard definition: the JSON form of the scorecard TOML"),
]


@contextmanager
def _listed(prefix: str) -> Iterator[None]:
    """Give a domain error about one field the `errors` list request validation has, so a
    client reads every 422 the same way."""
    try:
        yield
    except InvalidInput as exc:
        field = exc.extra.get("field")
        if field and "errors" not in exc.extra:
            exc.extra["errors"] = [{"field": f"{prefix}{field}", "message": exc.detail}]
        raise


def _view(db: DB, account_id: uuid.UUID, *, at: datetime) -> HealthRead:
    accounts_service.get_account(db, account_id)
    view = service.health_view(db, account_id, at=at)
    if view is None:
        raise NotFound(
            f"account {account_id} has never been scored: POST "
            f"/api/v1/accounts/{account_id}/health/rescore or run 'tenure score'"
        )
    row = view.row
    return HealthRead(
        account_id=account_id,
        score=row.score,
        risk_level=row.risk_level,
        as_of=row.as_of,
        scored_on=row.scored_on,
        scorecard_key=row.scorecard_key,
        scorecard_version=row.scorecard_version,
        components=row.components,
        missing=row.missing,
        factors=row.factors,
        signals=row.signals,
        delta_7=row.delta_7,
        delta_30=row.delta_30,
        children=row.children,
        override=OverrideRead.model_validate(view.override) if view.override else None,
        effective_score=view.effective_score,
        effective_risk=view.effective_risk,
    )


def _histogram(counts: list[int]) -> list[HistogramBin]:
    return [HistogramBin(min=i * 10, max=(i + 1) * 10, accounts=n) for i, n in enumerate(counts)]


def _scorecard(row: ScorecardVersion) -> ScorecardRead:
    definition = row.definition
    return ScorecardRead(
        key=row.key,
        version=row.version,
        name=definition.get("name", row.key),
        default=bool(definition.get("default", False)),
        priority=int(definition.get("priority", 0)),
        segment=definition.get("segment", {}),
        active=row.active,
        created_at=row.created_at,
        created_by=row.created_by,
        definition=definition,
    )


def _detail(db: DB, key: str) -> ScorecardDetail:
    rows = service.scorecard_versions(db, key)
    return ScorecardDetail(
        **_scorecard(rows[0]).model_dump(),
        versions=[ScorecardVersionRead.model_validate(r) for r in rows],
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# Account health.


@router.get(
    "/accounts/{account_id}/health",
    response_model=HealthRead,
    summary="Latest score with components, factors and deltas, and the active override",
)
def get_health(account_id: uuid.UUID, db: DB, state: State, _: Reader) -> HealthRead:
    return _view(db, account_id, at=state.clock.now())


@router.get(
    "/accounts/{account_id}/health/history",
    response_model=HealthHistory,
    summary="Daily scores of a period (default: the last 90 days)",
)
def get_history(
    account_id: uuid.UUID,
    db: DB,
    state: State,
    _: Reader,
    since: Annotated[
        datetime | None, Query(description="ISO date or time (UTC if no zone); default 90 days ago")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO date or time (UTC if no zone); default now")
    ] = None,
) -> HealthHistory:
    accounts_service.get_account(db, account_id)
    now = state.clock.now()
    end = _aware(until) if until else now
    start = _aware(since) if since else end - timedelta(days=HISTORY_DAYS)
    with _listed("query."):
        rows = service.history(db, account_id, since=start, until=end)
    return HealthHistory(
        account_id=account_id,
        since=start,
        until=end,
        points=[HealthPoint.model_validate(r) for r in rows],
    )


@router.post(
    "/accounts/{account_id}/health/rescore",
    response_model=HealthRead,
    summary="Score this account now; returns its new latest score",
)
def rescore_account(account_id: uuid.UUID, db: DB, state: State, _: Writer) -> HealthRead:
    accounts_service.get_account(db, account_id)
    now = state.clock.now()
    service.rescore(db, as_of=now, now=now, account_ids=[account_id])
    latest = service.latest(db, account_id)
    if latest is None or latest.as_of != now:
        raise Conflict(f"account {account_id} is not scored: it had churned (or not started)")
    return _view(db, account_id, at=now)


@router.get(
    "/accounts/{account_id}/health/overrides",
    response_model=list[OverrideRead],
    summary="Every override of the account, newest first (expired and removed included)",
)
def list_overrides(account_id: uuid.UUID, db: DB, _: Reader) -> list[OverrideRead]:
    accounts_service.get_account(db, account_id)
    return [OverrideRead.model_validate(o) for o in service.overrides(db, account_id)]


@router.post(
    "/accounts/{account_id}/health/override",
    response_model=OverrideRead,
    status_code=201,
    summary="Place a score and/or risk level over the computed one until it expires (audited)",
)
def create_override(
    account_id: uuid.UUID, body: OverrideCreate, db: DB, state: State, actor: Writer
) -> OverrideRead:
    with _listed("body."):
        override = service.create_override(
            db,
            account_id,
            score=body.score,
            risk_level=body.risk_level,
            reason=body.reason,
            expires_at=body.expires_at,
            actor=actor,
            now=state.clock.now(),
        )
    return OverrideRead.model_validate(override)


@router.delete(
    "/accounts/{account_id}/health/override",
    status_code=204,
    summary="Remove the active override: the computed score applies again (audited)",
)
def delete_override(account_id: uuid.UUID, db: DB, state: State, actor: Writer) -> Response:
    accounts_service.get_account(db, account_id)
    service.remove_override(db, account_id, actor=actor, now=state.clock.now())
    return Response(status_code=204)


# Portfolio.


@router.get(
    "/health/distribution",
    response_model=DistributionRead,
    summary="Accounts and MRR per risk level (overrides applied), and a score histogram",
)
def get_distribution(db: DB, _: Reader) -> DistributionRead:
    data = service.distribution(db)
    levels = [
        LevelCount(
            level=level,
            label=v["label"],
            colour=v["colour"],
            accounts=v["accounts"],
            mrr_cents=v["mrr_cents"],
        )
        for level, v in data["levels"].items()
    ]
    return DistributionRead(
        levels=levels,
        histogram=_histogram(data["histogram"]),
        scored=sum(data["histogram"]),
        unscored=data["unscored"],
    )


@router.get("/health/signals", response_model=list[SignalRead], summary="The signal catalogue")
def list_signals(_: Reader) -> list[SignalRead]:
    return [
        SignalRead(
            name=s.name,
            label=s.label,
            meaning=s.meaning,
            baseline=s.baseline,
            component=s.component,
        )
        for s in SIGNALS.values()
    ]


# Scorecards.


@router.get(
    "/health/scorecards",
    response_model=list[ScorecardRead],
    summary="Scorecards in use (latest version of each)",
)
def list_scorecards(db: DB, state: State, _: Reader) -> list[ScorecardRead]:
    cards = service.active_cards(db, now=state.clock.now())
    out = []
    for card in cards:
        rows = service.scorecard_versions(db, card.key)
        out.append(_scorecard(next(r for r in rows if r.version == card.version)))
    return out


@router.post(
    "/health/scorecards/preview",
    response_model=PreviewRead,
    summary="The distribution the portfolio would have with this scorecard (nothing saved)",
)
def preview_scorecard(definition: Definition, db: DB, state: State, _: Reader) -> PreviewRead:
    now = state.clock.now()
    data = service.preview(db, definition, as_of=now)
    return PreviewRead(
        as_of=now,
        accounts=data["accounts"],
        scored=data["scored"],
        mean=data["mean"],
        levels=[PreviewLevel(level=k, accounts=v) for k, v in data["levels"].items()],
        histogram=_histogram(data["histogram"]),
    )


@router.get(
    "/health/scorecards/{key}",
    response_model=ScorecardDetail,
    summary="A scorecard's latest version and the list of its versions",
)
def get_scorecard(key: ScorecardKey, db: DB, state: State, _: Reader) -> ScorecardDetail:
    service.active_cards(db, now=state.clock.now())  # the shipped default exists once asked
    return _detail(db, key)


@router.post(
    "/health/scorecards",
    response_model=ScorecardDetail,
    status_code=201,
    summary="Create a scorecard (or bring a retired key back as its next version)",
)
def create_scorecard(definition: Definition, db: DB, state: State, actor: Admin) -> ScorecardDetail:
    now = state.clock.now()
    config = parse_scorecard(definition)
    if config.key in {c.key for c in service.active_cards(db, now=now)}:
        raise Conflict(
            f"scorecard {config.key!r} exists: PUT /api/v1/health/scorecards/{config.key} "
            "saves its next version"
        )
    card = service.save_scorecard(db, definition, actor=actor, now=now)
    return _detail(db, card.key)


@router.put(
    "/health/scorecards/{key}",
    response_model=ScorecardDetail,
    summary="Save the next version of a scorecard (the key in the body must match)",
)
def update_scorecard(
    key: ScorecardKey, definition: Definition, db: DB, state: State, actor: Admin
) -> ScorecardDetail:
    body_key = definition.get("key", key)
    if body_key != key:
        message = f"the key in the body ({body_key!r}) must match the path ({key!r})"
        raise InvalidInput(message, field="key", errors=[{"field": "key", "message": message}])
    definition = {**definition, "key": key}
    parse_scorecard(definition)  # every mistake before whether the key exists
    now = state.clock.now()
    service.active_cards(db, now=now)  # the shipped default exists once asked
    service.scorecard_versions(db, key)
    card = service.save_scorecard(db, definition, actor=actor, now=now)
    return _detail(db, card.key)


@router.delete(
    "/health/scorecards/{key}",
    status_code=204,
    summary="Retire a scorecard (its accounts fall back to the others; not the default)",
)
def retire_scorecard(key: ScorecardKey, db: DB, state: State, actor: Admin) -> Response:
    service.retire_scorecard(db, key, actor=actor, now=state.clock.now())
    return Response(status_code=204)
