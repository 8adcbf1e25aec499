"""Worker jobs of the churn domain: the weekly retrain (promoted only if not worse), the
daily portfolio prediction, and outcome maturation for live accuracy."""

from __future__ import annotations

from tenure.churn import service
from tenure.churn.training import TrainingRefused
from tenure.db import transaction, write_lock
from tenure.ingest.catalogue import load_catalogue
from tenure.kit.actor import Actor
from tenure.logging import get_logger
from tenure.worker.jobs import JobContext, periodic

log = get_logger("tenure.churn")


@periodic("churn.retrain", "30 3 * * 0")
def retrain(ctx: JobContext) -> int:
    """Train a new model on the latest data; it replaces the active one only if it is not
    worse on validation. Returns the new version (0 when the data cannot train one)."""
    s = ctx.settings
    try:
        with transaction(ctx.sessions) as session:
            report = service.train_model(
                session,
                now=ctx.clock.now(),
                actor=Actor.system("schedule"),
                horizon_days=s.churn_horizon_days,
                grace_days=s.churn_grace_days,
                valid_count=s.churn_validation_snapshots,
                min_churns=s.churn_min_churns,
                threshold=s.churn_alert_threshold,
                promote="auto",
                catalogue=load_catalogue(s.metric_catalogue),
            )
            version = report.model.version
    except TrainingRefused as exc:
        log.warning("churn.retrain.refused", reason=exc.detail)
        return 0
    log.info("churn.retrained", version=version, promoted=report.promoted, note=report.note)
    return version


@periodic("churn.predict_portfolio", "40 2 * * *")
def predict_portfolio(ctx: JobContext) -> int:
    """Predict every live account with the active model (after the nightly rescore)."""
    s = ctx.settings
    with transaction(ctx.sessions) as session:
        write_lock(session)
        if service.active_model(session) is None:
            return 0
        result = service.predict(
            session,
            now=ctx.clock.now(),
            catalogue=load_catalogue(s.metric_catalogue),
            edges=s.churn_bands,
            threshold=s.churn_alert_threshold,
        )
    if result.drift_flagged:
        log.warning("churn.drift", model=result.model_version, features=result.drift_flagged)
    return result.accounts


@periodic("churn.mature_outcomes", "50 2 * * *")
def mature_outcomes(ctx: JobContext) -> int:
    """Record the outcome of predictions whose horizon has passed."""
    with transaction(ctx.sessions) as session:
        return service.mature_outcomes(
            session, now=ctx.clock.now(), grace_days=ctx.settings.churn_grace_days
        )
