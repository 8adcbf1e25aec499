"""Routes: churn predictions per account and for the portfolio, the at-risk list, the
model registry (list, detail with validation and live figures, activate), drift and the
feature catalogue, under /api/v1."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from tenure.accounts import service as accounts_service
from tenure.auth.dependencies import Admin, Reader, Writer
from tenure.churn import service
from tenure.churn.models import ChurnModel, ChurnPrediction
from tenure.churn.schemas import (
    AtRiskPage,
    AtRiskRow,
    DriftRead,
    Factor,
    FeatureRead,
    ModelDetail,
    ModelSummary,
    PortfolioPrediction,
    PredictionPoint,
    PredictionRead,
)
from tenure.deps import DB, State
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["churn"])

Version = Annotated[int, Path(ge=1, description="The model's version number")]


def _prediction(db: DB, row: ChurnPrediction) -> PredictionRead:
    model = service.model_by_id(db, row.model_id)
    return PredictionRead(
        account_id=row.account_id,
        as_of=row.as_of,
        horizon_days=row.horizon_days,
        probability=row.probability,
        risk_level=row.risk_level,
        mrr_cents=row.mrr_cents,
        mrr_at_risk_cents=row.mrr_at_risk_cents,
        model_version=model.version,
        factors=[Factor(**f) for f in row.factors],
        outcome=row.outcome,
        outcome_at=row.outcome_at,
    )


def _summary(model: ChurnModel, counts: dict[uuid.UUID, tuple[int, int]]) -> ModelSummary:
    made, matured = counts.get(model.id, (0, 0))
    metrics = model.metrics
    return ModelSummary(
        version=model.version,
        status=model.status,
        created_at=model.created_at,
        created_by=model.created_by,
        activated_at=model.activated_at,
        note=model.note,
        roc_auc=metrics.get("lightgbm", {}).get("roc_auc"),
        roc_auc_logistic=metrics.get("logistic_regression", {}).get("roc_auc"),
        roc_auc_health=metrics.get("health_score", {}).get("roc_auc"),
        training=model.training,
        predictions=made,
        matured=matured,
    )


@router.get(
    "/accounts/{account_id}/churn",
    response_model=PredictionRead,
    summary="The account's latest churn prediction with its top factors",
)
def get_prediction(account_id: uuid.UUID, db: DB, _: Reader) -> PredictionRead:
    accounts_service.get_account(db, account_id)
    row = service.latest_prediction(db, account_id)
    if row is None:
        raise NotFound(
            f"account {account_id} has no churn prediction yet: POST "
            f"/api/v1/accounts/{account_id}/churn/predict or run 'tenure churn predict'"
        )
    return _prediction(db, row)


@router.get(
    "/accounts/{account_id}/churn/history",
    response_model=list[PredictionPoint],
    summary="The account's predictions, newest first, with their outcomes once known",
)
def get_prediction_history(
    account_id: uuid.UUID,
    db: DB,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 90,
) -> list[PredictionPoint]:
    accounts_service.get_account(db, account_id)
    rows = service.prediction_history(db, account_id, limit=limit)
    return [PredictionPoint.model_validate(r) for r in rows]


@router.post(
    "/accounts/{account_id}/churn/predict",
    response_model=PredictionRead,
    summary="Predict this account now with the active model (stored; returns it)",
)
def predict_account(account_id: uuid.UUID, db: DB, state: State, _: Writer) -> PredictionRead:
    settings = state.settings
    row = service.predict_account(
        db,
        account_id,
        now=state.clock.now(),
        catalogue=load_catalogue(settings.metric_catalogue),
        edges=settings.churn_bands,
        threshold=settings.churn_alert_threshold,
    )
    return _prediction(db, row)


@router.post(
    "/churn/predict",
    response_model=PortfolioPrediction,
    summary="Predict every live account now with the active model (also measures drift)",
)
def predict_portfolio(db: DB, state: State, _: Writer) -> PortfolioPrediction:
    settings = state.settings
    result = service.predict(
        db,
        now=state.clock.now(),
        catalogue=load_catalogue(settings.metric_catalogue),
        edges=settings.churn_bands,
        threshold=settings.churn_alert_threshold,
    )
    return PortfolioPrediction(
        model_version=result.model_version,
        as_of=result.as_of,
        accounts=result.accounts,
        flagged=result.flagged,
        announced=result.announced,
        drift_flagged=result.drift_flagged,
    )


@router.get(
    "/churn/at-risk",
    response_model=AtRiskPage,
    summary="Live accounts by expected MRR at risk (probability x MRR), largest first",
)
def at_risk(
    db: DB,
    _: Reader,
    risk: Annotated[
        str | None, Query(description="Comma-separated levels: low, medium, high, critical")
    ] = None,
    owner_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AtRiskPage:
    levels = [r.strip() for r in (risk or "").split(",") if r.strip()]
    rows, total = service.at_risk(db, levels=levels, owner_id=owner_id, limit=limit, offset=offset)
    return AtRiskPage(
        total=total,
        limit=limit,
        offset=offset,
        items=[
            AtRiskRow(
                account_id=a.id,
                name=a.name,
                category=a.category,
                plan=a.plan,
                owner_id=a.owner_id,
                mrr_base_cents=a.mrr_base_cents,
                churn_probability=a.churn_probability or 0.0,
                churn_risk=a.churn_risk or "",
                churn_mrr_at_risk_cents=a.churn_mrr_at_risk_cents or 0,
                churn_as_of=a.churn_as_of,
                health_score=a.health_score,
            )
            for a in rows
        ],
    )


@router.get(
    "/churn/models",
    response_model=list[ModelSummary],
    summary="Every trained model, newest first, with its validation ROC AUC beside the baselines'",
)
def list_models(db: DB, _: Reader) -> list[ModelSummary]:
    counts = service.prediction_counts(db)
    return [_summary(m, counts) for m in service.models(db)]


@router.get(
    "/churn/models/{version}",
    response_model=ModelDetail,
    summary="A model: validation metrics of it and its baselines, live accuracy, drift",
)
def get_model(version: Version, db: DB, _: Reader) -> ModelDetail:
    model = service.get_model(db, version)
    counts = service.prediction_counts(db)
    return ModelDetail(
        **_summary(model, counts).model_dump(),
        features=model.features,
        codes=model.codes,
        calibration=model.calibration,
        params=model.params,
        metrics=model.metrics,
        fingerprint=model.fingerprint,
        live=service.live_accuracy(db, model),
        drift=model.drift,
    )


@router.post(
    "/churn/models/{version}/activate",
    response_model=ModelSummary,
    summary="Make this version the one predictions use (refused if it cannot be loaded)",
)
def activate_model(version: Version, db: DB, state: State, actor: Admin) -> ModelSummary:
    model = service.activate(db, version, actor=actor, now=state.clock.now())
    return _summary(model, service.prediction_counts(db))


@router.get(
    "/churn/drift",
    response_model=DriftRead,
    summary="Population stability index per feature, training vs the latest portfolio run",
)
def get_drift(db: DB, _: Reader) -> DriftRead:
    model = service.active_model(db)
    if model is None:
        raise NotFound("no active churn model: train one with 'tenure churn train'")
    drift = model.drift or {}
    return DriftRead(
        model_version=model.version,
        as_of=drift.get("as_of"),
        threshold=float(drift.get("threshold", 0.25)),
        psi=drift.get("psi", {}),
        flagged=drift.get("flagged", []),
    )


@router.get(
    "/churn/features",
    response_model=list[FeatureRead],
    summary="The feature catalogue: name, meaning, window",
)
def list_features(db: DB, _: Reader) -> list[FeatureRead]:
    return [
        FeatureRead(name=f.name, meaning=f.meaning, window=f.window)
        for f in service.feature_catalogue(db)
    ]
