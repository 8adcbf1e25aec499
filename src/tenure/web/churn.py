"""Dashboard pages of churn prediction: the Models page (validation report beside the
baselines, live accuracy, drift, the registry with activation), the at-risk list and the
account panel's "Predict now". Clients of the churn service: no SQL here."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tenure.accounts import service as accounts_service
from tenure.auth import service as auth_service
from tenure.churn import service as churn_service
from tenure.churn.metrics import REPORT_MODELS, REPORT_ROWS
from tenure.churn.models import ChurnModel
from tenure.deps import DB, State
from tenure.health import service as health_service
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.actor import Actor
from tenure.kit.errors import Conflict, Forbidden, InvalidInput
from tenure.web.accounts import account_page
from tenure.web.churn_panels import LOOKS, account_panel, percent
from tenure.web.health_panels import band_styles
from tenure.web.pages import PageActor, check_csrf, render, require_writer

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
TOP_FEATURES = 10
MODELS = [(key, label) for key, label, _ in REPORT_MODELS]
ROWS = REPORT_ROWS
SPLITS = (("train", "Training"), ("calibration", "Calibration"), ("validation", "Validation"))
# Messages after a POST-redirect-GET: the query names one of these, never free text.
MODEL_NOTICES = {"activated": "Activated: predictions use this model from now on."}


def fmt(value: Any) -> str:
    """A figure as the terminal report prints it: counts with separators, rates to 3 places."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):.3f}"


def _day(iso: str | None) -> str:
    return (iso or "")[:10] or "—"


def _report(db: DB, model: ChurnModel, counts: dict[uuid.UUID, tuple[int, int]]) -> dict[str, Any]:
    """One model's report, as `tenure churn show` prints it, with its live figures and drift."""
    metrics = model.metrics or {}
    training = model.training or {}
    live = churn_service.live_accuracy(db, model)
    made, matured = counts.get(model.id, (0, 0))
    table = [
        {
            "label": label,
            "cells": [fmt(metrics.get(name, {}).get(key)) for name, _ in MODELS],
            "live": fmt(live.get(key)) if live.get("examples") else "n/a",
        }
        for key, label in ROWS
    ]
    calibration = [
        {
            "bin": f"{row['bin'] / 10:.1f} to {(row['bin'] + 1) / 10:.1f}",
            "predicted": fmt(row.get("predicted")),
            "observed": fmt(row.get("observed")),
            "count": fmt(row.get("count")),
            "predicted_pct": round(100 * float(row.get("predicted") or 0), 1),
            "observed_pct": round(100 * float(row.get("observed") or 0), 1),
        }
        for row in metrics.get("lightgbm", {}).get("calibration", [])
    ]
    importance = list((metrics.get("importance") or {}).items())[:TOP_FEATURES]
    top_share = max((float(s) for _, s in importance), default=0.0) or 1.0
    splits = [
        {
            "label": label,
            "from": _day(part.get("from")),
            "to": _day(part.get("to")),
            "snapshots": fmt(part.get("snapshots")),
            "examples": fmt(part.get("examples")),
            "churns": fmt(part.get("churns")),
        }
        for key, label in SPLITS
        if (part := training.get(key))
    ]
    drift = model.drift or None
    drift_rows = []
    if drift:
        flagged = set(drift.get("flagged", []))
        drift_rows = [
            {"feature": name, "psi": fmt(value), "flagged": name in flagged}
            for name, value in sorted(
                (drift.get("psi") or {}).items(),
                key=lambda kv: (kv[0] not in flagged, -(kv[1] or 0.0), kv[0]),
            )
        ]
    return {
        "model": model,
        "horizon": training.get("horizon_days"),
        "grace": training.get("grace_days"),
        "threshold": training.get("threshold", 0.25),
        "splits": splits,
        "table": table,
        "live_examples": int(live.get("examples") or 0),
        "predictions": made,
        "matured": matured,
        "calibration": calibration,
        "importance": [
            {"feature": name, "share": f"{float(share):.1%}", "bar": 100 * float(share) / top_share}
            for name, share in importance
        ],
        "drift": drift,
        "drift_rows": drift_rows,
        "drift_flagged": sorted(drift.get("flagged", [])) if drift else [],
    }


def _versions(
    models: list[ChurnModel], counts: dict[uuid.UUID, tuple[int, int]]
) -> list[dict[str, Any]]:
    out = []
    for m in models:
        made, matured = counts.get(m.id, (0, 0))
        valid = (m.training or {}).get("validation", {})
        out.append(
            {
                "version": m.version,
                "status": m.status,
                "created_at": m.created_at,
                "created_by": m.created_by,
                "roc_auc": fmt(m.metrics.get("lightgbm", {}).get("roc_auc")),
                "roc_auc_logistic": fmt(m.metrics.get("logistic_regression", {}).get("roc_auc")),
                "roc_auc_health": fmt(m.metrics.get("health_score", {}).get("roc_auc")),
                "lift": fmt(m.metrics.get("lightgbm", {}).get("lift_top_decile")),
                "validation": f"{_day(valid.get('from'))} to {_day(valid.get('to'))}",
                "predictions": fmt(made),
                "matured": fmt(matured),
            }
        )
    return out


def _models_page(
    request: Request,
    db: DB,
    state: State,
    actor: Actor,
    *,
    version: int | None = None,
    status_code: int = 200,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    models = churn_service.models(db)
    counts = churn_service.prediction_counts(db)
    active = next((m for m in models if m.status == "active"), None)
    shown = churn_service.get_model(db, version) if version is not None else active
    return render(
        request,
        "churn/models.html",
        state,
        actor,
        "models",
        status_code=status_code,
        report=_report(db, shown, counts) if shown is not None else None,
        versions=_versions(models, counts),
        active=active,
        models_count=len(models),
        can_activate=actor.has_scope("admin"),
        error=error,
        notice=notice,
        model_names=[label for _, label in MODELS],
    )


@router.get("/models")
def models_page(
    request: Request, db: DB, state: State, actor: PageActor, done: str = ""
) -> HTMLResponse:
    return _models_page(request, db, state, actor, notice=MODEL_NOTICES.get(done))


@router.get("/models/{version}")
def model_page(
    request: Request,
    version: Annotated[int, Path(ge=1)],
    db: DB,
    state: State,
    actor: PageActor,
) -> HTMLResponse:
    return _models_page(request, db, state, actor, version=version)


@router.post("/models/{version}/activate")
def model_activate(
    request: Request,
    version: Annotated[int, Path(ge=1)],
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if not actor.has_scope("admin"):
        raise Forbidden("only administrators can activate churn models")
    check_csrf(request, state, csrf)
    try:
        with db.begin_nested():
            churn_service.activate(db, version, actor=actor, now=state.clock.now())
    except churn_service.ModelUnusable as exc:
        # The active model stays as it was; say why on the page.
        return _models_page(request, db, state, actor, status_code=exc.status, error=exc.detail)
    return RedirectResponse("/models?done=activated", status_code=303)


# The at-risk list.


def _levels(risk: list[str] | None) -> list[str]:
    """risk=high&risk=critical (the form's checkboxes) or risk=high,critical (a link)."""
    levels = [r.strip() for value in risk or [] for r in value.split(",") if r.strip()]
    return list(dict.fromkeys(levels))


def _owner(owner: str, actor: Actor) -> uuid.UUID | None:
    if owner == "me":
        return actor.user_id
    if not owner:
        return None
    try:
        return uuid.UUID(owner)
    except ValueError:
        raise InvalidInput(f"unknown owner '{owner}'", field="owner") from None


@router.get("/churn/at-risk")
def at_risk_page(
    request: Request,
    db: DB,
    state: State,
    actor: PageActor,
    risk: Annotated[list[str] | None, Query()] = None,
    owner: Annotated[str, Query(max_length=64)] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    levels = _levels(risk)
    rows, total = churn_service.at_risk(
        db, levels=levels, owner_id=_owner(owner, actor), limit=PAGE_SIZE, offset=offset
    )
    users = auth_service.list_users(db)
    params = {"risk": ",".join(levels), "owner": owner}
    params = {k: v for k, v in params.items() if v}

    def link(at: int) -> str:
        return "/churn/at-risk?" + urlencode({**params, "offset": at})

    active = churn_service.active_model(db)
    context: dict[str, Any] = {
        "rows": rows,
        "total": total,
        "offset": offset,
        "first": offset + 1 if rows else 0,
        "last": offset + len(rows),
        "levels": levels,
        "level_options": [(level, LOOKS[level][0]) for level in churn_service.LEVELS],
        "owner": owner,
        "owners": [u for u in users if u.role in ("admin", "csm")],
        "owner_names": {u.id: u.name or u.email for u in users},
        "styles": band_styles(health_service.active_cards(db, now=state.clock.now())),
        "percent": percent,
        "active_version": active.version if active else None,
        "prev_link": link(max(offset - PAGE_SIZE, 0)) if offset > 0 else None,
        "next_link": link(offset + PAGE_SIZE) if offset + len(rows) < total else None,
    }
    template = (
        "churn/_at_risk_results.html" if request.headers.get("hx-request") else "churn/at_risk.html"
    )
    return render(request, template, state, actor, "models", **context)


# The account page's panel.


@router.post("/accounts/{account_id}/churn/predict")
def account_predict(
    request: Request,
    account_id: uuid.UUID,
    db: DB,
    state: State,
    actor: PageActor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Predict this account now; htmx swaps the panel, a plain form post comes back to the page."""
    check_csrf(request, state, csrf)
    require_writer(actor, "predict churn")
    account = accounts_service.get_account(db, account_id)
    settings = state.settings
    now = state.clock.now()
    error, status = None, 200
    try:
        with db.begin_nested():
            churn_service.predict_account(
                db,
                account.id,
                now=now,
                catalogue=load_catalogue(settings.metric_catalogue),
                edges=settings.churn_bands,
                threshold=settings.churn_alert_threshold,
            )
    except (churn_service.NoActiveModel, churn_service.ModelUnusable, Conflict) as exc:
        error, status = exc.detail, exc.status
    if request.headers.get("hx-request"):
        # htmx swaps 2xx answers only: the panel says what went wrong.
        panel = account_panel(
            db,
            account.id,
            now=now,
            edges=settings.churn_bands,
            error=error,
            notice=None if error else "Predicted now with the active model.",
        )
        return render(
            request,
            "churn/_panel.html",
            state,
            actor,
            "accounts",
            churn=panel,
            account=account,
            can_write=True,
        )
    if error is not None:
        return account_page(
            request, db, state, actor, account.id, status_code=status, churn_error=error
        )
    return RedirectResponse(f"/accounts/{account.id}?done=predicted#churn", status_code=303)
